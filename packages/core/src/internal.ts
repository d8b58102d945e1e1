/**
 * Internal hooks for this package's own tests: not exported from the package entry points and
 * not part of the documented API.
 */

/** A non-enumerable method on every client: how many topic stores it caches right now. */
export const CACHED_STORES: unique symbol = Symbol('cometkit.cachedStores');
