import { defineConfig, devices } from "@playwright/test";
import { existsSync } from "node:fs";

// Debian's Chromium where it is installed (set by scripts/setup.sh or found here); otherwise
// Playwright's own browser (`npx playwright install chromium`).
const chromium =
  process.env.KEYCARD_CHROMIUM ||
  ["/usr/bin/chromium", "/usr/bin/chromium-browser"].find((p) => existsSync(p));

export default defineConfig({
  testDir: "./tests",
  // globalSetup starts a fresh Keycard server on a free port with its own temporary database;
  // the tests read its address from KEYCARD_BASE_URL (see tests/fixtures.ts).
  globalSetup: "./global-setup.ts",
  timeout: 60_000,
  expect: { timeout: 10_000 },
  fullyParallel: false,
  workers: 1,
  retries: 0,
  forbidOnly: !!process.env.CI,
  reporter: [["list"]],
  outputDir: "test-results",
  use: {
    trace: "retain-on-failure",
    screenshot: "only-on-failure",
  },
  projects: [
    {
      name: "chromium",
      use: {
        ...devices["Desktop Chrome"],
        launchOptions: chromium ? { executablePath: chromium } : {},
      },
    },
  ],
});
