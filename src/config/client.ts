import { CLIENT_SETTINGS } from './settings.js';

/**
 * The REST commands' settings (`tightloop errors list`, `gateway …`, `deploy …`): the `--url` and
 * `--token` flags win over TIGHTLOOP_URL and TIGHTLOOP_TOKEN; the URL defaults to the local
 * server. The only place the CLI reads them from the environment.
 */
export const DEFAULT_CLIENT_URL = 'http://127.0.0.1:4318';

export function clientUrl(flag: string | undefined, env: Readonly<Record<string, string | undefined>> = process.env): string {
  return flag ?? env[CLIENT_SETTINGS[0].env] ?? DEFAULT_CLIENT_URL;
}

export function clientToken(flag: string | undefined, env: Readonly<Record<string, string | undefined>> = process.env): string | undefined {
  return flag ?? env[CLIENT_SETTINGS[1].env];
}
