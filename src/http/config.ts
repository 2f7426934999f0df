/** The server's configuration lives in config/ (flags > environment > tightloop.yaml > defaults). */
export { serverConfigSchema, type ServerConfig } from '../config/schema.js';

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host);
}
