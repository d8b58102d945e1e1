export * from './front';
export * from './start-server';
