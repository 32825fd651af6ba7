import { ChildProcess, execFileSync, spawn } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { test, expect } from './fixtures';

// Reflag's browser SDK (@reflag/browser-sdk, its UMD bundle as published on npm) running in
// Chromium against Gatehouse: the flags it reports must be the ones /features/evaluated gives for
// the same context, and everything it sends on the way (flag fetch, tracking through /bulk) must
// succeed: the fixtures fail the test on any console error.
//
// The flags live in a Gatehouse of this file's own (the debug build, a fresh SQLite database,
// flags written with `gatehouse import` before it starts), so the shared e2e server keeps the
// empty database the other specs expect. The page comes from the shared server, so every SDK
// call is cross-origin and goes through CORS (preflights included) as on a customer's site.

const ROOT = path.join(__dirname, '..', '..');
const GATEHOUSE = path.join(ROOT, 'target', 'debug', 'gatehouse');
const SDK_BUNDLE = require.resolve('@reflag/browser-sdk'); // "main": dist/reflag-browser-sdk.umd.js

const USER = { id: 'user-ada', name: 'Ada', email: 'ada@example.com' };
const COMPANY = { id: 'acme', name: 'Acme', plan: 'pro' };

// Each flag with what Gatehouse must answer for USER and COMPANY (the rollout's value is
// whatever the hash gives; it is checked against /features/evaluated like every flag).
const EXPECTED: Record<string, boolean | null> = {
  'sdk-everyone': true,
  'sdk-no-one': false,
  'sdk-company-list': true,
  'sdk-other-company': false,
  'sdk-pro-plan': true,
  'sdk-enterprise-segment': false,
  'sdk-pilot-segment': true,
  'sdk-user-email': true,
  'sdk-rollout': null,
  'sdk-remote-config': true,
};

const some = (fields: object) => ({ mode: 'some', companies: [], users: [], segments: [], rules: [], ...fields });
const flag = (key: string, production: object, extra: object = {}) => ({
  key,
  name: key,
  description: 'browser SDK e2e flag',
  stage: 'General availability',
  access: { production },
  ...extra,
});

const DOCUMENT = {
  format: 'gatehouse/1',
  segments: [
    {
      key: 'enterprise-customers',
      name: 'Enterprise customers',
      conditions: [{ kind: 'companyAttribute', attribute: 'plan', operator: 'IS', values: ['enterprise'] }],
    },
    { key: 'pilot-companies', name: 'Pilot companies', conditions: [{ kind: 'companyList', companies: ['acme', 'globex'] }] },
  ],
  flags: [
    flag('sdk-everyone', { mode: 'everyone' }),
    flag('sdk-no-one', { mode: 'noOne' }),
    flag('sdk-company-list', some({ companies: ['acme', 'umbrella'] })),
    flag('sdk-other-company', some({ companies: ['initech'] })),
    flag(
      'sdk-pro-plan',
      some({
        rules: [
          {
            conditions: [{ kind: 'companyAttribute', attribute: 'plan', operator: 'IS', values: ['pro'] }],
            rolloutPercentage: 100,
          },
        ],
      }),
    ),
    flag('sdk-enterprise-segment', some({ segments: ['enterprise-customers'] })),
    flag('sdk-pilot-segment', some({ segments: ['pilot-companies'] })),
    flag(
      'sdk-user-email',
      some({
        rules: [
          {
            conditions: [{ kind: 'userAttribute', attribute: 'email', operator: 'CONTAINS', values: ['@example.com'] }],
            rolloutPercentage: 100,
          },
        ],
      }),
    ),
    flag('sdk-rollout', some({ rules: [{ conditions: [], rolloutPercentage: 50 }] })),
    flag('sdk-remote-config', { mode: 'everyone' }, {
      remoteConfig: {
        production: {
          variants: [
            { key: 'dark', payload: { theme: 'dark', limit: 10 }, companies: ['acme'] },
            { key: 'light', payload: { theme: 'light' }, isDefault: true },
          ],
        },
      },
    }),
  ],
};

let server: ChildProcess | undefined;
let dataDir = '';
let api = '';
let publishableKey = '';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

test.beforeAll(async () => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-browser-sdk-'));
  const databaseUrl = `sqlite://${dataDir}/gatehouse.db`;
  const env = { ...process.env, NO_COLOR: '1', DATABASE_URL: databaseUrl };
  const file = path.join(dataDir, 'flags.json');
  fs.writeFileSync(file, JSON.stringify(DOCUMENT));
  execFileSync(GATEHOUSE, ['import', file], { env, cwd: ROOT });
  const keys = execFileSync(GATEHOUSE, ['keys', 'list'], { env, cwd: ROOT, encoding: 'utf8' });
  const row = keys.split('\n').map((line) => line.split('\t')).find(([e, kind]) => e === 'production' && kind === 'publishable');
  if (!row) throw new Error(`no publishable production key in:\n${keys}`);
  publishableKey = row[2];

  const addr = `127.0.0.1:${await freePort()}`;
  api = `http://${addr}`;
  const log = fs.openSync(path.join(dataDir, 'server.log'), 'w');
  server = spawn(GATEHOUSE, ['serve', '--addr', addr], {
    env: { ...env, LEPTOS_SITE_ROOT: 'target/site' },
    cwd: ROOT,
    stdio: ['ignore', log, log],
  });
  for (let i = 0; ; i++) {
    const ready = await fetch(`${api}/readyz`).then((r) => r.ok, () => false);
    if (ready) break;
    if (i > 300) throw new Error(`the SDK's Gatehouse did not start:\n${fs.readFileSync(path.join(dataDir, 'server.log'), 'utf8')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
});

test.afterAll(async () => {
  if (server && server.exitCode === null) {
    const exited = new Promise((r) => server!.once('exit', r));
    server.kill('SIGTERM');
    await exited;
  }
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
});

/** /features/evaluated for a context, as the SDK's query parameters spell it. */
async function evaluated(request: import('@playwright/test').APIRequestContext, context: Record<string, string>) {
  const query = new URLSearchParams(context).toString();
  const response = await request.get(`${api}/features/evaluated?${query}`, {
    headers: { Authorization: `Bearer ${publishableKey}` },
  });
  expect(response.status()).toBe(200);
  return response.json();
}

test('Reflag browser SDK 1.6.1 gets the flags /features/evaluated gives, cross-origin', async ({ page, request }) => {
  const calls: string[] = [];
  page.on('request', (r) => {
    if (r.url().startsWith(api)) calls.push(`${r.method()} ${new URL(r.url()).pathname}`);
  });
  const failures: string[] = [];
  page.on('response', (r) => {
    if (r.url().startsWith(api) && r.status() >= 400) failures.push(`${r.status()} ${r.request().method()} ${r.url()}`);
  });

  // Any page of the e2e server will do; the SDK's origin is not the API's.
  await page.goto('/healthz');
  await page.addScriptTag({ path: SDK_BUNDLE });

  const fromSdk = await page.evaluate(
    async ({ apiBaseUrl, publishableKey, user, company, keys }) => {
      const { ReflagClient } = (window as any).ReflagBrowserSDK;
      const client = new ReflagClient({
        publishableKey,
        apiBaseUrl,
        user,
        company,
        // Automatic feedback prompts are a Reflag product Gatehouse does not offer; this test
        // counts the SDK's requests, so it leaves the prompt channel (GET /sse/client) closed.
        // The test below opens it with the SDK's default options.
        feedback: { enableAutoFeedback: false },
      });
      await client.initialize();
      const flags: Record<string, { isEnabled: boolean; config: { key?: string; payload?: unknown } }> = {};
      for (const key of keys) {
        const f = client.getFlag(key);
        flags[key] = { isEnabled: f.isEnabled, config: f.config };
      }
      const all = Object.keys(client.getFlags()).sort();
      // Sends what is queued (the user, the company and the checks above) to /bulk.
      await client.stop();
      return { flags, all, state: client.getState() };
    },
    { apiBaseUrl: api, publishableKey, user: USER, company: COMPANY, keys: Object.keys(EXPECTED) },
  );

  const context = {
    'context.company.id': COMPANY.id,
    'context.company.name': COMPANY.name,
    'context.company.plan': COMPANY.plan,
    'context.user.email': USER.email,
    'context.user.id': USER.id,
    'context.user.name': USER.name,
  };
  const answer = await evaluated(request, context);
  expect(fromSdk.state).toBe('stopped');
  expect(fromSdk.all).toEqual(Object.keys(answer.features).sort());
  for (const [key, expected] of Object.entries(EXPECTED)) {
    const served = answer.features[key];
    expect(fromSdk.flags[key].isEnabled, key).toBe(served.isEnabled);
    if (expected !== null) expect(served.isEnabled, key).toBe(expected);
    expect(fromSdk.flags[key].config, key).toEqual(
      served.config ? { key: served.config.key, payload: served.config.payload } : { key: undefined, payload: undefined },
    );
  }
  expect(fromSdk.flags['sdk-remote-config'].config).toEqual({ key: 'dark', payload: { theme: 'dark', limit: 10 } });

  // What the SDK called, and that Gatehouse refused none of it.
  expect(failures).toEqual([]);
  expect([...new Set(calls)].sort()).toEqual(['GET /features/evaluated', 'POST /bulk']);

  // The company the SDK reported through /bulk (with its plan) is now stored: a request that
  // names only the company gets its attributes merged in.
  const stored = await evaluated(request, { 'context.company.id': COMPANY.id });
  expect(stored.remoteContextUsed).toBe(true);
  expect(stored.features['sdk-pro-plan'].isEnabled).toBe(true);
});

// With its default options and a user, browser-sdk 1.6.1 also opens an EventSource on
// `GET <apiBaseUrl>/sse/client?publishableKey=..&reflag-sdk-version=..&context=<JSON>` (notes §7.5)
// for live updates and feedback prompts; Gatehouse serves it (cross-origin) with the same
// flags-updated messages as /sse/server, so the page logs no error.
test('Reflag browser SDK 1.6.1 with its default options (auto feedback on) logs no error', async ({ page }) => {
  await page.goto('/healthz');
  await page.addScriptTag({ path: SDK_BUNDLE });
  await page.evaluate(
    async ({ apiBaseUrl, publishableKey, user, company }) => {
      const { ReflagClient } = (window as any).ReflagBrowserSDK;
      const client = new ReflagClient({ publishableKey, apiBaseUrl, user, company });
      await client.initialize();
      await new Promise((r) => setTimeout(r, 1000));
      await client.stop();
    },
    { apiBaseUrl: api, publishableKey, user: USER, company: COMPANY },
  );
});
