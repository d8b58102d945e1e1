// A minimal HS256 JSON Web Token, enough for the example: sign and verify with node:crypto.
// Use a maintained library (jose) in an application; the format is the same.
import { createHmac, timingSafeEqual } from 'node:crypto';

const encode = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');
const HEADER = encode({ alg: 'HS256', typ: 'JWT' });

/** A token for `sub`, valid for `ttlMs`. */
export function sign(sub, secret, ttlMs) {
  const payload = encode({
    sub,
    exp: Math.floor((Date.now() + ttlMs) / 1000),
    ms: Date.now() + ttlMs,
  });
  const signature = createHmac('sha256', secret).update(`${HEADER}.${payload}`).digest('base64url');
  return `${HEADER}.${payload}.${signature}`;
}

/** The claims of a valid, unexpired token, or undefined. */
export function verify(token, secret) {
  const [header, payload, signature] = String(token).split('.');
  if (header !== HEADER || !payload || !signature) return undefined;
  const expected = createHmac('sha256', secret).update(`${header}.${payload}`).digest();
  const given = Buffer.from(signature, 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
    return typeof claims.sub === 'string' && claims.ms > Date.now() ? claims : undefined;
  } catch {
    return undefined;
  }
}
