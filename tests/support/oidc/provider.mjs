// A council's identity provider for the browser tests: oidc-provider (the OpenID Certified
// Node.js implementation, MIT), configured as a council would configure Entra ID for Atlas:
// a public client for the page (authorization code with PKCE, refresh tokens rotated at each
// use, RP-initiated logout), RS256 access tokens for the audience `safeguard-atlas` whose
// claims are laid out as Entra lays them out (app role values in `roles`, the partnership in a
// directory extension claim `extn.partnership`, no `nbf`).
//
// Started by tests/web_sign_in.rs as `node provider.mjs` with PORT, ATLAS_ORIGIN and
// ACCESS_TOKEN_TTL (seconds). Besides the provider's own endpoints it answers, for the test:
//   POST /test/rotate  a new signing key replaces the old one (withdrawn), sessions and refresh
//                      tokens kept: the key rotation an Entra tenant does without notice;
//   GET  /test/state   {"kid": the key signing now, "logouts": sessions ended by the page}.

import { createServer } from 'node:http';
import { generateKeyPairSync, randomUUID } from 'node:crypto';

import Provider from 'oidc-provider';

const port = Number(process.env.PORT);
const atlas = process.env.ATLAS_ORIGIN;
const accessTokenTtl = Number(process.env.ACCESS_TOKEN_TTL || 60);
const issuer = `http://127.0.0.1:${port}`;

/** The people who sign in, with the claims the provider puts in their access tokens. */
const people = {
  alice: { roles: ['Atlas.PartnershipAnalyst', 'Directory.Reader'], 'extn.partnership': ['E10000017'] },
};

function signingKey() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), alg: 'RS256', use: 'sig' };
}

let key = signingKey();
let logouts = 0;

/**
 * The provider's storage, one for every instance of this process, so that sessions, grants and
 * refresh tokens outlive a key rotation (oidc-provider's adapter interface, in memory).
 */
const stored = new Map();
class SharedAdapter {
  constructor(model) { this.model = model; }

  key(id) { return `${this.model}:${id}`; }

  async upsert(id, payload, expiresIn) {
    stored.set(this.key(id), { payload, expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : null });
    if (payload.grantId) {
      const grant = `grant:${payload.grantId}`;
      stored.set(grant, { payload: [...((stored.get(grant) || { payload: [] }).payload), this.key(id)] });
    }
    if (payload.uid) stored.set(`sessionUid:${payload.uid}`, { payload: id });
    if (payload.userCode) stored.set(`userCode:${payload.userCode}`, { payload: id });
  }

  async find(id) {
    const entry = stored.get(this.key(id));
    if (!entry || (entry.expiresAt && entry.expiresAt < Date.now())) return undefined;
    return entry.payload;
  }

  async findByUid(uid) {
    const id = (stored.get(`sessionUid:${uid}`) || {}).payload;
    return id ? this.find(id) : undefined;
  }

  async findByUserCode(userCode) {
    const id = (stored.get(`userCode:${userCode}`) || {}).payload;
    return id ? this.find(id) : undefined;
  }

  async consume(id) {
    const entry = stored.get(this.key(id));
    if (entry) entry.payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) { stored.delete(this.key(id)); }

  async revokeByGrantId(grantId) {
    const grant = `grant:${grantId}`;
    ((stored.get(grant) || { payload: [] }).payload).forEach((key) => stored.delete(key));
    stored.delete(grant);
  }
}

function configuration() {
  return {
    clients: [{
      client_id: 'atlas-web',
      token_endpoint_auth_method: 'none',
      redirect_uris: [`${atlas}/`],
      post_logout_redirect_uris: [`${atlas}/`],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
    }],
    adapter: SharedAdapter,
    jwks: { keys: [key] },
    cookies: { keys: ['atlas-browser-test-cookies'] },
    findAccount: async (_ctx, id) => ({ accountId: id, claims: async () => ({ sub: id }) }),
    features: {
      devInteractions: { enabled: true },
      rpInitiatedLogout: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => 'https://atlas.test',
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({
          scope: 'atlas',
          audience: 'safeguard-atlas',
          accessTokenTTL: accessTokenTtl,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        }),
      },
    },
    extraTokenClaims: async (_ctx, token) => (token.kind === 'AccessToken' ? people[token.accountId] || {} : undefined),
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    rotateRefreshToken: true,
    pkce: { required: () => true },
    ttl: { AccessToken: accessTokenTtl, RefreshToken: 3600, Session: 3600, Grant: 3600, Interaction: 600, AuthorizationCode: 60, IdToken: 3600 },
    clientBasedCORS: (_ctx, origin) => origin === atlas,
  };
}

function start() {
  const provider = new Provider(issuer, configuration());
  provider.on('end_session.success', () => { logouts += 1; });
  // What the provider refused, for the test's log (target/…/oidc-provider.log).
  ['grant.error', 'server_error', 'end_session.error', 'authorization.error'].forEach((event) => {
    provider.on(event, (_ctx, error) => console.error(event, error.name, error.message, error.error_description || '', error.error_detail || ''));
  });
  return provider.callback();
}

let handle = start();

createServer((request, response) => {
  if (request.method === 'POST' && request.url === '/test/rotate') {
    // A new instance with the new key: sessions, grants and refresh tokens live in the shared
    // adapter.
    key = signingKey();
    handle = start();
    response.setHeader('Content-Type', 'application/json');
    response.end(JSON.stringify({ kid: key.kid }));
    return;
  }
  if (request.url === '/test/state') {
    response.setHeader('Content-Type', 'application/json');
    response.end(JSON.stringify({ kid: key.kid, logouts }));
    return;
  }
  handle(request, response);
}).listen(port, '127.0.0.1', () => {
  console.log(`identity provider at ${issuer}`);
});
