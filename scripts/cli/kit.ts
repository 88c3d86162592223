// keeper emergency-kit [--output FILE]: the emergency kit (passphrase, fingerprint, where the
// backups are, manual restore recipe) on stdout or into a new 0600 file. Audited like the API's.
import { writeFileSync } from 'node:fs';
import { audit } from '../../state/audit.ts';
import { phpborgDb } from '../../runtime/phpborg-db.ts';
import { buildEmergencyKit } from '../../functions/kit/emergency-kit.ts';
import { CliError, type CliTopCommand } from './framework.ts';
import { errorMessage } from '../../runtime/error-message.ts';

export const kitCommand: CliTopCommand = {
  usage:
    'keeper emergency-kit [--output FILE]\n' +
    '  --output FILE  write it to FILE (created 0600, never overwritten) instead of stdout',
  options: { output: { type: 'string' } },
  positionals: { max: 0 },
  async run(ctx, { values }) {
    const config = ctx.config();
    const ledger = ctx.ledger();
    const db = phpborgDb(config);
    let text: string;
    try {
      text = await buildEmergencyKit({ config, ledger, phpborg: db }, new Date(), ctx.actor);
    } finally {
      await db.close();
    }
    const out = typeof values.output === 'string' ? values.output : null;
    if (out) {
      try {
        writeFileSync(out, text, { mode: 0o600, flag: 'wx' });
      } catch (e) {
        throw new CliError('write_failed', `cannot create ${out}: ${(e as NodeJS.ErrnoException).code ?? errorMessage(e)} (it must not exist yet)`);
      }
    }
    audit(ledger, { actor: ctx.actor, action: 'settings.emergency_kit', outcome: 'succeeded', details: { output: out ? 'file' : 'stdout' } });
    return { text: out ? null : text, output: out };
  },
  render(result) {
    const r = result as { text: string | null; output: string | null };
    if (r.text) process.stdout.write(r.text);
    else process.stderr.write(`emergency kit written to ${r.output} (0600): keep it offline\n`);
  },
};
