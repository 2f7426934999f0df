/**
 * auth/ — users' API tokens and the first-start admin bootstrap; later roles and OIDC.
 *
 * Tokens look like `tl_<43 base62 chars>`; only their SHA-256 is stored. `verifyToken` is the
 * API hot path: it caches successes for a few seconds per database handle, and `revokeToken`
 * on the same handle clears the entry immediately. With several nodes, a revocation made on
 * another node takes effect here within the cache TTL.
 *
 * `users.ts` creates, lists and deletes users and lists tokens for the API; `routes.ts` is that
 * REST API (/api/users, /api/tokens), registered by src/http/server.ts.
 */
export { createToken, verifyToken, revokeToken, clearTokenCache, DEFAULT_SCOPES } from './tokens.js';
export type { CreateTokenInput, CreatedToken } from './tokens.js';
export type { VerifiedToken } from './verification-cache.js';
export { VERIFICATION_CACHE_TTL_MS } from './verification-cache.js';
export { adminTokenHint, ensureAdmin, ADMIN_TOKEN_FILE, ADMIN_USER_NAME } from './admin.js';
export type { EnsureAdminResult } from './admin.js';
export { TOKEN_PREFIX } from './token-format.js';
export { USER_NAME_PATTERN, createUser, deleteUser, findUser, getToken, listTokens, listUsers, validateUserName } from './users.js';
export type { CreatedUser, TokenInfo, UserInfo } from './users.js';
export { registerAuthRoutes } from './routes.js';
export type { AuthAuditSink, AuthRoutesOptions } from './routes.js';
export { authOpenApiPaths } from './openapi.js';
export type { Role } from '../state/index.js';
