import { test, expect, screenshot, signIn, waitForHydration } from './fixtures';

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
