import * as path from 'path';
import { test, expect, signIn, waitForHydration } from './fixtures';

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
