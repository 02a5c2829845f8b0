// The learner's sequence diagram: the session drawn as it happens (check-in, the doors, a silent
// trip to the front desk), step mode holding each request with the sentence that explains it, an
// exchange copied as curl and run, and the trace exported as HAR and replayed by Playwright's own
// HAR reader; and axe on each state, light and dark, desktop and phone.
import AxeBuilder from "@axe-core/playwright";
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Page } from "@playwright/test";
import { test, expect, register } from "./fixtures";

/** The key card of a check-in expires in 6 s here; the server grants 2 s of leeway past exp. */
async function waitForExpiry(page: Page) {
  await expect(page.getByTestId("stage")).toHaveAttribute("data-stage", "KeyCardExpired", { timeout: 15_000 });
  await page.waitForTimeout(2_700);
}

/** The diagram in words: one line an exchange, in order. */
function words(page: Page) {
  return page.getByTestId("sequence-words");
}

test("the diagram grows with the session, through a silent refresh, and each arrow opens its exchange", async ({ page, watch }) => {
  watch.allow((res) => res.status() === 401 && res.url().endsWith("/api/room/service"));
  await register(page, `seq${Date.now()}`, { dpop: false });
  const diagram = page.getByTestId("sequence-diagram");
  await expect(words(page)).toContainText("Step 1 check-in. The browser asks the front desk with the password: POST /api/auth/register.");
  await expect(words(page)).toContainText("a new booking: confirmation generation 1");
  for (const name of ["Browser", "Front desk", "Room", "Amenities", "Bookings"]) {
    await expect(diagram).toContainText(name);
  }

  // Step 2: the key card opens the room's door, which asks the bookings.
  await page.getByRole("button", { name: "Call room service" }).click();
  await expect(page.getByTestId("room-service-answer")).toContainText("Breakfast");
  await expect(words(page)).toContainText("Step 2 access. The browser asks the room with the key card: POST /api/room/service.");
  await expect(words(page)).toContainText("is the booking still live?");

  // Step 3: the key card expires; room service gets a 401, the page goes to the front desk with
  // its confirmation, the rotation is written, and the retry works.
  await waitForExpiry(page);
  await page.getByRole("button", { name: "Call room service" }).click();
  await expect(page.getByTestId("generation")).toHaveText("2");
  await expect(words(page)).toContainText("The room answers 401: key card expired.");
  await expect(words(page)).toContainText("Step 3 expiry and refresh. The browser asks the front desk with the confirmation: POST /api/auth/refresh.");
  await expect(words(page)).toContainText("rotation: generation 2 written, the old one void");
  const refresh = diagram.locator("g.arrow.request", { hasText: "POST /api/auth/refresh" });
  await expect(refresh).toHaveCount(1);
  await expect(diagram.locator(".step-number", { hasText: "3" }).first()).toBeVisible();

  // An arrow opens its exchange on the wire.
  const n = await refresh.getAttribute("data-exchange");
  await refresh.click();
  const row = page.locator(`#exchange-${n}`);
  await expect(row.locator("details")).toHaveAttribute("open", "");
  await expect(row).toHaveAttribute("data-path", "/api/auth/refresh");
  // README's picture (with KEYCARD_README_SHOTS=1, as tour.spec.ts does for its own).
  const shot = await page.getByTestId("sequence-diagram").screenshot();
  await test.info().attach("sequence-diagram", { body: shot, contentType: "image/png" });
  if (process.env.KEYCARD_README_SHOTS) {
    writeFileSync(join(__dirname, "..", "..", "docs", "screenshots", "sequence-diagram.png"), shot);
  }
});

test("step mode holds each request, says what it will send and why, and sends it on Next", async ({ page, watch }) => {
  watch.allow((res) => res.status() === 401 && res.url().endsWith("/api/room/service"));
  await register(page, `step${Date.now()}`, { dpop: false });
  await waitForExpiry(page);
  await page.getByTestId("step-mode").check();
  await page.getByRole("button", { name: "Call room service" }).click();

  // Held: the call to the room, with the key card the page holds (expired: the page does not
  // know yet that the door will refuse it).
  const held = page.getByTestId("held");
  await expect(held).toContainText("/api/room/service");
  await expect(page.getByTestId("held-why")).toContainText("The page shows your key card at the room's door");
  await expect(words(page)).toContainText("POST /api/room/service (held: step mode)");
  await page.getByTestId("step-next").click();

  // The door says 401; the trip to the front desk is held next, with the reason.
  await expect(held).toContainText("/api/auth/refresh");
  await expect(page.getByTestId("held-why")).toContainText(/Your key card expired \d+ s ago; the page now shows its booking confirmation to the front desk; the browser adds the cookie because of its Path=\/api\/auth\./);
  await expect(page.getByTestId("generation")).toHaveText("1");
  await page.getByTestId("step-next").click();
  await expect(page.getByTestId("generation")).toHaveText("2");

  // The retry is held too (and the timeline's reload of the booking's events, which the new
  // key card set off); leaving step mode lets everything go.
  await expect(held).toBeVisible();
  await expect(page.getByTestId("room-service-answer")).not.toContainText("Breakfast");
  await page.getByTestId("step-mode").uncheck();
  await expect(page.getByTestId("room-service-answer")).toContainText("Breakfast");
  await expect(held).toHaveCount(0);
});

test("an exchange copied as curl runs from a shell, and names the confirmation it cannot copy", async ({ page }) => {
  await register(page, `curl${Date.now()}`, { dpop: false });
  await page.getByRole("button", { name: "Call room service" }).click();
  await expect(page.getByTestId("room-service-answer")).toContainText("Breakfast");
  const service = page.locator('[data-testid="exchange"][data-path="/api/room/service"]').first();
  await service.locator("summary").click();
  const command = await service.getByTestId("curl").innerText();
  expect(command).toContain("Authorization: Bearer eyJ");
  // The very command, run by a shell, while the key card is valid.
  const answer = execFileSync("bash", ["-c", command], { encoding: "utf8", timeout: 10_000 });
  expect(answer).toMatch(/^HTTP\/1\.1 200/);
  expect(answer).toContain("Breakfast");

  // The front desk's exchange: the confirmation is a named placeholder, and the page says why.
  const desk = page.locator('[data-testid="exchange"][data-path="/api/auth/register"]').first();
  await desk.locator("summary").click();
  const register_ = await desk.getByTestId("curl").innerText();
  expect(register_).toContain('--data-urlencode "password=$KEYCARD_PASSWORD"');
  expect(register_).toContain("the page never copies a password");
});

test("the trace exports as HAR without a token value, and Playwright's HAR reader replays it", async ({ page, browser, baseURL }) => {
  await register(page, `har${Date.now()}`, { dpop: true });
  await page.getByRole("button", { name: "Call room service" }).click();
  await expect(page.getByTestId("room-service-answer")).toContainText("Breakfast");
  const [download] = await Promise.all([page.waitForEvent("download"), page.getByTestId("download-har").click()]);
  expect(download.suggestedFilename()).toBe("keycard-trace.har");
  const path = test.info().outputPath("keycard-trace.har");
  await download.saveAs(path);
  const text = readFileSync(path, "utf8");
  const har = JSON.parse(text);
  expect(har.log.version).toBe("1.2");
  const urls = har.log.entries.map((e: { request: { url: string } }) => e.request.url);
  expect(urls).toContain(`${baseURL}/api/room/service`);
  // No token, proof or cookie value: not the cookies this browser holds, not a JWT's first bytes.
  for (const cookie of await page.context().cookies()) {
    if (cookie.value.length > 8) expect(text).not.toContain(cookie.value);
  }
  expect(text).not.toContain("eyJ");
  expect(text).toContain("DPoP (redacted)");

  // A real consumer: a fresh browser whose /api/ requests are answered from the file alone.
  const replay = await browser.newContext({ baseURL });
  const other = await replay.newPage();
  await other.routeFromHAR(path, { url: "**/api/room/service", notFound: "abort" });
  await other.goto("/");
  const replayed = await other.evaluate(async () => {
    const res = await fetch("/api/room/service", { method: "POST" });
    return { status: res.status, type: res.headers.get("content-type") };
  });
  expect(replayed).toEqual({ status: 200, type: "application/json" });
  await replay.close();
});

// Every state of the panel (drawn, held in step mode, told in words), light and dark, desktop and
// phone: no axe violation, and nothing wider than the screen (the drawing scrolls in its frame).
for (const scheme of ["light", "dark"] as const) {
  for (const screen of [
    { name: "desktop", viewport: { width: 1280, height: 800 } },
    { name: "phone", viewport: { width: 360, height: 740 } },
  ] as const) {
    test.describe(`${scheme}, ${screen.name}`, () => {
      test.use({ colorScheme: scheme, viewport: screen.viewport });

      test("the diagram, step mode and the words pass axe", async ({ page }) => {
        await register(page, `axe${Date.now()}`, { dpop: false });
        await page.getByTestId("step-mode").check();
        await page.getByRole("button", { name: "Call room service" }).click();
        await expect(page.getByTestId("held")).toContainText("/api/room/service");
        await page.getByText("The diagram in words").click();
        await expect(words(page)).toContainText("held: step mode");
        const results = await new AxeBuilder({ page }).include('[data-testid="sequence"]').analyze();
        expect(results.violations.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target).join(", ")})`)).toEqual([]);
        const scrollWidth = await page.evaluate(() => document.documentElement.scrollWidth);
        expect(scrollWidth).toBeLessThanOrEqual(screen.viewport.width);
        await page.getByTestId("step-mode").uncheck();
        await expect(page.getByTestId("room-service-answer")).toContainText("Breakfast");
      });
    });
  }
}
