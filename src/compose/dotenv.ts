// Compose's `.env` format (compose-go dotenv/parser.go), enough to read the COMPOSE_* variables that decide which
// files compose loads and what the project is called. Pure.

export type Lookup = (name: string) => string | undefined;

export class DotenvError extends Error {}

const KEY_CHAR = /[A-Za-z0-9_.\-[\]]/;

/** `${NAME}`, `$NAME`, `${NAME:-default}`, `${NAME-default}`, `$$` → `$`. Other forms are kept as written. */
export function expand(value: string, lookup: Lookup): string {
  return value.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (match, braced, op, fallback, bare) => {
    if (match === "$$") return "$";
    const name = (braced ?? bare) as string;
    const found = lookup(name);
    if (op === ":-") return found ? found : (fallback as string);
    if (op === "-") return found !== undefined ? found : (fallback as string);
    return found ?? "";
  });
}

const ESCAPES: Record<string, string> = { a: "\x07", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t", v: "\v", '"': '"', "\\": "\\", $: "$$" };

/**
 * Parses an env file. Later definitions win; values may refer to the environment (`lookup`, which wins) and to
 * earlier definitions. Throws DotenvError for text compose would reject.
 */
export function parseDotenv(text: string, lookup: Lookup): Record<string, string> {
  const out: Record<string, string> = {};
  const resolve: Lookup = (name) => lookup(name) ?? out[name];
  let i = 0;
  const n = text.length;
  while (i < n) {
    while (i < n && /\s/.test(text[i]!)) i++;
    if (i >= n) break;
    if (text[i] === "#") {
      while (i < n && text[i] !== "\n") i++;
      continue;
    }
    if (/^export\s/.test(text.slice(i, i + 7))) {
      i += 6;
      while (i < n && (text[i] === " " || text[i] === "\t")) i++;
    }
    const keyStart = i;
    while (i < n && (KEY_CHAR.test(text[i]!) || text[i] === " " || text[i] === "\t")) i++;
    const key = text.slice(keyStart, i).trim();
    const sep = text[i];
    if (i >= n || sep === "\n") {
      // A bare name inherits the value from the environment.
      if (key) {
        const inherited = lookup(key);
        if (inherited !== undefined) out[key] = inherited;
      }
      continue;
    }
    if (sep !== "=" && sep !== ":") throw new DotenvError(`unexpected character ${JSON.stringify(sep)} in variable name ${JSON.stringify(text.slice(keyStart, i + 1))}`);
    if (!key || key.includes(" ")) throw new DotenvError(`invalid variable name ${JSON.stringify(key)}`);
    i++;
    while (i < n && (text[i] === " " || text[i] === "\t")) i++;
    const quote = text[i];
    if (quote === "'" || quote === '"') {
      let chars = "";
      let escaped = false;
      let j = i + 1;
      for (; j < n; j++) {
        const c = text[j]!;
        if (escaped) {
          chars += c === quote ? c : `\\${c}`;
          escaped = false;
          continue;
        }
        if (c === "\\") {
          escaped = true;
          continue;
        }
        if (c === quote) break;
        chars += c;
      }
      if (j >= n) throw new DotenvError(`unterminated quoted value for ${key}`);
      out[key] = quote === '"' ? expand(chars.replace(/\\([abfnrtv"\\$])/g, (_m, c: string) => ESCAPES[c]!), resolve) : chars;
      i = j + 1;
      while (i < n && text[i] !== "\n") i++;
      continue;
    }
    const end = text.indexOf("\n", i);
    let value = text.slice(i, end === -1 ? n : end);
    const comment = value.indexOf(" #");
    if (comment !== -1) value = value.slice(0, comment);
    out[key] = expand(value.trimEnd(), resolve);
    i = end === -1 ? n : end;
  }
  return out;
}
