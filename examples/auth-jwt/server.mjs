// The bearer-JWT recipe of docs/guide/authentication.md as a server you can run:
//   node examples/auth-jwt/server.mjs        (PORT=3000, TOKEN_TTL_MS=30000, JWT_SECRET=…)
// POST /login {"user":"ann"} answers a short-lived token; the comet endpoint at /api/comet
// checks it on every transport (identify + authorize: `news` for everyone, `user:{id}` for its
// user); POST /revoke {"user":"ann"} revokes a user (authorize refuses, disconnect() ends
// their connections). `news` gets a message every 200 ms.
import { createServer } from 'node:http';
import { pathToFileURL } from 'node:url';
import { createCometServer } from '@cometkit/server';
import { sign, verify } from './jwt.mjs';

/** Starts the example server; resolves with its URL and a `close()`. */
export async function startAuthServer({
  port = 0,
  secret = 'dev-only-secret-change-me',
  tokenTtlMs = 30_000,
  tickMs = 200,
  reauthorizeInterval = 5_000,
} = {}) {
  const revoked = new Set();
  const userOf = (req) => {
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    const claims = token && verify(token, secret);
    return claims && !revoked.has(claims.sub) ? claims.sub : undefined;
  };
  const comet = createCometServer({
    // Who the request is from: scopes send ids, and what disconnect({ identity }) matches.
    identify: userOf,
    authorize: ({ req, topic }) => {
      const user = userOf(req);
      // `unauthorized` makes the client ask its auth hook for a fresh token, once.
      if (!user) return { code: 'unauthorized', message: 'token missing, expired or revoked' };
      return topic === 'news' || topic === `user:${user}`;
    },
    // Open streams and sockets check their token again: an expired one stops within 5 s,
    // and the client refreshes it on the same socket.
    reauthorizeInterval,
  });
  const readJson = async (req) => {
    let text = '';
    for await (const chunk of req) text += chunk;
    try {
      return JSON.parse(text);
    } catch {
      return {};
    }
  };
  const server = createServer(async (req, res) => {
    if (req.method === 'POST' && req.url === '/login') {
      const { user } = await readJson(req);
      if (typeof user !== 'string' || !/^\w{1,40}$/.test(user) || revoked.has(user)) {
        res.writeHead(403, { 'content-type': 'application/json' }).end('{"error":"no"}');
        return;
      }
      const token = sign(user, secret, tokenTtlMs);
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token }));
      return;
    }
    if (req.method === 'POST' && req.url === '/revoke') {
      // An admin action in a real application: check who is asking.
      const { user } = await readJson(req);
      revoked.add(user);
      const ended = await comet.disconnect({ identity: user });
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ended }));
      return;
    }
    comet.handle(req, res);
  });
  server.on('upgrade', (req, socket, head) => comet.handleUpgrade(req, socket, head));
  let n = 0;
  const ticker = setInterval(() => {
    n += 1;
    comet.publish('news', { n }).catch(() => {});
  }, tickMs);
  await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${server.address().port}`;
  return {
    url,
    comet,
    async close() {
      clearInterval(ticker);
      await comet.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const started = await startAuthServer({
    port: Number(process.env.PORT ?? 3000),
    secret: process.env.JWT_SECRET,
    tokenTtlMs: Number(process.env.TOKEN_TTL_MS ?? 30_000),
  });
  console.log(`auth-jwt example server at ${started.url} (POST /login, /revoke; /api/comet)`);
  process.once('SIGINT', () => started.close().then(() => process.exit(0)));
}
