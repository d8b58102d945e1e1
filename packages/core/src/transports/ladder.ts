/**
 * The fallback ladder: the usable transports in the order of the `transports` option, the rung
 * the session is on, falling back and demotion, and the transport remembered per base URL. It
 * asks each transport's definition whether it runs here and whether it is a floor, so no
 * transport is named outside its own file. The learned long-poll `wait` is remembered with the
 * transport.
 */
import type { ClientContext } from '../context';
import { type CometError, isTimeoutError } from '../errors';
import { parseJson } from '../parse';
import type { TransportName } from '../protocol';
import { transportDefinitions } from './select';
import type { Transport, TransportDefinition } from './types';

/** A transport that ends sooner than this after opening died "early"... */
const EARLY_MS = 10_000;
/** ...and this many early deaths in a row demote it. */
const EARLY_LIMIT = 3;

/** One usable transport. */
export interface Rung {
  transport: Transport;
  definition: TransportDefinition;
  /** Nothing below it (a floor transport, or the last one named): never falls back. */
  floor: boolean;
  /** Why it failed before its open, for the fallback diagnostic. */
  openFailure(error: CometError): string;
}

/** What storage keeps per base URL (`at` on the wall clock: it outlives the page). */
interface Memory {
  name: TransportName;
  at: number;
  /** The adaptive hold's `wait`. */
  wait?: number;
}

/** The ladder of one client. */
export interface Ladder {
  /** The index of the rung the session is on (0 is the best). */
  readonly level: number;
  /** The `wait` remembered for this base URL within the TTL (read with `level`). */
  readonly wait: number | undefined;
  /** Rung `index`, undefined past the last one (or when no transport is usable). */
  at(index: number): Rung | undefined;
  /** Rung `index` could not open: the session goes on with the next one. */
  fallBack(index: number, reason: string): void;
  /** A probe of rung `index` opened: the session moves up to it. */
  moveUp(index: number): void;
  /** A probe of rung `index` did not open either: the session stays where it is. */
  probeFailed(index: number, reason: string): void;
  /**
   * The transport on rung `index`, opened at `openedAt` (monotonic), ended (with `error`, or normally):
   * demotes it when it went silent (a `TimeoutError`) or died soon after opening
   * {@link EARLY_LIMIT} times in a row. Returns true when it did.
   */
  demoted(index: number, openedAt: number, error?: CometError): boolean;
  /** Remembers `name` as working for this base URL, and the adaptive hold's `wait`. */
  remember(name: TransportName, wait: number): void;
}

/** Makes the ladder; the transports are made on first use (the base URL is resolved then). */
export function createLadder(context: ClientContext): Ladder {
  const { options, environment, events } = context;
  let rungs: Rung[] | undefined;
  let level = 0;
  let earlyDeaths = 0;
  let remembered: Memory | undefined;
  let wait: number | undefined;
  const memoryKey = () => `cometkit:transport:${context.baseUrl()}`;

  function build(): Rung[] {
    const transportContext = {
      url: context.baseUrl() ?? '',
      http: context.http,
      post: context.post,
      environment,
      headers: context.headers,
      watchdogGrace: options.watchdogGrace,
    };
    const built: Rung[] = [];
    for (const name of options.transports) {
      const definition = transportDefinitions.get(name);
      const unsupported = definition
        ? definition.unsupported?.(environment)
        : 'not a transport of this build';
      if (!definition || unsupported) {
        events.diagnostic('transport-skipped', `${name} skipped: ${unsupported}`, {
          transport: name,
        });
        continue;
      }
      built.push({
        transport: definition.create(transportContext),
        definition,
        floor: false,
        openFailure: (error) =>
          definition.openFailure?.(error) ?? `${name} failed before open: ${error.message}`,
      });
    }
    const last = built.length - 1;
    for (const [index, rung] of built.entries())
      rung.floor = rung.definition.floor || index === last;
    level = recall(built);
    return built;
  }

  // Storage may be missing, full or throwing (private modes, sandboxes): memory is a bonus.
  function recall(built: Rung[]): number {
    try {
      const saved = parseJson(environment.storage()?.getItem(memoryKey()) ?? '') as
        | Memory
        | undefined;
      const index = built.findIndex((rung) => rung.transport.name === saved?.name);
      const age = environment.now() - (saved?.at ?? 0);
      if (age >= options.transportMemoryTtl) return 0;
      wait = saved?.wait;
      if (index > 0) {
        events.diagnostic(
          'transport-remembered',
          `starting on ${saved?.name}: it worked here before`,
          {
            transport: saved?.name,
            ageMs: age,
          },
        );
        return index;
      }
    } catch {}
    return 0;
  }

  const all = () => {
    rungs ??= build();
    return rungs;
  };

  function moveDown(index: number, code: string, message: string, reason: string) {
    level = index + 1;
    const from = all()[index]?.transport.name;
    const to = all()[level]?.transport.name;
    events.diagnostic(code, `${message}: now ${to}`, { from, to, reason });
  }

  return {
    get level() {
      all();
      return level;
    },
    get wait() {
      all();
      return wait;
    },
    at: (index) => all()[index],
    fallBack(index, reason) {
      moveDown(index, 'transport-fallback', reason, reason);
    },
    moveUp(index) {
      const from = all()[level]?.transport.name;
      const to = all()[index]?.transport.name;
      level = index;
      earlyDeaths = 0;
      events.diagnostic('transport-upgrade', `${from} -> ${to}: the better transport opened`, {
        from,
        to,
      });
    },
    probeFailed(index, reason) {
      const transport = all()[index]?.transport.name;
      events.diagnostic('transport-probe-failed', `${transport} still does not open: ${reason}`, {
        transport,
        reason,
      });
    },
    demoted(index, openedAt, error) {
      const silent = isTimeoutError(error);
      earlyDeaths = environment.monotonic() - openedAt < EARLY_MS ? earlyDeaths + 1 : 0;
      if (!silent && earlyDeaths < EARLY_LIMIT) return false;
      earlyDeaths = 0;
      const name = all()[index]?.transport.name;
      moveDown(
        index,
        'transport-demoted',
        silent
          ? `${name} went silent (${error?.message})`
          : `${name} died ${EARLY_LIMIT} times soon after opening`,
        silent ? 'silent' : 'early-deaths',
      );
      return true;
    },
    // Written again once half the TTL has passed, so a long session on a fallback is still
    // remembered when the page is reloaded after more than one TTL.
    remember(name, wait) {
      const at = environment.now();
      const ttl = options.transportMemoryTtl;
      if (
        !ttl ||
        (remembered?.name === name && remembered.wait === wait && at - remembered.at < ttl / 2)
      )
        return;
      remembered = { name, at, wait };
      try {
        environment.storage()?.setItem(memoryKey(), JSON.stringify(remembered));
      } catch {}
    },
  };
}
