// Typed streams: `tsc --noEmit --strict` on small programs against the
// declarations a running server generates (GET /api/channels-binding.d.ts)
// and the client's own (GET /channels-binding.d.ts). A correct program
// compiles; a misspelt field, in a write or in a read, does not.
// Run by tests/client_browser.rs:
//
//   node tests/browser/typescript.mjs http://127.0.0.1:PORT/

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const base = process.argv[2];
if (!base) {
  console.error('usage: node typescript.mjs http://127.0.0.1:PORT/');
  process.exit(2);
}
const here = dirname(fileURLToPath(import.meta.url));
const tsc = join(here, 'node_modules', 'typescript', 'bin', 'tsc');
const step = (text) => console.log(`[typescript.mjs] ${text}`);

async function download(path) {
  const response = await fetch(new URL(path, base), { signal: AbortSignal.timeout(10_000) });
  if (!response.ok) throw new Error(`GET ${path}: HTTP ${response.status}`);
  return response.text();
}

const programs = {
  // Everything a user of the typed client writes, compiling cleanly.
  correct: `
import { connect, ChannelsBindingError } from 'channels-binding';
import type { Api, AuthUser, AuthUserRow } from './api';

const client = connect<Api>('/', { token: async () => 'a-token' });

export async function main(): Promise<string> {
  const user: AuthUser = await client.call('auth.User.retrieve', { id: 5763 });
  const same = await client.call('auth.User.retrieve#5763');
  const page = await client.call('auth.User.search', { order: ['-username', 'id'], filters: { is_staff: true }, limit: 10 });
  const rows: AuthUserRow[] = page.rows;
  const created = await client.call('auth.User.create', { username: 'new', email: 'new@example.com' });
  await client.call('auth.User.update', { id: created.id, email: 'changed@example.com' });
  const sub = client.subscribe('auth.User#5', (push) => console.log(push.event, push.seq, push.epoch));
  await sub.ready;
  sub.unsubscribe();
  client.on('resync', (stream, info) => console.log(stream.toUpperCase(), info.epoch));
  client.on('state', (state) => console.log(state === 'reconnecting'));
  try {
    await client.call('simple_reflexion.ping', {});
  } catch (err) {
    if (err instanceof ChannelsBindingError) console.log(err.code, err.fields, err.retryAfterMs);
  }
  const untyped = connect('/');
  await untyped.call('anything.At.all', { whatever: 1 });
  return user.username + same.email + rows.length + created.date_joined;
}
`,
  // A misspelt field in a write.
  wrongWriteField: `
import { connect } from 'channels-binding';
import type { Api } from './api';
const client = connect<Api>('/');
export const done = client.call('auth.User.update', { id: 1, emial: 'a@example.com' });
`,
  // A misspelt field in a read.
  wrongReadField: `
import { connect } from 'channels-binding';
import type { Api } from './api';
const client = connect<Api>('/');
export const name = client.call('auth.User.retrieve', { id: 1 }).then((user) => user.usernme);
`,
  // A field that is readable but not writable.
  readOnlyField: `
import { connect } from 'channels-binding';
import type { Api } from './api';
const client = connect<Api>('/');
export const done = client.call('auth.User.update', { id: 1, is_staff: true });
`,
};

const dir = mkdtempSync(join(tmpdir(), 'channels-binding-tsc-'));
let failed = false;
try {
  writeFileSync(join(dir, 'api.d.ts'), await download('api/channels-binding.d.ts'));
  writeFileSync(join(dir, 'channels-binding.d.ts'), await download('channels-binding.d.ts'));
  step('downloaded /api/channels-binding.d.ts and /channels-binding.d.ts');
  // One compiler run for every program (a run costs seconds): each file's
  // errors are told apart by its name.
  for (const [name, source] of Object.entries(programs)) writeFileSync(join(dir, `${name}.ts`), source);
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        strict: true,
        noEmit: true,
        target: 'es2022',
        module: 'es2022',
        moduleResolution: 'bundler',
        lib: ['es2022', 'dom'],
        types: [],
        paths: { 'channels-binding': ['./channels-binding.d.ts'] },
      },
      files: Object.keys(programs).map((name) => `${name}.ts`),
    }),
  );
  const run = spawnSync(process.execPath, [tsc, '--noEmit', '--strict', '--pretty', 'false', '-p', join(dir, 'tsconfig.json')], {
    cwd: dir,
    encoding: 'utf8',
    timeout: 60_000,
  });
  if (run.status === null) throw new Error(`tsc did not finish: ${run.error}`);
  const lines = `${run.stdout}${run.stderr}`.trim().split('\n').filter(Boolean);
  const expected = {
    correct: null,
    wrongWriteField: /'emial' does not exist/,
    wrongReadField: /Property 'usernme' does not exist/,
    readOnlyField: /'is_staff' does not exist/,
  };
  for (const [name, pattern] of Object.entries(expected)) {
    const errors = lines.filter((line) => line.startsWith(`${name}.ts(`));
    if (pattern === null && errors.length === 0) {
      step(`ok: ${name} compiles under --strict`);
    } else if (pattern !== null && errors.length > 0 && errors.every((line) => pattern.test(line))) {
      step(`ok: ${name} is rejected: ${errors[0]}`);
    } else {
      failed = true;
      console.error(`[typescript.mjs] FAILED: ${name}: expected ${pattern ?? 'no error'}, tsc said:\n${lines.join('\n')}`);
    }
  }
  const stray = lines.filter((line) => !/^\s/.test(line) && !Object.keys(programs).some((name) => line.startsWith(`${name}.ts(`)));
  if (stray.length) {
    failed = true;
    console.error(`[typescript.mjs] FAILED: errors outside the programs (in the declarations?):\n${stray.join('\n')}`);
  }
} catch (err) {
  failed = true;
  console.error(`[typescript.mjs] FAILED: ${err.stack || err}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
