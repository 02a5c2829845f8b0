// The learner's lab, told as part of the story: the wire shows what travels (the front desk's
// Set-Cookie with Path=/api/auth), the forge lab refuses each forgery with its own reason, the
// article's step 4 ends back at check-in, and the key card reads as dates and explanations.
// Key cards last 6 s on the test server (global-setup.ts).
import type { BrowserContext, Page } from "@playwright/test";
import { test, expect, register } from "./fixtures";

async function waitForExpiry(page: Page) {
  await expect(page.getByTestId("stage")).toHaveAttribute("data-stage", "KeyCardExpired", { timeout: 15_000 });
  // The server grants 2 s of clock-skew leeway past exp.
  await page.waitForTimeout(2_700);
}

/** The values of the HttpOnly cookies this browser holds (Playwright can read what scripts cannot). */
async function httpOnlyValues(context: BrowserContext): Promise<string[]> {
  const cookies = await context.cookies();
  return cookies.filter((c) => c.httpOnly && c.value).map((c) => c.value);
}

test("the wire shows every exchange, and the front desk's Set-Cookie with Path=/api/auth", async ({ page, context, watch }) => {
  watch.allow((res) => res.status() === 401);
  await register(page, `wire${Date.now()}`);
  const wire = page.getByTestId("wire");
  // The check-in itself: both cookies set, described by the server, their values hidden.
  const checkIn = wire.locator('[data-testid="exchange"][data-path="/api/auth/register"]');
  await expect(checkIn).toHaveAttribute("data-status", "201");
  await checkIn.locator("summary").click();
  await expect(checkIn.locator('[data-name="__Secure-confirmation"]')).toContainText("booking confirmation, generation 1");
  await expect(checkIn.locator('[data-name="__Host-keycard"]')).toContainText("Path=/;");

  // Room service after the key card expired: 401, the front desk, the retry.
  await waitForExpiry(page);
  await page.getByRole("button", { name: "Call room service" }).click();
  await expect(page.getByTestId("room-service-answer")).toContainText("Breakfast");
  const service = wire.locator('[data-testid="exchange"][data-path="/api/room/service"]');
  await expect(service.first()).toHaveAttribute("data-status", "401");
  await expect(service.nth(1)).toHaveAttribute("data-status", "200");
  const desk = wire.locator('[data-testid="exchange"][data-path="/api/auth/refresh"]').first();
  await expect(desk).toHaveAttribute("data-status", "200");
  await desk.locator("summary").click();
  const confirmation = desk.locator('[data-name="__Secure-confirmation"]');
  await expect(confirmation).toContainText("Path=/api/auth");
  await expect(confirmation).toContainText("HttpOnly");
  await expect(confirmation).toContainText("SameSite=Strict");
  await expect(confirmation).toContainText("generation 2");
  await expect(confirmation).toContainText("Value hidden");
  // The browser sent the confirmation to the front desk, and to nowhere else.
  await expect(desk.getByTestId("cookies-sent")).toContainText("__Secure-confirmation");
  await service.nth(1).locator("summary").click();
  await expect(service.nth(1).getByTestId("cookies-sent")).toHaveText("__Host-keycard");
  await expect(service.nth(1)).toContainText("keeps it from every other path");
  // The exchanges are on the timeline too, on the same clock.
  await expect(page.getByTestId("timeline")).toContainText("POST /api/auth/refresh → 200");

  // No HttpOnly cookie's value is in the wire panel, and the booking confirmation (which no
  // answer body carries) is nowhere on the page.
  // textContent: the closed exchanges too.
  // (The key card the page holds in memory goes into the copied curl commands, and only there.)
  const [wireText, html] = [(await wire.textContent()) ?? "", await page.content()];
  let described = wireText;
  for (const command of await wire.getByTestId("curl").allTextContents()) described = described.split(command).join("");
  const secrets = await httpOnlyValues(context);
  expect(secrets.length).toBe(2);
  for (const value of secrets) expect(described).not.toContain(value);
  const confirmationValue = (await context.cookies()).find((c) => c.name === "__Secure-confirmation")!.value;
  expect(html).not.toContain(confirmationValue);
  expect(html).not.toContain(confirmationValue.split(".")[2]);
});

test("each forgery in the lab is refused with its own reason", async ({ page, context, watch }) => {
  test.setTimeout(90_000);
  watch.allow((res) => res.status() === 401);
  await register(page, `forger${Date.now()}`);
  const lab = page.getByTestId("forge-lab");
  const answer = page.getByTestId("lab-answer");
  const tryPreset = async (name: string, rule: string) => {
    await lab.getByRole("button", { name, exact: true }).click();
    await expect(answer.locator(".lab-answer")).toHaveAttribute("data-rule", rule);
  };
  await tryPreset("alg: none", "algorithm");
  await expect(answer).toContainText("RFC 8725 §3.1");
  await tryPreset("alg: HS256", "algorithm");
  await tryPreset("kid: unknown", "key");
  await tryPreset("sub: another guest", "signature");
  await tryPreset("Signature: one character changed", "signature");
  await tryPreset("aud: another API", "signature");
  // Had the signature held, the audience would have refused it next.
  await expect(answer.getByTestId("lab-also").locator('[data-rule="audience"]')).toBeVisible();
  await tryPreset("Booking confirmation at an amenity door", "type");
  await tryPreset("Key card at the front desk", "type");
  // Edited by hand: a typ that is not a key card's.
  await lab.getByRole("button", { name: "Start again from my key card" }).click();
  await expect(lab.getByLabel("Door:")).toHaveValue("amenity");
  const header = lab.getByTestId("lab-header");
  await header.fill((await header.inputValue()).replace('"at+jwt"', '"refresh+jwt"'));
  await lab.getByRole("button", { name: "Show it at the door" }).click();
  await expect(answer.locator(".lab-answer")).toHaveAttribute("data-rule", "type");

  // The key card as it was, after it expired: the page renews its own at the front desk, and the
  // old one is refused as expired.
  await waitForExpiry(page);
  await tryPreset("Unchanged", "expired");
  // The renewed one, unchanged, passes every rule; the lab opens nothing with it.
  await tryPreset("Unchanged", "genuine");
  await expect(answer).toContainText("every rule holds");
  // The booking confirmation went to the lab (under /api/auth) but never to the page.
  const confirmation = (await context.cookies()).find((c) => c.name === "__Secure-confirmation")!.value;
  expect(await page.content()).not.toContain(confirmation.split(".")[2]);
});

test("step 4: the whole booking lapses, the front desk turns the page away, and it returns to check-in", async ({ page, watch }) => {
  watch.allow((res) => res.status() === 401);
  const user = `lapse${Date.now()}`;
  await register(page, user);
  await page.getByRole("button", { name: "Let my whole booking lapse in 10 s" }).click();
  await expect(page.getByTestId("demo-said")).toContainText("lapses in 10 s");
  // Both tokens lapse; the page goes to the front desk, which answers session_expired.
  const refused = page.waitForResponse(
    (res) => res.url().endsWith("/api/auth/refresh") && res.status() === 401,
    { timeout: 25_000 },
  );
  expect(await (await refused).json()).toMatchObject({ error: "session_expired" });
  await expect(page).toHaveURL(/\/login\?error=session_expired&next=%2Froom$/);
  await expect(page.getByTestId("form-error")).toContainText("Your booking lapsed");
  await expect(page.getByTestId("stage")).toHaveAttribute("data-stage", "BookingLapsed");
  // The lobby marks step 4 as where the guest stands.
  await page.getByRole("link", { name: "Keycard" }).click();
  await expect(page.locator(".step.here")).toContainText("Check-out");
  await expect(page.locator(".step.here")).toContainText("You are here");
  // And checking in again works.
  await page.goto("/login?next=/room");
  await page.getByLabel("Username").fill(user);
  await page.getByLabel("Password").fill("correct horse battery");
  await page.getByRole("button", { name: "Check in", exact: true }).click();
  await expect(page).toHaveURL(/\/room$/);
  await expect(page.getByTestId("stage")).toHaveAttribute("data-stage", "CheckedIn");
});

test("the key card reads as dates and explains each claim on hover and keyboard focus", async ({ page }) => {
  await register(page, `reader${Date.now()}`);
  const card = page.getByTestId("key-card");
  // The header's names sit on one line each (they once wrapped one letter per line).
  for (const name of ["alg", "kid", "typ"]) {
    const cell = page.getByTestId("header-claims").getByRole("rowheader", { name, exact: true });
    const box = (await cell.boundingBox())!;
    expect(box.height, `${name} on one line`).toBeLessThan(40);
    expect(box.width).toBeGreaterThan(20);
  }
  // Time claims: the number, a local date and time, and how long ago or ahead.
  const exp = page.getByTestId("claims").getByRole("row").filter({ hasText: /^exp/ });
  await expect(exp.locator(".when")).toContainText(/\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \(UTC[+-]\d\d:\d\d\)/);
  await expect(exp.locator(".ago")).toContainText(/^in \d+ s$/);
  const iat = page.getByTestId("claims").getByRole("row").filter({ hasText: /^iat/ });
  await expect(iat.locator(".ago")).toContainText(/^(now|\d+ s ago)$/);
  // Each claim explained on hover...
  const sub = card.locator(".claim", { hasText: /^sub$/ });
  const tip = card.locator("#kc-claim-sub");
  await expect(tip).toBeHidden();
  await sub.hover();
  await expect(tip).toBeVisible();
  await expect(tip).toContainText("subject");
  // ...and on keyboard focus, announced as the name's description.
  await page.mouse.move(0, 0);
  const alg = card.locator(".claim", { hasText: /^alg$/ });
  await alg.focus();
  await expect(card.locator("#kc-header-alg")).toBeVisible();
  await expect(alg).toHaveAccessibleDescription(/algorithm: EdDSA/);
  await page.keyboard.press("Tab");
  await expect(card.locator("#kc-header-alg")).toBeHidden();
});
