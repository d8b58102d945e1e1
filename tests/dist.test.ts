/**
 * The built package as users load it: `dist/index.cjs` through `require` and `dist/index.js`
 * through `import`, each in a plain Node child process (no vitest, no TypeScript), receiving a
 * message from a real @cometkit/server on loopback. Needs `pnpm --filter @cometkit/core build`
 * (`pnpm test` builds first).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createCometServer } from '@cometkit/server';
import { type StartedServer, startServer } from '@cometkit/test-utils';
import { afterEach, describe, expect, it } from 'vitest';

const dist = (file: string) =>
  fileURLToPath(new URL(`../packages/core/dist/${file}`, import.meta.url));

let server: StartedServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

/** Runs `script` in Node; once it prints `ready`, publishes `hello` on `chat`; resolves with its output. */
async function runAgainstServer(args: string[], script: string) {
  const comet = createCometServer();
  server = await startServer({
    handle: (req, res) => comet.handle(req, res),
    close: () => comet.close(),
  });
  const url = `${server.url}/api/comet`;
  const child = spawn(process.execPath, [...args, script, url], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stderr.on('data', (chunk) => {
    err += chunk;
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  try {
    return await new Promise<{ out: string; err: string; code: number | null }>((resolve) => {
      child.stdout.on('data', (chunk) => {
        const before = out;
        out += chunk;
        if (!before.includes('ready') && out.includes('ready')) void comet.publish('chat', 'hello');
      });
      child.once('close', (code) => resolve({ out, err, code }));
    });
  } finally {
    clearTimeout(timer);
  }
}

// The child: subscribes, says `ready` once connected (its position is then before the
// publish), prints the first message and closes.
const body = (load: string) => `
  const core = ${load};
  const url = process.argv.at(-1);
  const client = core.createCometClient({ url, transports: ['longpoll'] });
  client.subscribe('chat', (data) => {
    console.log('got ' + JSON.stringify(data));
    client.close();
  });
  const stop = client.subscribeState((state) => {
    if (state.status === 'connected') {
      stop();
      console.log('ready');
    }
    if (state.status === 'failed') {
      console.error(state.error.message);
      process.exit(1);
    }
  });
`;

describe('the built package in plain Node', () => {
  for (const [name, file, args, load] of [
    ['require', 'index.cjs', ['-e'], `require(${JSON.stringify(dist('index.cjs'))})`],
    [
      'import',
      'index.js',
      ['--input-type=module', '-e'],
      `await import(${JSON.stringify(dist('index.js'))})`,
    ],
  ] as const) {
    it(`receives a message through ${name}('${file}')`, async () => {
      if (!existsSync(dist(file))) throw new Error(`${dist(file)} is missing: run pnpm build`);
      const result = await runAgainstServer([...args], body(load));
      expect(result.err).toBe('');
      expect(result.out.trim().split('\n')).toEqual(['ready', 'got "hello"']);
      expect(result.code).toBe(0);
    });
  }
});
