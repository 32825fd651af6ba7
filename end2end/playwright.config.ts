import { defineConfig, devices } from '@playwright/test';

// This machine reaches no browser download site: use Debian's chromium with flags that keep it
// from dialling out.
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const ADDR = process.env.GATEHOUSE_E2E_ADDR ?? '127.0.0.1:3217';
const BASE_URL = process.env.BASE_URL ?? `http://${ADDR}`;

export default defineConfig({
  testDir: './tests',
  timeout: 60_000,
  expect: { timeout: 15_000 },
  fullyParallel: false,
  workers: 1,
  retries: 0,
  forbidOnly: !!process.env.CI,
  reporter: [['list']],
  use: { baseURL: BASE_URL, trace: 'off' },
  projects: [
    {
      name: 'chromium',
      use: {
        ...devices['Desktop Chrome'],
        headless: true,
        launchOptions: {
          executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
          args: CHROMIUM_ARGS,
        },
      },
    },
  ],
  // Starts the debug build from `cargo leptos build` on a fresh SQLite database.
  webServer: {
    command: `bash ./start-server.sh ${ADDR}`,
    url: `${BASE_URL}/readyz`,
    reuseExistingServer: false,
    timeout: 120_000,
    stdout: 'pipe',
    stderr: 'pipe',
  },
});
