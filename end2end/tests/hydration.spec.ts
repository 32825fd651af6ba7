import { test, expect, screenshot, waitForHydration } from './fixtures';

test('the sign-in page is rendered on the server and hydrated in the browser', async ({ page, request }) => {
  // Server-side rendering: the form is in the HTML before any script runs.
  const html = await (await request.get('/sign-in')).text();
  expect(html).toContain('<form');
  expect(html).toContain('data-hydrated="false"');

  await page.goto('/');
  await expect(page).toHaveURL(/\/sign-in$/);
  await waitForHydration(page);

  // The show/hide toggle only works once the bundle runs.
  const password = page.getByLabel('Password', { exact: true });
  await expect(password).toHaveAttribute('type', 'password');
  await page.getByRole('button', { name: 'Show' }).click();
  await expect(password).toHaveAttribute('type', 'text');
  await expect(page.getByRole('button', { name: 'Hide' })).toBeVisible();
  await screenshot(page, '01-sign-in');
});

test('health and readiness answer on a fresh SQLite database', async ({ request }) => {
  expect((await request.get('/healthz')).status()).toBe(200);
  const ready = await request.get('/readyz');
  expect(ready.status()).toBe(200);
  expect(await ready.json()).toMatchObject({ status: 'ready', database: 'sqlite' });
});
