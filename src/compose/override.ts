// The one file the shim adds to a compose project (appended as the last `-f`): translated bind sources and the
// shared build cache. Compose merges it over the user's files: service volumes by target (so an entry with the
// same target replaces the user's), `secrets`/`configs`/`volumes` by name, `build` as a mapping whose
// `cache_from`/`cache_to` lists are appended (compose-cli.md §1.4). Everything else stays as the user wrote it.
// Pure; the document is JSON, which every YAML parser compose uses (go-yaml, PyYAML) reads.
import type { ProjectModel, VolumeEntry } from "./model.ts";

/** Returns the daemon-side path for a client-side absolute path, or undefined when it stays as it is. */
export type TranslatePath = (source: string) => { value: string; why: string } | undefined;

export interface ServiceCache {
  /** `type=local,src=…` to import from. */
  readonly cacheFrom?: string;
  /** `type=local,dest=…,mode=max` to export into. */
  readonly cacheTo?: string;
}

export interface OverrideInput {
  readonly model: ProjectModel;
  readonly translate: TranslatePath;
  readonly cache: ReadonlyMap<string, ServiceCache>;
}

export interface Override {
  /** The document, or undefined when there is nothing to add. */
  readonly doc?: Record<string, unknown>;
  /** One line per change, for SHIM_DEBUG. */
  readonly changes: string[];
}

/** The source of a v1 short-syntax entry (`SRC:DST[:MODE]`), when it is an absolute host path. */
function shortSource(entry: string): { source: string; rest: string } | undefined {
  const colon = entry.indexOf(":");
  if (colon <= 0 || !entry.startsWith("/")) return undefined;
  return { source: entry.slice(0, colon), rest: entry.slice(colon) };
}

function translatedVolume(volume: VolumeEntry, translate: TranslatePath): { entry: VolumeEntry["entry"]; from: string; to: string; why: string } | undefined {
  if (volume.form === "short") {
    const parts = shortSource(volume.entry);
    const mapped = parts && translate(parts.source);
    if (!parts || !mapped || mapped.value === parts.source) return undefined;
    return { entry: mapped.value + parts.rest, from: parts.source, to: mapped.value, why: mapped.why };
  }
  const { type, source } = volume.entry;
  if (type !== "bind" || typeof source !== "string" || !source.startsWith("/")) return undefined;
  const mapped = translate(source);
  if (!mapped || mapped.value === source) return undefined;
  return { entry: { ...volume.entry, source: mapped.value }, from: source, to: mapped.value, why: mapped.why };
}

function targetOf(volume: VolumeEntry): string {
  if (volume.form === "long") return String(volume.entry.target ?? "");
  return volume.entry.split(":")[1] ?? "";
}

export function buildOverride(input: OverrideInput): Override {
  const { model, translate, cache } = input;
  const changes: string[] = [];
  const services: Record<string, Record<string, unknown>> = {};
  const serviceOf = (name: string) => (services[name] ??= {});

  for (const [name, service] of model.services) {
    const volumes: unknown[] = [];
    for (const volume of service.volumes) {
      const t = translatedVolume(volume, translate);
      if (!t) continue;
      volumes.push(t.entry);
      changes.push(`services.${name}.volumes ${targetOf(volume)}: ${t.from} → ${t.to} (${t.why})`);
    }
    if (volumes.length > 0) serviceOf(name).volumes = volumes;

    const entries = cache.get(name);
    if (service.build && entries && (entries.cacheFrom || entries.cacheTo)) {
      const build: Record<string, unknown> = {};
      if (entries.cacheFrom) build.cache_from = [entries.cacheFrom];
      if (entries.cacheTo) build.cache_to = [entries.cacheTo];
      serviceOf(name).build = build;
      changes.push(`services.${name}.build: ${[entries.cacheFrom && `cache_from ${entries.cacheFrom}`, entries.cacheTo && `cache_to ${entries.cacheTo}`].filter(Boolean).join(", ")}`);
    }
  }

  const fileObjects = (kind: "secrets" | "configs") => {
    const out: Record<string, unknown> = {};
    for (const [name, obj] of model[kind]) {
      const mapped = obj.file?.startsWith("/") ? translate(obj.file) : undefined;
      if (!mapped || mapped.value === obj.file) continue;
      out[name] = { file: mapped.value };
      changes.push(`${kind}.${name}.file: ${obj.file} → ${mapped.value} (${mapped.why})`);
    }
    return out;
  };
  const secrets = fileObjects("secrets");
  const configs = fileObjects("configs");

  const volumes: Record<string, unknown> = {};
  for (const [name, volume] of model.volumes) {
    const device = volume.bindDevice;
    const mapped = device?.startsWith("/") ? translate(device) : undefined;
    if (!mapped || mapped.value === device) continue;
    volumes[name] = { driver_opts: { device: mapped.value } };
    changes.push(`volumes.${name}.driver_opts.device: ${device} → ${mapped.value} (${mapped.why})`);
  }

  if (changes.length === 0) return { changes };
  const doc: Record<string, unknown> = {};
  if (model.version !== undefined) doc.version = model.version;
  if (Object.keys(services).length > 0) doc.services = services;
  if (Object.keys(secrets).length > 0) doc.secrets = secrets;
  if (Object.keys(configs).length > 0) doc.configs = configs;
  if (Object.keys(volumes).length > 0) doc.volumes = volumes;
  return { doc, changes };
}
