// The wasm half of `cargo xtask bench-wasm`: loads the wasm-bindgen (nodejs target) build of
// this crate and times each workload in V8 with the same protocol as src/main.rs (grow the
// iteration count until one sample takes 20 ms, then the median of 11 samples), printing one
// JSON line per workload: {"name", "ns_per_iter", "checksum"}.
//
// Usage: node benches/wasm/run.mjs DIR   (DIR holds wasm_bench.js from wasm-bindgen)
import { createRequire } from "node:module";
import path from "node:path";

const SAMPLE_NS = 20_000_000n;
const SAMPLES = 11;
const WORKLOADS = ["evaluate_all", "decode", "gunzip_decode"];

const dir = process.argv[2];
if (!dir) {
  console.error("usage: node run.mjs DIR");
  process.exit(2);
}
const require = createRequire(import.meta.url);
const { Workloads } = require(path.resolve(dir, "wasm_bench.js"));
const workloads = Workloads.new();
if (!workloads) {
  console.error("error: the benchmark fixtures do not load");
  process.exit(1);
}

const time = (work) => {
  const started = process.hrtime.bigint();
  work();
  return process.hrtime.bigint() - started;
};

for (const name of WORKLOADS) {
  const run = (iterations) => workloads[name](iterations);
  const checksum = run(1);
  let iterations = 1;
  while (time(() => run(iterations)) < SAMPLE_NS && iterations < 1 << 24) {
    iterations *= 2;
  }
  const samples = [];
  for (let i = 0; i < SAMPLES; i++) {
    samples.push(Number(time(() => run(iterations))) / iterations);
  }
  samples.sort((a, b) => a - b);
  console.log(
    JSON.stringify({ name, ns_per_iter: samples[SAMPLES >> 1], checksum }),
  );
}
