import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { callApi, eventually } from './server.js';

/**
 * What the browser tests share (console-views, console-story, browser-ingest): Debian's Chromium
 * driven by playwright-core (never a downloaded browser), the console build, an API caller and a
 * signed-in page. DEVELOPERS.md, "Browser tests", says why each flag is there.
 */

export const CHROMIUM = process.env.TIGHTLOOP_CHROMIUM ?? '/usr/bin/chromium';
/** Headless flags: no sandbox as root in CI, no GPU, nothing phoning home, small /dev/shm. */
export const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
  '--disable-sync', '--no-first-run', '--disable-dev-shm-usage'];
/** Screenshots of the views (git-ignored): look at them after changing the console. */
export const ARTIFACTS = join(process.cwd(), 'test-artifacts', 'console');

/** web/dist as the server serves it: built once (vite) when missing; the screenshot folder made. */
export function ensureConsoleBuilt(): void {
  if (!existsSync(join('web', 'dist', 'index.html'))) {
    execFileSync('npx', ['vite', 'build', '--config', 'web/vite.config.ts', '--logLevel', 'warn'], { stdio: 'inherit' });
  }
  mkdirSync(ARTIFACTS, { recursive: true });
}

export async function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
}

/** A persistent context on a fresh profile directory, removed by `close`. */
export async function launchProfile(viewport?: { width: number; height: number }): Promise<{ ctx: BrowserContext; page: Page; close: () => Promise<void> }> {
  const profileDir = mkdtempSync(join(tmpdir(), 'tightloop-chromium-'));
  const ctx = await chromium.launchPersistentContext(profileDir, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, ...(viewport === undefined ? {} : { viewport }) });
  const page = ctx.pages()[0] ?? await ctx.newPage();
  return { ctx, page, close: async () => { await ctx.close(); rmSync(profileDir, { recursive: true, force: true }); } };
}

export type ApiCall = <T>(path: string, init?: { method?: string; body?: unknown; as?: string }) => Promise<{ status: number; body: T }>;

/** Calls the server's API with the admin token (or `as`); read lazily, so it can be made before the server starts. */
export function apiClient(url: () => string, token: () => string): ApiCall {
  return <T>(path: string, init: { method?: string; body?: unknown; as?: string } = {}) =>
    callApi<T>(url(), init.as ?? token(), init.method ?? (init.body === undefined ? 'GET' : 'POST'), path, init.body);
}

/** Polls until `check` gives a value; 20 s by default (browser tests wait on a busy machine). */
export function until<T>(check: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  return eventually(check, timeoutMs);
}

/**
 * A new page signed in with `token` (stored as the console stores it), recording every API
 * request and every failed (e.g. aborted) request.
 */
export async function signedIn(browser: Browser, url: string, token: string,
  pageOptions: Parameters<Browser['newPage']>[0] = { viewport: { width: 1440, height: 900 } }): Promise<{ page: Page; requests: string[]; failed: string[] }> {
  const page = await browser.newPage(pageOptions);
  const requests: string[] = [];
  const failed: string[] = [];
  page.on('request', (r) => { if (r.url().includes('/api/')) requests.push(r.url().slice(url.length)); });
  page.on('requestfailed', (r) => failed.push(`${r.url().slice(url.length)} ${r.failure()?.errorText ?? ''}`));
  await page.goto(url + '/login-first');
  await page.evaluate((t) => sessionStorage.setItem('tightloop.token', t), token);
  return { page, requests, failed };
}

/** Pixels of a chart's canvas (found by its caption) close to an RGB colour. */
export async function pixelsOf(page: Page, chartTitle: string, rgb: [number, number, number]): Promise<number> {
  return page.locator('figure.chart', { has: page.locator('figcaption', { hasText: chartTitle }) }).locator('canvas').evaluate((c, want) => {
    const canvas = c as HTMLCanvasElement;
    const data = canvas.getContext('2d')?.getImageData(0, 0, canvas.width, canvas.height).data ?? new Uint8ClampedArray();
    let n = 0;
    for (let i = 0; i < data.length; i += 4) {
      if (Math.abs(data[i] - want[0]) < 40 && Math.abs(data[i + 1] - want[1]) < 40 && Math.abs(data[i + 2] - want[2]) < 40 && data[i + 3] > 200) n++;
    }
    return n;
  }, rgb);
}
