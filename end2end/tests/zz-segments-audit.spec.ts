import { ADMIN, test, expect, publishableKey, screenshot, signIn, waitForHydration } from './fixtures';
import type { APIRequestContext } from '@playwright/test';

test.describe.configure({ mode: 'serial' });

/** Reports a company with attributes through the public ingest API, as an SDK would. */
async function reportCompany(request: APIRequestContext, key: string, companyId: string, attributes: object) {
  const response = await request.post('/company', {
    headers: { Authorization: `Bearer ${key}` },
    data: { companyId, attributes },
  });
  expect(response.status()).toBeLessThan(300);
}

test('an editor defines a segment, sees who matches and where it is used, and finds it in the audit log', async ({
  page,
  request,
}) => {
  await signIn(page);
  const key = await publishableKey(page);
  await reportCompany(request, key, 'acme', { plan: 'enterprise' });
  await reportCompany(request, key, 'globex', { plan: 'free' });
  await reportCompany(request, key, 'initech', { plan: 'enterprise' });

  // Empty state, reached from the navigation.
  await page.getByRole('link', { name: 'Segments' }).click();
  await expect(page.getByText('No segments yet')).toBeVisible();
  await waitForHydration(page);
  await screenshot(page, '40-segments-empty');

  // A bad key is refused next to the field; nothing is created.
  await page.getByRole('link', { name: 'Create your first segment' }).click();
  await expect(page).toHaveURL(/\/segments\/new$/);
  await waitForHydration(page);
  await page.getByLabel('Name').fill('Enterprise customers');
  await page.getByLabel(/^Key/).fill('not a key!');
  await page.getByRole('button', { name: 'Create segment' }).click();
  await expect(page.locator('#key-error')).toBeVisible();

  // A value that is not a number for GT is refused on its row.
  await page.getByLabel(/^Key/).fill('enterprise');
  await page.getByLabel('Attribute 1').fill('plan');
  await page.getByLabel('Operator 1').selectOption('IS');
  await page.getByLabel('Value 1').fill('enterprise');
  await page.getByLabel('Attribute 2').fill('seats');
  await page.getByLabel('Operator 2').selectOption('GT');
  await page.getByLabel('Value 2').fill('many');
  await page.getByRole('button', { name: 'Create segment' }).click();
  await expect(page.locator('#row-1-error')).toContainText('enter a number');
  await screenshot(page, '41-segment-validation');

  // Fixed: enterprise-plan companies among acme and initech.
  await page.getByLabel('Attribute 2').fill('');
  await page.getByLabel('Value 2').fill('');
  await page.getByLabel(/^Company ids/).fill('acme\ninitech');
  await page.getByLabel('Description').fill('Paying for the enterprise plan');
  // Counted live from the unsaved conditions, per environment.
  await expect(page.locator('#segment-count')).toContainText('Production: 2 of 3');
  await screenshot(page, '42-segment-new');
  await page.getByRole('button', { name: 'Create segment' }).click();
  await expect(page).toHaveURL(/\/segments$/);
  const row = page.getByRole('row').filter({ hasText: 'Enterprise customers' });
  await expect(row).toContainText('2 conditions');
  await expect(row).toContainText('no flags');
  await expect(row).toContainText('2 of 3');

  // A flag that targets the segment shows up under "Used by".
  await page.goto('/flags/new');
  await waitForHydration(page);
  await page.getByLabel('Name').fill('Enterprise reports');
  await page.getByLabel(/^Key/).fill('enterprise-reports');
  await page.getByRole('button', { name: 'Create flag' }).click();
  await expect(page).toHaveURL(/\/flags\/enterprise-reports$/);
  await waitForHydration(page);
  await page.getByLabel('Some', { exact: true }).check();
  await page.getByLabel('Segments (keys, one per line)').fill('enterprise');
  await page.getByRole('button', { name: 'Save access' }).click();
  await expect(page.getByRole('status')).toContainText('Saved as a new version');

  await page.goto('/segments');
  await waitForHydration(page);
  await expect(row).toContainText('enterprise-reports');
  await expect(row.getByRole('link', { name: 'enterprise-reports' })).toHaveAttribute('href', '/flags/enterprise-reports');
  // Staging has no companies yet.
  await page.getByLabel('Count companies in').selectOption('staging');
  await page.getByRole('button', { name: 'Show' }).click();
  await expect(page).toHaveURL(/env=staging/);
  await expect(row).toContainText('0 of 0');
  // The environment chosen stays the working one until another is chosen.
  await page.goto('/segments');
  await expect(row).toContainText('0 of 0');
  await page.goto('/segments?env=production');
  await expect(row).toContainText('2 of 3');
  await screenshot(page, '43-segments-list');

  // Edit: the key is fixed, the rest changes.
  await row.getByRole('link', { name: 'Enterprise customers' }).click();
  await expect(page).toHaveURL(/\/segments\/enterprise$/);
  await waitForHydration(page);
  await expect(page.getByText('Used by enterprise-reports.')).toBeVisible();
  await expect(page.getByLabel(/^Key/)).toHaveCount(0);
  await page.getByLabel('Name').fill('Enterprise accounts');
  await page.getByLabel(/^Company ids/).fill('acme');
  await page.getByRole('button', { name: 'Save segment' }).click();
  await expect(page.getByRole('status')).toContainText('Saved');
  await expect(page.getByRole('heading', { name: 'Enterprise accounts' })).toBeVisible();

  // The audit log has both changes, newest first, with what changed.
  await page.getByRole('link', { name: 'Audit log' }).click();
  await expect(page.getByRole('heading', { name: 'Audit log' })).toBeVisible();
  await waitForHydration(page);
  await page.getByLabel('Subject').fill('segment enterprise');
  await page.getByLabel('Who').selectOption(ADMIN.email);
  await page.getByRole('button', { name: 'Filter' }).click();
  await expect(page).toHaveURL(/subject=segment\+enterprise/);
  const entries = page.locator('article.audit-entry');
  await expect(entries).toHaveCount(2);
  await expect(entries.nth(0)).toContainText('segment.changed');
  await expect(entries.nth(0).getByRole('row').filter({ hasText: 'name' })).toContainText('Enterprise customers');
  await expect(entries.nth(0).getByRole('row').filter({ hasText: 'name' })).toContainText('Enterprise accounts');
  await expect(entries.nth(1)).toContainText('segment.created');
  await expect(entries.nth(0)).toContainText(ADMIN.email);
  await entries.nth(0).getByText('Full before and after').click();
  await expect(entries.nth(0).locator('pre').first()).toContainText('"initech"');
  await screenshot(page, '44-audit-log');

  // A range in the future matches nothing.
  await page.getByLabel('From').fill('2999-01-01');
  await page.getByRole('button', { name: 'Filter' }).click();
  await expect(page.getByText('No changes match these filters.')).toBeVisible();
});

test.describe('without JavaScript', () => {
  test.use({ javaScriptEnabled: false });

  test('the segment form creates a segment and shows errors next to fields', async ({ page }) => {
    await page.goto('/sign-in');
    await page.getByLabel('Email').fill(ADMIN.email);
    await page.getByLabel('Password', { exact: true }).fill(ADMIN.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect(page.getByRole('heading', { name: 'Overview' })).toBeVisible();

    await page.goto('/segments/new');
    await page.getByLabel('Name').fill('Free plan');
    await page.getByLabel(/^Key/).fill('free-plan');
    await page.getByLabel('Attribute 1').fill('plan');
    await page.getByLabel('Operator 1').selectOption('ANY_OF');
    await page.getByLabel('Value 1').fill(' , ');
    await page.getByRole('button', { name: 'Create segment' }).click();
    await expect(page.getByText('enter at least one value')).toBeVisible();
    // The refused form comes back as typed: fix the one value and send it again.
    await expect(page.getByLabel('Name')).toHaveValue('Free plan');
    await expect(page.getByLabel(/^Key/)).toHaveValue('free-plan');
    await expect(page.getByLabel('Attribute 1')).toHaveValue('plan');
    await expect(page.getByLabel('Operator 1')).toHaveValue('ANY_OF');
    await screenshot(page, '45-no-js-segment-validation');

    await page.getByLabel('Value 1').fill('free, trial');
    await page.getByRole('button', { name: 'Create segment' }).click();
    await expect(page).toHaveURL(/\/segments$/);
    await expect(page.getByRole('row').filter({ hasText: 'Free plan' })).toContainText('1 of 3');

    await page.goto('/audit?subject=free-plan');
    await expect(page.locator('article.audit-entry')).toHaveCount(1);
    await expect(page.locator('article.audit-entry')).toContainText('segment.created');
  });
});
