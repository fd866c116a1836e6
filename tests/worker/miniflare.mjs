// Runs the built edge worker (edge-worker/build/) in Miniflare, i.e. in the real workerd
// runtime, for the integration tests in tests/tests/worker_*.rs.
//
// Configuration comes as JSON in WORKER_TEST_CONFIG:
//   { "bindings": { "FLAGS_ENV": "test", ... }, "assets": "<dir or null>", "persist": "<dir or null>" }
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
  port: 0,
  cache: true,
};
if (config.persist) {
  options.r2Persist = config.persist;
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
