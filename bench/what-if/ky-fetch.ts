// A stand-in for ky, measured by bench/suites/size-what-if.mjs only (never shipped): the part of
// ky the client uses (`create({ fetch })` then `post(url, { json | body, headers, signal,
// timeout })`), on `fetch`. What the client would carry if it made its requests itself.
type PostOptions = {
  json?: unknown;
  body?: string;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  timeout?: number | false;
};

export default {
  create({ fetch }: { fetch: typeof globalThis.fetch }) {
    return {
      post(url: string, options: PostOptions) {
        const signals = [options.signal];
        if (options.timeout) signals.push(AbortSignal.timeout(options.timeout));
        const json = options.json !== undefined;
        return fetch(url, {
          method: 'POST',
          body: json ? JSON.stringify(options.json) : options.body,
          headers: json
            ? { 'content-type': 'application/json', ...options.headers }
            : options.headers,
          signal: AbortSignal.any(signals.filter((s): s is AbortSignal => s !== undefined)),
        });
      },
    };
  },
};
