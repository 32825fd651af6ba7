import * as http from 'http';
import { AddressInfo } from 'net';
import { test, expect, screenshot, signIn, waitForHydration } from './fixtures';

test.describe.configure({ mode: 'serial' });

/** A receiver on loopback that answers 500 to its first `failing` requests, then 204. */
async function receiver(failing: number) {
  const seen: { headers: http.IncomingHttpHeaders; body: string; answered: number }[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      const answered = seen.length < failing ? 500 : 204;
      seen.push({ headers: req.headers, body, answered });
      res.writeHead(answered).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`;
  return { url, seen, close: () => server.close() };
}

test('an admin adds a webhook, a flag change is delivered signed, a failed one is redelivered', async ({ page }) => {
  const hook = await receiver(1);
  await page.setViewportSize({ width: 1366, height: 900 });
  await signIn(page);
  await page.goto('/settings/webhooks');
  await waitForHydration(page);
  await expect(page.getByText('No endpoints yet.')).toBeVisible();
  // At 1366 px the main navigation is one line; the member's name leads to the account page.
  const nav = page.getByRole('navigation', { name: 'Main' });
  const navBox = (await nav.boundingBox())!;
  const linkBox = (await nav.getByRole('link').first().boundingBox())!;
  expect(navBox.height, 'the nav does not wrap at 1366 px').toBeLessThan(linkBox.height * 1.5);
  await expect(page.getByRole('link', { name: /^Ada Admin · Admin/ })).toHaveAttribute('href', '/account');
  await page.getByLabel('Name').fill('Deploy bot');
  await page.getByLabel('URL (http:// or https://)').fill('ftp://example.com');
  await page.getByRole('button', { name: 'Add endpoint' }).click();
  await expect(page.getByRole('alert').filter({ hasText: 'is not an http:// or https:// address' })).toBeVisible();
  await expect(page.getByLabel('Name')).toHaveValue('Deploy bot');
  await page.getByLabel('URL (http:// or https://)').fill(hook.url);
  await page.getByLabel('Events, one per line (empty: every event)').fill('flag.created');
  await page.getByRole('button', { name: 'Add endpoint' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'Added the endpoint' })).toBeVisible();
  const card = page.locator('section.card').filter({ has: page.getByRole('heading', { name: 'Deploy bot' }) });
  await expect(card.getByLabel(/^Signing secret/)).toHaveValue(/^whsec_/);
  await expect(card.getByText('No deliveries yet.')).toBeVisible();

  // A flag created elsewhere reaches the receiver; its first attempt meets a 500.
  await page.goto('/flags/new');
  await waitForHydration(page);
  await page.getByLabel('Name').fill('Webhook demo');
  await page.getByLabel(/^Key/).fill('webhook-demo');
  await page.getByRole('button', { name: 'Create flag' }).click();
  await expect(page).toHaveURL(/\/flags\/webhook-demo$/);
  await expect.poll(() => hook.seen.length, { timeout: 10_000 }).toBeGreaterThanOrEqual(1);
  const first = hook.seen[0];
  expect(first.headers['webhook-id']).toMatch(/^evt_\d+$/);
  expect(first.headers['webhook-signature']).toMatch(/^v1,/);
  expect(JSON.parse(first.body).type).toBe('flag.created');

  // The log shows the failure, then the retry 5 s later delivers it; Redeliver sends it again.
  await page.goto('/settings/webhooks');
  await waitForHydration(page);
  await expect.poll(() => hook.seen.length, { timeout: 15_000 }).toBeGreaterThanOrEqual(2);
  await page.reload();
  await waitForHydration(page);
  const row = page.getByRole('row').filter({ hasText: 'flag.created' });
  await expect(row).toContainText('delivered');
  await screenshot(page, '50-webhooks');
  await row.getByRole('button', { name: /^Redeliver/ }).click();
  await expect(page.getByRole('status').filter({ hasText: 'Sending again now' })).toBeVisible();
  await expect.poll(() => hook.seen.length, { timeout: 10_000 }).toBe(3);
  expect(hook.seen[2].headers['webhook-id']).toBe(first.headers['webhook-id']);

  await page.setViewportSize({ width: 390, height: 844 });
  await page.reload();
  await waitForHydration(page);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow, 'no horizontal scrolling at 390 px').toBeLessThanOrEqual(0);
  await screenshot(page, '51-webhooks-390');
  hook.close();
});
