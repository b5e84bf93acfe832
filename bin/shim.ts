#!/usr/bin/env node
// Entry point of the single executable. argv0 is the name the shim was invoked as (docker, docker-compose, shim).
import { main } from "../src/shim/main.ts";

void main(process.argv0, process.argv.slice(2));
