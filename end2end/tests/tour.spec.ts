// The learner's tour on a phone-sized window, as README tells it: register, watch the wire while
// room service triggers a silent refresh, forge an `alg: none` key card and read why it was
// refused, let the whole booking lapse and be asked to check in again. Screenshots are attached
// to the test's output; with KEYCARD_README_SHOTS=1 they also replace README's own
// (docs/screenshots/phone-*.png).
import type { Page } from "@playwright/test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { test, expect, register } from "./fixtures";

test.use({ viewport: { width: 360, height: 740 } });

async function shot(page: Page, name: string, target?: string) {
  const body = target ? await page.locator(target).screenshot() : await page.screenshot();
  await test.info().attach(name, { body, contentType: "image/png" });
  if (process.env.KEYCARD_README_SHOTS) {
    writeFileSync(join(__dirname, "..", "..", "docs", "screenshots", `phone-${name}.png`), body);
  }
}

test("a learner's tour on a phone", async ({ page, context, watch }) => {
  test.setTimeout(90_000);
  watch.allow((res) => res.status() === 401);
  await register(page, `tour${Date.now()}`);
  await expect(page.getByTestId("stage")).toHaveAttribute("data-stage", "CheckedIn");
  await page.getByTestId("key-card").scrollIntoViewIfNeeded();
  await shot(page, "key-card");

  // Room service once the key card has expired: the page renews it at the front desk, silently.
  await expect(page.getByTestId("stage")).toHaveAttribute("data-stage", "KeyCardExpired", { timeout: 15_000 });
  await page.waitForTimeout(2_700);
  await page.getByRole("button", { name: "Call room service" }).click();
  await expect(page.getByTestId("room-service-answer")).toContainText("Breakfast");
  const desk = page.getByTestId("wire").locator('[data-testid="exchange"][data-path="/api/auth/refresh"]').first();
  await desk.locator("summary").click();
  await expect(desk.locator('[data-name="__Secure-confirmation"]')).toContainText("Path=/api/auth");
  await desk.scrollIntoViewIfNeeded();
  await shot(page, "wire", '[data-testid="wire"]');
  const confirmation = (await context.cookies()).find((c) => c.name === "__Secure-confirmation")!.value;

  // A forged key card: alg none, no signature.
  const lab = page.getByTestId("forge-lab");
  await lab.getByRole("button", { name: "alg: none", exact: true }).click();
  await expect(page.getByTestId("lab-answer").locator(".lab-answer")).toHaveAttribute("data-rule", "algorithm");
  await expect(page.getByTestId("lab-answer")).toContainText("refused");
  await shot(page, "forge-lab", '[data-testid="forge-lab"]');
  // The booking confirmation, which only ever travels in its HttpOnly cookie, is nowhere in the
  // page: not in the wire, not in the lab.
  expect(await page.content()).not.toContain(confirmation.split(".")[2]);

  // Step 4: the whole booking lapses, and the page asks for a check-in.
  await page.getByRole("button", { name: "Let my whole booking lapse in 10 s" }).click();
  await expect(page).toHaveURL(/\/login\?error=session_expired/, { timeout: 25_000 });
  await expect(page.getByTestId("form-error")).toContainText("Your booking lapsed");
  await shot(page, "lapsed");

  // The front desk cleared both cookies with its refusal.
  expect((await context.cookies()).filter((c) => c.httpOnly && c.value)).toEqual([]);
});
