import { test as base, expect } from '@playwright/test';
import * as fs from 'fs';
import * as path from 'path';

// Every test fails on any error the page raises or logs: a wasm bundle that fails to hydrate
// (as Debian's old wasm-opt produces) shows up only there. The one exception: Chromium logs each
// 4xx answer as "Failed to load resource"; those are the refusals and validation errors the
// pages show in place, which the tests check themselves.
const EXPECTED_REFUSAL = /Failed to load resource: the server responded with a status of 4\d\d/;
export const test = base.extend<{ pageErrors: string[] }>({
  pageErrors: [
    async ({ page }, use) => {
      const errors: string[] = [];
      page.on('pageerror', (err) => errors.push(`pageerror: ${err.message}`));
      page.on('console', (msg) => {
        if (msg.type() === 'error' && !EXPECTED_REFUSAL.test(msg.text())) errors.push(`console.error: ${msg.text()}`);
      });
      await use(errors);
      expect(errors, 'the browser reported errors').toEqual([]);
    },
    { auto: true },
  ],
});

export { expect };

/** Saves a screenshot under end2end/screenshots/ (ignored by git) so anyone can look at the pages. */
export async function screenshot(page: import('@playwright/test').Page, name: string) {
  const dir = path.join(__dirname, '..', 'screenshots');
  fs.mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: path.join(dir, `${name}.png`), fullPage: true });
}

/** Waits until the WebAssembly bundle has taken over the page. */
export async function waitForHydration(page: import('@playwright/test').Page) {
  await expect(page.locator('main[data-hydrated="true"]')).toBeVisible();
}

/** The admin team.spec.ts creates (it runs first: alphabetical order, one worker). */
export const ADMIN = { email: 'ada@example.com', password: 'ada-password-123' };

/** Signs in through the form (as `who`, the admin by default) and waits for the Overview. */
export async function signIn(page: import('@playwright/test').Page, who: { email: string; password: string } = ADMIN) {
  await page.goto('/sign-in');
  await page.getByLabel('Email').fill(who.email);
  await page.getByLabel('Password', { exact: true }).fill(who.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('heading', { name: 'Overview' })).toBeVisible();
}

/** The publishable key of `environment`, as Settings › API keys shows it. */
export async function publishableKey(page: import('@playwright/test').Page, environment = 'production'): Promise<string> {
  await page.goto('/settings/keys');
  const cell = page
    .getByRole('row')
    .filter({ hasText: environment })
    .filter({ hasText: 'publishable' })
    .filter({ has: page.getByRole('cell', { name: 'active', exact: true }) })
    .locator('code');
  return (await cell.innerText()).trim();
}

/**
 * Carries out a flag-page action that asks first (a stage move, a copy, a rollback, archiving):
 * opens it by its link, checks the dialog previews `preview` (when given) and confirms it.
 */
export async function confirmAction(
  page: import('@playwright/test').Page,
  link: string,
  confirm: string,
  preview?: string | RegExp,
) {
  await page.getByRole('link', { name: link, exact: true }).click();
  const dialog = page.getByRole('dialog');
  await expect(dialog).toBeVisible();
  if (preview !== undefined) await expect(dialog).toContainText(preview);
  await dialog.getByRole('button', { name: confirm, exact: true }).click();
  await expect(dialog).toHaveCount(0);
}

/**
 * Looks at the page as a phone does (390 px wide): takes the screenshot `name` and fails if the
 * page scrolls sideways; then back to the laptop width the walks use.
 */
export async function at390(page: import('@playwright/test').Page, name: string) {
  await page.setViewportSize({ width: 390, height: 844 });
  await screenshot(page, name);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow, `${name}: no horizontal scrolling at 390 px`).toBeLessThanOrEqual(0);
  // Nor content cut off at the right edge (outside boxes that scroll on their own).
  const cut = await page.evaluate(() => {
    const scrolls = (e: Element | null): boolean => {
      for (; e && e !== document.body; e = e.parentElement) {
        const x = getComputedStyle(e).overflowX;
        if (x === 'auto' || x === 'scroll') return true;
      }
      return false;
    };
    return Array.from(document.querySelectorAll('main *'))
      .filter((e) => e.getBoundingClientRect().width > 0 && e.getBoundingClientRect().right > window.innerWidth + 1)
      .filter((e) => !scrolls(e.parentElement))
      .map((e) => `${e.tagName.toLowerCase()}${e.id ? '#' + e.id : ''}.${e.className}`)
      .slice(0, 5);
  });
  expect(cut, `${name}: nothing reaches past the right edge at 390 px`).toEqual([]);
  await page.setViewportSize({ width: 1366, height: 900 });
}
