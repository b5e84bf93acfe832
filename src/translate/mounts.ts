// The two spellings of a bind mount on the docker command line: `-v SRC:DST[:OPTS]` and `--mount k=v,…` (CSV).
import { ShimError } from "../shim/errors.ts";
import { sourceKind, translateSource, type HostView, type SourceTranslation } from "./source.ts";
import type { PathRule } from "./pathmap.ts";

/** Rewrites the source of a `-v` value; undefined when it stays as written. */
export function translateVolumeSpec(spec: string, view: HostView, rules: readonly PathRule[]): SourceTranslation | undefined {
  if (sourceKind(spec) === "windows") return undefined;
  const colon = spec.indexOf(":");
  // No colon: `-v /data` is an anonymous volume at a container path, not a host path.
  if (colon <= 0) return undefined;
  const translated = translateSource(spec.slice(0, colon), view, rules);
  return translated && { value: translated.value + spec.slice(colon), why: translated.why };
}

interface CsvField {
  /** Decoded text of the field. */
  readonly text: string;
  /** The field exactly as written. */
  readonly raw: string;
  readonly quoted: boolean;
}

/** Splits one CSV record the way Go's encoding/csv does (quotes, "" escapes, strict about bare quotes). */
export function splitCsv(record: string): CsvField[] {
  const fields: CsvField[] = [];
  let i = 0;
  for (;;) {
    const start = i;
    if (record[i] === '"') {
      let text = "";
      i++;
      for (;;) {
        if (i >= record.length) throw new Error(`extraneous or missing " in quoted-field`);
        if (record[i] === '"') {
          if (record[i + 1] === '"') {
            text += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        text += record[i++];
      }
      if (i < record.length && record[i] !== ",") throw new Error(`extraneous or missing " in quoted-field`);
      fields.push({ text, raw: record.slice(start, i), quoted: true });
    } else {
      const end = record.indexOf(",", i);
      const stop = end === -1 ? record.length : end;
      const raw = record.slice(i, stop);
      if (raw.includes('"')) throw new Error(`bare " in non-quoted-field`);
      fields.push({ text: raw, raw, quoted: false });
      i = stop;
    }
    if (i >= record.length) return fields;
    i++; // the comma
  }
}

function quoteCsv(text: string): string {
  return `"${text.replace(/"/g, '""')}"`;
}

/** Rewrites the bind source inside a `--mount` value; undefined when nothing changes. */
export function translateMountSpec(spec: string, view: HostView, rules: readonly PathRule[]): SourceTranslation | undefined {
  let fields: CsvField[];
  try {
    fields = splitCsv(spec);
  } catch (err) {
    throw new ShimError(`invalid --mount value ${JSON.stringify(spec)}: ${(err as Error).message}`);
  }
  let type = "volume";
  let sourceIndex = -1;
  fields.forEach((field, index) => {
    const eq = field.text.indexOf("=");
    const key = (eq === -1 ? field.text : field.text.slice(0, eq)).toLowerCase();
    if (key === "type" && eq !== -1) type = field.text.slice(eq + 1).toLowerCase();
    if ((key === "source" || key === "src") && eq !== -1) sourceIndex = index;
  });
  if (type !== "bind" || sourceIndex === -1) return undefined;
  const field = fields[sourceIndex]!;
  const eq = field.text.indexOf("=");
  const translated = translateSource(field.text.slice(eq + 1), view, rules);
  if (!translated) return undefined;
  const text = field.text.slice(0, eq + 1) + translated.value;
  const raw = field.quoted || /[",]/.test(text) ? quoteCsv(text) : text;
  const rebuilt = fields.map((f, index) => (index === sourceIndex ? raw : f.raw)).join(",");
  return { value: rebuilt, why: translated.why };
}
