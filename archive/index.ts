// The archive core's public API (format v1): import from here. A pure library at the bottom of the
// layers: it imports nothing else of the project.
export * from './format.ts';
export * from './errors.ts';
export { passphraseFingerprint, ALGO as ENCRYPTION_ALGO } from './crypto.ts';
export * from './write.ts';
export * from './read.ts';
