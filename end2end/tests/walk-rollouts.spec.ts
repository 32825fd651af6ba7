import { test, expect, publishableKey, screenshot, signIn, waitForHydration } from './fixtures';
import type { APIRequestContext } from '@playwright/test';

test.describe.configure({ mode: 'serial' });

async function enabledFor(request: APIRequestContext, key: string, flag: string): Promise<boolean> {
  const response = await request.get(`/features/evaluated?key=${flag}&context.company.id=acme`, {
    headers: { Authorization: `Bearer ${key}` },
  });
  expect(response.status()).toBe(200);
  return (await response.json()).features[flag].isEnabled;
}

/** `datetime-local` text for `ms` from now, in UTC (the admin app's times are UTC). */
function utcFromNow(ms: number): string {
  return new Date(Date.now() + ms).toISOString().slice(0, 19);
}

test('a product manager schedules an access change and it applies on time', async ({ page, request }) => {
  await signIn(page);
  const key = await publishableKey(page);
  await page.goto('/flags/new');
  await page.getByLabel('Name').fill('Spring sale');
  await page.getByLabel(/^Key/).fill('spring-sale');
  await page.getByRole('button', { name: 'Create flag' }).click();
  await expect(page).toHaveURL(/\/flags\/spring-sale$/);
  await waitForHydration(page);
  await expect(page.getByText('Nothing is scheduled.')).toBeVisible();

  // Everyone in production, eight seconds from now.
  await page.getByLabel('Everyone', { exact: true }).check();
  await page.getByLabel('Apply at (UTC, optional)').first().fill(utcFromNow(8_000));
  await page.getByRole('button', { name: 'Save access' }).click();
  await expect(page.getByRole('status').filter({ hasText: /^Scheduled for/ })).toBeVisible();
  const table = page.locator('table.scheduled');
  await expect(table.getByRole('row').filter({ hasText: 'Access in Production → Everyone' })).toContainText('waiting');
  // The form shows what is stored, which has not changed yet.
  await expect(page.getByRole('heading', { name: /^Access in/ })).toContainText('version 1');
  expect(await enabledFor(request, key, 'spring-sale')).toBe(false);

  // A stage move scheduled for tomorrow, then cancelled.
  await page.getByLabel('Change', { exact: true }).selectOption({ label: 'Move to Internal' });
  await page.getByLabel('At (UTC)').fill(utcFromNow(24 * 3600 * 1000));
  await page.getByRole('button', { name: 'Schedule', exact: true }).click();
  await expect(table.getByRole('row').filter({ hasText: 'Move to Internal' })).toContainText('waiting');
  await screenshot(page, '30-flag-scheduled');
  await page.getByRole('button', { name: /^Cancel the change due/ }).last().click();
  await expect(page.getByRole('status').filter({ hasText: 'Cancelled' })).toBeVisible();
  await expect(table.getByRole('row').filter({ hasText: 'Move to Internal' })).toContainText('cancelled');

  // The overview lists what waits.
  await page.goto('/');
  await expect(page.getByRole('row').filter({ hasText: 'spring-sale' })).toContainText('Access in Production → Everyone');

  // The scheduler applies it within seconds of its time.
  await expect.poll(() => enabledFor(request, key, 'spring-sale'), { timeout: 20_000, intervals: [500] }).toBe(true);
  await page.goto('/flags/spring-sale');
  await waitForHydration(page);
  await expect(page.getByRole('heading', { name: /^Access in/ })).toContainText('version 2');
  await expect(table.getByRole('row').filter({ hasText: 'Access in Production → Everyone' })).toContainText('applied');
  await expect(table.getByRole('row').filter({ hasText: 'Access in Production → Everyone' })).toContainText('ada@example.com');
  await screenshot(page, '31-flag-schedule-applied');
});

test('an admin defines a plan template and a product manager runs a flag through it', async ({ page, request }) => {
  await signIn(page);
  const key = await publishableKey(page);
  await page.goto('/settings/plans');
  await waitForHydration(page);
  await expect(page.getByText('No plan templates yet.')).toBeVisible();
  await page.getByLabel('Template name').fill('Standard rollout');
  await page.getByLabel('Milestone 1 name').fill('Internal');
  await page.getByLabel('Milestone 1 companies').fill('acme');
  await page.getByLabel('Milestone 1 stage').selectOption('Internal');
  await page.getByLabel('Milestone 2 name').fill('Half of companies');
  await page.getByLabel('Milestone 2 companies').fill('acme');
  await page.getByLabel('Milestone 2 percentage').fill('50');
  await page.getByLabel('Milestone 2 stage').selectOption('Beta');
  await page.getByLabel('Milestone 3 name').fill('Everyone');
  await page.getByLabel('Milestone 3 everyone').check();
  await page.getByLabel('Milestone 3 stage').selectOption('General availability');
  await page.getByRole('button', { name: 'Save template' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'Template saved' })).toBeVisible();
  await expect(page.getByRole('heading', { name: 'Standard rollout' })).toBeVisible();
  await screenshot(page, '32-plan-templates');

  await page.goto('/flags/new');
  await page.getByLabel('Name').fill('Smart search');
  await page.getByLabel(/^Key/).fill('smart-search');
  await page.getByRole('button', { name: 'Create flag' }).click();
  await expect(page).toHaveURL(/\/flags\/smart-search$/);
  await waitForHydration(page);
  await page.getByLabel('Plan template').selectOption({ index: 0 });
  await page.getByRole('button', { name: 'Start plan' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'Plan started' })).toBeVisible();
  const plan = page.locator('#plan');
  await expect(plan).toContainText('Standard rollout · step 1 of 3');
  await expect(page.getByRole('heading', { name: /^Access in/ })).toContainText('version 2');
  expect(await enabledFor(request, key, 'smart-search')).toBe(true); // acme

  await page.getByRole('button', { name: 'Advance to Half of companies' }).click();
  await expect(plan).toContainText('step 2 of 3');
  await expect(page.getByRole('status').filter({ hasText: 'Advanced' })).toBeVisible();
  await screenshot(page, '33-flag-plan');
  await page.getByRole('button', { name: 'Pause plan' }).click();
  await expect(plan).toContainText('Paused');
  await page.getByRole('button', { name: 'Resume plan' }).click();
  await page.getByRole('button', { name: 'Advance to Everyone' }).click();
  await expect(plan).toContainText('Last plan: Standard rollout (completed, at Everyone).');
  await expect(page.getByRole('heading', { name: /^Access in/ })).toContainText('version 4');

  // A new run of the plan shows its progress on the board.
  await page.getByLabel('Plan template').selectOption({ index: 0 });
  await page.getByRole('button', { name: 'Start plan' }).click();
  await expect(plan).toContainText('step 1 of 3');
  await page.goto('/flags');
  await page.getByRole('link', { name: 'Board' }).click();
  await expect(page.getByRole('region', { name: 'Internal' })).toContainText('Plan: Standard rollout 1/3 in Production');
  await screenshot(page, '34-board-plan');
});

const EDITOR = { email: 'eddie@example.com', password: 'eddie-password-123' };

test('an editor files a change request in a protected environment and an admin approves it', async ({ page }) => {
  // Staging (not production, which the later walks change directly) needs one approval.
  await signIn(page);
  await page.goto('/settings/keys');
  await waitForHydration(page);
  await page.getByLabel('Staging: approvals required').fill('1');
  await page.getByRole('button', { name: 'Save approvals for Staging' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'Saved: changes there now need' })).toBeVisible();
  await page.getByRole('button', { name: 'Sign out' }).click();

  await signIn(page, EDITOR);
  await page.goto('/flags/spring-sale?env=staging');
  await waitForHydration(page);
  await expect(page.getByText('Staging is protected: saving files a change request').first()).toBeVisible();
  await page.getByLabel('Everyone', { exact: true }).check();
  await page.getByLabel('Why (for the reviewers)').first().fill('Spring sale starts in staging');
  await page.getByRole('button', { name: 'Save access' }).click();
  await expect(page.getByRole('status').filter({ hasText: /^Filed change request #\d+/ })).toBeVisible();
  const requests = page.locator('#requests');
  await expect(requests).toContainText('Access in Staging → Everyone');
  await expect(requests).toContainText('0 of 1 approvals.');
  await expect(requests.getByRole('button', { name: /^Approve request/ })).toHaveCount(0);
  await expect(page.getByRole('heading', { name: /^Access in/ })).toContainText('version 1');
  await screenshot(page, '35-change-request-filed');
  await page.getByRole('button', { name: 'Sign out' }).click();

  await signIn(page);
  await expect(page.locator('#to-review')).toContainText('spring-sale');
  await page.locator('#to-review').getByRole('link', { name: 'spring-sale' }).click();
  await page.goto('/flags/spring-sale?env=staging');
  await waitForHydration(page);
  await requests.getByRole('button', { name: /^Approve request/ }).click();
  await expect(requests).toContainText('1 of 1 approvals: ada@example.com.');
  await requests.getByRole('button', { name: /^Apply request/ }).click();
  await expect(page.getByRole('status').filter({ hasText: 'Applied' })).toBeVisible();
  await expect(page.getByRole('heading', { name: /^Access in/ })).toContainText('version 2');
  await expect(requests).toContainText('applied as version 2');
  await screenshot(page, '36-change-request-applied');
  await page.setViewportSize({ width: 390, height: 844 });
  await screenshot(page, '37-flag-rollouts-390');
  await page.setViewportSize({ width: 1366, height: 900 });

  // Back to unprotected, for the walks that follow.
  await page.goto('/settings/keys');
  await waitForHydration(page);
  await page.getByLabel('Staging: approvals required').fill('0');
  await page.getByRole('button', { name: 'Save approvals for Staging' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'Saved: changes there now need' })).toBeVisible();
});
