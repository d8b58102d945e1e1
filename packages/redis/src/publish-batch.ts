/**
 * Publishes made in one turn of the event loop go to Redis together: one `PUBLISH` script call
 * per topic for all of that topic's messages (each appended in order, one wake-up for the lot)
 * instead of a script call, a round of replies and a wake-up on every instance per message.
 * Nothing waits for a timer: the batch leaves at the end of the current turn (a microtask), so a
 * lone publish costs no latency.
 */

/** Sends one topic's batch; resolves with each message's id, in order. */
export type SendBatch = (topic: string, jsons: string[]) => Promise<string[]>;

/** The batches waiting for the end of the turn. */
export interface PublishBatcher {
  /** Queues a message; resolves with its id once its batch is written. */
  add(topic: string, json: string): Promise<string>;
  /**
   * Sends `topic`'s waiting batch now: a publish that cannot join a batch (one with an
   * idempotency key) calls it first, so that the topic's messages keep their order.
   */
  flush(topic: string): void;
  /** Sends every waiting batch now (the broker's close: what was published before goes out). */
  flushAll(): void;
}

interface Waiting {
  readonly json: string;
  readonly resolve: (id: string) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Makes the batcher. `maxBatch` bounds one script call (its arguments and the time Redis spends
 * in it, during which it serves nobody else); a longer run of publishes is sent in several.
 */
export function createPublishBatcher(send: SendBatch, maxBatch: number): PublishBatcher {
  const waiting = new Map<string, Waiting[]>();
  let scheduled = false;

  const flushAll = () => {
    scheduled = false;
    for (const topic of [...waiting.keys()]) flush(topic);
  };

  function flush(topic: string): void {
    const batch = waiting.get(topic);
    if (batch === undefined) return;
    waiting.delete(topic);
    send(
      topic,
      batch.map((entry) => entry.json),
    ).then(
      (ids) => {
        batch.forEach((entry, index) => {
          entry.resolve(ids[index] as string);
        });
      },
      (error: unknown) => {
        for (const entry of batch) entry.reject(error);
      },
    );
  }

  return {
    add(topic, json) {
      return new Promise<string>((resolve, reject) => {
        let batch = waiting.get(topic);
        if (batch === undefined) {
          batch = [];
          waiting.set(topic, batch);
        }
        batch.push({ json, resolve, reject });
        if (batch.length >= maxBatch) flush(topic);
        else if (!scheduled) {
          scheduled = true;
          queueMicrotask(flushAll);
        }
      });
    },
    flush,
    flushAll,
  };
}
