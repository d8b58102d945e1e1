import { type CometClient, type CometClientOptions, createCometClient } from '@cometkit/core';
import { createContext, type ReactNode, useContext, useEffect, useRef, useState } from 'react';
import type { RegisteredTopics } from './register';

const CometContext = createContext<CometClient<RegisteredTopics> | undefined>(undefined);
CometContext.displayName = 'CometContext';

/** Props of {@link CometProvider}: either a client made by the application, or its options. */
export type CometProviderProps = { children?: ReactNode } & (
  | {
      /** A client the application created and owns: the provider never closes it. */
      client: CometClient<RegisteredTopics>;
      options?: never;
    }
  | {
      /**
       * Options for a client the provider creates on mount and closes on unmount. Read once:
       * later changes are ignored (remount the provider with a new `key` to apply them).
       */
      options: CometClientOptions;
      client?: never;
    }
);

/**
 * Makes a cometkit client available to the hooks below it.
 *
 * ```tsx
 * const client = createCometClient({ url: '/api/comet' });
 * <CometProvider client={client}><App /></CometProvider>
 * ```
 */
export function CometProvider(props: CometProviderProps): ReactNode {
  const owned = useOwnedClient(props.options);
  const client = props.client ?? owned;
  if (!client) throw new Error('<CometProvider> needs a `client` or an `options` prop.');
  return <CometContext.Provider value={client}>{props.children}</CometContext.Provider>;
}

/**
 * The client created from `options`, closed on unmount. Creating a client starts nothing (the
 * first subscription does), so making it during render is safe on the server and in StrictMode.
 */
function useOwnedClient(
  options: CometClientOptions | undefined,
): CometClient<RegisteredTopics> | undefined {
  const [client] = useState(() =>
    options ? (createCometClient(options) as CometClient<RegisteredTopics>) : undefined,
  );
  const mounted = useRef(false);
  useEffect(() => {
    if (!client) return;
    mounted.current = true;
    return () => {
      mounted.current = false;
      // StrictMode unmounts and remounts every effect in the same task: closing at once would
      // leave the remounted tree with a dead client, so close only if no remount followed.
      setTimeout(() => {
        if (!mounted.current) client.close();
      }, 0);
    };
  }, [client]);
  return client;
}

/**
 * The client of the nearest {@link CometProvider}.
 * @throws Error when called outside a `<CometProvider>`.
 */
export function useCometClient(): CometClient<RegisteredTopics> {
  const client = useContext(CometContext);
  if (!client) {
    throw new Error(
      'useCometClient() was called outside <CometProvider>: wrap the component tree that uses ' +
        'cometkit hooks in <CometProvider client={…}> or <CometProvider options={…}>.',
    );
  }
  return client;
}
