// The text of anything thrown. `catch (e)` gives `unknown`: an Error, but also a string, a plain
// object from a library or a worker, or undefined. No imports, so the web UI can share it.

/** The message of `e`: an Error's or a `{message}` object's message, a string as is, else String(e). */
export function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.message;
  if (typeof e === 'string') return e;
  if (typeof e === 'object' && e !== null && typeof (e as { message?: unknown }).message === 'string') {
    return (e as { message: string }).message;
  }
  try {
    return String(e);
  } catch {
    return Object.prototype.toString.call(e); // e.g. Object.create(null): no toString
  }
}
