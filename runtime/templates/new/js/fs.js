// Files for a Warden tool written in JavaScript.
//
// componentize-js has no `node:fs`: a component reaches files only through
// `wasi:filesystem`, and only the directories its manifest grants. This
// module is the few calls a tool needs, with Node's names and error codes:
//
//   readTextFile(path)        -> string (UTF-8)
//   readFile(path)            -> Uint8Array
//   writeFile(path, data)     creates or replaces; needs access = "read-write"
//   readDir(path)             -> [{ name, type }], type 'file', 'directory', ...
//   stat(path)                -> { type, size }
//
// Paths are absolute guest paths (`/data/notes.txt`): a component has no
// working directory. A failure throws an Error whose `code` is Node's
// (`ENOENT`, `EACCES`, `EISDIR`, ...). A path no grant reaches is refused by
// Warden, recorded in the audit log, and thrown here as `EACCES` or
// `ENOENT`; the tool needs no path checks of its own.

import { getDirectories } from 'wasi:filesystem/preopens@0.2.12';

const CHUNK = 65536n;

// wasi:filesystem error codes, as Node names and words them.
const CODES = {
  access: ['EACCES', 'permission denied'],
  'not-permitted': ['EPERM', 'operation not permitted'],
  'no-entry': ['ENOENT', 'no such file or directory'],
  exist: ['EEXIST', 'file already exists'],
  'is-directory': ['EISDIR', 'illegal operation on a directory'],
  'not-directory': ['ENOTDIR', 'not a directory'],
  'not-empty': ['ENOTEMPTY', 'directory not empty'],
  'read-only': ['EROFS', 'read-only file system'],
  'name-too-long': ['ENAMETOOLONG', 'name too long'],
  'insufficient-space': ['ENOSPC', 'no space left on device'],
  loop: ['ELOOP', 'too many symbolic links encountered'],
  invalid: ['EINVAL', 'invalid argument'],
  'too-many-links': ['EMLINK', 'too many links'],
};

// A Node-style error for a failed call on `path`: `err` is what the
// wasi:filesystem import threw, whose payload is the error-code's name.
function fsError(err, syscall, path) {
  const kind = typeof err?.payload === 'string' ? err.payload : String(err);
  const [code, words] = CODES[kind] ?? ['EIO', kind];
  const error = new Error(`${code}: ${words}, ${syscall} '${path}'`);
  error.code = code;
  error.syscall = syscall;
  error.path = path;
  return error;
}

// The granted directory holding `path`, and `path` relative to it. Of
// nested grants, the deepest wins, as it does for Warden.
function locate(path, syscall) {
  if (!path.startsWith('/')) {
    throw fsError('invalid', syscall, path);
  }
  let best = null;
  for (const [dir, guest] of getDirectories()) {
    const root = guest.endsWith('/') ? guest : `${guest}/`;
    if ((path === guest || path.startsWith(root)) && (!best || root.length > best.root.length)) {
      best = { dir, root };
    }
  }
  if (!best) throw fsError('no-entry', syscall, path);
  return [best.dir, path.slice(best.root.length) || '.'];
}

function open(path, syscall, openFlags, descriptorFlags) {
  const [dir, rel] = locate(path, syscall);
  try {
    return dir.openAt({ symlinkFollow: true }, rel, openFlags, descriptorFlags);
  } catch (err) {
    throw fsError(err, syscall, path);
  }
}

export function readFile(path) {
  const file = open(path, 'open', {}, { read: true });
  const chunks = [];
  let offset = 0n;
  try {
    for (;;) {
      const [bytes, end] = file.read(CHUNK, offset);
      chunks.push(bytes);
      offset += BigInt(bytes.length);
      if (end || bytes.length === 0) break;
    }
  } catch (err) {
    throw fsError(err, 'read', path);
  }
  const out = new Uint8Array(Number(offset));
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

export function readTextFile(path) {
  return new TextDecoder('utf-8', { fatal: true }).decode(readFile(path));
}

export function writeFile(path, data) {
  const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
  const file = open(path, 'open', { create: true, truncate: true }, { write: true });
  let offset = 0;
  try {
    while (offset < bytes.length) {
      offset += Number(file.write(bytes.subarray(offset), BigInt(offset)));
    }
  } catch (err) {
    throw fsError(err, 'write', path);
  }
}

export function readDir(path) {
  const dir = open(path, 'scandir', { directory: true }, { read: true });
  const entries = [];
  try {
    const stream = dir.readDirectory();
    for (let entry = stream.readDirectoryEntry(); entry; entry = stream.readDirectoryEntry()) {
      entries.push({ name: entry.name, type: entry.type });
    }
  } catch (err) {
    throw fsError(err, 'scandir', path);
  }
  return entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

export function stat(path) {
  const [dir, rel] = locate(path, 'stat');
  try {
    const { type, size } = dir.statAt({ symlinkFollow: true }, rel);
    return { type, size: Number(size) };
  } catch (err) {
    throw fsError(err, 'stat', path);
  }
}
