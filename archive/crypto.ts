// Encryption byte-compatible with `openssl enc -aes-256-cbc -pbkdf2 -iter 100000 -md sha256`
// (docs/archive-format.md): "Salted__" + 8-byte salt, then AES-256-CBC with PKCS#7 padding. One PBKDF2 run gives
// 80 bytes: key (0..31) and IV (32..47) exactly as openssl derives them, and an HMAC key (48..79) that
// authenticates the whole file, because CBC alone cannot detect tampering.
import { createCipheriv, createDecipheriv, createHmac, pbkdf2, randomBytes, timingSafeEqual, type Cipher, type Decipher, type Hmac } from 'node:crypto';
import { promisify } from 'node:util';

const pbkdf2Async = promisify(pbkdf2);

export const MAGIC = Buffer.from('Salted__', 'latin1');
export const SALT_LEN = 8;
export const HEADER_LEN = MAGIC.length + SALT_LEN;
export const PBKDF2_ITER = 100_000;
export const ALGO = 'AES-256-CBC' as const;
const KEY_CHECK_LABEL = 'phpborg-keeper key check';
const FINGERPRINT_SALT = 'phpborg-keeper passphrase fingerprint v1';

export interface Keys {
  key: Buffer;
  iv: Buffer;
  macKey: Buffer;
  salt: Buffer;
}

/** PBKDF2-HMAC-SHA256(passphrase, salt, 100000, 80): key, IV, MAC key. Runs off the main thread. */
export async function deriveKeys(passphrase: string, salt: Buffer): Promise<Keys> {
  if (salt.length !== SALT_LEN) throw new Error('salt must be 8 bytes');
  const out = await pbkdf2Async(Buffer.from(passphrase, 'utf8'), salt, PBKDF2_ITER, 80, 'sha256');
  return { key: out.subarray(0, 32), iv: out.subarray(32, 48), macKey: out.subarray(48, 80), salt };
}

/** The 16-byte openssl header for a salt. */
export const encHeader = (salt: Buffer) => Buffer.concat([MAGIC, salt]);

/** Salt from the first 16 bytes of a file, or null when they are not an openssl salted header. */
export function saltOf(head: Buffer): Buffer | null {
  if (head.length < HEADER_LEN || !head.subarray(0, MAGIC.length).equals(MAGIC)) return null;
  return Buffer.from(head.subarray(MAGIC.length, HEADER_LEN));
}

export const newSalt = () => randomBytes(SALT_LEN);

export const createEncryptor = (k: Keys): Cipher => createCipheriv('aes-256-cbc', k.key, k.iv);
export const createDecryptor = (k: Keys): Decipher => createDecipheriv('aes-256-cbc', k.key, k.iv);
/** HMAC-SHA256 over the whole encrypted file, header included. */
export const createMac = (k: Keys): Hmac => createHmac('sha256', k.macKey);

/** HMAC(macKey, label), hex: stored in the sidecar so a wrong passphrase is known without reading the file. */
export const keyCheck = (k: Keys): string => createHmac('sha256', k.macKey).update(KEY_CHECK_LABEL).digest('hex');

/** Constant-time comparison of two hex strings. */
export function hexEqual(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  return x.length === y.length && x.length > 0 && timingSafeEqual(x, y);
}

/**
 * A short, stable, non-reversible tag of a passphrase for the settings UI ("which passphrase is set"):
 * the first 16 hex digits of PBKDF2 with a fixed application salt.
 */
export async function passphraseFingerprint(passphrase: string): Promise<string> {
  const out = await pbkdf2Async(Buffer.from(passphrase, 'utf8'), FINGERPRINT_SALT, PBKDF2_ITER, 8, 'sha256');
  return out.toString('hex');
}
