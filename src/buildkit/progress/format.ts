// Number formats shared by the displays (the same as BuildKit's progressui, so output reads like buildx).
import type { ProgressItem } from "./trace.ts";

/** Decimal units with two decimals from 1 kB up (`987B`, `2.10kB`, `13.37MB`), like tonistiigi/units `%.2f`. */
export function formatBytes(bytes: number): string {
  const units = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return unit === 0 ? `${Math.round(bytes)}B` : `${value.toFixed(2)}${units[unit]}`;
}

/** `current / total`, or `current` alone, or "" — what buildx shows next to a progress item. */
export function itemAmount(item: ProgressItem): string {
  if (item.total !== 0) return `${formatBytes(item.current)} / ${formatBytes(item.total)}`;
  if (item.current !== 0) return formatBytes(item.current);
  return "";
}

export function formatSeconds(ms: number): string {
  return `${(Math.max(0, ms) / 1000).toFixed(1)}s`;
}
