// The hostile `next` table (app/hostile-next.json, which the Rust unit test checks too) driven
// through the real check-in form in Chromium, with JavaScript on and off: whatever `next` says,
// the browser never leaves the site, and lands exactly where the redirect decision says.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test, expect, hydrated, PASSWORD } from "./fixtures";
import type { BrowserContext, Page } from "@playwright/test";

type Row = { name: string; next: string; expect: string };
const rows: Row[] = JSON.parse(readFileSync(join(__dirname, "..", "..", "app", "hostile-next.json"), "utf8"));
// Too long for the JSON file, and longer than a target may be (2048 bytes). The Rust test uses
// longer ones still; a browser cannot carry those through this flow: the server refuses a URL
// over 64 KB (414, hyper's limit), and Chromium cuts a Referer over 4 KB down to the origin.
rows.push({ name: "very long path", next: "/" + "a".repeat(3_000), expect: "/room" });
rows.push({ name: "very long host", next: "//" + "a".repeat(3_000) + ".example", expect: "/room" });

/** Records every attempt to leave the site (requests elsewhere are refused) and every dialog. */
async function guard(context: BrowserContext, page: Page, base: string): Promise<string[]> {
  const escapes: string[] = [];
  await context.route(
    (url) => url.origin !== base,
    (route) => {
      escapes.push(route.request().url());
      return route.abort();
    },
  );
  page.on("dialog", (dialog) => {
    escapes.push(`dialog: ${dialog.message()}`);
    return dialog.dismiss();
  });
  page.on("framenavigated", (frame) => {
    const url = frame.url();
    if (!url.startsWith(base) && url !== "about:blank") escapes.push(`navigated: ${url}`);
  });
  return escapes;
}

const guest = `redirect${Date.now() % 1_000_000_000}`;

test.beforeAll(async ({ request }) => {
  const res = await request.post("/api/auth/register", { form: { username: guest, password: PASSWORD } });
  expect(res.status()).toBe(201);
});

for (const javaScript of [true, false]) {
  test.describe(`JavaScript ${javaScript ? "on" : "off"}`, () => {
    for (const row of rows) {
      test(`next = ${row.name}`, async ({ browser, baseURL, watch }) => {
        const base = new URL(baseURL!).origin;
        const context = await browser.newContext({ javaScriptEnabled: javaScript, baseURL });
        const page = await context.newPage();
        watch.page(page, { noScript: !javaScript });
        // Targets that stay on the site but name no page end on the 404 page.
        watch.allow((res) => res.status() === 404 && res.url().startsWith(base));
        const escapes = await guard(context, page, base);
        const landed = base + row.expect;

        // The table is written for a site at 127.0.0.1:3000 (as the Rust test resolves it);
        // this server listens elsewhere, so its absolute same-origin rows name this origin.
        const next = row.next.replaceAll("127.0.0.1:3000", new URL(base).host);
        await page.goto(`/login?next=${encodeURIComponent(next)}`);
        if (javaScript) await hydrated(page);
        // The link to registration carries the decided target, not the raw input.
        const href = await page.getByRole("link", { name: "Register" }).getAttribute("href");
        expect(new URL(href!, base).searchParams.get("next")).toBe(row.expect);
        await page.getByLabel("Username").fill(guest);
        await page.getByLabel("Password").fill(PASSWORD);
        await page.getByRole("button", { name: "Check in", exact: true }).click();
        await expect(page).toHaveURL(landed);

        // Checked in now: the same link redirects at once (on the server without JavaScript).
        await page.goto(`/login?next=${encodeURIComponent(next)}`);
        await expect(page).toHaveURL(landed);

        expect(escapes, "attempts to leave the site").toEqual([]);
        await context.close();
      });
    }
  });
}
