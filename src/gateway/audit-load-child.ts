/** Child process of the audit writers' test and benchmark (audit-load.ts). */
import { auditLoadMain } from './audit-load.js';

auditLoadMain(process.argv[2] ?? '{}').catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
