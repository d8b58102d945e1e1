export * from './fake-backend';
export * from './fault-run';
export * from './front';
export * from './legacy-server';
export * from './raw-websocket';
export * from './start-server';
