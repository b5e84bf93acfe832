// Build options → SolveRequest. Pure, so every mapping has golden vectors (test/unit/buildkit/solve-request.test.ts).
import { create } from "@bufbuild/protobuf";
import { SolveRequestSchema, type SolveRequest } from "../proto/gen/buildkit/control_pb.ts";

/** An exporter or cache backend as BuildKit names it: a type plus string attributes. */
export interface TypedEntry {
  type: string;
  attrs?: Readonly<Record<string, string>>;
}

export interface BuildRequestOptions {
  /** Build id (SolveRequest.Ref, also used by Status); the solve step fills it in when empty. */
  ref?: string;
  /** Default `dockerfile.v0`. */
  frontend?: string;
  /** Path of the Dockerfile inside the `dockerfile` local (frontend attr `filename`); default `Dockerfile`. */
  filename?: string;
  target?: string;
  buildArgs?: Readonly<Record<string, string>>;
  labels?: Readonly<Record<string, string>>;
  /** e.g. ["linux/amd64", "linux/arm64"]; joined with "," into the `platform` attr. */
  platforms?: readonly string[];
  /** true: no cache for any stage; a list: only those stages. */
  noCache?: boolean | readonly string[];
  /** Always pull base images (`image-resolve-mode=pull`). */
  pull?: boolean;
  /** RUN network mode (`force-network-mode`), e.g. "host" or "none". */
  network?: string;
  /** `host:ip` entries for /etc/hosts (`add-hosts`). */
  addHosts?: readonly string[];
  /** Local names the frontend asks the session for; defaults `context` and `dockerfile`. */
  contextLocalName?: string;
  dockerfileLocalName?: string;
  /** Further frontend attributes, passed through as they are (they win over the ones above). */
  frontendAttrs?: Readonly<Record<string, string>>;
  /** Outputs, already stripped of client-only attributes such as `dest`. The first also goes to fields 3/4. */
  exports?: readonly TypedEntry[];
  cacheImports?: readonly TypedEntry[];
  cacheExports?: readonly TypedEntry[];
  /** e.g. "network.host", "security.insecure". */
  entitlements?: readonly string[];
}

export const DEFAULT_FRONTEND = "dockerfile.v0";
export const DEFAULT_CONTEXT_LOCAL = "context";
export const DEFAULT_DOCKERFILE_LOCAL = "dockerfile";

/** Keys sorted, so attribute maps and the cache-imports JSON are deterministic (Go marshals maps sorted too). */
function sortedRecord(record: Readonly<Record<string, string>> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of Object.keys(record ?? {}).sort()) out[key] = record![key]!;
  return out;
}

function frontendAttributes(options: BuildRequestOptions): Record<string, string> {
  const attrs: Record<string, string> = {};
  if (options.filename) attrs.filename = options.filename;
  if (options.target) attrs.target = options.target;
  for (const [name, value] of Object.entries(options.buildArgs ?? {})) attrs[`build-arg:${name}`] = value;
  for (const [name, value] of Object.entries(options.labels ?? {})) attrs[`label:${name}`] = value;
  if (options.platforms?.length) attrs.platform = options.platforms.join(",");
  if (options.noCache === true) attrs["no-cache"] = "";
  else if (Array.isArray(options.noCache) && options.noCache.length > 0) attrs["no-cache"] = options.noCache.join(",");
  if (options.pull) attrs["image-resolve-mode"] = "pull";
  if (options.network) attrs["force-network-mode"] = options.network;
  if (options.addHosts?.length) attrs["add-hosts"] = options.addHosts.join(",");
  if (options.contextLocalName && options.contextLocalName !== DEFAULT_CONTEXT_LOCAL) attrs.contextkey = options.contextLocalName;
  if (options.dockerfileLocalName && options.dockerfileLocalName !== DEFAULT_DOCKERFILE_LOCAL) {
    attrs.dockerfilekey = options.dockerfileLocalName;
  }
  // Frontends read cache imports from this attr (the v0.8 Dockerfile frontend only from here), in Go's JSON
  // shape with the literal keys "Type" and "Attrs".
  if (options.cacheImports?.length) {
    attrs["cache-imports"] = JSON.stringify(options.cacheImports.map((e) => ({ Type: e.type, Attrs: sortedRecord(e.attrs) })));
  }
  Object.assign(attrs, options.frontendAttrs);
  return sortedRecord(attrs);
}

export function toSolveRequest(options: BuildRequestOptions): SolveRequest {
  const exports = options.exports ?? [];
  const first = exports[0];
  return create(SolveRequestSchema, {
    Ref: options.ref ?? "",
    Frontend: options.frontend ?? DEFAULT_FRONTEND,
    FrontendAttrs: frontendAttributes(options),
    // Fields 3/4 are all a v0.8–v0.12 daemon reads; v0.13+ reads 13 and ignores 3/4 when 13 is set.
    ExporterDeprecated: first?.type ?? "",
    ExporterAttrsDeprecated: sortedRecord(first?.attrs),
    Exporters: exports.map((e) => ({ Type: e.type, Attrs: sortedRecord(e.attrs) })),
    Cache: {
      Imports: (options.cacheImports ?? []).map((e) => ({ Type: e.type, Attrs: sortedRecord(e.attrs) })),
      Exports: (options.cacheExports ?? []).map((e) => ({ Type: e.type, Attrs: sortedRecord(e.attrs) })),
    },
    Entitlements: [...(options.entitlements ?? [])],
  });
}
