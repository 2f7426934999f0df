import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { adminTokenHint } from './admin.js';

describe('adminTokenHint (the login page names the admin token file)', () => {
  it('names the data dir the server really uses, relative to its working directory', () => {
    expect(adminTokenHint('.tightloop-demo', '/srv/shop')).toBe('.tightloop-demo/admin.token');
    expect(adminTokenHint('/srv/shop/.tightloop', '/srv/shop')).toBe('.tightloop/admin.token');
    expect(adminTokenHint(join('var', 'tl'), '/srv/shop')).toBe('var/tl/admin.token');
  });

  it('discloses no path outside the working directory', () => {
    expect(adminTokenHint('/home/alice/tl', '/srv/shop')).toBeUndefined();
    expect(adminTokenHint('../other', '/srv/shop')).toBeUndefined();
    expect(adminTokenHint('/srv', '/srv/shop')).toBeUndefined();
  });
});
