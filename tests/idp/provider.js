// Loopback OpenID provider for flyteauth-jupyter's tests (node-oidc-provider 9.13.3).
//
// Started by tests/rig/idp.py. Binds the socket first (IDP_PORT, 0 = any free port), then builds the
// Provider with the real issuer http://<IDP_HOST>:<port> and prints one line
// `IDP_READY <issuer>` on stdout (and writes the issuer to IDP_READY_FILE when set).
//
// Settings (environment, TTLs in whole seconds):
//   IDP_PORT (0)  IDP_HOST (127.0.0.1)  IDP_AT_TTL (3600)  IDP_CC_TTL (600)  IDP_RT_TTL (1209600)
//   IDP_CODE_TTL (60)  IDP_DEVICE_CODE_TTL (600)  IDP_DEVICE_INTERVAL (5)  IDP_SLOW_DOWN (1)
//   IDP_RT_ROTATION (always|never|default)  IDP_AT_FORMAT (opaque|jwt)  IDP_RESOURCE (urn:jupyter:api)
//   IDP_RESOURCE_SCOPES ("api:read api:write")  IDP_USERS ("alice:wonderland,bob:builder")
//   IDP_CLIENTS_FILE (JSON array of client metadata, replaces the built-in clients)
//   IDP_EXTRA_CLIENTS_FILE (JSON array of client metadata, added to the clients above; e.g. the
//   test JupyterHub's confidential client and the kernels' client behind it, tests/hub)
//   IDP_READY_FILE  IDP_DEV_INTERACTIONS=1 (oidc-provider's own dev pages instead of ours)
//   IDP_STATE_DIR (`make demo` only): keep the signing and cookie keys (keys.json) and every grant,
//   token, session and device code (store.json) in this directory, both 0600 in a 0700 directory,
//   so tokens issued before a restart stay valid after it. Unset (the test suite): a fresh
//   in-memory provider per start.
//
// Additions to oidc-provider: `interval` in the device authorization response and a synthesised
// `slow_down` answer (RFC 8628 section 3.5) when a device code is polled too early; the interval for
// that device code then grows by 5 s. All pages are plain HTML with stable ids and no external
// resources.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as querystring from 'node:querystring';

import { Provider, errors } from 'oidc-provider';
import * as deviceCodeGrant from 'oidc-provider/lib/actions/grants/device_code.js';
import * as grantHelpers from 'oidc-provider/lib/helpers/grants.js';

// Passing the in-memory adapter explicitly (with the provider's default clock tolerance, 15 s) avoids
// its start-up warning; if the deep import path moves, the default adapter works too (with a warning).
let MemoryAdapter;
try {
  const { createMemoryAdapter } = await import('oidc-provider/lib/adapters/memory_adapter.js');
  MemoryAdapter = createMemoryAdapter(15);
} catch {
  MemoryAdapter = undefined;
}

const env = process.env;
const int = (name, dflt) => {
  const raw = env[name];
  if (raw === undefined || raw === '') return dflt;
  const value = Number.parseInt(raw, 10);
  if (!Number.isInteger(value) || value < 0) throw new Error(`${name} must be a whole number, got ${raw}`);
  return value;
};

const HOST = env.IDP_HOST || '127.0.0.1';
const PORT = int('IDP_PORT', 0);
const AT_TTL = int('IDP_AT_TTL', 3600);
const CC_TTL = int('IDP_CC_TTL', 600);
const RT_TTL = int('IDP_RT_TTL', 14 * 24 * 3600);
const CODE_TTL = int('IDP_CODE_TTL', 60);
const DEVICE_CODE_TTL = int('IDP_DEVICE_CODE_TTL', 600);
const DEVICE_INTERVAL = int('IDP_DEVICE_INTERVAL', 5);
const SLOW_DOWN = !['0', 'false', 'no', 'off'].includes((env.IDP_SLOW_DOWN || '1').toLowerCase());
const RT_ROTATION = env.IDP_RT_ROTATION || 'always';
const AT_FORMAT = env.IDP_AT_FORMAT || 'opaque';
const RESOURCE = env.IDP_RESOURCE || 'urn:jupyter:api';
// IDP_CLIENT_AUTH_METHODS (space-separated; default: the library's): the client authentication methods
// the token endpoint accepts, advertised as token_endpoint_auth_methods_supported (e.g. only
// "client_secret_post none", with an IDP_CLIENTS_FILE whose clients use those)
const CLIENT_AUTH_METHODS = (env.IDP_CLIENT_AUTH_METHODS || '').split(/\s+/).filter(Boolean);
const RESOURCE_SCOPES = (env.IDP_RESOURCE_SCOPES || 'api:read api:write').split(/\s+/).filter(Boolean);
const DEV_INTERACTIONS = env.IDP_DEV_INTERACTIONS === '1';

if (!['always', 'never', 'default'].includes(RT_ROTATION)) throw new Error(`IDP_RT_ROTATION: ${RT_ROTATION}`);
if (!['opaque', 'jwt'].includes(AT_FORMAT)) throw new Error(`IDP_AT_FORMAT: ${AT_FORMAT}`);

// ---------------------------------------------------------------------------------------- users

const USERS = new Map(
  (env.IDP_USERS || 'alice:wonderland,bob:builder').split(',').filter(Boolean).map((pair) => {
    const i = pair.indexOf(':');
    return [pair.slice(0, i), pair.slice(i + 1)];
  }),
);

function account(sub) {
  return {
    accountId: sub,
    async claims() {
      return {
        sub,
        name: sub.charAt(0).toUpperCase() + sub.slice(1),
        preferred_username: sub,
        email: `${sub}@example.test`,
        email_verified: true,
      };
    },
  };
}

// -------------------------------------------------------------------------------------- clients

// RFC 8252: native clients may use any port on these. /flyteauth/callback is the Jupyter server
// extension's redirect relay (flyteauth_jupyter/server) on a Jupyter server at the root base_url.
const LOOPBACK_REDIRECTS = [
  'http://127.0.0.1/callback', 'http://localhost/callback', 'http://[::1]/callback',
  'http://127.0.0.1/flyteauth/callback', 'http://localhost/flyteauth/callback',
];
const SECRET = 'confidential-secret';

const CLIENTS = env.IDP_CLIENTS_FILE
  ? JSON.parse(fs.readFileSync(env.IDP_CLIENTS_FILE, 'utf8'))
  : [
    {
      client_id: 'jupyter-native',
      client_name: 'Jupyter (native)',
      application_type: 'native',
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code'],
      response_types: ['code'],
      redirect_uris: LOOPBACK_REDIRECTS,
    },
    {
      client_id: 'jupyter-web-public',
      client_name: 'Jupyter (web)',
      application_type: 'web',
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      redirect_uris: ['http://127.0.0.1:8888/callback', 'http://127.0.0.1:8888/flyteauth/callback'],
    },
    {
      client_id: 'jupyter-confidential',
      client_name: 'Jupyter (confidential)',
      client_secret: SECRET,
      application_type: 'native',
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: [
        'client_credentials', 'authorization_code', 'refresh_token',
        'urn:ietf:params:oauth:grant-type:device_code',
      ],
      response_types: ['code'],
      redirect_uris: ['http://127.0.0.1/callback'],
    },
    {
      // A confidential client that signs in people (PKCE and device) and authenticates with
      // client_secret_post: tests/integration/test_confidential_clients_against_idp.py.
      client_id: 'jupyter-confidential-post-native',
      client_name: 'Jupyter (confidential, post, native)',
      client_secret: SECRET,
      application_type: 'native',
      token_endpoint_auth_method: 'client_secret_post',
      grant_types: ['authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code'],
      response_types: ['code'],
      redirect_uris: ['http://127.0.0.1/callback'],
    },
    {
      client_id: 'jupyter-confidential-post',
      client_name: 'Jupyter (confidential, post)',
      client_secret: SECRET,
      token_endpoint_auth_method: 'client_secret_post',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
    },
  ];
if (env.IDP_EXTRA_CLIENTS_FILE) CLIENTS.push(...JSON.parse(fs.readFileSync(env.IDP_EXTRA_CLIENTS_FILE, 'utf8')));

// ----------------------------------------------------------------------------------------- keys

function newSigningKeys() {
  const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
  const ec = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
  return {
    keys: [
      { ...rsa, kid: `rsa-${crypto.randomBytes(4).toString('hex')}`, use: 'sig', alg: 'RS256' },
      { ...ec, kid: `ec-${crypto.randomBytes(4).toString('hex')}`, use: 'sig', alg: 'ES256' },
    ],
  };
}

// ------------------------------------------------------------------ demo state (IDP_STATE_DIR)

const STATE_DIR = env.IDP_STATE_DIR || '';
const CLOCK_TOLERANCE = 15; // seconds, the provider's default (as the memory adapter above)

// Written whole to a temporary file and renamed over the old one: a stop at any moment leaves
// either the old state or the new one. Synchronous, so a SIGINT (handled between event-loop turns)
// never cuts a write short.
function writePrivate(file, data) {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(data), { mode: 0o600 });
  fs.renameSync(tmp, file);
}

function readState(file) {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    if (err.code !== 'ENOENT') console.error(`${file}: unreadable (${err.message}); starting afresh`);
    return undefined;
  }
}

// The signing keys (JWKS) and cookie keys: the saved ones when the state directory has them.
function providerKeys() {
  if (!STATE_DIR) return { jwks: newSigningKeys(), cookieKeys: [crypto.randomBytes(32).toString('base64url')] };
  fs.mkdirSync(STATE_DIR, { recursive: true, mode: 0o700 });
  const file = `${STATE_DIR}/keys.json`;
  const saved = readState(file);
  if (saved && Array.isArray(saved.jwks?.keys) && saved.jwks.keys.length && Array.isArray(saved.cookieKeys)) return saved;
  const keys = { jwks: newSigningKeys(), cookieKeys: [crypto.randomBytes(32).toString('base64url')] };
  writePrivate(file, keys);
  return keys;
}

// An oidc-provider adapter (the memory adapter's contract) whose entries live in one JSON file:
// `model:id` -> { payload, expiresAt (ms, null = no expiry) }. A demo holds a few dozen entries, so
// the secondary look-ups (user code, session uid, grant) scan instead of keeping indexes.
const GRANTABLE = new Set([
  'AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode', 'BackchannelAuthenticationRequest',
  'PreAuthorizedCode',
]);

function createFileAdapter(file) {
  const entries = new Map(Object.entries(readState(file)?.entries || {}));
  const live = (entry) => entry && (entry.expiresAt === null || entry.expiresAt > Date.now());
  const save = () => {
    for (const [name, entry] of entries) if (!live(entry)) entries.delete(name);
    writePrivate(file, { entries: Object.fromEntries(entries) });
  };
  const findBy = (model, field, value) => {
    for (const [name, entry] of entries) {
      if (name.startsWith(`${model}:`) && live(entry) && entry.payload[field] === value) return entry.payload;
    }
    return undefined;
  };
  return (model) => {
    const key = (id) => `${model}:${id}`;
    return {
      async upsert(id, payload, expiresIn) {
        const expiresAt = typeof expiresIn === 'number' ? Date.now() + (expiresIn + CLOCK_TOLERANCE) * 1000 : null;
        entries.set(key(id), { payload, expiresAt });
        save();
      },
      async find(id) {
        const entry = entries.get(key(id));
        return live(entry) ? entry.payload : undefined;
      },
      async findByUid(uid) { return findBy(model, 'uid', uid); },
      async findByUserCode(userCode) { return findBy(model, 'userCode', userCode); },
      async consume(id) {
        const entry = entries.get(key(id));
        if (entry) {
          entry.payload.consumed = Math.floor(Date.now() / 1000);
          save();
        }
      },
      async destroy(id) {
        if (entries.delete(key(id))) save();
      },
      async revokeByGrantId(grantId) {
        let changed = false;
        for (const [name, entry] of entries) {
          if (GRANTABLE.has(name.slice(0, name.indexOf(':'))) && entry.payload.grantId === grantId) {
            entries.delete(name);
            changed = true;
          }
        }
        if (changed) save();
      },
    };
  };
}

const KEYS = providerKeys();
const ADAPTER = STATE_DIR ? createFileAdapter(`${STATE_DIR}/store.json`) : MemoryAdapter;

// ---------------------------------------------------------------------------------------- pages

const esc = (value) => String(value ?? '').replace(/[&<>"']/g, (c) => ({
  '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
}[c]));

function page(title, body) {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${esc(title)}</title>
<style>
body{font-family:system-ui,sans-serif;max-width:26rem;margin:2rem auto;padding:0 1rem;color:#222}
h1{font-size:1.4rem;font-weight:500}
input[type=text],input[type=password]{display:block;width:100%;box-sizing:border-box;padding:.5rem;margin:.3rem 0 .8rem}
button{padding:.5rem 1rem;margin:.2rem .4rem .2rem 0;cursor:pointer}
.error{color:#b00020}
code{font-size:1.6rem}
.muted{color:#666;font-size:.9rem}
</style>
</head>
<body>
${body}
</body>
</html>`;
}

const errorLine = (message, name) => (message
  ? `<p id="error" class="error"${name ? ` data-error="${esc(name)}"` : ''}>${esc(message)}</p>`
  : '');

function loginPage(uid, client, error, username) {
  return page('Sign in', `<h1>Sign in</h1>
<p class="muted">to continue to <strong id="client">${esc(client)}</strong></p>
${errorLine(error, error ? 'InvalidCredentials' : undefined)}
<form id="login-form" method="post" action="/interaction/${esc(uid)}/login" autocomplete="off">
<label for="username">Username</label>
<input type="text" id="username" name="username" value="${esc(username)}" autofocus required>
<label for="password">Password</label>
<input type="password" id="password" name="password" required>
<button type="submit" id="sign-in">Sign in</button>
</form>
<form id="cancel-form" method="post" action="/interaction/${esc(uid)}/abort">
<button type="submit" id="cancel">Cancel</button>
</form>`);
}

function consentPage(uid, client, accountId, scopes) {
  const items = scopes.map((s) => `<li data-scope="${esc(s)}">${esc(s)}</li>`).join('\n');
  return page('Authorize', `<h1>Authorize <span id="client">${esc(client)}</span></h1>
<p class="muted">Signed in as <strong id="account">${esc(accountId)}</strong></p>
<p>This application asks for:</p>
<ul id="scopes">
${items}
</ul>
<form id="consent-form" method="post" action="/interaction/${esc(uid)}/confirm">
<button type="submit" id="allow">Allow</button>
</form>
<form id="deny-form" method="post" action="/interaction/${esc(uid)}/abort">
<button type="submit" id="deny">Deny</button>
</form>`);
}

function errorPage(out) {
  const error = out?.error || 'server_error';
  const description = out?.error_description || '';
  return page('Sign-in error', `<h1>Something went wrong</h1>
<p id="error" class="error" data-error="${esc(error)}"><strong>${esc(error)}</strong>${description ? `: ${esc(description)}` : ''}</p>`);
}

const DEVICE_INPUT_MESSAGES = {
  NoCodeError: 'The code you entered is incorrect. Try again',
  NotFoundError: 'The code you entered is incorrect. Try again',
  ExpiredError: 'The code has expired. Start the sign-in again on your device.',
  AlreadyUsedError: 'This code has already been used.',
  AbortedError: 'The Sign-in request was interrupted',
};

async function userCodeInputSource(ctx, form, out, err) {
  const message = err ? (DEVICE_INPUT_MESSAGES[err.name] || 'There was an error processing your request') : '';
  const input = form.replace('name="user_code"', 'id="user_code" name="user_code"');
  ctx.type = 'html';
  ctx.body = page('Device sign-in', `<h1>Device sign-in</h1>
${err ? errorLine(message, err.name) : '<p>Enter the code shown on your device.</p>'}
${input}
<button type="submit" id="continue" form="op.deviceInputForm">Continue</button>`);
}

async function userCodeConfirmSource(ctx, form, client, deviceInfo, userCode) {
  ctx.type = 'html';
  ctx.body = page('Confirm device', `<h1>Confirm device</h1>
<p><strong id="client">${esc(client.clientName || client.clientId)}</strong> wants to sign in.
Check that your device shows this code:</p>
<p><code id="user_code">${esc(userCode)}</code></p>
${form}
<button type="submit" id="confirm" form="op.deviceConfirmForm">Continue</button>
<button type="submit" id="abort" form="op.deviceConfirmForm" name="abort" value="yes">Abort</button>`);
}

async function successSource(ctx) {
  ctx.type = 'html';
  ctx.body = page('Sign-in complete', `<h1 id="done">Sign-in complete</h1>
<p>You can close this page and return to your device.</p>`);
}

async function logoutSource(ctx, form) {
  ctx.type = 'html';
  ctx.body = page('Sign out', `<h1>Sign out of ${esc(ctx.host)}?</h1>
${form}
<button type="submit" id="logout" form="op.logoutForm" name="logout" value="yes">Sign out</button>
<button type="submit" id="stay" form="op.logoutForm">Stay signed in</button>`);
}

async function postLogoutSuccessSource(ctx) {
  ctx.type = 'html';
  ctx.body = page('Signed out', '<h1 id="done">Signed out</h1>');
}

async function renderError(ctx, out) {
  ctx.type = 'html';
  ctx.body = errorPage(out);
}

// ------------------------------------------------------------------------------ configuration

const requestedScopes = (ctx) => String(ctx.oidc?.params?.scope || '').split(' ').filter(Boolean);
const wantsResource = (ctx) => requestedScopes(ctx).some((s) => RESOURCE_SCOPES.includes(s));

function rotateRefreshToken(ctx) {
  if (RT_ROTATION === 'always') return true;
  if (RT_ROTATION === 'never') return false;
  const { RefreshToken: refreshToken, Client: client } = ctx.oidc.entities;
  if (client.clientAuthMethod === 'none' && !refreshToken.isSenderConstrained()) return true;
  return refreshToken.ttlPercentagePassed() >= 70;
}

const configuration = {
  ...(ADAPTER ? { adapter: ADAPTER } : {}),
  clients: CLIENTS,
  ...(CLIENT_AUTH_METHODS.length ? { clientAuthMethods: CLIENT_AUTH_METHODS } : {}),
  jwks: KEYS.jwks,
  cookies: { keys: KEYS.cookieKeys },
  findAccount: async (ctx, sub) => (USERS.has(sub) ? account(sub) : undefined),
  claims: {
    openid: ['sub'],
    profile: ['name', 'preferred_username'],
    email: ['email', 'email_verified'],
  },
  scopes: ['openid', 'offline_access', 'profile', 'email', ...RESOURCE_SCOPES],
  conformIdTokenClaims: false, // profile/email claims go into the id_token too
  clientBasedCORS: (ctx, origin) => /^http:\/\/(127\.0\.0\.1|localhost|\[::1\])(:\d+)?$/.test(origin),
  pkce: { required: (ctx, client) => client.clientAuthMethod === 'none' },
  rotateRefreshToken,
  renderError,
  ttl: {
    AccessToken: AT_TTL,
    ClientCredentials: CC_TTL,
    RefreshToken: RT_TTL,
    AuthorizationCode: CODE_TTL,
    DeviceCode: DEVICE_CODE_TTL,
    IdToken: 3600,
    Interaction: 3600,
    Session: 14 * 24 * 3600,
    Grant: 14 * 24 * 3600,
  },
  features: {
    devInteractions: { enabled: DEV_INTERACTIONS },
    deviceFlow: {
      enabled: true, userCodeInputSource, userCodeConfirmSource, successSource,
    },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    rpInitiatedLogout: { enabled: true, logoutSource, postLogoutSuccessSource },
    resourceIndicators: {
      enabled: true,
      defaultResource: async (ctx, client, oneOf) => {
        if (oneOf) return oneOf;
        return wantsResource(ctx) ? RESOURCE : undefined;
      },
      useGrantedResource: async () => true,
      getResourceServerInfo: async (ctx, resourceIndicator) => {
        if (resourceIndicator !== RESOURCE) throw new errors.InvalidTarget();
        return {
          scope: RESOURCE_SCOPES.join(' '),
          audience: RESOURCE,
          accessTokenFormat: AT_FORMAT,
          ...(AT_FORMAT === 'jwt' ? { jwt: { sign: { alg: 'RS256' } } } : {}),
        };
      },
    },
  },
};

// ------------------------------------------------------------------ interval and slow_down

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const polls = new Map(); // device_code -> { last: ms, interval: s }

function registerSlowDown(provider) {
  const helpers = Object.fromEntries(
    Object.entries(grantHelpers).map(([name, helper]) => [name, helper.bind(undefined, provider)]),
  );
  const original = deviceCodeGrant.handler.bind(undefined, provider, helpers);
  provider.registerGrantType(DEVICE_GRANT, async (ctx) => {
    const code = String(ctx.oidc.params.device_code || '');
    if (SLOW_DOWN && code) {
      const now = Date.now();
      const seen = polls.get(code);
      if (seen) {
        const early = now - seen.last < seen.interval * 1000 - 200;
        seen.last = now;
        if (early) {
          seen.interval += 5;
          throw new errors.SlowDown(`polling too fast, interval is now ${seen.interval}s`);
        }
      } else {
        polls.set(code, { last: now, interval: DEVICE_INTERVAL });
        if (polls.size > 10000) polls.delete(polls.keys().next().value);
      }
    }
    return original(ctx);
  }, new Set([...deviceCodeGrant.parameters, 'resource']), new Set(['resource']));
}

function addInterval(provider) {
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.method === 'POST' && ctx.path === '/device/auth' && ctx.status === 200
        && ctx.body && typeof ctx.body === 'object') {
      ctx.body = { ...ctx.body, interval: DEVICE_INTERVAL };
      // The rig's feed of issued user codes (see /rig/device-codes below); never the device_code.
      ISSUED_USER_CODES.push({
        user_code: ctx.body.user_code,
        verification_uri: ctx.body.verification_uri,
        verification_uri_complete: ctx.body.verification_uri_complete,
        issued_at: Date.now() / 1000,
      });
      if (ISSUED_USER_CODES.length > 200) ISSUED_USER_CODES.shift();
    }
  });
}

// Test-rig only: the user codes this provider issued, oldest first, so a "person" (the device
// approver in tests/rig/user.py) can act on a code a kernel shows without scraping the kernel's
// output. It lists what a user sees on the screen (user code, verification URL), no secret.
const ISSUED_USER_CODES = [];
function rigDeviceCodes(res) {
  res.statusCode = 200;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Cache-Control', 'no-store');
  res.end(JSON.stringify({ issued: ISSUED_USER_CODES }));
}

// Test-rig only: what happened at the token endpoint, counted (GET /rig/grants), so a test can say
// "exactly one refresh per expiry" and "the grant was never revoked" from the provider's side;
// `requests` counts every request the provider answered (the /rig/ feeds excepted), so a test can
// say "no request reached the IdP".
const GRANT_STATS = { success: {}, error: {}, revoked: 0, requests: 0 };
function countGrants(provider) {
  provider.on('grant.success', (ctx) => {
    const type = String(ctx.oidc?.params?.grant_type || 'unknown');
    GRANT_STATS.success[type] = (GRANT_STATS.success[type] || 0) + 1;
  });
  provider.on('grant.error', (ctx, err) => {
    const code = String(err?.error || 'unknown');
    GRANT_STATS.error[code] = (GRANT_STATS.error[code] || 0) + 1;
  });
  provider.on('grant.revoked', () => { GRANT_STATS.revoked += 1; });
}
function rigGrants(res) {
  res.statusCode = 200;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Cache-Control', 'no-store');
  res.end(JSON.stringify(GRANT_STATS));
}

// Test-rig only: with IDP_SECRETS_FILE set, every secret this provider hands out (tokens, device
// codes, authorization codes) is appended to that file, one `kind<TAB>value` a line, so the suite can check at its
// end that none of them reached a log record (tests/rig/secret_log.py). Never set outside tests.
const SECRETS_FILE = env.IDP_SECRETS_FILE || '';
function recordSecret(kind, value) {
  if (SECRETS_FILE && typeof value === 'string' && value.length >= 8) {
    try { fs.appendFileSync(SECRETS_FILE, `${kind}\t${value}\n`, { mode: 0o600 }); } catch (err) { /* best effort */ }
  }
}
function recordSecrets(provider) {
  if (!SECRETS_FILE) return;
  provider.use(async (ctx, next) => {
    await next();
    const body = ctx.body;
    if (ctx.method === 'POST' && body && typeof body === 'object' && !Buffer.isBuffer(body)) {
      for (const key of ['access_token', 'refresh_token', 'id_token', 'device_code']) recordSecret(key, body[key]);
    }
    const location = ctx.response.get('location');
    if (location && location.includes('code=')) {
      try { recordSecret('code', new URL(location).searchParams.get('code')); } catch (err) { /* not a URL */ }
    }
  });
}

// Test-rig only: the method, path (no query) and header *names* of every request this provider
// received, oldest first (GET /rig/requests), so a test can say "the identity provider never saw a
// proxy-authorization header" from the provider's side. Values are never kept: they may be secrets.
const SEEN_REQUESTS = [];
let SEEN_SEQ = 0;
function recordRequest(req) {
  SEEN_SEQ += 1;
  SEEN_REQUESTS.push({
    seq: SEEN_SEQ, method: req.method, path: String(req.url || '').split('?')[0], headers: Object.keys(req.headers),
  });
  if (SEEN_REQUESTS.length > 5000) SEEN_REQUESTS.shift();
}
function rigRequests(res) {
  res.statusCode = 200;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Cache-Control', 'no-store');
  res.end(JSON.stringify({ last: SEEN_SEQ, requests: SEEN_REQUESTS }));
}

// --------------------------------------------------------------------- interaction routes

function readForm(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > 64 * 1024) { reject(new Error('body too large')); req.destroy(); return; }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(querystring.parse(Buffer.concat(chunks).toString('utf8'))));
    req.on('error', reject);
  });
}

function send(res, status, html) {
  res.statusCode = status;
  res.setHeader('Content-Type', 'text/html; charset=utf-8');
  res.setHeader('Cache-Control', 'no-store');
  res.end(html);
}

async function interactions(provider, req, res) {
  const url = new URL(req.url, provider.issuer);
  const match = url.pathname.match(/^\/interaction\/([^/]+)(?:\/(login|confirm|abort))?$/);
  if (!match) return send(res, 404, errorPage({ error: 'not_found', error_description: 'no such page' }));
  const [, uid, action] = match;
  let details;
  try {
    details = await provider.interactionDetails(req, res);
  } catch (err) {
    return send(res, 400, errorPage({ error: err.error || 'invalid_request', error_description: err.error_description || err.message }));
  }
  if (details.uid !== uid) {
    return send(res, 400, errorPage({ error: 'invalid_request', error_description: 'interaction mismatch' }));
  }
  const { prompt, params } = details;
  const client = await provider.Client.find(params.client_id);
  const clientName = client?.clientName || params.client_id;

  if (!action) {
    if (req.method !== 'GET') return send(res, 405, errorPage({ error: 'invalid_request', error_description: 'method not allowed' }));
    if (prompt.name === 'login') return send(res, 200, loginPage(uid, clientName));
    if (prompt.name === 'consent') {
      const scopes = String(params.scope || '').split(' ').filter(Boolean);
      return send(res, 200, consentPage(uid, clientName, details.session?.accountId, scopes));
    }
    return send(res, 400, errorPage({ error: 'invalid_request', error_description: `unknown prompt ${prompt.name}` }));
  }
  if (req.method !== 'POST') return send(res, 405, errorPage({ error: 'invalid_request', error_description: 'method not allowed' }));
  const form = await readForm(req);

  if (action === 'login') {
    if (prompt.name !== 'login') return send(res, 400, errorPage({ error: 'invalid_request', error_description: 'not a login step' }));
    const username = String(form.username || '');
    if (!USERS.has(username) || USERS.get(username) !== String(form.password || '')) {
      return send(res, 200, loginPage(uid, clientName, 'Invalid username or password', username));
    }
    return provider.interactionFinished(req, res, { login: { accountId: username } }, { mergeWithLastSubmission: false });
  }
  if (action === 'confirm') {
    if (prompt.name !== 'consent') return send(res, 400, errorPage({ error: 'invalid_request', error_description: 'not a consent step' }));
    const { accountId } = details.session;
    let grant = details.grantId ? await provider.Grant.find(details.grantId) : undefined;
    if (!grant) grant = new provider.Grant({ accountId, clientId: params.client_id });
    const d = prompt.details || {};
    if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
    if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
    if (d.missingResourceScopes) {
      for (const [indicator, scopes] of Object.entries(d.missingResourceScopes)) {
        grant.addResourceScope(indicator, scopes.join(' '));
      }
    }
    const grantId = await grant.save();
    const consent = details.grantId ? {} : { grantId };
    return provider.interactionFinished(req, res, { consent }, { mergeWithLastSubmission: true });
  }
  // abort (Deny on the consent page, Cancel on the login page)
  return provider.interactionFinished(req, res, {
    error: 'access_denied', error_description: 'End-User aborted interaction',
  }, { mergeWithLastSubmission: false });
}

// ------------------------------------------------------------------------------------ start

let provider;
let callback;
const server = http.createServer((req, res) => {
  if (!provider) return send(res, 503, errorPage({ error: 'temporarily_unavailable', error_description: 'starting' }));
  if (req.method === 'GET' && req.url === '/rig/device-codes') return rigDeviceCodes(res);
  if (req.method === 'GET' && req.url === '/rig/grants') return rigGrants(res);
  if (req.method === 'GET' && req.url === '/rig/requests') return rigRequests(res);
  GRANT_STATS.requests += 1;
  if (!String(req.url || '').startsWith('/rig/')) recordRequest(req);
  if (!DEV_INTERACTIONS && req.url.startsWith('/interaction/')) {
    return interactions(provider, req, res).catch((err) => {
      console.error('interaction error:', err?.message || err);
      if (!res.headersSent) send(res, 500, errorPage({ error: 'server_error', error_description: 'interaction failed' }));
    });
  }
  return callback(req, res);
});

server.listen(PORT, HOST, () => {
  const { port } = server.address();
  const issuer = `http://${HOST.includes(':') ? `[${HOST}]` : HOST}:${port}`;
  provider = new Provider(issuer, configuration);
  provider.proxy = false;
  registerSlowDown(provider);
  addInterval(provider);
  countGrants(provider);
  recordSecrets(provider);
  provider.on('server_error', (ctx, err) => console.error('server_error:', err?.message || err));
  callback = provider.callback();
  if (env.IDP_READY_FILE) fs.writeFileSync(env.IDP_READY_FILE, `${issuer}\n`);
  process.stdout.write(`IDP_READY ${issuer}\n`);
});

const stop = () => { server.close(); server.closeAllConnections?.(); process.exit(0); };
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
