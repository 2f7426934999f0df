import { Linter } from 'eslint';
import tseslint from 'typescript-eslint';
import { describe, expect, it } from 'vitest';
import local from '../eslint/no-silent-catch.js';

/** The lint rule behind "nothing fails in silence" (issue 21.2; eslint.config.js, src/). */
const linter = new Linter({ configType: 'flat' });
const config = [{ files: ['**/*.ts'], languageOptions: { parser: tseslint.parser }, plugins: { local }, rules: { 'local/no-silent-catch': 'error' as const } }];
const flagged = (code: string): number => linter.verify(code, config, 'probe.ts').filter((m) => m.ruleId === 'local/no-silent-catch').length;

/** Catch clauses and .catch() callbacks that drop their error without a word. */
const SILENT = [
  'try { f(); } catch { return 0; }',
  'try { f(); } catch (e) { g(); }',
  'try { f(); } catch {}',
  'p.catch(() => undefined);',
  'await p.catch(() => null);',
  'p.catch((err) => 0);',
  'p.catch(function () { return 1; });',
];

/** Those that rethrow, use their error, or say (in them, on their line or the line above) why dropping it is safe. */
const HANDLED = [
  'try { f(); } catch (e) { throw new Error("x", { cause: e }); }',
  'try { f(); } catch { throw new Error("x"); }',
  'try { f(); } catch (err) { log.warn({ err }, "f failed"); }',
  'try { f(); } catch { // ENOENT: no file yet\n  return 0;\n}',
  'try { f(); } catch {\n  /* not JSON: the text itself */\n  return 0;\n}',
  'p.catch((err) => log.warn({ err }, "p failed"));',
  'p.catch(() => undefined); // the caller gets the failure through p',
  '// marks the rejection handled: its awaiter gets it\np.catch(() => undefined);',
  'p.catch(() => { /* gone already */ });',
  'p.catch(() => { throw new Error("x"); });',
  'p.catch(onFailure);',
  'p.then(() => 1).finally(() => undefined);',
];

describe('local/no-silent-catch', () => {
  it.each(SILENT)('flags %j', (code) => {
    expect(flagged(code)).toBe(1);
  });

  it.each(HANDLED)('accepts %j', (code) => {
    expect(flagged(code)).toBe(0);
  });
});
