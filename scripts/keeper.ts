// keeper: the command-line entry point. Dispatches to the command modules of scripts/cli/index.ts,
// loading only the one that runs.
import { parseArgs } from 'node:util';
import { commands } from './cli/index.ts';
import {
  CliError,
  commandHelp,
  createContext,
  groupHelp,
  isGroup,
  loadModule,
  mainHelp,
  parseGlobal,
  usageError,
  type CliCommand,
  type GlobalOptions,
} from './cli/framework.ts';
import { errorMessage } from '../runtime/error-message.ts';

/** Turns any result into ONE JSON object for the last stdout line. */
function asObject(x: unknown): object {
  if (x === undefined || x === null) return { ok: true };
  if (Array.isArray(x)) return { items: x };
  if (typeof x === 'object') return x;
  return { result: x };
}

async function main(argv: string[]): Promise<number> {
  let g: GlobalOptions;
  try {
    g = parseGlobal(argv);
  } catch (e) {
    return fail(e, argv.includes('--json'));
  }
  const [name, ...rest] = g.rest;
  if (!name) {
    process.stdout.write(mainHelp(commands) + '\n');
    return g.help ? 0 : 2;
  }
  const entry = commands.find((m) => m.name === name);
  if (!entry) return fail(usageError(`unknown command "${name}"; run keeper --help`), g.json);
  const mod = await loadModule(entry);

  let cmd: CliCommand;
  let args = rest;
  if (isGroup(mod)) {
    const sub = rest[0];
    const found = sub ? mod.commands.find((c) => c.name === sub) : undefined;
    if (!found) {
      if (g.help || !sub) {
        process.stdout.write(groupHelp(mod) + '\n');
        return g.help ? 0 : 2;
      }
      return fail(usageError(`unknown command "keeper ${mod.name} ${sub}"; run keeper ${mod.name} --help`), g.json);
    }
    cmd = found;
    args = rest.slice(1);
  } else cmd = mod;

  if (g.help) {
    process.stdout.write(commandHelp(cmd) + '\n');
    return 0;
  }

  const ctx = createContext(g);
  try {
    let parsed;
    try {
      parsed = parseArgs({ args, options: cmd.options ?? {}, allowPositionals: true, strict: true });
    } catch (e) {
      throw usageError(`${errorMessage(e)}\nUsage: ${cmd.usage}`);
    }
    const n = parsed.positionals.length;
    const { min = 0, max = Infinity } = cmd.positionals ?? {};
    if (n < min || n > max) throw usageError(`expected ${min === max ? min : `${min}–${max === Infinity ? 'more' : max}`} argument(s), got ${n}\nUsage: ${cmd.usage}`);
    const result = await cmd.run(ctx, { values: parsed.values as Record<string, string | boolean | (string | boolean)[] | undefined>, positionals: parsed.positionals });
    if (g.json) process.stdout.write(JSON.stringify(asObject(result)) + '\n');
    else if (cmd.render) cmd.render(result, ctx);
    else if (result !== undefined) process.stdout.write(JSON.stringify(result, null, 2) + '\n');
    // a command may report failure through its result (status: degraded; a drill that did not pass)
    const r = (typeof result === 'object' && result !== null ? result : {}) as { ok?: unknown; passed?: unknown };
    return r.ok === false || r.passed === false ? 1 : 0;
  } catch (e) {
    return fail(e, g.json);
  } finally {
    await ctx.close();
  }
}

function fail(e: unknown, json: boolean): number {
  const err = e instanceof CliError ? e : new CliError('failed', errorMessage(e));
  if (json) process.stdout.write(JSON.stringify({ error: { code: err.code, message: err.message, ...err.extra } }) + '\n');
  else process.stderr.write(`keeper: ${err.message}\n`);
  if (!(e instanceof CliError) && process.env.KEEPER_DEBUG) console.error(e);
  return err.exit;
}

// `keeper backup list | head`: a reader that goes away ends the output quietly, not with a stack trace
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // open handles (a DB pool, a lingering socket) must not keep the CLI alive
    setTimeout(() => process.exit(code), 100).unref();
  },
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
