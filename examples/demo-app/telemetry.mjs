// telemetry.mjs - the OpenTelemetry SDK set up for one demo service: traces,
// metrics and logs, exported over OTLP/HTTP (protobuf) to telkit's otlp-recv
// (OTEL_EXPORTER_OTLP_ENDPOINT, default http://127.0.0.1:4318).
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const api = require('@opentelemetry/api');
const apiLogs = require('@opentelemetry/api-logs');
const { AsyncLocalStorageContextManager } = require('@opentelemetry/context-async-hooks');
const { W3CTraceContextPropagator } = require('@opentelemetry/core');
const { resourceFromAttributes } = require('@opentelemetry/resources');
const { BasicTracerProvider, BatchSpanProcessor } = require('@opentelemetry/sdk-trace-base');
const { MeterProvider, PeriodicExportingMetricReader } = require('@opentelemetry/sdk-metrics');
const { LoggerProvider, BatchLogRecordProcessor } = require('@opentelemetry/sdk-logs');
const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-proto');
const { OTLPMetricExporter } = require('@opentelemetry/exporter-metrics-otlp-proto');
const { OTLPLogExporter } = require('@opentelemetry/exporter-logs-otlp-proto');

export { api, apiLogs };

// startTelemetry(serviceName): installs the global providers; returns
// { tracer, meter, logger, shutdown }. shutdown() flushes everything.
export function startTelemetry(serviceName) {
  const base = (process.env.OTEL_EXPORTER_OTLP_ENDPOINT || 'http://127.0.0.1:4318').replace(/\/$/, '');
  const resource = resourceFromAttributes({
    'service.name': serviceName,
    'service.namespace': 'telkit-demo',
    'service.version': '1.0.0',
    'deployment.environment.name': 'demo',
    'service.instance.id': `${serviceName}-${process.pid}`,
  });
  api.context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  api.propagation.setGlobalPropagator(new W3CTraceContextPropagator());

  const tracerProvider = new BasicTracerProvider({
    resource,
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: `${base}/v1/traces` }),
      { scheduledDelayMillis: 1000 })],
  });
  api.trace.setGlobalTracerProvider(tracerProvider);

  const meterProvider = new MeterProvider({
    resource,
    readers: [new PeriodicExportingMetricReader({
      exporter: new OTLPMetricExporter({ url: `${base}/v1/metrics` }),
      exportIntervalMillis: 5000,
    })],
  });
  api.metrics.setGlobalMeterProvider(meterProvider);

  const loggerProvider = new LoggerProvider({
    resource,
    processors: [new BatchLogRecordProcessor({
      exporter: new OTLPLogExporter({ url: `${base}/v1/logs` }), scheduledDelayMillis: 1000,
    })],
  });
  apiLogs.logs.setGlobalLoggerProvider(loggerProvider);

  return {
    tracer: api.trace.getTracer('telkit-demo'),
    meter: api.metrics.getMeter('telkit-demo'),
    logger: apiLogs.logs.getLogger('telkit-demo'),
    async shutdown() {
      await Promise.allSettled([tracerProvider.shutdown(), meterProvider.shutdown(), loggerProvider.shutdown()]);
    },
  };
}
