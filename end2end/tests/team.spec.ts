import * as fs from 'fs';
import * as path from 'path';
import { test, expect, screenshot, waitForHydration, at390 } from './fixtures';

const ADMIN = { name: 'Ada Admin', email: 'ada@example.com', password: 'ada-password-123' };
const EDITOR = { name: 'Eddie Editor', email: 'eddie@example.com', password: 'eddie-password-123' };

function setupLink(): string {
  const log = fs.readFileSync(path.join(__dirname, '..', 'test-results', 'server.log'), 'utf8');
  const match = log.match(/\/setup\?token=([A-Za-z0-9]+)/);
  if (!match) throw new Error(`no setup link in the server log:\n${log}`);
  return `/setup?token=${match[1]}`;
}

test.describe.configure({ mode: 'serial' });

test('a new team walks first-run setup, invitation, sign-out and sign-in', async ({ page }) => {
  // A wrong token is refused with a message.
  await page.goto('/setup?token=not-the-token');
  await waitForHydration(page);
  await page.getByLabel('Your name').fill(ADMIN.name);
  await page.getByLabel('Email').fill(ADMIN.email);
  await page.getByLabel('Password (at least 10 characters)').fill(ADMIN.password);
  await page.getByRole('button', { name: 'Create admin and sign in' }).click();
  await expect(page.getByRole('alert')).toContainText('not valid');

  // The logged link creates the first admin and signs them in.
  await page.goto(setupLink());
  await waitForHydration(page);
  await page.getByLabel('Your name').fill(ADMIN.name);
  await page.getByLabel('Email').fill(ADMIN.email);
  await page.getByLabel('Password (at least 10 characters)').fill(ADMIN.password);
  await screenshot(page, '02-setup');
  await page.getByRole('button', { name: 'Create admin and sign in' }).click();
  await expect(page.getByRole('heading', { name: 'Overview' })).toBeVisible();
  // The overview starts a new team off: a flag to create, an app to connect with a snippet
  // filled in with the working environment's publishable key, and copy buttons once interactive.
  await expect(page.getByRole('heading', { name: 'Get started' })).toBeVisible();
  await expect(page.getByRole('link', { name: 'Create your first flag' })).toBeVisible();
  const snippet = page.locator('#get-started details[open] pre');
  await expect(snippet).toContainText('publishableKey: "pub_prod_');
  await waitForHydration(page);
  await expect(page.getByRole('button', { name: 'Copy the Browser (Reflag browser SDK) snippet' })).toBeVisible();
  await expect(page.getByText('changes apply at once').first()).toBeVisible();
  await screenshot(page, '03-overview');
  await at390(page, '03-overview-390');

  // The setup link is gone once used.
  await page.goto(setupLink());
  await waitForHydration(page);
  await page.getByLabel('Your name').fill('Mallory');
  await page.getByLabel('Email').fill('mallory@example.com');
  await page.getByLabel('Password (at least 10 characters)').fill('mallory-password');
  await page.getByRole('button', { name: 'Create admin and sign in' }).click();
  await expect(page.getByRole('alert')).toContainText('not valid');

  // Invite an editor: Settings → Members.
  await page.goto('/');
  await waitForHydration(page);
  await page.getByRole('link', { name: 'Settings' }).click();
  await page.getByRole('link', { name: /^Members/ }).click();
  await expect(page).toHaveURL(/\/settings\/members$/);
  await waitForHydration(page);
  await expect(page.getByRole('cell', { name: ADMIN.email, exact: true })).toBeVisible();
  await page.getByLabel('Email').fill(EDITOR.email);
  await page.getByLabel('Role', { exact: true }).selectOption('editor');
  await page.getByRole('button', { name: 'Create invitation link' }).click();
  const linkField = page.getByRole('textbox', { name: 'Invitation link' });
  await expect(linkField).toBeVisible();
  const link = await linkField.inputValue();
  expect(link).toMatch(/\/invite\/[A-Za-z0-9]+$/);
  await expect(page.getByRole('cell', { name: EDITOR.email, exact: true })).toBeVisible();
  await screenshot(page, '04-members');

  // Sign out.
  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page).toHaveURL(/\/sign-in/);

  // The invitee joins through the link and lands signed in, without admin navigation.
  await page.goto(new URL(link).pathname);
  await waitForHydration(page);
  await expect(page.getByText(EDITOR.email)).toBeVisible();
  await page.getByLabel('Your name').fill(EDITOR.name);
  await page.getByLabel('Choose a password (at least 10 characters)').fill(EDITOR.password);
  await screenshot(page, '05-invitation');
  await page.getByRole('button', { name: 'Join' }).click();
  await expect(page.getByRole('heading', { name: 'Overview' })).toBeVisible();
  await expect(page.getByText(EDITOR.name)).toBeVisible();
  await expect(page.getByRole('link', { name: 'Settings' })).toHaveCount(0);
  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page).toHaveURL(/\/sign-in/);

  // The link works once.
  await page.goto(new URL(link).pathname);
  await expect(page.getByRole('alert')).toContainText('not valid');

  // Sign in: a wrong password is refused in place, the right one gets in.
  await page.goto('/sign-in');
  await waitForHydration(page);
  await page.getByLabel('Email').fill(ADMIN.email);
  await page.getByLabel('Password', { exact: true }).fill('wrong password!');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('alert')).toContainText('not right');
  await page.getByLabel('Password', { exact: true }).fill(ADMIN.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('heading', { name: 'Overview' })).toBeVisible();
  await screenshot(page, '06-signed-in');
});
