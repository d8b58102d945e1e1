/** How long to wait between failed attempts. */
export interface BackoffOptions {
  /**
   * The cap of the first retry's delay, in ms.
   * @default 500
   */
  initialDelay?: number;
  /**
   * The hard cap of any delay, in ms.
   * @default 30000
   */
  maxDelay?: number;
  /**
   * How much the cap grows per attempt.
   * @default 2
   */
  factor?: number;
}

/** {@link BackoffOptions} with every default applied. */
export type ResolvedBackoff = Required<BackoffOptions>;

/**
 * The delay before retry `attempt` (1 for the first retry), with full jitter: a uniform pick in
 * `[0, min(maxDelay, initialDelay * factor^(attempt-1)))`, so many clients cut off at once do not
 * come back at once. Pure: `random` is injected.
 */
export function backoffDelay(
  attempt: number,
  options: ResolvedBackoff,
  random: () => number,
): number {
  const cap = Math.min(
    options.maxDelay,
    options.initialDelay * options.factor ** Math.max(0, attempt - 1),
  );
  return Math.floor(random() * cap);
}
