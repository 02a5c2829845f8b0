// Shared fixtures: the address of the server started by global-setup.ts, and a page that fails
// the test on any console error or warning, page error or failed request not explicitly expected.
import { test as base, expect, type Page, type Response } from "@playwright/test";

type Watch = {
  /** Problems seen so far on every watched page: console errors and warnings, uncaught errors, failed or 4xx/5xx requests. */
  problems: string[];
  /** Marks responses matching `predicate` (e.g. an expected 401) as fine, on every watched page. */
  allow: (predicate: (res: Response) => boolean) => void;
  /**
   * Watches another page too (a second tab or browser context): the test's `page` is watched
   * already. `noScript`: the page's context has JavaScript off, which Playwright does with a CSP
   * that refuses the app's scripts; those refusals are expected.
   */
  page: (page: Page, options?: { noScript?: boolean }) => void;
};

export const test = base.extend<{ watch: Watch }>({
  baseURL: async ({}, use) => {
    const url = process.env.KEYCARD_BASE_URL;
    if (!url) throw new Error("KEYCARD_BASE_URL is unset: global-setup.ts did not run");
    await use(url);
  },
  watch: [
    async ({ page }, use) => {
      const problems: string[] = [];
      const allowed: Array<(res: Response) => boolean> = [];
      // Chromium logs every 4xx as a console error; the expected ones are not problems.
      const expectedUrls = new Set<string>();
      const watchPage = (p: Page, { noScript = false } = {}) => {
        p.on("console", (msg) => {
          // Warnings too: in a debug build Leptos warns of what can break hydration (a resource
          // read outside a Suspense or an effect, a signal read after it was disposed), and a
          // learner with the console open should see only what the page means to say.
          if (msg.type() === "warning") {
            problems.push(`console warning: ${msg.text().slice(0, 300)}`);
            return;
          }
          if (msg.type() !== "error") return;
          if (msg.text().startsWith("Failed to load resource") && expectedUrls.has(msg.location().url)) return;
          problems.push(`console error: ${msg.text()}`);
        });
        p.on("pageerror", (err) => problems.push(`page error: ${err.message}`));
        p.on("requestfailed", (req) => {
          const error = req.failure()?.errorText ?? "";
          // Leaving a page cancels its requests in flight; a bad status is caught below instead.
          if (error === "net::ERR_ABORTED") return;
          if (noScript && error === "csp" && req.resourceType() === "script") return;
          problems.push(`request failed: ${req.method()} ${req.url()} ${error}`);
        });
        p.on("response", (res) => {
          if (res.status() < 400) return;
          if (allowed.some((ok) => ok(res))) expectedUrls.add(res.url());
          else problems.push(`HTTP ${res.status()}: ${res.request().method()} ${res.url()}`);
        });
      };
      watchPage(page);
      await use({ problems, allow: (p) => allowed.push(p), page: watchPage });
      expect(problems, "console errors or warnings, or failed requests").toEqual([]);
    },
    { auto: true },
  ],
});

export { expect };

/** Waits until the page has hydrated (the app sets data-hydrated on <body>). */
export async function hydrated(page: Page): Promise<void> {
  await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
}

export const PASSWORD = "correct horse battery";

/**
 * Checks `user` in through the form (or registers them first); the app opens the room. `dpop`:
 * bind the stay to the browser's key (the form's default); off for the article's bearer tokens.
 */
export async function checkIn(page: Page, user: string, { register = false, dpop = true } = {}): Promise<void> {
  await page.goto(register ? "/register" : "/login");
  await hydrated(page);
  await page.getByTestId("bind-dpop").setChecked(dpop);
  await page.getByLabel("Username").fill(user);
  await page.getByLabel("Password").fill(PASSWORD);
  const button = register ? "Register and check in" : "Check in";
  await page.getByRole("button", { name: button, exact: true }).click();
  await expect(page).toHaveURL(/\/room$/);
}

/** Registers `user` through the form; the app checks them in and opens the room. */
export async function register(page: Page, user: string, { dpop = true } = {}): Promise<void> {
  await checkIn(page, user, { register: true, dpop });
}
