import { describe, expect, it } from 'vitest';
import { apiError } from '../../core/app-error.js';
import { GATEWAY_ERRORS, GatewayError, type GatewayErrorCode, ProtocolViolation, SQLSTATE, toGatewayError } from './errors.js';

/** One gateway error registry (issue 21.1): each code declared once with its SQLSTATE and status. */
describe('gateway error registry', () => {
  it('a GatewayError takes its SQLSTATE and status from the registry', () => {
    const known = new Set<string>(Object.values(SQLSTATE));
    for (const [code, spec] of Object.entries(GATEWAY_ERRORS)) {
      const e = new GatewayError(code as GatewayErrorCode, 'm', { fatal: true });
      expect([e.code, e.sqlstate, e.status, e.message, e.fatal]).toEqual([code, spec.sqlstate, spec.status, 'm', true]);
      expect(spec.sqlstate, code).toMatch(/^[0-9A-Z]{5}$/);
      expect(known.has(spec.sqlstate), code).toBe(true);
    }
    expect(new ProtocolViolation('x').sqlstate).toBe('08P01');
  });

  it('an API error met during a session is answered by the SQLSTATE its status stands for', () => {
    const on = (e: Error): [string, string, string] => { const g = toGatewayError(e); return [g.code, g.sqlstate, g.message]; };
    expect(on(apiError('unauthorized', 'token revoked'))).toEqual(['unauthorized', '28P01', 'token revoked']);
    expect(on(apiError('forbidden', 'no'))).toEqual(['forbidden', '42501', 'no']);
    expect(on(apiError('not_found', 'gone'))).toEqual(['not_found', '3D000', 'gone']);
    expect(on(apiError('state_unavailable', 'down'))).toEqual(['unavailable', '57P03', 'down']);
    expect(on(apiError('conflict', 'busy'))).toEqual(['internal', 'XX000', 'busy']);
    expect(on(new Error('secret detail'))).toEqual(['internal', 'XX000', 'internal gateway error']);
    const own = new GatewayError('no_grant', 'x');
    expect(toGatewayError(own)).toBe(own);
  });
});
