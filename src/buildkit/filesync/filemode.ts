// Conversion between unix st_mode (what node:fs reports) and Go's os.FileMode (what fsutil puts on the wire).
// Go keeps the file type and the special bits in the high bits of a uint32; the low 9 bits are the permissions.

export const GoMode = {
  Dir: 0x8000_0000, // 1 << 31
  Append: 1 << 30,
  Exclusive: 1 << 29,
  Temporary: 1 << 28,
  Symlink: 1 << 27,
  Device: 1 << 26,
  NamedPipe: 1 << 25,
  Socket: 1 << 24,
  Setuid: 1 << 23,
  Setgid: 1 << 22,
  CharDevice: 1 << 21,
  Sticky: 1 << 20,
  Irregular: 1 << 19,
  Perm: 0o777,
} as const;

/** Go's os.ModeType: every bit that makes an entry something other than a regular file. */
const GO_MODE_TYPE =
  (GoMode.Dir | GoMode.Symlink | GoMode.NamedPipe | GoMode.Socket | GoMode.Device | GoMode.CharDevice | GoMode.Irregular) >>> 0;

const S_IFMT = 0o170000;
const S_IFSOCK = 0o140000;
const S_IFLNK = 0o120000;
const S_IFREG = 0o100000;
const S_IFBLK = 0o060000;
const S_IFDIR = 0o040000;
const S_IFCHR = 0o020000;
const S_IFIFO = 0o010000;
const S_ISUID = 0o4000;
const S_ISGID = 0o2000;
const S_ISVTX = 0o1000;

/** unix st_mode → Go os.FileMode, as Go's os.Lstat builds it (an unsigned 32-bit number). */
export function goModeFromUnix(stMode: number): number {
  let mode = stMode & GoMode.Perm;
  switch (stMode & S_IFMT) {
    case S_IFBLK:
      mode |= GoMode.Device;
      break;
    case S_IFCHR:
      mode |= GoMode.Device | GoMode.CharDevice;
      break;
    case S_IFDIR:
      mode |= GoMode.Dir;
      break;
    case S_IFIFO:
      mode |= GoMode.NamedPipe;
      break;
    case S_IFLNK:
      mode |= GoMode.Symlink;
      break;
    case S_IFSOCK:
      mode |= GoMode.Socket;
      break;
    case S_IFREG:
      break;
  }
  if (stMode & S_ISUID) mode |= GoMode.Setuid;
  if (stMode & S_ISGID) mode |= GoMode.Setgid;
  if (stMode & S_ISVTX) mode |= GoMode.Sticky;
  return mode >>> 0;
}

/** The bits chmod takes (permissions plus setuid/setgid/sticky) of a Go os.FileMode. */
export function unixPermissionsFromGo(goMode: number): number {
  let perm = goMode & GoMode.Perm;
  if (goMode & GoMode.Setuid) perm |= S_ISUID;
  if (goMode & GoMode.Setgid) perm |= S_ISGID;
  if (goMode & GoMode.Sticky) perm |= S_ISVTX;
  return perm;
}

export type EntryKind = "dir" | "file" | "symlink" | "pipe" | "device" | "socket" | "irregular";

export function kindOfGoMode(goMode: number): EntryKind {
  if (goMode & GoMode.Dir) return "dir";
  if (goMode & GoMode.Symlink) return "symlink";
  if (goMode & GoMode.NamedPipe) return "pipe";
  if (goMode & GoMode.Device) return "device";
  if (goMode & GoMode.Socket) return "socket";
  if (goMode & GoMode.Irregular) return "irregular";
  return "file";
}

/** fsutil's fileCanRequestData: only regular files carry data and may be REQ'd. */
export function isRegularGoMode(goMode: number): boolean {
  return ((goMode & GO_MODE_TYPE) >>> 0) === 0;
}
