SHELL := /bin/bash
.DEFAULT_GOAL := build
NPM_BIN := node_modules/.bin
SOURCES := $(shell find src bin -name '*.ts' 2>/dev/null)

.PHONY: build test unit e2e typecheck testbed testbed-down demo proto bench

# `npm install --no-save` rather than `npm ci`: the registry this project can reach has no packages for other
# platforms (e.g. @bufbuild/buf-darwin-arm64), so the lock cannot list them and `npm ci` refuses it as out of sync.
node_modules: package.json package-lock.json
	npm install --no-save --no-audit --no-fund
	@touch node_modules

## Single executable (bun ships its own binary inside the npm package, so this works offline).
build: dist/shim
dist/shim: node_modules $(SOURCES)
	@mkdir -p dist
	$(NPM_BIN)/bun build --compile --minify --bytecode bin/shim.ts --outfile dist/shim

typecheck: node_modules
	$(NPM_BIN)/tsc --noEmit -p .

unit: node_modules
	$(NPM_BIN)/vitest run --project unit

## Installs (cached) and starts the real components; writes testbed.env.
testbed:
	bash testbed/up.sh

testbed-down:
	bash testbed/down.sh

e2e: node_modules build testbed
	$(NPM_BIN)/vitest run --project e2e

test: typecheck unit e2e

proto: node_modules
	bash src/buildkit/proto/generate.sh

demo: node_modules build testbed
	bash demo/run.sh

bench: node_modules build testbed
	for b in bench/*/run.sh; do bash "$$b"; done
