import { Linter } from 'eslint';
import tseslint from 'typescript-eslint';
import { describe, expect, it } from 'vitest';
import local from '../eslint/no-silent-catch.js';

/** The lint rule behind "nothing fails in silence" (issue 21.2; eslint.config.js, src/). */
const linter = new Linter({ configType: 'flat' });
const config = [{ files: ['**/*.ts'], languageOptions: { parser: tseslint.parser }, plugins: { local }, rules: { 'local/no-silent-catch': 'error' as const } }];
const flagged = (code: string): number => linter.verify(code, config, 'probe.ts').filter((m) => m.ruleId === 'local/no-silent-catch').length;

describe('local/no-silent-catch', () => {
  it('flags a catch that drops its error without a word', () => {
    expect(flagged('try { f(); } catch { return 0; }')).toBe(1);
    expect(flagged('try { f(); } catch (e) { g(); }')).toBe(1);
    expect(flagged('try { f(); } catch {}')).toBe(1);
  });

  it('accepts a catch that rethrows, uses its error, or says why swallowing it is safe', () => {
    expect(flagged('try { f(); } catch (e) { throw new Error("x", { cause: e }); }')).toBe(0);
    expect(flagged('try { f(); } catch { throw new Error("x"); }')).toBe(0);
    expect(flagged('try { f(); } catch (err) { log.warn({ err }, "f failed"); }')).toBe(0);
    expect(flagged('try { f(); } catch { // ENOENT: no file yet\n  return 0;\n}')).toBe(0);
    expect(flagged('try { f(); } catch {\n  /* not JSON: the text itself */\n  return 0;\n}')).toBe(0);
  });
});
