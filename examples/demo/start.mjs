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

let stopping = false;
const stop = async (signal) => {
  if (stopping) {
    // A second Ctrl-C does not wait for the drain.
    process.exit(130);
  }
  stopping = true;
  console.log(`\n${signal}: stopping…`);
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
