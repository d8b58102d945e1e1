#!/usr/bin/env node
/**
 * `pnpm demo` ends here: starts the support chat demo on PORT (default 3000) and, through a
 * front that refuses WebSocket upgrades, on FRONT_PORT (default 3001). HOST picks the
 * interface (default 127.0.0.1). Ctrl-C stops it.
 */
import { startDemo } from './server.mjs';

function portFrom(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0 || value > 65535) {
    console.error(`${name} must be a port number (0 to 65535), got ${JSON.stringify(raw)}`);
    process.exit(2);
  }
  return value;
}

const port = portFrom('PORT', 3000);
const frontPort = portFrom('FRONT_PORT', 3001);
const host = process.env.HOST || '127.0.0.1';

let demo;
try {
  demo = await startDemo({ port, frontPort, host });
} catch (error) {
  if (error?.code === 'EADDRINUSE') {
    console.error(
      `Port ${error.port} is in use. Stop what runs there, or pick others: PORT=4000 FRONT_PORT=4001 pnpm demo`,
    );
  } else {
    console.error(error);
  }
  process.exit(1);
}

const { url, frontUrl } = demo;
console.log(`
cometkit support chat demo

  direct                              ${url}/
  through a WebSocket-refusing front  ${frontUrl}/   (like an AWS Classic Load Balancer: see the fallback)

  script tag   ${url}/script-tag/    ${frontUrl}/script-tag/
  React        ${url}/react/         ${frontUrl}/react/
  Angular      ${url}/angular/       ${frontUrl}/angular/

Open two tabs, one as agent, one as customer, on the same room, e.g.
  ${url}/script-tag/?room=support&name=Ann&role=agent
  ${frontUrl}/react/?room=support&name=Bob&role=customer

Ctrl-C to stop.
`);

/** How long the drain may take before the demo stops without it. */
const DRAIN_LIMIT_MS = 5000;

let stopping = false;
const stop = async (signal) => {
  // One Ctrl-C arrives twice: the terminal signals the whole process group, and `pnpm run`
  // forwards it to its child as well. Both mean "stop", so a repeat changes nothing; a drain
  // that hangs is cut short below instead.
  if (stopping) return;
  stopping = true;
  console.log(`\n${signal}: stopping…`);
  const limit = setTimeout(() => {
    console.error(`The drain took over ${DRAIN_LIMIT_MS} ms: stopping without it.`);
    process.exit(1);
  }, DRAIN_LIMIT_MS);
  limit.unref();
  try {
    await demo.close();
    process.exit(0);
  } catch (error) {
    console.error(error);
    process.exit(1);
  }
};
process.on('SIGINT', () => void stop('SIGINT'));
process.on('SIGTERM', () => void stop('SIGTERM'));
