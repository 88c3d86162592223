// Keeps the archive streams' memory flat. Every block leaves a few short-lived ArrayBuffers behind
// (gzip output, cipher output) but almost no JS objects, so V8 rarely runs a young-generation GC and
// lets ~100 MiB of dead buffers pile up before external-memory pressure triggers one. A scavenge costs
// ~0.1 ms; running one every few MiB keeps RSS within budget whatever the archive's size.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

type Gc = (opts?: { type?: 'minor' | 'major' }) => void;

let gc: Gc | null | undefined;

function load(): Gc | null {
  try {
    setFlagsFromString('--expose-gc');
    const fn = runInNewContext('gc') as unknown;
    return typeof fn === 'function' ? (fn as Gc) : null;
  } catch {
    return null;
  }
}

/** A young-generation collection (no-op where the runtime does not allow it). */
export function collectYoung(): void {
  if (gc === undefined) gc = load();
  gc?.({ type: 'minor' });
}

/**
 * A full collection, before a stream starts: whatever an earlier step in the same process left dead
 * (an extraction before a safety backup) is returned before new buffers are taken, so the two do not add up.
 */
export function collectAll(): void {
  if (gc === undefined) gc = load();
  gc?.({ type: 'major' });
}

/** Calls collectYoung() once per `every` bytes reported. */
export class ByteTicker {
  private n = 0;
  constructor(private every = 8 << 20) {}
  add(bytes: number): void {
    this.n += bytes;
    if (this.n >= this.every) {
      this.n = 0;
      collectYoung();
    }
  }
}
