// Public surface of the config module.
export * from './load.js';
export * from './schema.js';
