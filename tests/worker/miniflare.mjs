// Runs the built edge worker (edge-worker/build/) in Miniflare, i.e. in the real workerd
// runtime, for the integration tests in tests/tests/worker_*.rs.
//
// Configuration comes as JSON in WORKER_TEST_CONFIG:
//   { "bindings": { "FLAGS_ENV": "test", ... }, "assets": "<dir or null>", "persist": "<dir or null>",
//     "port": <number or null>, "events": <false to leave out the EVENTS Durable Object> }
// `persist` keeps R2 and Durable Object storage on disk, so a restart on the same `port` is a
// restart of the object with its storage (the event-stream fault tests use that).
// It prints `READY <url>` once serving, and exits when its stdin closes (the test dropped it).
import { Miniflare } from 'miniflare';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const build = process.env.EDGE_WORKER_BUILD || resolve(root, 'edge-worker', 'build');
const config = JSON.parse(process.env.WORKER_TEST_CONFIG || '{}');

const options = {
  modules: true,
  scriptPath: resolve(build, 'index.js'),
  modulesRoot: build,
  modulesRules: [{ type: 'CompiledWasm', include: ['**/*.wasm'] }],
  compatibilityDate: '2026-04-26',
  bindings: config.bindings || {},
  r2Buckets: ['FLAGS_BUCKET'],
  host: '127.0.0.1',
  port: config.port || 0,
  cache: true,
};
if (config.events !== false) {
  // The event streams' Durable Object (wrangler.toml's [[durable_objects.bindings]]).
  options.durableObjects = { EVENTS: 'EventHub' };
}
if (config.persist) {
  options.r2Persist = config.persist;
  options.durableObjectsPersist = config.persist;
}
if (config.assets) {
  options.assets = { directory: config.assets, binding: 'ASSETS', routerConfig: { has_user_worker: true } };
}

const mf = new Miniflare(options);
const url = await mf.ready;
process.stdout.write(`READY ${url.href}\n`);

const stop = async () => {
  await mf.dispose().catch(() => {});
  process.exit(0);
};
process.stdin.on('end', stop);
process.stdin.on('close', stop);
process.on('SIGTERM', stop);
process.stdin.resume();
