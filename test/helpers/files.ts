/** File-tree helpers of the tests: walk a folder, list a tree to compare it, write a tree of random files. */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';

/** Every file below `dir` (absolute paths; folders walked depth first, in readdir order). */
export async function walkFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const d of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, d.name);
    if (d.isDirectory()) out.push(...(await walkFiles(p)));
    else out.push(p);
  }
  return out;
}

/** The files below `root` as sorted relative paths in NFC (a tree to compare with another). */
export async function listFiles(root: string): Promise<string[]> {
  return (await walkFiles(root)).map((p) => relative(root, p).normalize('NFC')).sort();
}

/** Write random files below `root`: relative path -> size in bytes (folders made on the way). */
export async function writeRandomTree(root: string, sizes: Record<string, number>): Promise<void> {
  for (const [rel, size] of Object.entries(sizes)) {
    await mkdir(join(root, rel, '..'), { recursive: true });
    await writeFile(join(root, rel), randomBytes(size));
  }
}
