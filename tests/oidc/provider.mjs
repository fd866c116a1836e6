// A real OpenID provider for the tests: the npm package `oidc-provider` (pinned in package.json)
// on a free loopback port, with test clients, three users and a plain login form (no consent
// step: every client here is first-party). Started by flags-serve/tests/service/oidc.rs.
//
//   REDIRECT_URI  required: the service's callback URL every client registers
//
// oidc-provider 9 warns at start that Node.js 20 (this project's) is not a supported runtime;
// everything used here works on it (its PKCE check needs crypto.hash, in Node.js >= 20.12).
//
// It prints one JSON line on stdout once it listens: {"issuer": "http://127.0.0.1:PORT"}, and
// runs until stdin closes (the test's end) or it is killed.
//
// Users (login form: `login` + `password`, the password is "<login>-password"):
//   alice  Alice Editor <alice@example.com>, groups [editors]
//   bob    Bob Viewer <bob@example.org>, groups [viewers]
//   mallory  Mallory <mallory@elsewhere.test>, no groups (maps to no role)
//
// Clients (secret "flags-client-secret" each). `flags` is honest; each other client gets an ID
// token the provider signed and then altered as its name says, to show what the service refuses:
//   flags-wrong-aud    audience "someone-else"      flags-wrong-nonce  nonce "not-yours"
//   flags-expired      exp and iat an hour past     flags-bad-sig      signed by another key
//                                                                     under the provider's kid

import { createServer } from 'node:http';
import { generateKeyPairSync, sign } from 'node:crypto';
import Provider from 'oidc-provider';

const REDIRECT_URI = process.env.REDIRECT_URI;
if (!REDIRECT_URI) {
  console.error('provider.mjs: set REDIRECT_URI');
  process.exit(2);
}
const SECRET = 'flags-client-secret';
const TAMPERED = ['flags-wrong-aud', 'flags-wrong-nonce', 'flags-expired', 'flags-bad-sig'];

const USERS = {
  alice: { name: 'Alice Editor', email: 'alice@example.com', groups: ['editors'] },
  bob: { name: 'Bob Viewer', email: 'bob@example.org', groups: ['viewers'] },
  mallory: { name: 'Mallory', email: 'mallory@elsewhere.test', groups: [] },
};

function rsaKey(kid) {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { privateKey, jwk: { ...privateKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' } };
}
const KID = 'test-key';
const signing = rsaKey(KID);
const impostor = rsaKey(KID);

const b64url = (data) => Buffer.from(data).toString('base64url');

// Re-signs `idToken` (RS256) with `claims` changed, by `key`.
function resign(idToken, change, key) {
  const [header, payload] = idToken.split('.');
  const claims = { ...JSON.parse(Buffer.from(payload, 'base64url')), ...change };
  const input = `${header}.${b64url(JSON.stringify(claims))}`;
  return `${input}.${b64url(sign('sha256', Buffer.from(input), key))}`;
}

function tamper(clientId, idToken) {
  const now = Math.floor(Date.now() / 1000);
  switch (clientId) {
    case 'flags-wrong-aud': return resign(idToken, { aud: 'someone-else' }, signing.privateKey);
    case 'flags-wrong-nonce': return resign(idToken, { nonce: 'not-yours' }, signing.privateKey);
    case 'flags-expired': return resign(idToken, { iat: now - 7200, exp: now - 3600 }, signing.privateKey);
    case 'flags-bad-sig': return resign(idToken, {}, impostor.privateKey);
    default: return idToken;
  }
}

const server = createServer();
await new Promise((done) => server.listen(0, '127.0.0.1', done));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: ['flags', ...TAMPERED].map((client_id) => ({
    client_id,
    client_secret: SECRET,
    redirect_uris: [REDIRECT_URI],
    grant_types: ['authorization_code'],
    response_types: ['code'],
  })),
  jwks: { keys: [signing.jwk] },
  cookies: { keys: ['test-cookie-key'] },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name'],
    groups: ['groups'],
  },
  // The scopes' claims go into the ID token itself (the service reads no userinfo).
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  features: { devInteractions: { enabled: false } },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(ctx, sub) {
    const user = USERS[sub];
    return user && {
      accountId: sub,
      claims: async () => ({ sub, name: user.name, email: user.email, email_verified: true, groups: user.groups }),
    };
  },
  // First-party clients: every requested scope is granted without a consent page.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId
      || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope(ctx.oidc.params.scope);
    await grant.save();
    return grant;
  },
});

const escapeHtml = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

async function formBody(req) {
  let text = '';
  for await (const chunk of req) text += chunk;
  return new URLSearchParams(text);
}

// The login form, and the altered ID tokens of the tampering clients.
provider.use(async (ctx, next) => {
  const interaction = ctx.path.match(/^\/interaction\/([\w-]+)$/);
  if (interaction && ctx.method === 'GET') {
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    ctx.type = 'html';
    ctx.body = `<!doctype html><title>Test provider: sign in</title><form method=post action="/interaction/${escapeHtml(details.uid)}">`
      + '<input name=login><input name=password type=password><button>Sign in</button></form>';
    return;
  }
  if (interaction && ctx.method === 'POST') {
    const form = await formBody(ctx.req);
    const login = form.get('login');
    if (!USERS[login] || form.get('password') !== `${login}-password`) {
      ctx.status = 401;
      ctx.body = 'wrong login or password';
      return;
    }
    await provider.interactionFinished(ctx.req, ctx.res, { login: { accountId: login } }, { mergeWithLastSubmission: false });
    ctx.respond = false;
    return;
  }
  await next();
  if (ctx.path === '/token' && ctx.body?.id_token) {
    ctx.body = { ...ctx.body, id_token: tamper(ctx.oidc?.client?.clientId, ctx.body.id_token) };
  }
});

server.on('request', provider.callback());
console.log(JSON.stringify({ issuer }));
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
