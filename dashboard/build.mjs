// Builds the dashboard demo into the worker's static-assets directory.
//
//   node dashboard/build.mjs [--out DIR]          (default DIR: edge-worker/assets)
//
// Bundles src/main.js (with the OpenFeature SDKs) into DIR/app.js with esbuild, copies index.html
// and style.css, and, when the identity secret is set, mints one signed token per profile in
// users.json with `publisher token` into DIR/demo-users.json. The secret stays in this process's
// environment: the page only ever sees the minted tokens.
//
// Environment:
//   IDENTITY_SECRET   the worker's HMAC secret; without it no demo users are written
//   PUBLISHER_BIN     the publisher binary (default: target/debug/publisher)
//   DEMO_TOKEN_TTL    lifetime of the minted tokens (default: 24h)

import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as esbuild from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..');
const { values: args } = parseArgs({ options: { out: { type: 'string', default: join(root, 'edge-worker', 'assets') } } });
const out = resolve(args.out);

mkdirSync(out, { recursive: true });
await esbuild.build({
  entryPoints: [join(here, 'src', 'main.js')],
  outfile: join(out, 'app.js'),
  bundle: true,
  format: 'esm',
  target: ['es2022'],
  minify: true,
  sourcemap: 'linked',
  legalComments: 'linked',
  logLevel: 'warning',
});
for (const file of ['index.html', 'style.css']) copyFileSync(join(here, file), join(out, file));

const usersFile = join(out, 'demo-users.json');
if (process.env.IDENTITY_SECRET) {
  const publisher = process.env.PUBLISHER_BIN || join(root, 'target', 'debug', 'publisher');
  if (!existsSync(publisher)) {
    console.error(`dashboard: ${publisher} not found: run \`cargo build -p publisher\` or set PUBLISHER_BIN`);
    process.exit(1);
  }
  const ttl = process.env.DEMO_TOKEN_TTL || '24h';
  const profiles = JSON.parse(readFileSync(join(here, 'users.json'), 'utf8'));
  const users = profiles.map(({ sub, name, role, claims = {} }) => {
    const claimArgs = Object.entries(claims).flatMap(([key, value]) => ['--claim-json', `${key}=${JSON.stringify(value)}`]);
    const token = execFileSync(publisher, ['token', '--secret-env', 'IDENTITY_SECRET', '--sub', sub, '--ttl', ttl, ...claimArgs], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    }).trim();
    return { sub, name, role, token };
  });
  writeFileSync(usersFile, `${JSON.stringify(users, null, 2)}\n`);
  console.log(`dashboard: built ${out} with ${users.length} demo users (tokens valid ${ttl})`);
} else {
  rmSync(usersFile, { force: true });
  console.log(`dashboard: built ${out} without demo users (IDENTITY_SECRET is not set)`);
}
