/**
 * Revocation: who is connected right now (held long-polls, streams, WebSockets) and ending the
 * connections of a user, session or identity with `comet.disconnect(filter)`, on this instance
 * at once and on every instance sharing the broker through a control message. The control
 * message travels as an ordinary message on a reserved topic (`_cometkit/control`, which no
 * client may name: topics never start with `_`), so any broker that implements `publish`,
 * `listen` and `read` carries it, the Redis one included, with nothing new to implement.
 */
import { randomUUID } from 'node:crypto';
import type { Broker } from '../broker';
import type { DisconnectFilter, ServerLogEvent } from '../options';
import { badRequest, isRecord, MAX_ID_LENGTH } from './request';

/** The reserved topic of control messages between instances. */
export const CONTROL_TOPIC = '_cometkit/control';

/** Who a connection is from, as {@link DisconnectFilter} matches it. */
export interface ConnectionIdentity {
  identity: string | undefined;
  sessionGuid: string | undefined;
  userId: string | undefined;
}

/** An open connection or a held request that revocation can end. */
export interface LiveConnection {
  /** Who it is from now (a WebSocket's identity changes with its frames' headers). */
  who(): ConnectionIdentity;
  /** Ends it: a held long-poll answers `reconnect`, a stream ends, a WebSocket closes 4001. */
  revoke(): void;
}

/** The live connections of one instance. */
export interface ConnectionRegistry {
  /** Registers `connection` (a held poll registers itself: no closure per hold). */
  add(connection: LiveConnection): void;
  /** Takes `connection` out (it ended); does nothing when it is not in. */
  remove(connection: LiveConnection): void;
  /** Revokes every local connection that `filter` matches; returns how many. */
  revokeMatching(filter: DisconnectFilter): number;
}

/** Creates the registry of one server instance. */
export function createConnectionRegistry(): ConnectionRegistry {
  const live = new Set<LiveConnection>();
  return {
    add(connection) {
      live.add(connection);
    },
    remove(connection) {
      live.delete(connection);
    },
    revokeMatching(filter) {
      let ended = 0;
      for (const connection of [...live]) {
        if (!matches(filter, connection.who())) continue;
        live.delete(connection);
        connection.revoke();
        ended += 1;
      }
      return ended;
    },
  };
}

function matches(filter: DisconnectFilter, who: ConnectionIdentity): boolean {
  return (
    (filter.identity === undefined || filter.identity === who.identity) &&
    (filter.sessionGuid === undefined || filter.sessionGuid === who.sessionGuid) &&
    (filter.userId === undefined || filter.userId === who.userId)
  );
}

/**
 * A filter from the application or from another instance's control message: an object with at
 * least one of `identity`, `sessionGuid`, `userId`, each a non-empty string. Throws `400`.
 */
export function parseDisconnectFilter(value: unknown): DisconnectFilter {
  if (!isRecord(value)) throw badRequest('disconnect: the filter must be an object');
  const filter: DisconnectFilter = {};
  for (const key of ['identity', 'sessionGuid', 'userId'] as const) {
    const field = value[key];
    if (field === undefined) continue;
    if (typeof field !== 'string' || field.length === 0 || field.length > MAX_ID_LENGTH) {
      throw badRequest(`disconnect: "${key}" must be a string of 1 to ${MAX_ID_LENGTH} characters`);
    }
    filter[key] = field;
  }
  if (Object.keys(filter).length === 0) {
    // An empty filter would end everyone: `close()` is the way to do that.
    throw badRequest('disconnect: name an identity, a sessionGuid or a userId');
  }
  return filter;
}

/** The control channel of one instance over the shared broker. */
export interface ControlChannel {
  /** Tells every other instance to revoke what `filter` matches. */
  broadcast(filter: DisconnectFilter): Promise<void>;
  /** Stops listening. */
  close(): void;
}

interface ControlMessage {
  kind: 'disconnect';
  /** The instance that sent it: it already acted, and ignores its own message. */
  from: string;
  filter: DisconnectFilter;
}

/**
 * Listens to the control topic from its current position on; each `disconnect` message from
 * another instance revokes the matching local connections (`revoke`). A broker failure here
 * is logged, never thrown: revocation on other instances is then as late as their next
 * `reauthorizeInterval` or reconnection.
 */
export function createControlChannel(
  broker: Broker,
  revoke: (filter: DisconnectFilter) => void,
  log: (event: ServerLogEvent) => void,
): ControlChannel {
  const self = randomUUID();
  let closed = false;
  const failed = (error: unknown) =>
    log({
      level: 'error',
      event: 'control.failed',
      message:
        'the control channel could not read the broker; revocations from other instances wait',
      error,
    });
  // The position is taken before any wake is acted on, and reads are chained: one at a time,
  // in order, each from where the last one ended.
  let position: string | undefined;
  let chain: Promise<void> = broker.read(CONTROL_TOPIC, undefined, 0).then((result) => {
    position = result.position;
  }, failed);
  const readNew = async () => {
    for (let round = 0; round < 100 && !closed; round += 1) {
      const result = await broker.read(CONTROL_TOPIC, position, 100);
      position = result.position;
      for (const message of result.messages) apply(message.data);
      if (!result.more) return;
    }
  };
  const apply = (data: unknown) => {
    if (!isRecord(data) || data.kind !== 'disconnect' || data.from === self) return;
    try {
      revoke(parseDisconnectFilter(data.filter));
    } catch (error) {
      log({ level: 'warn', event: 'control.ignored', message: 'a bad control message', error });
    }
  };
  const stop = broker.listen([CONTROL_TOPIC], () => {
    chain = chain.then(readNew).catch(failed);
  });
  return {
    async broadcast(filter) {
      const message: ControlMessage = { kind: 'disconnect', from: self, filter };
      await broker.publish(CONTROL_TOPIC, message);
    },
    close() {
      closed = true;
      stop();
    },
  };
}
