// Fault injection for the crash tests: with KEEPER_TEST_TASKS=1 and KEEPER_FAULT_STEP=<step key>[#n]
// in its environment, a process SIGKILLs itself when it reports that step (the n-th time, default the
// first), right after the journal recorded it. Without KEEPER_TEST_TASKS=1 it does nothing, and the
// runner passes neither variable to a helper unless it was itself started with them.
const spec = process.env.KEEPER_TEST_TASKS === '1' ? (process.env.KEEPER_FAULT_STEP ?? '') : '';
const [faultKey, nth] = spec.split('#');
const seen = new Map<string, number>();

/** Called where a step is reported, after its report went out (`flush` sends a held-back one first). */
export function faultPoint(step: string, flush: () => void = () => {}): void {
  if (!faultKey || step !== faultKey) return;
  const n = (seen.get(step) ?? 0) + 1;
  seen.set(step, n);
  if (n !== Number(nth ?? 1)) return;
  flush();
  process.kill(process.pid, 'SIGKILL');
}
