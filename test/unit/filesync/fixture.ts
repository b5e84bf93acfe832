// A small context tree on disk covering what the sender must get right.
import { chmod, link, mkdir, mkdtemp, rm, symlink, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const FIXTURE_ORDER = [
  ".dockerignore",
  "a",
  "a/x",
  "a-b",
  "empty",
  "hard1",
  "hard2",
  "link",
  "run.sh",
  "ö.txt",
  "\uE000",
  "\u{1F600}",
];

export async function makeFixture(): Promise<{ root: string; cleanup: () => Promise<void> }> {
  const root = await mkdtemp(join(tmpdir(), "shim-filesync-"));
  await writeFile(join(root, ".dockerignore"), "*.log\n");
  await mkdir(join(root, "a"));
  await chmod(join(root, "a"), 0o755);
  await writeFile(join(root, "a", "x"), "x-contents");
  await writeFile(join(root, "a-b"), "a-b");
  await mkdir(join(root, "empty"));
  await writeFile(join(root, "hard1"), "shared inode");
  await link(join(root, "hard1"), join(root, "hard2"));
  await symlink("a/x", join(root, "link"));
  await writeFile(join(root, "run.sh"), "#!/bin/sh\necho hi\n");
  await chmod(join(root, "run.sh"), 0o755);
  await writeFile(join(root, "ö.txt"), "umlaut");
  await writeFile(join(root, "\uE000"), "private use");
  await writeFile(join(root, "\u{1F600}"), "emoji");
  await utimes(join(root, "a-b"), 1_600_000_000.5, 1_600_000_000.5);
  return { root, cleanup: () => rm(root, { recursive: true, force: true }) };
}
