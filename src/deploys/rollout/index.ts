/**
 * deploys/rollout — progressive deploys, automatic rollback and the `local` actuator:
 *
 *   config.ts          service configs (services.yaml / services/*.yaml)
 *   proxy.ts           WeightedProxy: streaming reverse proxy, smooth weighted round-robin
 *   local-actuator.ts  versions as child processes behind the proxy (the LocalDriver of actions)
 *   rollout.ts         RolloutManager: steps, verification, promote / roll back, rollbacks of deploys made elsewhere
 *   storage.ts         the `rollout_rollouts` table
 *   routes.ts, openapi.ts   REST API
 */
export { loadServices, parseServicesYaml, findService, isLocal, ServiceConfigError } from './config.js';
export type { ServiceConfig } from './config.js';
export { WeightedProxy } from './proxy.js';
export { LocalActuator } from './local-actuator.js';
export type { InstanceStatus, LocalActuatorOptions } from './local-actuator.js';
export { RolloutManager } from './rollout.js';
export type { Rollout, RolloutInput, RolloutStatus, RolloutStep, RollbackResult, RolloutManagerOptions } from './rollout.js';
export { registerRolloutRoutes } from './routes.js';
export { rolloutMigrations } from './storage.js';
export { rolloutOpenApiPaths } from './openapi.js';
