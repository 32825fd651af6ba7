import { test, expect, confirmAction, screenshot, waitForHydration } from './fixtures';

// Runs after team.spec.ts and walk-flags.spec.ts (alphabetical order, one worker): the admin
// exists and so does the flag new-checkout, targeted at acme in production.
const ADMIN = { email: 'ada@example.com', password: 'ada-password-123' };

test('an admin adds a custom stage, reorders it, and a flag moves into it', async ({ page, request }) => {
  await page.goto('/sign-in');
  await page.getByLabel('Email').fill(ADMIN.email);
  await page.getByLabel('Password', { exact: true }).fill(ADMIN.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('heading', { name: 'Overview' })).toBeVisible();

  await page.goto('/settings/stages');
  await waitForHydration(page);
  await page.getByLabel('Name', { exact: true }).fill('Dogfood');
  await page.getByRole('button', { name: 'Add stage' }).click();
  const names = page.locator('table.stage-list tbody tr');
  await expect(names.last()).toContainText('Dogfood');

  // Move it up once: it now comes before General availability.
  await page.getByRole('button', { name: 'Move Dogfood up' }).click();
  await expect(names.nth(3)).toContainText('Dogfood');
  await expect(names.nth(4)).toContainText('General availability');
  await screenshot(page, '20-stages');

  // The flag can move into it; access stays as it was (the stage has no defaults).
  await page.goto('/flags/new-checkout');
  await waitForHydration(page);
  await confirmAction(page, 'Move to Dogfood…', 'Move to Dogfood', 'only its stage changes');
  await expect(page.getByText('Current stage: Dogfood')).toBeVisible();
  await page.goto('/settings/keys');
  const key = (
    await page.getByRole('row').filter({ hasText: 'production' }).filter({ hasText: 'publishable' }).locator('code').innerText()
  ).trim();
  const response = await request.get('/features/evaluated?key=new-checkout&context.company.id=acme', {
    headers: { Authorization: `Bearer ${key}` },
  });
  expect((await response.json()).features['new-checkout'].isEnabled).toBe(true);

  // Both changes are in the audit log.
  await page.goto('/audit');
  await expect(page.getByText('stage.created').first()).toBeVisible();
  await expect(page.getByText('stage.reordered').first()).toBeVisible();
  await expect(page.getByText('flag.stage_changed').first()).toBeVisible();
  await screenshot(page, '21-audit-after-stages');

  // The environment switcher in the top bar keeps the page and changes its environment.
  await page.goto('/flags/new-checkout');
  await waitForHydration(page);
  await page.getByLabel('Working environment').selectOption('staging');
  await page.getByRole('button', { name: 'Switch' }).click();
  await expect(page).toHaveURL(/\/flags\/new-checkout\?env=staging$/);
  await expect(page.getByRole('heading', { name: /^Access in Staging/ })).toBeVisible();
  // The choice sticks for the session: a page opened without ?env= shows Staging too, and the
  // switcher says so; only another switch goes back.
  await page.goto('/flags/new-checkout');
  await expect(page.getByRole('heading', { name: /^Access in Staging/ })).toBeVisible();
  await expect(page.getByLabel('Working environment')).toHaveValue('staging');
  await page.goto('/companies');
  await expect(page.getByLabel('Working environment')).toHaveValue('staging');
  await page.goto('/flags/new-checkout?env=production');
  await page.goto('/flags/new-checkout');
  await expect(page.getByRole('heading', { name: /^Access in Production/ })).toBeVisible();
});
