// What the real compose resolved (`config --format json` of v2/v5, the YAML `config` of v1), reduced to what the
// shim acts on: bind sources, file-based secrets/configs, bind-backed named volumes, build sections. Pure.

/** One entry of `services.*.volumes` as compose printed it. */
export type VolumeEntry =
  | { readonly form: "long"; readonly entry: Readonly<Record<string, unknown>> }
  /** v1 prints short syntax with resolved sources: `/abs/src:/target:rw`. */
  | { readonly form: "short"; readonly entry: string };

export interface ServiceModel {
  readonly build?: { readonly cacheFrom: readonly string[]; readonly cacheTo: readonly string[] };
  readonly image?: string;
  readonly volumes: readonly VolumeEntry[];
  readonly profiles: readonly string[];
  readonly dependsOn: readonly string[];
}

export interface FileObject {
  readonly file?: string;
}

export interface NamedVolume {
  /** `driver_opts.device` when `driver_opts.o` binds a host directory. */
  readonly bindDevice?: string;
}

export interface ProjectModel {
  readonly name?: string;
  /** v1 only: the file format version every file of the project must share. */
  readonly version?: string;
  readonly services: ReadonlyMap<string, ServiceModel>;
  readonly secrets: ReadonlyMap<string, FileObject>;
  readonly configs: ReadonlyMap<string, FileObject>;
  readonly volumes: ReadonlyMap<string, NamedVolume>;
}

function record(value: unknown): Record<string, unknown> | undefined {
  return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

function strings(value: unknown): string[] {
  if (typeof value === "string") return [value];
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === "string") : [];
}

function fileObjects(value: unknown): Map<string, FileObject> {
  const out = new Map<string, FileObject>();
  for (const [name, raw] of Object.entries(record(value) ?? {})) {
    const file = record(raw)?.file;
    out.set(name, typeof file === "string" ? { file } : {});
  }
  return out;
}

/** Reads a parsed `config` document; throws when it is not a compose model at all. */
export function modelFromConfig(doc: unknown): ProjectModel {
  const root = record(doc);
  if (!root) throw new Error("compose config did not print a mapping");
  const services = new Map<string, ServiceModel>();
  for (const [name, raw] of Object.entries(record(root.services) ?? {})) {
    const svc = record(raw) ?? {};
    const volumes: VolumeEntry[] = [];
    for (const v of Array.isArray(svc.volumes) ? svc.volumes : []) {
      if (typeof v === "string") volumes.push({ form: "short", entry: v });
      else if (record(v)) volumes.push({ form: "long", entry: v as Record<string, unknown> });
    }
    const build = svc.build === undefined ? undefined : record(svc.build) ?? {};
    services.set(name, {
      ...(build ? { build: { cacheFrom: strings(build.cache_from), cacheTo: strings(build.cache_to) } } : {}),
      ...(typeof svc.image === "string" ? { image: svc.image } : {}),
      volumes,
      profiles: strings(svc.profiles),
      // v2 prints a mapping (service → condition), v1 a list or a mapping.
      dependsOn: Array.isArray(svc.depends_on) ? strings(svc.depends_on) : Object.keys(record(svc.depends_on) ?? {}),
    });
  }
  const volumes = new Map<string, NamedVolume>();
  for (const [name, raw] of Object.entries(record(root.volumes) ?? {})) {
    const opts = record(record(raw)?.driver_opts);
    const device = opts?.device;
    const o = typeof opts?.o === "string" ? opts.o : "";
    const binds = o.split(",").some((part) => part.trim() === "bind" || part.trim() === "rbind");
    volumes.set(name, typeof device === "string" && binds ? { bindDevice: device } : {});
  }
  return {
    ...(typeof root.name === "string" ? { name: root.name } : {}),
    ...(typeof root.version === "string" ? { version: root.version } : {}),
    services,
    secrets: fileObjects(root.secrets),
    configs: fileObjects(root.configs),
    volumes,
  };
}
