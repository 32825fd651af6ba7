import { ADMIN, test, expect, confirmAction, publishableKey, screenshot, signIn, waitForHydration, at390 } from './fixtures';
import type { APIRequestContext, Page } from '@playwright/test';

test.describe.configure({ mode: 'serial' });

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
  if (fields.rollout !== undefined) {
    // The first saved rule, or the blank one when there is none yet.
    const rule = page.getByRole('group', { name: /^(Rule 1|New rule)$/ }).first();
    await rule.getByLabel('Rollout percentage').fill(fields.rollout);
  }
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
  await confirmAction(page, 'Move to Internal…', 'Move to Internal');
  await expect(page.getByText('Current stage: Internal')).toBeVisible();
  await expect(page.getByText(/^Moved\. Where the new stage has default access/)).toBeVisible();
  await confirmAction(page, 'Move to Beta…', 'Move to Beta');
  await expect(page.getByText('Current stage: Beta')).toBeVisible();
  await saveAccess(page, { mode: 'Some', companies: 'acme', rollout: '25' });
  const quarter = await share(request, key, 'new-checkout');
  expect(quarter).toBeGreaterThan(0.15);
  expect(quarter).toBeLessThan(0.35);
  expect(await enabledFor(request, key, 'new-checkout', 'acme')).toBe(true);
  await screenshot(page, '12-flag-beta-25');

  // General availability: everyone.
  await confirmAction(page, 'Move to General availability…', 'Move to General availability');
  await expect(page.getByText('Current stage: General availability')).toBeVisible();
  await saveAccess(page, { mode: 'Everyone' });
  expect(await share(request, key, 'new-checkout')).toBe(1);

  // Roll back to the acme-only version (version 2).
  await confirmAction(page, 'Roll back to version 2…', 'Roll back to version 2', 'Everyone → Some');
  await expect(page.getByText('version 5')).toBeVisible();
  await expect(page.getByText(/^Rolled back: the older version/)).toBeVisible();
  await expect(page.getByText('rolled back to version 2')).toBeVisible();
  // Every field of the form shows what is now stored, without a reload: saving it unchanged
  // must not write the previous version's companies back (the boxes were last typed empty).
  await expect(page.getByLabel('Some', { exact: true })).toBeChecked();
  await expect(page.getByLabel('Companies (ids, one per line)', { exact: true })).toHaveValue('acme');
  await expect(page.getByLabel('Users (ids, one per line)', { exact: true })).toHaveValue('');
  await page.getByRole('button', { name: 'Save access' }).click();
  await expect(page.getByText('version 6')).toBeVisible();
  expect(await enabledFor(request, key, 'new-checkout', 'acme')).toBe(true);
  expect(await enabledFor(request, key, 'new-checkout', 'globex')).toBe(false);
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

test('rules of several conditions, picked ids, a live count and a readable history', async ({ page, request }) => {
  await signIn(page);
  // In Development, so the companies reported here don't change the counts other tests expect.
  const key = await publishableKey(page, 'development');
  // Companies reported by an SDK: their attributes feed the field picker and the count.
  const companies = [
    { companyId: 'globex', attributes: { name: 'Globex', plan: 'enterprise', seats: 120 } },
    { companyId: 'initech', attributes: { name: 'Initech', plan: 'enterprise', seats: 8 } },
    { companyId: 'hooli', attributes: { name: 'Hooli', plan: 'free', seats: 500 } },
  ];
  for (const company of companies) {
    const response = await request.post('/company', { headers: { Authorization: `Bearer ${key}` }, data: company });
    expect(response.status()).toBe(200);
  }

  await page.goto('/flags/new');
  await page.getByLabel('Name').fill('Big accounts');
  await page.getByLabel(/^Key/).fill('big-accounts');
  await page.getByRole('button', { name: 'Create flag' }).click();
  await expect(page).toHaveURL(/\/flags\/big-accounts$/);
  await page.goto('/flags/big-accounts?env=development');
  await expect(page.getByRole('heading', { name: /^Access in Development/ })).toBeVisible();
  await waitForHydration(page);

  // The field input suggests the attributes companies were reported with.
  await expect(page.locator('datalist#access-company option[value="seats"]')).toHaveCount(1);

  // Enterprise plan and more than 50 seats: only globex.
  await page.getByLabel('Some', { exact: true }).check();
  const rule = page.getByRole('group', { name: 'New rule' });
  await rule.getByLabel('Field').nth(0).fill('plan');
  await rule.getByLabel('Operator').nth(0).selectOption('IS');
  await rule.getByLabel('Value').nth(0).fill('enterprise');
  // Conditions are added as needed, and a row added by mistake is removed before saving.
  await expect(rule.getByLabel('Field')).toHaveCount(1);
  await rule.getByRole('button', { name: 'Add condition' }).click();
  await rule.getByRole('button', { name: 'Add condition' }).click();
  await expect(rule.getByLabel('Field')).toHaveCount(3);
  await rule.getByLabel('Field').nth(2).fill('region');
  await rule.getByRole('button', { name: 'Remove this condition' }).nth(2).click();
  await expect(rule.getByLabel('Field').nth(2)).toBeHidden();
  await rule.getByLabel('Field').nth(1).fill('seats');
  await rule.getByLabel('Operator').nth(1).selectOption('GT');
  await rule.getByLabel('Value').nth(1).fill('50');
  await rule.getByLabel('Value').nth(1).blur();
  // Counted live, before saving.
  await expect(page.locator('#access-count')).toContainText('1 of 3 known companies have access with these rules');

  // A refused save names the input and keeps everything typed.
  await rule.getByLabel('Value').nth(1).fill('many');
  await page.getByRole('button', { name: 'Save access' }).click();
  await expect(page.locator('#access-condition-1-value-error')).toContainText('"many" is not a number');
  await expect(rule.getByLabel('Value').nth(1)).toHaveValue('many');
  await expect(rule.getByLabel('Value').nth(0)).toHaveValue('enterprise');
  await rule.getByLabel('Value').nth(1).fill('50');

  // A company picked by searching its name.
  await page.getByLabel('Find a company to add').fill('hoo');
  await expect(page.locator('#access-companies-matches option[value="hooli"]')).toHaveCount(1);
  await page.getByLabel('Find a company to add').fill('hooli');
  await page.getByRole('button', { name: 'Add', exact: true }).first().click();
  await expect(page.getByLabel('Companies (ids, one per line)', { exact: true })).toHaveValue('hooli');
  // Picked companies are chips with their names; an id no SDK reported says so and is removed.
  const chips = page.locator('#access-companies').locator('xpath=..').locator('li.chip');
  await expect(chips.filter({ hasText: 'hooli' })).toContainText('Hooli');
  await page.getByLabel('Find a company to add').fill('ghost-co');
  await page.getByRole('button', { name: 'Add', exact: true }).first().click();
  await expect(chips.filter({ hasText: 'ghost-co' })).toContainText('not seen yet');
  await screenshot(page, '18-rule-editor');
  await page.getByRole('button', { name: 'Remove ghost-co' }).click();
  await expect(chips).toHaveCount(1);
  await expect(page.getByLabel('Companies (ids, one per line)', { exact: true })).toHaveValue('hooli');

  await page.getByRole('button', { name: 'Save access' }).click();
  await expect(page.getByRole('heading', { name: /^Access in/ })).toContainText('version 2');
  await expect(page.locator('#access-count')).toContainText('2 of 3 known companies have access with the saved rules');
  for (const [company, enabled] of [['globex', true], ['initech', false], ['hooli', true], ['acme', false]] as const) {
    expect(await enabledFor(request, key, 'big-accounts', company)).toBe(enabled);
  }

  // The top of the page says who has the flag everywhere; its details are edited in place.
  await expect(page.locator('#summary')).toContainText('Production');
  await expect(page.locator('#summary tr.current')).toContainText('Development');
  await page.getByLabel('Description').fill('Enterprise accounts with many seats');
  await page.getByLabel('Permanent (an entitlement or kill switch; never stale by age)').check();
  await page.getByRole('button', { name: 'Save details' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'Details saved.' })).toBeVisible();
  await expect(page.locator('.flag-head')).toContainText('permanent');
  await expect(page.locator('.flag-head + p')).toContainText('Enterprise accounts with many seats · Owner: ');
  await at390(page, '19-flag-page-390');

  // The saved rule is shown as Rule 1; its seat threshold changes and the history says how.
  const saved = page.getByRole('group', { name: 'Rule 1' });
  await expect(saved.getByLabel('Field').nth(1)).toHaveValue('seats');
  await saved.getByLabel('Value').nth(1).fill('5');
  await page.getByRole('button', { name: 'Save access' }).click();
  await expect(page.getByRole('heading', { name: /^Access in/ })).toContainText('version 3');
  expect(await enabledFor(request, key, 'big-accounts', 'initech')).toBe(true);
  const history = page.getByRole('row').filter({ hasText: /^3/ });
  await expect(history).toContainText(
    'rule 1: company.plan is enterprise and company.seats is greater than 50 → company.plan is enterprise and company.seats is greater than 5',
  );
  await expect(page.getByRole('row').filter({ hasText: /^2/ })).toContainText('+ companies hooli');
  await screenshot(page, '19-history-diff');
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

test('moves, copies, rollbacks and archiving show what they change and ask first', async ({ page, request }) => {
  await signIn(page);
  const key = await publishableKey(page);
  await page.goto('/flags/new');
  await page.getByLabel('Name').fill('Asks first');
  await page.getByLabel(/^Key/).fill('asks-first');
  await page.getByRole('button', { name: 'Create flag' }).click();
  await expect(page).toHaveURL(/\/flags\/asks-first$/);
  await waitForHydration(page);
  await saveAccess(page, { mode: 'Some', companies: 'acme' });
  const heading = page.getByRole('heading', { name: /^Access in/ });

  // A rollback previews what it changes; Cancel and Escape leave everything as it is.
  await page.getByRole('link', { name: 'Roll back to version 1…', exact: true }).click();
  const dialog = page.getByRole('dialog', { name: 'Roll Production back to version 1?' });
  await expect(dialog).toBeVisible();
  await expect(dialog).toContainText('Now (version 2): 1 company. After: No one, as version 3.');
  await expect(dialog).toContainText('− companies acme');
  await screenshot(page, '18-confirm-rollback');
  await dialog.getByRole('link', { name: 'Cancel' }).click();
  await expect(dialog).toHaveCount(0);
  await page.getByRole('link', { name: 'Roll back to version 1…', exact: true }).click();
  await expect(dialog).toBeVisible();
  // The keyboard stays in the dialog: Tab and Shift+Tab go round its controls.
  const inDialog = () => page.evaluate(() => !!document.activeElement?.closest('[role=dialog]'));
  for (let i = 0; i < 5; i++) {
    await page.keyboard.press('Tab');
    expect(await inDialog(), `Tab ${i + 1}`).toBe(true);
  }
  for (let i = 0; i < 5; i++) {
    await page.keyboard.press('Shift+Tab');
    expect(await inDialog(), `Shift+Tab ${i + 1}`).toBe(true);
  }
  await page.keyboard.press('Escape');
  await expect(dialog).toHaveCount(0);
  await expect(heading).toContainText('version 2');
  expect(await enabledFor(request, key, 'asks-first', 'acme')).toBe(true);

  // Copying Staging (no one) over Production says what Production loses, then does it.
  await confirmAction(page, 'Copy from Staging…', 'Copy from Staging', 'Production now: 1 company. After the copy: No one');
  await expect(page.getByRole('status').filter({ hasText: /^Copied:/ })).toBeVisible();
  await expect(heading).toContainText('version 3');
  await expect(page.getByLabel('Companies (ids, one per line)', { exact: true })).toHaveValue('');
  expect(await enabledFor(request, key, 'asks-first', 'acme')).toBe(false);

  // Rolling back to version 2 brings acme back, and the form shows it.
  await confirmAction(page, 'Roll back to version 2…', 'Roll back to version 2', '+ companies acme');
  await expect(page.getByRole('status').filter({ hasText: /^Rolled back:/ })).toBeVisible();
  await expect(heading).toContainText('version 4');
  await expect(page.getByLabel('Companies (ids, one per line)', { exact: true })).toHaveValue('acme');
  expect(await enabledFor(request, key, 'asks-first', 'acme')).toBe(true);

  // Archiving lists who loses the flag, in every environment; restoring serves it again.
  await confirmAction(page, 'Archive flag…', 'Archive flag', 'Production: 1 company');
  await expect(page.getByRole('status').filter({ hasText: /^Archived:/ })).toBeVisible();
  const served = async () => {
    const answer = await request.get('/features/evaluated?context.company.id=acme', { headers: { Authorization: `Bearer ${key}` } });
    return (await answer.json()).features['asks-first'];
  };
  expect(await served()).toBeUndefined();
  await confirmAction(page, 'Restore flag…', 'Restore flag', 'SDKs get the flag again');
  await expect(page.getByRole('status').filter({ hasText: /^Restored:/ })).toBeVisible();
  expect((await served()).isEnabled).toBe(true);

  // A move whose stage sets no access says so.
  await page.getByRole('link', { name: 'Move to Internal…', exact: true }).click();
  await expect(page.getByRole('dialog')).toBeVisible();
  await screenshot(page, '18-confirm-move');
  await page.getByRole('dialog').getByRole('link', { name: 'Cancel' }).click();
  await expect(page.getByText('Current stage: In development')).toBeVisible();
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

    // A rule with a condition, typed into the blank rule.
    const rule = page.getByRole('group', { name: 'New rule' });
    await rule.getByLabel('Field').first().fill('plan');
    await rule.getByLabel('Operator').first().selectOption('ANY_OF');
    await rule.getByLabel('Value').first().fill('pro, team');
    await page.getByRole('button', { name: 'Save access' }).click();
    await expect(page.getByText('version 3')).toBeVisible();
    const plan = await request.get('/features/evaluated?key=plain-forms&context.company.id=x&context.company.plan=team', {
      headers: { Authorization: `Bearer ${key}` },
    });
    expect((await plan.json()).features['plain-forms'].isEnabled).toBe(true);
    await expect(page.getByRole('group', { name: 'Rule 1' }).getByLabel('Value').first()).toHaveValue('pro, team');

    // A bad rollout is refused with a message next to the field.
    await page.getByRole('group', { name: 'Rule 1' }).getByLabel('Rollout percentage').fill('250');
    await page.getByRole('button', { name: 'Save access' }).click();
    await expect(page.getByText('enter a percentage from 0 to 100')).toBeVisible();
    // The access form shows what was sent, not what is stored.
    await expect(page.getByRole('group', { name: 'Rule 1' }).getByLabel('Rollout percentage')).toHaveValue('250');
    await expect(page.getByLabel('Companies (ids, one per line)', { exact: true })).toHaveValue('initech');
    await screenshot(page, '17-no-js-validation');

    // A rollback asks on a page of its own, then comes back saying what it did.
    await page.getByRole('link', { name: 'Roll back to version 2…', exact: true }).click();
    await expect(page).toHaveURL(/confirm=rollback&version=2/);
    const dialog = page.getByRole('dialog', { name: 'Roll Production back to version 2?' });
    await expect(dialog).toContainText('− rule 1');
    await dialog.getByRole('button', { name: 'Roll back to version 2', exact: true }).click();
    await expect(page).toHaveURL(/\/flags\/plain-forms\?done=rolled-back$/);
    await expect(page.getByRole('status').filter({ hasText: /^Rolled back:/ })).toBeVisible();
    await expect(page.getByText('version 4')).toBeVisible();
    await expect(page.getByRole('dialog')).toHaveCount(0);
    const after = await request.get('/features/evaluated?key=plain-forms&context.company.id=x&context.company.plan=team', {
      headers: { Authorization: `Bearer ${key}` },
    });
    expect((await after.json()).features['plain-forms'].isEnabled).toBe(false);

    // A refused form comes back with what was typed, the message next to the field.
    await page.goto('/flags/new');
    await page.getByLabel('Name').fill('Plain forms again');
    await page.getByLabel(/^Key/).fill('Plain-Forms');
    await page.getByLabel('Description').fill('Typed before the refusal');
    await page.getByRole('button', { name: 'Create flag' }).click();
    await expect(page.locator('#form-error')).toContainText('a flag with the key plain-forms already exists');
    await expect(page.getByLabel('Name')).toHaveValue('Plain forms again');
    await expect(page.getByLabel(/^Key/)).toHaveValue('Plain-Forms');
    await expect(page.getByLabel('Description')).toHaveValue('Typed before the refusal');

    // A confirmation whose version is gone says so instead of acting.
    await page.goto('/flags/plain-forms?confirm=rollback&version=99');
    await expect(page.getByRole('dialog')).toContainText('That version is not one this environment can roll back to.');
    await expect(page.getByRole('dialog').getByRole('button')).toHaveCount(0);
  });
});
