// `{{name}}`: a Warden tool. It reads a text file in the directory that
// `manifest.toml` grants as `/data` and returns its line, word and byte
// counts as JSON.
//
// A tool is JSON in, JSON out: Warden calls `describe` to list the tool for
// an agent, and `invoke` with the agent's JSON input. Inside, it is ordinary
// JavaScript: `./fs.js` reaches exactly the directories the manifest's
// `[[fs]]` grants and nothing else, so the tool never checks paths for
// safety itself, and `fetch` reaches only the URLs its `[[http]]` rules
// allow. Replace `invoke` (and the schema that describes its input) with
// your own; it may be `async`.

import { readTextFile } from './fs.js';
// The host's log: lines go to the audit log, not to the agent.
import { log } from 'warden:tool/log@0.1.0';

// Where the tool sees its data: the `guest` of the `[[fs]]` grant in
// manifest.toml. Change both together.
const DATA = '/data';

// JSON Schema (draft 2020-12) of the input, shown to agents by `describe`.
// Keep it in step with `parse` below.
const INPUT_SCHEMA = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  type: 'object',
  properties: {
    path: {
      type: 'string',
      minLength: 1,
      description: 'The text file to count, relative to /data (e.g. hello.txt) or absolute.',
    },
  },
  required: ['path'],
  additionalProperties: false,
};

export function describe() {
  return {
    name: '{{name}}',
    // The agent reads this to decide when to call the tool: say what it
    // does and what it returns.
    description: 'Counts the lines, words and bytes of a text file under /data.',
    inputSchema: JSON.stringify(INPUT_SCHEMA),
  };
}

// Throwing `{ tag, val }` returns that tool-error to the agent and the
// audit log: 'invalid-input', 'failed' or 'denied'. Anything else thrown
// traps the task.
const toolError = (tag, val) => ({ tag, val });

export function invoke(input) {
  const path = parse(input);
  let text;
  try {
    text = readTextFile(path);
  } catch (err) {
    // EACCES/EPERM: the host refused the path; the grant does not reach it.
    const refused = err.code === 'EACCES' || err.code === 'EPERM';
    throw toolError(refused ? 'denied' : 'failed', err.message);
  }
  log('info', `counted ${path}`);
  const lines = text.split('\n');
  return JSON.stringify({
    bytes: new TextEncoder().encode(text).length,
    lines: text.endsWith('\n') ? lines.length - 1 : lines.length,
    path,
    words: text.split(/\s+/).filter(Boolean).length,
  });
}

// Reads the input `{"path": "..."}`. Errors name the field, so that the
// agent can correct its call.
function parse(input) {
  let fields;
  try {
    fields = JSON.parse(input);
  } catch (err) {
    throw toolError('invalid-input', `input: not JSON: ${err.message}`);
  }
  if (typeof fields !== 'object' || fields === null || Array.isArray(fields)) {
    throw toolError('invalid-input', `input: expected an object, found ${input}`);
  }
  const unknown = Object.keys(fields).find((k) => k !== 'path');
  if (unknown !== undefined) {
    throw toolError('invalid-input', `${unknown}: unknown field; expected only path`);
  }
  const { path } = fields;
  if (path === undefined) throw toolError('invalid-input', 'path: missing');
  if (typeof path !== 'string') {
    throw toolError('invalid-input', `path: expected a string, found ${JSON.stringify(path)}`);
  }
  if (path === '') throw toolError('invalid-input', 'path: must not be empty');
  // A relative path is taken from /data; an absolute one as it is. No
  // safety checks needed: a path that leaves the grant (`../x`) is refused
  // by the host, and the refusal is in the audit log; one no grant covers
  // at all (`/etc/passwd`) is simply not found.
  return path.startsWith('/') ? path : `${DATA}/${path}`;
}
