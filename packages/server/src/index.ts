export { createApp, type AppOptions, type ApiApp } from './app.js';
export { HTTP_STATUS_BY_CODE, httpFailure, errorBody, type HttpFailure } from './http-errors.js';
export { createLogger, type CreateLoggerOptions } from './logger.js';
export { ServerMetrics, LATENCY_BUCKETS_S, type MetricSources } from './metrics.js';
export { NodeServer, startNodeServer, type NodeServerOptions } from './node-server.js';
export { OPENAPI_DOCUMENT } from './openapi.js';
export { KvHttpHandler, type KvHttpOptions } from './routes/kv-http.js';
export { KV_PREFIX, KV_ROUTE, KV_OPERATIONS, keyOf } from './routes/kv-request.js';
export { nativeRouter, type ClusterView } from './routes/native.js';
export {
  SERVER_CONFIG_EXTENSIONS,
  LOG_LEVELS,
  apiSettings,
  logLevel,
  type ApiSettings,
  type LogLevel,
} from './settings.js';
export { checkConfigFile, type CheckConfigOptions } from './check-config.js';
export { serverEditorSchema } from './editor-schema.js';
export { readJsonBody } from './read-json.js';
export { facadeConformanceHost } from './facade-conformance-host.js';
export { nodeOpenApiDocument, FACADES_EXTENSION, type FacadeDocument, type FacadeSummary } from './openapi.js';
