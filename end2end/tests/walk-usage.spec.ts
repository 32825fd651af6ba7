import { test, expect, confirmAction, publishableKey, screenshot, signIn, waitForHydration } from './fixtures';

test.describe.configure({ mode: 'serial' });

test('the flag page charts who checked a flag and the flags list shows when', async ({ page, request }) => {
  await page.setViewportSize({ width: 1366, height: 900 });
  await signIn(page);
  const key = await publishableKey(page);
  await page.goto('/flags/new');
  await page.getByLabel('Name').fill('Usage demo');
  await page.getByLabel(/^Key/).fill('usage-demo');
  await page.getByRole('button', { name: 'Create flag' }).click();
  await expect(page).toHaveURL(/\/flags\/usage-demo$/);
  await waitForHydration(page);
  // Before anything checked it, the section says how usage arrives.
  await expect(page.locator('#usage')).toContainText('Usage arrives when an application evaluates it');

  await confirmAction(page, 'Move to General availability…', 'Move to General availability');
  await expect(page.getByText('Current stage: General availability')).toBeVisible();
  await page.getByLabel('Everyone', { exact: true }).check();
  await page.getByRole('button', { name: 'Save access' }).click();
  await expect(page.getByRole('heading', { name: /^Access in/ })).toContainText('version 2');

  // Twelve checks through the evaluation API for six companies; the server writes its counts
  // every five seconds.
  for (let i = 0; i < 12; i++) {
    const response = await request.get(`/features/evaluated?key=usage-demo&context.company.id=co-${i % 6}&context.user.id=u-${i}`, {
      headers: { Authorization: `Bearer ${key}` },
    });
    expect(response.status()).toBe(200);
    expect((await response.json()).features['usage-demo'].isEnabled).toBe(true);
  }
  await expect(async () => {
    await page.reload();
    await expect(page.locator('#usage')).toContainText('12 checks in 30 days; 6 companies and 12 users got it', { timeout: 1_000 });
  }).toPass({ timeout: 30_000 });
  await waitForHydration(page);
  const chart = page.locator('#usage figure.usage-chart svg');
  await expect(chart).toHaveAttribute('aria-label', /Checks per day in Production/);
  await expect(page.locator('#usage')).toContainText('Production: last checked');
  await page.locator('#usage').scrollIntoViewIfNeeded();
  await screenshot(page, '40-flag-usage-1366');
  await page.setViewportSize({ width: 390, height: 844 });
  await screenshot(page, '41-flag-usage-390');
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  expect(width, 'no horizontal scrolling at 390 px').toBeLessThanOrEqual(390);
  await page.setViewportSize({ width: 1366, height: 900 });

  await page.goto('/flags?search=usage-demo');
  const row = page.getByRole('row').filter({ hasText: 'usage-demo' });
  await expect(row.getByRole('img', { name: '12 checks in 14 days' })).toBeVisible();
  await expect(row).toContainText('last 20');
  await screenshot(page, '42-flags-sparkline');
});

test('the clean-up page lists a released flag and archives it after confirmation', async ({ page, request }) => {
  await page.setViewportSize({ width: 1366, height: 900 });
  await signIn(page);
  await page.goto('/flags');
  await page.getByRole('navigation', { name: 'View' }).getByRole('link', { name: 'Clean-up' }).click();
  await expect(page).toHaveURL(/\/cleanup$/);
  await waitForHydration(page);
  await expect(page.getByRole('heading', { name: 'Clean-up' })).toBeVisible();
  await expect(page.getByText(/stale after 14 days in the final stage/)).toBeVisible();
  // A team that removes flags as soon as they reach everyone: 0 days.
  await page.getByText('When is a flag stale?').click();
  await page.getByLabel(/^Days in the final stage/).fill('0');
  await page.getByRole('button', { name: 'Save thresholds' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'Saved' })).toBeVisible();
  const row = page.getByRole('row').filter({ hasText: 'usage-demo' });
  await expect(row).toContainText('released: in the final stage with Everyone in production for 0 days');
  await screenshot(page, '43-cleanup-1366');
  await page.setViewportSize({ width: 390, height: 844 });
  await screenshot(page, '44-cleanup-390');
  await page.setViewportSize({ width: 1366, height: 900 });

  // The browser will not send the form until the box is ticked; the server checks it too.
  await row.getByRole('button', { name: 'Archive' }).click();
  await expect(row).toBeVisible();
  await row.getByLabel(/Stop serving usage-demo in every environment/).check();
  await row.getByRole('button', { name: 'Archive' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'Archived usage-demo' })).toBeVisible();
  await expect(page.getByRole('row').filter({ hasText: 'usage-demo' })).toHaveCount(0);
  const key = await publishableKey(page);
  const answer = await request.get('/features/evaluated', { headers: { Authorization: `Bearer ${key}` } });
  expect((await answer.json()).features['usage-demo']).toBeUndefined();

  // Back to the default, for the specs that follow.
  await page.goto('/cleanup');
  await waitForHydration(page);
  await page.getByText('When is a flag stale?').click();
  await page.getByLabel(/^Days in the final stage/).fill('14');
  await page.getByRole('button', { name: 'Save thresholds' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'Saved' })).toBeVisible();
});
