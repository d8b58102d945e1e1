/**
 * The support chat demo backend (see examples/CHAT.md): `@cometkit/server` with the chat's
 * `onSend`, `authorize` and presence hooks, a broker history deep enough for the UIs' rewind,
 * and the three UIs as static files.
 * A second port serves the same through a front that refuses WebSocket upgrades, like an AWS
 * Classic Load Balancer, so the client's fallback can be seen.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer } from 'node:http';
import { connect, createServer as createTcpServer } from 'node:net';
import { extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CometServerError, createCometServer, createMemoryBroker } from '@cometkit/server';
import { createFront } from '@cometkit/test-utils';
import { HISTORY_LINES, ROOM } from '../shared/demo.js';

const repo = fileURLToPath(new URL('../../', import.meta.url));

/** Where each page's files live; `spa` pages answer unknown paths with their index.html. */
const SITES = [
  {
    prefix: '/script-tag/',
    name: 'The script-tag page',
    root: join(repo, 'examples/chat'),
    spa: false,
    build: undefined,
  },
  {
    prefix: '/react/',
    name: 'The React app',
    root: join(repo, 'examples/react-chat/dist'),
    spa: true,
    build: 'pnpm build && pnpm build:examples',
  },
  {
    prefix: '/angular/',
    name: 'The Angular app',
    root: join(repo, 'examples/angular-chat/dist/browser'),
    spa: true,
    build: 'pnpm build && pnpm build:examples',
  },
];
/** The script-tag builds of @cometkit/core: the client, its presence and share entries. */
const GLOBAL_SCRIPTS = {
  '/cometkit.global.js': join(repo, 'packages/core/dist/cometkit.global.js'),
  '/presence.global.js': join(repo, 'packages/core/dist/presence.global.js'),
  '/share.global.js': join(repo, 'packages/core/dist/share.global.js'),
};
/** What the three UIs share (examples/shared): the look, the join rules and panel, the icon. */
const SHARED = join(repo, 'examples/shared');
const SHARED_FILES = new Set(['demo.css', 'demo.js', 'favicon.svg']);

const CONTENT_TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.ico': 'image/x-icon',
  '.webp': 'image/webp',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
  '.webmanifest': 'application/manifest+json',
};
// The two hand-written pages load nothing from elsewhere and no inline script.
const STRICT_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

// ---- the chat rules (examples/CHAT.md) ----

const ROLES = new Set(['agent', 'customer']);

/** `chat:support` → `{kind: 'chat', room: 'support'}`; undefined for any other topic. */
function parseTopic(topic) {
  const colon = topic.indexOf(':');
  const kind = topic.slice(0, colon);
  const room = topic.slice(colon + 1);
  if ((kind !== 'chat' && kind !== 'typing') || !ROOM.test(room)) return undefined;
  return { kind, room };
}

const badRequest = (message) => new CometServerError(400, 'bad_request', message);

/** A trimmed string of `min` to `max` characters (code points), or a `400 bad_request`. */
function text(value, field, min, max) {
  const trimmed = typeof value === 'string' ? value.trim() : '';
  const length = [...trimmed].length;
  if (length < min || length > max) {
    throw badRequest(`${field} must be ${min} to ${max} characters`);
  }
  return trimmed;
}

function sender(data) {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw badRequest('data must be an object like {"name", "role", "text"}');
  }
  const name = text(data.name, 'name', 1, 40);
  if (!ROLES.has(data.role)) throw badRequest('role must be "agent" or "customer"');
  return { name, role: data.role };
}

/** @type {import('@cometkit/server').OnSendHook} */
async function onSend({ topic, data, publish }) {
  const parsed = parseTopic(topic);
  if (!parsed) throw new CometServerError(403, 'forbidden', 'not a chat topic');
  const who = sender(data);
  if (parsed.kind === 'typing') {
    if (typeof data.typing !== 'boolean') throw badRequest('typing must be true or false');
    return publish(topic, { ...who, typing: data.typing });
  }
  const line = text(data.text, 'text', 1, 2000);
  return publish(topic, { ...who, text: line, sentAt: Date.now() });
}

/** @type {import('@cometkit/server').AuthorizeHook} */
function authorize({ topic }) {
  return parseTopic(topic)
    ? true
    : { code: 'forbidden', message: 'only chat:{room} and typing:{room} are served here' };
}

/**
 * What the others see of a page in the presence of `chat:{room}`: the name and role it joined
 * with (the `x-demo-member` header of its client, see examples/shared/demo.js), checked like a
 * send's; a page without one is not shown. (A real application takes them from its login.)
 * @type {import('@cometkit/server').PresenceMemberHook}
 */
function presenceMember({ req }) {
  const header = req.headers['x-demo-member'];
  if (typeof header !== 'string') return false;
  try {
    const { name, role } = sender(JSON.parse(decodeURIComponent(header)));
    return { userId: name, data: { role } };
  } catch {
    return false;
  }
}

// ---- HTTP helpers ----

function escapeHtml(value) {
  return String(value).replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c],
  );
}

function sendJson(res, status, body) {
  const payload = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(payload),
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
  });
  res.end(payload);
}

function sendHtml(res, status, html, headers = {}) {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'content-length': Buffer.byteLength(html),
    'cache-control': 'no-cache',
    'x-content-type-options': 'nosniff',
    'content-security-policy': STRICT_CSP,
    ...headers,
  });
  res.end(html);
}

function page(title, body) {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<link rel="icon" href="/shared/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/shared/demo.css">
</head>
<body class="plain-page">
<main>
${body}
</main>
</body>
</html>
`;
}

function notFound(res) {
  sendHtml(
    res,
    404,
    page('Not found', '<h1>Not found</h1><p><a href="/">Back to the demo</a></p>'),
  );
}

/** A regular file's size, or undefined (missing, a directory, unreadable). */
async function fileSize(path) {
  try {
    const info = await stat(path);
    return info.isFile() ? info.size : undefined;
  } catch {
    return undefined;
  }
}

async function sendFile(req, res, path, size, extraHeaders = {}) {
  res.writeHead(200, {
    'content-type': CONTENT_TYPES[extname(path).toLowerCase()] ?? 'application/octet-stream',
    'content-length': size,
    'cache-control': 'no-cache',
    'x-content-type-options': 'nosniff',
    ...extraHeaders,
  });
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  const stream = createReadStream(path);
  stream.on('error', () => res.destroy());
  stream.pipe(res);
}

/**
 * `rest` (the decoded path under the site's prefix) as a file inside `root`, or undefined
 * when it would leave `root` (`..`, absolute paths, NUL, backslashes).
 */
function inside(root, rest) {
  if (rest.includes('\0') || rest.includes('\\')) return undefined;
  const base = resolve(root);
  const path = resolve(base, `.${rest.startsWith('/') ? '' : '/'}${rest}`);
  return path === base || path.startsWith(base + sep) ? path : undefined;
}

async function serveSite(req, res, site, pathname) {
  let rest;
  try {
    rest = decodeURIComponent(pathname.slice(site.prefix.length));
  } catch {
    sendHtml(res, 400, page('Bad request', '<h1>Bad request</h1>'));
    return;
  }
  const index = join(site.root, 'index.html');
  const indexSize = await fileSize(index);
  if (indexSize === undefined) {
    sendHtml(
      res,
      503,
      page(
        `${site.name} is not built`,
        `<h1>${escapeHtml(site.name)} is not built</h1>
<p>Run <code>pnpm build:examples</code> (after <code>pnpm build</code>) in the repository, then reload: <code>${escapeHtml(site.build ?? 'pnpm build:examples')}</code>.</p>
<p>Or use <code>pnpm demo</code>, which builds everything and starts the demo.</p>
<p><a href="/">Back to the demo</a></p>`,
      ),
    );
    return;
  }
  const csp = site.spa ? {} : { 'content-security-policy': STRICT_CSP };
  const path = inside(site.root, rest);
  if (path === undefined) return notFound(res);
  if (rest !== '' && !rest.endsWith('/')) {
    const size = await fileSize(path);
    if (size !== undefined) return sendFile(req, res, path, size, csp);
  }
  // A missing asset is a 404; a page path of a single-page app gets the app (its router decides).
  if (rest === '' || (site.spa && extname(rest) === '')) {
    return sendFile(req, res, index, indexSize, csp);
  }
  return notFound(res);
}

function landing(hostHeader, direct, front) {
  // Links keep the host name the visitor used (localhost, a LAN address…), with each port.
  let hostname = '127.0.0.1';
  try {
    hostname = new URL(`http://${hostHeader ?? ''}`).hostname || hostname;
  } catch {}
  const at = (port, path) => `http://${hostname}:${port}${path}`;
  const rows = SITES.map(
    (site) =>
      `<tr><th scope="row">${escapeHtml(site.name.replace(/^The /, ''))}</th>
<td><a href="${escapeHtml(at(direct, site.prefix))}">${escapeHtml(at(direct, site.prefix))}</a></td>
<td><a href="${escapeHtml(at(front, site.prefix))}">${escapeHtml(at(front, site.prefix))}</a></td></tr>`,
  ).join('\n');
  return page(
    'cometkit support chat demo',
    `<h1>cometkit support chat</h1>
<p>One chat backend, three UIs. Open two tabs on the same room, one as an <strong>agent</strong> and one as a <strong>customer</strong>, and chat.</p>
<table>
<thead><tr><th scope="col">UI</th><th scope="col">direct (port ${direct})</th><th scope="col">through a front that refuses WebSocket (port ${front})</th></tr></thead>
<tbody>
${rows}
</tbody>
</table>
<p>Each UI shows its connection state and transport. On port ${front} the front answers <code>400</code> to WebSocket upgrades, like an AWS Classic Load Balancer, so the client falls back to another transport and the chat goes on.</p>
<p>Try <a href="/script-tag/?room=support&amp;name=Ann&amp;role=agent">the script-tag page as Ann, an agent</a> and <a href="/script-tag/?room=support&amp;name=Bob&amp;role=customer">as Bob, a customer</a>.</p>`,
  );
}

// ---- the demo ----

/**
 * @typedef {object} StartDemoOptions
 * @property {number} [port] The direct port. `0` picks a free one. Default `3000`.
 * @property {number} [frontPort] The port of the WebSocket-refusing front. `0` picks a free
 *   one. Default `3001`.
 * @property {string} [host] The interface both listen on. Default `'127.0.0.1'`.
 */

/**
 * @typedef {object} Demo
 * @property {string} url The direct URL, `http://host:port` (the real port, also for `0`).
 * @property {string} frontUrl The URL through the front that refuses WebSocket upgrades.
 * @property {import('@cometkit/server').CometServer} comet The comet server.
 * @property {() => Promise<void>} close Drains the comet server, then closes every socket.
 */

/**
 * Starts the support chat demo: the chat backend and the three UIs on `port`, and the same
 * through a WebSocket-refusing front on `frontPort`.
 * @param {StartDemoOptions} [options]
 * @returns {Promise<Demo>}
 */
export async function startDemo({ port = 3000, frontPort = 3001, host = '127.0.0.1' } = {}) {
  // The UIs start a room with its last HISTORY_LINES lines (a rewind of the broker's history):
  // kept for a day, so a room quiet for hours still shows them, and 20 times as deep, so a page
  // that was away for a while continues from its cursor rather than with a reset. The longest
  // lines (2 000 characters) fit the default 4 MiB per topic many times over.
  const broker = createMemoryBroker({
    historySize: 20 * HISTORY_LINES,
    historyMaxAge: 24 * 60 * 60 * 1000,
  });
  const comet = createCometServer({
    path: '/api/comet',
    broker,
    onSend,
    authorize,
    presence: { member: presenceMember },
  });
  let ports = { direct: port, front: frontPort };

  const handle = async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://demo.invalid');
    const { pathname } = url;
    if (pathname === '/api/comet' || pathname.startsWith('/api/comet/')) {
      comet.handle(req, res);
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' });
      res.end('method not allowed');
      return;
    }
    const script = GLOBAL_SCRIPTS[pathname];
    if (script) {
      const size = await fileSize(script);
      if (size === undefined) {
        res.writeHead(404, { 'content-type': 'text/javascript; charset=utf-8' });
        res.end(
          `console.error("${pathname.slice(1)} is not built: run pnpm build in the repository");\n`,
        );
        return;
      }
      await sendFile(req, res, script, size);
      return;
    }
    if (pathname.startsWith('/shared/') || pathname === '/favicon.ico') {
      // Browsers ask for /favicon.ico on their own; the shared icon answers, never a 404.
      const name = pathname === '/favicon.ico' ? 'favicon.svg' : pathname.slice('/shared/'.length);
      const path = join(SHARED, name);
      const size = SHARED_FILES.has(name) ? await fileSize(path) : undefined;
      if (size === undefined) return notFound(res);
      await sendFile(req, res, path, size, { 'content-security-policy': STRICT_CSP });
      return;
    }
    if (pathname === '/') {
      sendHtml(res, 200, landing(req.headers.host, ports.direct, ports.front));
      return;
    }
    for (const site of SITES) {
      if (pathname === site.prefix.slice(0, -1)) {
        res.writeHead(301, { location: site.prefix + url.search });
        res.end();
        return;
      }
      if (pathname.startsWith(site.prefix)) {
        await serveSite(req, res, site, pathname);
        return;
      }
    }
    notFound(res);
  };

  const http = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) sendJson(res, 500, { error: { code: 'internal', message: 'error' } });
      else res.destroy();
    });
  });
  // The protocol's WebSocket at /api/comet/_ws; any other upgrade gets a 404 from it.
  http.on('upgrade', (req, socket, head) => comet.handleUpgrade(req, socket, head));

  const listen = (server, wanted) =>
    new Promise((resolveListen, reject) => {
      server.once('error', reject);
      server.listen(wanted, host, () => {
        server.off('error', reject);
        resolveListen(server.address().port);
      });
    });

  const shown = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  const origin = (p) => `http://${shown.includes(':') ? `[${shown}]` : shown}:${p}`;
  const sockets = new Set();
  let front;
  let relay;
  try {
    ports.direct = await listen(http, port);
    const url = origin(ports.direct);
    front = await createFront({ targets: [url], refuseUpgrades: true });
    // createFront picks its own loopback port; a plain TCP relay puts it on `frontPort`/`host`.
    relay = createTcpServer((socket) => {
      const upstream = connect(front.port, '127.0.0.1');
      for (const s of [socket, upstream]) {
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
        s.on('error', () => {
          socket.destroy();
          upstream.destroy();
        });
      }
      socket.pipe(upstream).pipe(socket);
    });
    ports = { ...ports, front: await listen(relay, frontPort) };
  } catch (error) {
    await front?.close();
    http.close();
    await comet.close();
    await broker.close();
    throw error;
  }

  let closing;
  return {
    url: origin(ports.direct),
    frontUrl: origin(ports.front),
    comet,
    close() {
      closing ??= (async () => {
        // Drain first: held polls get their `reconnect` answer, also through the front.
        await comet.close();
        const relayClosed = new Promise((done) => relay.close(() => done()));
        for (const socket of sockets) socket.destroy();
        await relayClosed;
        await front.close();
        await new Promise((done) => {
          http.close(() => done());
          http.closeAllConnections();
        });
        await broker.close();
      })();
      return closing;
    },
  };
}
