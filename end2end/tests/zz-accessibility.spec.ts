import * as path from 'path';
import { test, expect, signIn, waitForHydration, at390 } from './fixtures';

// Runs after the walks (alphabetical order, one worker), so the pages hold flags, segments,
// companies, history and webhooks. axe-core is injected as a script, which the pages' content
// security policy would rightly refuse: this test's browser context bypasses it.
test.use({ bypassCSP: true, viewport: { width: 1366, height: 900 } });

const PAGES = [
  '/',
  '/flags',
  '/flags?view=board',
  '/flags/new',
  '/flags/new-checkout',
  '/segments',
  '/audit',
  '/companies',
  '/companies/acme?env=production',
  '/users',
  '/cleanup',
  '/settings',
  '/settings/keys',
  '/settings/members',
  '/settings/stages',
  '/settings/plans',
  '/settings/webhooks',
  '/account',
];

test('the main pages have no serious or critical accessibility violation (axe-core)', async ({ page }) => {
  await signIn(page);
  const found: string[] = [];
  for (const url of PAGES) {
    await page.goto(url);
    await waitForHydration(page);
    await page.addScriptTag({ path: path.join(__dirname, '..', 'node_modules', 'axe-core', 'axe.min.js') });
    const violations: { id: string; impact: string; help: string; nodes: { target: string[] }[] }[] = await page.evaluate(
      async () => (await (window as any).axe.run(document, { runOnly: ['wcag2a', 'wcag2aa', 'best-practice'] })).violations,
    );
    for (const v of violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')) {
      found.push(`${url}: ${v.id} (${v.impact}) ${v.help}: ${v.nodes.map((n) => n.target.join(' ')).slice(0, 5).join(', ')}`);
    }
  }
  expect(found).toEqual([]);
});

test('the company list and a company page fit a 390 px screen', async ({ page }) => {
  await signIn(page);
  await page.goto('/companies');
  await at390(page, '48-companies-390');
  await page.goto('/companies/acme?env=production&result=enabled');
  await expect(page.getByLabel('Result')).toHaveValue('enabled');
  await expect(page.locator('.check-summary')).toContainText(/\d+ of \d+ flags? enabled/);
  await at390(page, '49-company-page-390');
});
