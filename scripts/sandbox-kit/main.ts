// scripts/sandbox: up DIR [--size MiB] [--workers N] | down DIR | token DIR [--role ROLE] | credentials DIR
import { upSandbox, downSandbox, sandboxToken, adminCredentials, userCredentials } from './index.ts';

const USAGE = `usage:
  scripts/sandbox up DIR [--size MiB] [--workers N]   build or restart a sandbox; prints {"dir","config","code","env"}
  scripts/sandbox down DIR                            stop every process of the sandbox
  scripts/sandbox token DIR [--role ROLE]             print a phpBorg access token (ROLE_ADMIN by default)
  scripts/sandbox credentials DIR                     print the seeded users' sign-ins`;

function option(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  if (i >= 0) {
    const v = args[i + 1];
    if (v === undefined || v.startsWith('--')) throw new Error(`${name} needs a value`);
    args.splice(i, 2);
    return v;
  }
  const eq = args.findIndex((a) => a.startsWith(`${name}=`));
  if (eq >= 0) return args.splice(eq, 1)[0].slice(name.length + 1);
  return undefined;
}

function positiveInt(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) < 1) throw new Error(`${name} expects a whole number ≥ 1, got ${JSON.stringify(v)}`);
  return Number(v);
}

async function main(argv: string[]): Promise<number> {
  const args = [...argv];
  const verb = args.shift();
  if (!verb || verb === '-h' || verb === '--help') {
    process.stderr.write(USAGE + '\n');
    return verb ? 0 : 2;
  }
  const size = positiveInt('--size', option(args, '--size'));
  const workers = positiveInt('--workers', option(args, '--workers'));
  const role = option(args, '--role');
  const dir = args.shift();
  if (!dir || args.length) {
    process.stderr.write(`${dir ? `unexpected argument ${args[0]}` : 'missing DIR'}\n${USAGE}\n`);
    return 2;
  }
  switch (verb) {
    case 'up':
      process.stdout.write(JSON.stringify(await upSandbox(dir, { size, workers })) + '\n');
      return 0;
    case 'down':
      await downSandbox(dir);
      return 0;
    case 'token':
      process.stdout.write((await sandboxToken(dir, { role })) + '\n');
      return 0;
    case 'credentials':
      process.stdout.write(JSON.stringify({ admin: adminCredentials(dir), user: userCredentials(dir) }) + '\n');
      return 0;
    default:
      process.stderr.write(`unknown command ${verb}\n${USAGE}\n`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`sandbox: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  },
);
