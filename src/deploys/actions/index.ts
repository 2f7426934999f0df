/**
 * deploys/actions — named, parameterised actions (runbooks) defined in YAML:
 *
 *   params.ts       typed parameters and their validation
 *   definitions.ts  the YAML format, the folder loader, built-in `local-*` actions
 *   runners.ts      command / webhook / local runners (never a shell; output capped)
 *   service.ts      ActionService: runs, approvals, audit records, ActionEvents
 *   storage.ts      the `actions_runs` table
 *   routes.ts, openapi.ts   REST API
 */
export { ActionService, INTERRUPTED, SYSTEM_ACTOR } from './service.js';
export type { ActionRun, ActionServiceOptions, Actor, AuditSink, StartOptions } from './service.js';
export { loadActions, parseActionsYaml, BUILTIN_ACTIONS, DEPLOY_PARAMS, ActionFileError } from './definitions.js';
export type { ActionDefinition, ActionCatalog } from './definitions.js';
export { validateParams, parseParamPairs, ActionParamsError } from './params.js';
export type { ParamSpec, ParamValues, ParamIssue } from './params.js';
export type { LocalDriver, RunOutcome } from './runners.js';
export { actionsMigrations } from './storage.js';
export { registerActionRoutes, publicAction } from './routes.js';
export { actionsOpenApiPaths } from './openapi.js';
