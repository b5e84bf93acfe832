// moby.buildkit.secrets.v1.Secrets for the session (`--secret id=…,src=…|env=…`). Values are read when the
// daemon asks for them and are never logged or put into error messages.
import { readFile } from "node:fs/promises";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { GetSecretRequestSchema, GetSecretResponseSchema, Secrets } from "../proto/gen/buildkit/secrets_pb.ts";
import { methodPath } from "../transport/client.ts";
import { GrpcCode, GrpcError, type Attachable } from "./attachable.ts";

/** Where one secret's value comes from: a file's bytes or an environment variable's value. */
export type SecretSource = { file: string } | { env: string };

export interface SecretsOptions {
  env?: Readonly<Record<string, string | undefined>>;
}

export function secretsAttachable(secrets: Readonly<Record<string, SecretSource>>, options: SecretsOptions = {}): Attachable {
  const env = options.env ?? process.env;
  return {
    methods: {
      [methodPath(Secrets.method.getSecret)]: async (call) => {
        let id = "";
        for await (const message of call.requests) id = fromBinary(GetSecretRequestSchema, message).ID;
        const data = await readSecret(id, secrets, env);
        await call.send(toBinary(GetSecretResponseSchema, create(GetSecretResponseSchema, { data })));
      },
    },
  };
}

async function readSecret(
  id: string,
  secrets: Readonly<Record<string, SecretSource>>,
  env: Readonly<Record<string, string | undefined>>,
): Promise<Uint8Array> {
  const source = Object.hasOwn(secrets, id) ? secrets[id] : undefined;
  // NOT_FOUND is what BuildKit expects for "no such secret": fatal only for `required` mounts.
  if (!source) throw new GrpcError(GrpcCode.NOT_FOUND, `secret ${id} not found`);
  if ("env" in source) {
    const value = env[source.env];
    if (value === undefined) throw new GrpcError(GrpcCode.NOT_FOUND, `secret ${id}: environment variable ${source.env} is not set`);
    return Buffer.from(value, "utf8");
  }
  try {
    return await readFile(source.file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? "error";
    throw new GrpcError(GrpcCode.NOT_FOUND, `secret ${id}: cannot read ${source.file} (${code})`);
  }
}
