import { test, expect, screenshot, waitForHydration } from './fixtures';
import type { APIRequestContext, Page } from '@playwright/test';

// Runs after team.spec.ts (alphabetical order, one worker), which created this admin.
const ADMIN = { email: 'ada@example.com', password: 'ada-password-123' };

test.describe.configure({ mode: 'serial' });

async function signIn(page: Page) {
  await page.goto('/sign-in');
  await page.getByLabel('Email').fill(ADMIN.email);
  await page.getByLabel('Password', { exact: true }).fill(ADMIN.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('heading', { name: 'Overview' })).toBeVisible();
}

async function publishableKey(page: Page): Promise<string> {
  await page.goto('/settings/keys');
  const cell = page.getByRole('row').filter({ hasText: 'production' }).filter({ hasText: 'publishable' }).locator('code');
  return (await cell.innerText()).trim();
}

/** What the public evaluation API says about `flag` for a company. */
async function enabledFor(request: APIRequestContext, key: string, flag: string, company: string): Promise<boolean> {
  const response = await request.get(`/features/evaluated?key=${flag}&context.company.id=${company}`, {
    headers: { Authorization: `Bearer ${key}` },
  });
  expect(response.status()).toBe(200);
  return (await response.json()).features[flag].isEnabled;
}

async function share(request: APIRequestContext, key: string, flag: string): Promise<number> {
  let enabled = 0;
  for (let i = 0; i < 200; i++) if (await enabledFor(request, key, flag, `company-${i}`)) enabled++;
  return enabled / 200;
}

/** Fills the access editor, saves, and waits for the new version to show. */
async function saveAccess(page: Page, fields: { mode: string; companies?: string; rollout?: string }) {
  const heading = page.getByRole('heading', { name: /^Access in/ });
  const before = Number((await heading.innerText()).match(/version (\d+)/)![1]);
  await page.getByLabel(fields.mode, { exact: true }).check();
  await page.getByLabel('Companies (ids, one per line)', { exact: true }).fill(fields.companies ?? '');
  await page.getByLabel('Rollout percentage').fill(fields.rollout ?? '100');
  await page.getByRole('button', { name: 'Save access' }).click();
  await expect(heading).toContainText(`version ${before + 1}`);
}

test('a product manager releases a flag through the stages', async ({ page, request }) => {
  await signIn(page);
  const key = await publishableKey(page);
  expect(key).toMatch(/^pub_/);

  // Empty state, then create.
  await page.goto('/flags');
  await waitForHydration(page);
  await expect(page.getByText('No flags yet')).toBeVisible();
  await screenshot(page, '10-flags-empty');
  await page.getByRole('link', { name: 'Create your first flag' }).click();
  await page.getByLabel('Name').fill('New checkout');
  await page.getByLabel(/^Key/).fill('new-checkout');
  await page.getByLabel('Description').fill('The redesigned checkout flow');
  await page.getByRole('button', { name: 'Create flag' }).click();
  await expect(page).toHaveURL(/\/flags\/new-checkout$/);
  await expect(page.getByRole('heading', { name: 'New checkout' })).toBeVisible();
  await waitForHydration(page);
  expect(await enabledFor(request, key, 'new-checkout', 'acme')).toBe(false);

  // In development: one company in production.
  await saveAccess(page, { mode: 'Some', companies: 'acme' });
  expect(await enabledFor(request, key, 'new-checkout', 'acme')).toBe(true);
  expect(await enabledFor(request, key, 'new-checkout', 'globex')).toBe(false);
  await screenshot(page, '11-flag-acme');

  // Internal, then Beta with a 25 % rollout to everyone else.
  await page.getByRole('button', { name: 'Move to Internal' }).click();
  await expect(page.getByText('Current stage: Internal')).toBeVisible();
  await page.getByRole('button', { name: 'Move to Beta' }).click();
  await expect(page.getByText('Current stage: Beta')).toBeVisible();
  await saveAccess(page, { mode: 'Some', companies: 'acme', rollout: '25' });
  const quarter = await share(request, key, 'new-checkout');
  expect(quarter).toBeGreaterThan(0.15);
  expect(quarter).toBeLessThan(0.35);
  expect(await enabledFor(request, key, 'new-checkout', 'acme')).toBe(true);
  await screenshot(page, '12-flag-beta-25');

  // General availability: everyone.
  await page.getByRole('button', { name: 'Move to General availability' }).click();
  await expect(page.getByText('Current stage: General availability')).toBeVisible();
  await saveAccess(page, { mode: 'Everyone' });
  expect(await share(request, key, 'new-checkout')).toBe(1);

  // Roll back to the acme-only version (version 2).
  await page.getByRole('button', { name: 'Roll back to version 2' }).click();
  await expect(page.getByText('version 5')).toBeVisible();
  expect(await enabledFor(request, key, 'new-checkout', 'acme')).toBe(true);
  expect(await enabledFor(request, key, 'new-checkout', 'globex')).toBe(false);
  await screenshot(page, '13-flag-rolled-back');

  // The list shows the stage and the access per environment.
  await page.goto('/flags');
  const row = page.getByRole('row').filter({ hasText: 'new-checkout' });
  await expect(row).toContainText('General availability');
  await expect(row).toContainText('Production: 1 company');
  await screenshot(page, '14-flags-list');

  // The board shows the flag in its stage's column.
  await page.getByRole('link', { name: 'Board' }).click();
  await expect(page.getByRole('region', { name: 'General availability' })).toContainText('New checkout');
  await screenshot(page, '15-flags-board');
});

test('remote config values are validated in place and served through OFREP', async ({ page, request }) => {
  await signIn(page);
  const key = await publishableKey(page);
  await page.goto('/flags/new-checkout');
  await waitForHydration(page);
  await page.getByLabel('Value key').fill('compact');
  const payload = page.getByLabel('Payload (JSON)');
  await payload.fill('{"layout": ');
  await expect(page.getByText('not valid JSON')).toBeVisible();
  await payload.fill('{"layout": "compact"}');
  await expect(page.getByText('not valid JSON')).toHaveCount(0);
  await page.getByLabel('Companies for this value (ids, one per line)').fill('acme');
  await page.getByRole('button', { name: 'Save remote config' }).click();
  await expect(page.getByText('Remote config saved')).toBeVisible();
  await screenshot(page, '16-remote-config');

  const response = await request.post('/ofrep/v1/evaluate/flags/new-checkout', {
    headers: { 'X-API-Key': key },
    data: { context: { company: { id: 'acme' } } },
  });
  expect(response.status()).toBe(200);
  expect(await response.json()).toMatchObject({ value: { layout: 'compact' }, variant: 'compact' });
});

test('a stale save shows a conflict instead of overwriting', async ({ browser }) => {
  const first = await browser.newPage();
  const second = await browser.newPage();
  for (const page of [first, second]) {
    await signIn(page);
    await page.goto('/flags/new-checkout');
    await waitForHydration(page);
  }
  await saveAccess(first, { mode: 'Everyone' });
  await second.getByLabel('Everyone', { exact: true }).check();
  await second.getByRole('button', { name: 'Save access' }).click();
  await expect(second.getByRole('alert')).toContainText('someone else changed new-checkout');
  await first.close();
  await second.close();
});

test.describe('without JavaScript', () => {
  test.use({ javaScriptEnabled: false });

  test('forms still sign in, create a flag and change its access', async ({ page, request }) => {
    await page.goto('/sign-in');
    await page.getByLabel('Email').fill(ADMIN.email);
    await page.getByLabel('Password', { exact: true }).fill(ADMIN.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect(page.getByRole('heading', { name: 'Overview' })).toBeVisible();
    const key = await publishableKey(page);

    await page.goto('/flags/new');
    await page.getByLabel('Name').fill('Plain forms');
    await page.getByLabel(/^Key/).fill('plain-forms');
    await page.getByRole('button', { name: 'Create flag' }).click();
    await expect(page).toHaveURL(/\/flags\/plain-forms$/);

    await page.getByLabel('Some', { exact: true }).check();
    await page.getByLabel('Companies (ids, one per line)', { exact: true }).fill('initech');
    await page.getByRole('button', { name: 'Save access' }).click();
    await expect(page.getByText('version 2')).toBeVisible();
    expect(await enabledFor(request, key, 'plain-forms', 'initech')).toBe(true);

    // A bad rollout is refused with a message next to the field.
    await page.getByLabel('Rollout percentage').fill('250');
    await page.getByRole('button', { name: 'Save access' }).click();
    await expect(page.getByText('enter a percentage from 0 to 100')).toBeVisible();
    await screenshot(page, '17-no-js-validation');
  });
});
