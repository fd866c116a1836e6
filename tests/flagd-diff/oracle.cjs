// The official flagd evaluator (@openfeature/flagd-core, pinned in package.json) as an oracle
// for tests/tests/flagd/flagd_differential.rs. Reads one JSON document on stdin:
//   {"config": "<flagd file text>", "cases": [{"flag": "k", "type": "boolean", "context": {}}]}
// and prints one JSON answer per case, in order: {value, variant, reason, errorCode}.
// Time is frozen (Date.now) so `$flagd.timestamp` matches the Rust side's clock.
'use strict';
const { FlagdCore } = require('@openfeature/flagd-core');

const input = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const nowMs = input.nowMs ?? 1767225600000;
Date.now = () => nowMs;
const quiet = { error() {}, warn() {}, info() {}, debug() {} };
const core = new FlagdCore(undefined, quiet);
let loadError = null;
try {
  core.setConfigurations(input.config);
} catch (e) {
  loadError = String(e && e.message);
}
const out = [];
for (const c of input.cases) {
  if (loadError) {
    out.push({ loadError });
    continue;
  }
  const defaults = { boolean: false, string: '', number: 0, object: {} };
  let r;
  try {
    r = core.resolve(c.type, c.flag, defaults[c.type], c.context);
  } catch (e) {
    r = { reason: 'THROWN', errorCode: String(e && e.message) };
  }
  // No variant (a DEFAULT without defaultVariant, DISABLED, an error) means "the caller's
  // default": reported as a null value, as the Rust side reports it.
  const errored = r.errorCode !== undefined || r.variant === undefined;
  out.push({
    value: errored ? null : (r.value ?? null),
    variant: errored ? null : (r.variant ?? null),
    reason: r.reason,
    errorCode: r.errorCode ?? null,
  });
}
process.stdout.write(JSON.stringify(out));
