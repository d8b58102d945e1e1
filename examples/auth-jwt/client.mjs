// The Node client of the auth-jwt example: logs in, subscribes to `news` and `user:{id}` over
// the default transports (WebSocket first), and refreshes its token through the `auth` hook
// whenever the server refuses it. Prints what it received and how often it refreshed.
//   node examples/auth-jwt/client.mjs        (URL=http://127.0.0.1:3000, USER=ann, COUNT=20)
import { pathToFileURL } from 'node:url';
import { createCometClient } from '@cometkit/core';
import WebSocket from 'ws';

/** Logs in as `user` at `url`; resolves with a fresh token. */
async function login(url, user) {
  const response = await fetch(`${url}/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ user }),
  });
  if (!response.ok) throw new Error(`login refused: ${response.status}`);
  return (await response.json()).token;
}

/**
 * Receives `count` news messages as `user` and resolves with them, the number of refreshes,
 * and the transport used.
 */
export async function runClient({ url, user = 'ann', count = 20, transports }) {
  let token = await login(url, user);
  let refreshes = 0;
  const client = createCometClient({
    url: `${url}/api/comet`,
    ...(transports ? { transports } : {}),
    // Read per request (and per WebSocket frame): always the current token.
    headers: () => ({ authorization: `Bearer ${token}` }),
    // The server refused the token (expired): log in again, once per refusal.
    auth: async () => {
      refreshes += 1;
      token = await login(url, user);
      return { authorization: `Bearer ${token}` };
    },
    // Node 20 has no global WebSocket.
    environment: { WebSocket: () => WebSocket },
  });
  const news = [];
  const errors = [];
  client.on('error', (error) => errors.push(error));
  try {
    await new Promise((resolve, reject) => {
      client.subscribe('news', (data) => {
        news.push(data.n);
        if (news.length >= count) resolve();
      });
      client.subscribe(`user:${user}`, () => {});
      client.on('error', (error) => {
        if (error.name === 'TopicError') reject(error);
      });
    });
    const state = client.getState();
    return {
      news,
      refreshes,
      errors,
      transport: state.status === 'connected' ? state.transport : undefined,
    };
  } finally {
    client.close();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const result = await runClient({
    url: process.env.URL ?? 'http://127.0.0.1:3000',
    user: process.env.USER_NAME ?? 'ann',
    count: Number(process.env.COUNT ?? 20),
  });
  const gaps = result.news.slice(1).filter((n, i) => n !== result.news[i] + 1).length;
  console.log(
    `received news ${result.news[0]}..${result.news.at(-1)} over ${result.transport}: ` +
      `${gaps} gaps, ${result.refreshes} token refreshes`,
  );
}
