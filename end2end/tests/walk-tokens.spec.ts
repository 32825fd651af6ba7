import { test, expect, screenshot, signIn, waitForHydration, at390, publishableKey } from './fixtures';

test.describe.configure({ mode: 'serial' });

test('a member creates a personal access token, uses it on the management API and revokes it', async ({ page, request }) => {
  await page.setViewportSize({ width: 1366, height: 900 });
  await signIn(page);
  await page.goto('/account');
  await waitForHydration(page);
  await expect(page.getByRole('heading', { name: 'Access tokens' })).toBeVisible();
  await page.getByLabel('Name (what it is for)').fill('laptop');
  await page.getByLabel('Expires in (days, empty: never)').fill('30');
  await page.getByRole('button', { name: 'Create token' }).click();
  const shown = page.getByLabel('New token');
  await expect(shown).toBeVisible();
  const token = await shown.inputValue();
  expect(token).toMatch(/^gth_pat_[A-Za-z0-9]{40}$/);
  await expect(page.getByLabel('Name (what it is for)')).toHaveValue('');
  const row = page.getByRole('row').filter({ hasText: 'laptop' });
  await expect(row).toContainText(token.slice(0, 16));
  await expect(row).not.toContainText(token);
  await screenshot(page, '45-account-tokens');

  const flags = await request.get('/api/v1/flags', { headers: { Authorization: `Bearer ${token}` } });
  expect(flags.status()).toBe(200);
  expect((await flags.json()).total).toBeGreaterThanOrEqual(0);

  await row.getByRole('button', { name: /^Revoke laptop/ }).click();
  await expect(page.getByRole('status').filter({ hasText: 'The token was revoked' })).toBeVisible();
  await expect(page.getByRole('row').filter({ hasText: 'laptop' })).toContainText('revoked');
  const refused = await request.get('/api/v1/flags', { headers: { Authorization: `Bearer ${token}` } });
  expect(refused.status()).toBe(401);
  expect(refused.headers()['content-type']).toBe('application/problem+json');
  expect((await refused.json()).type).toBe('urn:gatehouse:problem:unauthorized');
});

test('an admin creates a service token with a role', async ({ page, request }) => {
  await page.setViewportSize({ width: 390, height: 844 });
  await signIn(page);
  await page.goto('/account');
  await waitForHydration(page);
  await page.getByLabel('Name (what it is for)').fill('dashboard');
  await page.getByLabel('Kind').selectOption('viewer');
  await page.getByRole('button', { name: 'Create token' }).click();
  const token = await page.getByLabel('New token').inputValue();
  expect(token).toMatch(/^gth_svc_/);
  await expect(page.getByRole('row').filter({ hasText: 'dashboard' })).toContainText('Viewer');
  await screenshot(page, '46-account-tokens-390');
  const created = await request.post('/api/v1/flags', {
    headers: { Authorization: `Bearer ${token}` },
    data: { key: 'not-allowed' },
  });
  expect(created.status()).toBe(403);
});

test('an admin names a secret key, copies it, and rotates a publishable key with a grace period', async ({ page, request }) => {
  await signIn(page);
  await page.goto('/settings/keys');
  await waitForHydration(page);
  await page.getByLabel('Environment', { exact: true }).selectOption('development');
  await page.getByRole('textbox', { name: 'Name (what uses it, optional)' }).fill('Billing service');
  await page.getByRole('button', { name: 'Create secret key' }).click();
  const created = page.getByRole('status').filter({ hasText: 'Copy the new secret key now' });
  await expect(created.locator('input')).toHaveValue(/^sec_deve_/);
  await expect(created.getByRole('button', { name: 'Copy the key' })).toBeVisible();
  await expect(page.getByRole('row').filter({ hasText: 'Billing service' })).toContainText('secret');

  const old = await publishableKey(page, 'development');
  await page.goto('/settings/keys');
  await waitForHydration(page);
  const row = page.getByRole('row').filter({ hasText: old });
  await row.getByText('Rotate…').click();
  await row.getByLabel('This key stops working').selectOption('24');
  await row.getByRole('button', { name: 'Rotate the development key' }).click();
  const rotated = page.getByRole('status').filter({ hasText: "new publishable key" });
  await expect(rotated.locator('input')).toHaveValue(/^pub_deve_/);
  const fresh = await rotated.locator('input').inputValue();
  expect(fresh).not.toBe(old);
  await expect(page.getByRole('row').filter({ hasText: old })).toContainText('works until');
  // Both keys answer during the grace period.
  for (const key of [old, fresh]) {
    const answer = await request.get('/features/evaluated', { headers: { Authorization: `Bearer ${key}` } });
    expect(answer.status(), key).toBe(200);
  }
  expect(await publishableKey(page, 'development')).toBe(fresh);
  await at390(page, '46-api-keys-390');
});
