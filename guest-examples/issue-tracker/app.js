// `issue-tracker`: lists and opens issues on a GitHub-style REST API, with
// an API token the tool never sees.
//
// The manifest binds a secret to the API's URL prefix; Warden adds the
// `authorization` header to each matching request on its way out and redacts
// the token from anything that comes back. The tool uses plain `fetch`.
// The API's base URL comes from ISSUES_API in the tool's environment, so the
// same component runs against a test server.

import { getEnvironment } from 'wasi:cli/environment@0.2.12';
import { log } from 'warden:tool/log@0.1.0';

const INPUT_SCHEMA = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  type: 'object',
  properties: {
    action: { enum: ['list', 'open'], description: 'list the issues, or open a new one' },
    repo: { type: 'string', description: 'owner/name' },
    state: { enum: ['open', 'closed', 'all'], description: 'for list; default open' },
    title: { type: 'string', minLength: 1, description: 'for open' },
    body: { type: 'string', description: 'for open' },
  },
  required: ['action', 'repo'],
  additionalProperties: false,
};

export function describe() {
  return {
    name: 'issue-tracker',
    description: 'Lists the issues of a repository, or opens a new issue, on the team\'s issue tracker.',
    inputSchema: JSON.stringify(INPUT_SCHEMA),
  };
}

// componentize-js maps a thrown `{ tag, val }` to the WIT result's error.
const invalid = (msg) => ({ tag: 'invalid-input', val: msg });
const failed = (msg) => ({ tag: 'failed', val: msg });
const denied = (msg) => ({ tag: 'denied', val: msg });

export async function invoke(input) {
  let args;
  try {
    args = JSON.parse(input);
  } catch (e) {
    throw invalid(`input: not JSON: ${e.message}`);
  }
  if (typeof args.repo !== 'string' || !args.repo.includes('/')) {
    throw invalid('repo: expected "owner/name"');
  }
  // No `process.env` outside Node: the environment is a WASI import.
  const env = Object.fromEntries(getEnvironment());
  const base = `${env.ISSUES_API ?? 'https://api.github.com'}/repos/${args.repo}/issues`;
  switch (args.action) {
    case 'list': {
      const issues = await call('GET', `${base}?state=${args.state ?? 'open'}`);
      return JSON.stringify(issues.map(({ number, title, state }) => ({ number, title, state })));
    }
    case 'open': {
      if (typeof args.title !== 'string' || args.title === '') throw invalid('title: required to open an issue');
      const issue = await call('POST', base, { title: args.title, body: args.body ?? '' });
      log('info', `opened #${issue.number} in ${args.repo}`);
      return JSON.stringify({ number: issue.number, url: issue.html_url ?? null });
    }
    default:
      throw invalid('action: expected "list" or "open"');
  }
}

async function call(method, url, body) {
  let response;
  try {
    response = await fetch(url, {
      method,
      headers: { accept: 'application/json', ...(body && { 'content-type': 'application/json' }) },
      body: body && JSON.stringify(body),
    });
  } catch (e) {
    // Warden refused the request (no [[http]] rule allows it), or the network failed.
    throw denied(`${method} ${url}: ${e.message}`);
  }
  if (!response.ok) throw failed(`${method} ${url}: ${response.status} ${await response.text()}`);
  return response.json();
}
