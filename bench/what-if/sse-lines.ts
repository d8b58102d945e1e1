// A stand-in for eventsource-parser, measured by bench/suites/size-what-if.mjs only (never
// shipped): `event` and `data` fields, comments skipped, which is all the cometkit server sends.
export function createParser({
  onEvent,
}: {
  onEvent: (event: { event?: string; data: string }) => void;
}) {
  let buffer = '';
  let event: string | undefined;
  let data: string[] = [];
  return {
    feed(chunk: string) {
      buffer += chunk;
      const lines = buffer.split(/\r\n|\r|\n/);
      buffer = lines.pop() ?? '';
      for (const line of lines) {
        if (line === '') {
          if (data.length > 0) onEvent({ event, data: data.join('\n') });
          event = undefined;
          data = [];
          continue;
        }
        const colon = line.indexOf(':');
        if (colon === 0) continue;
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'event') event = value;
        else if (field === 'data') data.push(value);
      }
    },
  };
}
