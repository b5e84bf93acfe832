// One CSV record as Go's encoding/csv reads it (what buildx's flag parsers use for --output, --cache-from,
// --secret…): fields split at commas, a field that starts with `"` is quoted (`""` is a literal quote and commas
// inside are kept), and a quote inside an unquoted field is an error. Pure.

export class CsvError extends Error {
  override name = "CsvError";
}

export function parseCsvFields(line: string): string[] {
  const fields: string[] = [];
  let i = 0;
  for (;;) {
    if (line[i] === '"') {
      let value = "";
      i++;
      for (;;) {
        const quote = line.indexOf('"', i);
        if (quote === -1) throw new CsvError(`extraneous or missing " in quoted field: ${line}`);
        value += line.slice(i, quote);
        if (line[quote + 1] === '"') {
          value += '"';
          i = quote + 2;
          continue;
        }
        i = quote + 1;
        break;
      }
      if (i < line.length && line[i] !== ",") throw new CsvError(`extraneous or missing " in quoted field: ${line}`);
      fields.push(value);
    } else {
      const comma = line.indexOf(",", i);
      const value = comma === -1 ? line.slice(i) : line.slice(i, comma);
      if (value.includes('"')) throw new CsvError(`bare " in non-quoted field: ${line}`);
      fields.push(value);
      i = comma === -1 ? line.length : comma;
    }
    if (i >= line.length) return fields;
    i++; // the comma
  }
}

/** `key=value` fields → [lower-cased key, value]; a field without `=` is returned with value undefined. */
export function splitKeyValue(field: string): [string, string | undefined] {
  const eq = field.indexOf("=");
  if (eq === -1) return [field.trim().toLowerCase(), undefined];
  return [field.slice(0, eq).trim().toLowerCase(), field.slice(eq + 1)];
}
