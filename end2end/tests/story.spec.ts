// The whole stay, as the article tells it, in a real browser against a server whose key cards
// last 6 s and whose grace window is 3 s (see global-setup.ts).
import type { Page } from "@playwright/test";
import { test, expect, hydrated, register, checkIn as fillCheckIn } from "./fixtures";

async function shot(page: Page, name: string) {
  await page.screenshot({ path: test.info().outputPath(`${name}.png`), fullPage: true });
}

/** No token anywhere a script can read. */
async function expectNoTokenInScriptReach(page: Page) {
  const exposed = await page.evaluate(() => {
    const values = [document.cookie];
    for (const store of [localStorage, sessionStorage]) {
      for (let i = 0; i < store.length; i++) values.push(`${store.key(i)}=${store.getItem(store.key(i)!)}`);
    }
    return values.join("\n");
  });
  expect(exposed).not.toContain("eyJ");
}

async function stage(page: Page) {
  return page.getByTestId("stage");
}

async function waitForExpiry(page: Page) {
  await expect(await stage(page)).toHaveAttribute("data-stage", "KeyCardExpired", { timeout: 15_000 });
  // The server grants 2 s of clock-skew leeway past exp.
  await page.waitForTimeout(2_700);
}

// The article's stay: bearer tokens, so that a thief's copy is detected (DPoP prevents it:
// dpop.spec.ts).
async function checkIn(page: Page, user: string) {
  await fillCheckIn(page, user, { dpop: false });
  await expect(await stage(page)).toHaveAttribute("data-stage", "CheckedIn");
}

test("a stay from check-in to check-out", async ({ page, context, browser, watch }) => {
  test.setTimeout(120_000);
  // Expected along the way: 401s for expired key cards, the replayed confirmation, and the
  // booking ended from another device.
  watch.allow((res) => res.status() === 401);
  const user = `guest${Date.now()}`;

  // Register: checked in straight away.
  await register(page, user, { dpop: false });
  await expect(await stage(page)).toHaveAttribute("data-stage", "CheckedIn");
  await expect(page.getByTestId("guest-name")).toHaveText(user);
  await expect(page.getByTestId("generation")).toHaveText("1");
  // The demo controls are a setting of the server: there for a stay begun on this very page.
  await expect(page.getByRole("button", { name: "A thief copies my booking confirmation" })).toBeVisible();
  await expectNoTokenInScriptReach(page);

  // Inspect the key card: header, payload and signature apart, every claim explained.
  const card = page.getByTestId("key-card");
  await expect(card).toContainText("at+jwt");
  await expect(card).toContainText("EdDSA");
  for (const claim of ["iss", "sub", "aud", "exp", "iat", "jti", "client_id", "sid"]) {
    await expect(page.getByTestId("claims").getByRole("rowheader", { name: claim, exact: true })).toBeVisible();
  }
  await expect(page.getByTestId("key-card-left")).not.toHaveText("expired");
  await shot(page, "01-checked-in-key-card");

  // Let it expire: the countdown reaches zero and the stage says so.
  await waitForExpiry(page);
  await expect(page.getByTestId("key-card-left")).toHaveText("expired");
  await shot(page, "02-key-card-expired");

  // Room service: 401, a silent trip to the front desk (generation 1 -> 2), a retry that works.
  await page.getByRole("button", { name: "Call room service" }).click();
  await expect(page.getByTestId("room-service-answer")).toContainText("Breakfast");
  await expect(page.getByTestId("generation")).toHaveText("2");
  const timeline = page.getByTestId("timeline");
  await expect(timeline).toContainText("401, the key card has expired");
  await expect(timeline).toContainText("new key card and confirmation (generation 2)");
  await expect(timeline).toContainText("Room service: retried with the new key card");
  await expect(timeline).toContainText("Front desk: confirmation rotated");
  await expectNoTokenInScriptReach(page);
  await shot(page, "03-silent-refresh-timeline");

  // Two tabs whose key cards expire together refresh at the same moment: both stay checked in.
  const tab2 = await context.newPage();
  watch.page(tab2);
  await tab2.goto("/room");
  await hydrated(tab2);
  await expect(await stage(tab2)).toHaveAttribute("data-stage", "CheckedIn");
  await waitForExpiry(page);
  await Promise.all([
    page.getByRole("button", { name: "Call room service" }).click(),
    tab2.getByRole("button", { name: "Call room service" }).click(),
  ]);
  for (const p of [page, tab2]) {
    await expect(p.getByTestId("room-service-answer")).toContainText("Breakfast");
    await expect(await stage(p)).toHaveAttribute("data-stage", "CheckedIn");
  }
  await shot(tab2, "04-two-tabs-both-checked-in");

  // A thief copies the booking confirmation; the guest visits the front desk after that, so the
  // copy is stale; once the grace window has passed, the thief's replay cancels the booking in
  // both tabs.
  await page.getByRole("button", { name: "A thief copies my booking confirmation" }).click();
  await expect(page.getByTestId("demo-said")).toContainText("copied");
  await waitForExpiry(page);
  await page.getByRole("button", { name: "Call room service" }).click();
  await expect(page.getByTestId("room-service-answer")).toContainText("Breakfast");
  await page.waitForTimeout(3_500);
  await page.getByRole("button", { name: "The thief uses it" }).click();
  for (const p of [page, tab2]) {
    await expect(await stage(p)).toHaveAttribute("data-stage", "BookingCancelled");
    await expect(p.getByTestId("booking-cancelled")).toBeVisible();
  }
  await shot(page, "05-theft-detected");
  await tab2.close();

  // Check in again, and from a second device; end that device's booking from the bookings page.
  await checkIn(page, user);
  const other = await browser.newContext();
  const device2 = await other.newPage();
  watch.page(device2);
  await checkIn(device2, user);
  await page.goto("/sessions");
  await hydrated(page);
  const others = page.getByTestId("bookings").locator(".booking:not(.current):not(.ended)");
  await expect(others).toHaveCount(1);
  await others.getByRole("button", { name: "End this booking" }).click();
  await expect(others).toHaveCount(0);
  await shot(page, "06-bookings");
  await device2.getByRole("button", { name: "Call room service" }).click();
  await expect(await stage(device2)).toHaveAttribute("data-stage", "BookingCancelled");
  await other.close();

  // The trade-off: after this booking is cancelled, its unexpired key card still opens the gym
  // (public keys only) while room service (which checks the booking) refuses at once.
  await page.goto("/amenities");
  await hydrated(page);
  await page.getByRole("button", { name: "Open the gym" }).click();
  await expect(page.getByTestId("amenity-answer")).toContainText("HTTP 200");
  await expect(page.getByTestId("amenity-answer")).toContainText("public keys");
  const jwks = await (await page.request.get("/.well-known/jwks.json")).json();
  await expect(page.getByTestId("amenity-answer")).toContainText(jwks.keys[0].kid);
  await page.getByRole("button", { name: /Cancel this booking/ }).click();
  await expect(page.getByTestId("tradeoff")).toHaveText(
    "Booking cancelled. Gym (public keys only): HTTP 200. Room service (checks the booking): HTTP 401 session_revoked.",
  );
  await shot(page, "07-amenities-trade-off");
  await checkIn(page, user);

  // Check out: both tokens void; the room sends a visitor to check-in and back.
  await page.getByRole("button", { name: "Check out", exact: true }).click();
  await expect(await stage(page)).toHaveAttribute("data-stage", "CheckedOut");
  // Within the app (no reload), "Check in" opens the form rather than the room it left.
  await page.getByRole("banner").getByRole("link", { name: "Check in" }).click();
  await expect(page).toHaveURL(/\/login$/);
  await expect(page.getByRole("button", { name: "Check in", exact: true })).toBeVisible();
  await page.goto("/room");
  await expect(page).toHaveURL(/\/login\?next=%2Froom$/);
  await expectNoTokenInScriptReach(page);
  await shot(page, "08-checked-out");
});

test("check-in works before hydration and shows its errors", async ({ watch, browser }) => {
  const noJs = await browser.newContext({ javaScriptEnabled: false });
  const p = await noJs.newPage();
  watch.page(p, { noScript: true });
  await p.goto("/login?next=/sessions");
  await p.getByLabel("Username").fill("nobody-here");
  await p.getByLabel("Password").fill("wrong password");
  await p.getByRole("button", { name: "Check in", exact: true }).click();
  await expect(p).toHaveURL(/\/login\?next=\/sessions&error=invalid_credentials$/);
  await expect(p.getByTestId("form-error")).toHaveText("Wrong username or password.");
  await noJs.close();
});

test("a directly loaded room renders checked in, and an expired key card goes to the front desk", async ({ page, watch }) => {
  test.setTimeout(60_000);
  watch.allow((res) => res.status() === 401);
  const user = `direct${Date.now()}`;
  await register(page, user);

  // Server-rendered HTML of /room already says checked in.
  const html = await (await page.request.get("/room")).text();
  expect(html).toContain(user);
  expect(html).not.toContain("Check-in</h1>");

  await waitForExpiry(page);
  // With an expired key card the server renders the front desk, not a signed-out page or a
  // redirect to check-in...
  const expired = await page.request.get("/room", { maxRedirects: 0 });
  expect(expired.status()).toBe(200);
  const expiredHtml = await expired.text();
  expect(expiredHtml).toContain("At the front desk");
  expect(expiredHtml).not.toContain("Check-in</h1>");
  // ...and the hydrated page goes there and comes back with a new key card.
  await page.goto("/room");
  await expect(page.getByTestId("generation")).toHaveText("2");
  await expect(await stage(page)).toHaveAttribute("data-stage", "CheckedIn");
});

test("a directly loaded checked-in page hydrates what the server sent, even when its code arrives after the front desk answered", async ({ page, watch }) => {
  test.setTimeout(90_000);
  watch.allow((res) => res.status() === 401);
  const user = `late${Date.now()}`;
  await register(page, user);

  // The room, the amenities, the bookings and a device's approval are lazy routes: each one's code is a chunk of its
  // own (`--split`). Hold every chunk back until the page, loaded with an expired key card, could
  // have been to the front desk and back many times: a page that went there before it had
  // hydrated would render another page than the one the server sent, and fail to hydrate (a
  // page error, which `watch` catches).
  let held = 0;
  await page.route(/\/pkg\/(?!keycard[._])[^/]+\.wasm$/, async (route) => {
    held += 1;
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    await route.continue();
  });
  for (const [path, ready] of [
    ["/room", "generation"],
    ["/amenities", "amenity-answer"],
    ["/sessions", "bookings"],
    ["/device", "device-error"],
  ] as const) {
    await waitForExpiry(page);
    held = 0;
    await page.goto(path);
    await hydrated(page);
    await expect(await stage(page)).toHaveAttribute("data-stage", "CheckedIn");
    await expect(page.getByTestId(ready)).toBeAttached();
    expect(held, `${path}'s code came as chunks of its own`).toBeGreaterThan(0);
  }

  // And the page works: the room's protected call goes through.
  await page.goto("/room");
  await hydrated(page);
  await page.getByRole("button", { name: "Call room service" }).click();
  await expect(page.getByTestId("room-service-answer")).toContainText("Breakfast");
});

test("a loaded page hydrates in steps: the last panel's browser-only parts come in a task of their own", async ({ page }) => {
  await register(page, `steps${Date.now()}`);
  // What the page holds at the moment it says it has hydrated (`data-hydrated`): a mutation
  // observer's callback runs before the browser's next task, so it sees what that task did.
  await page.addInitScript(() => {
    new MutationObserver((_, observer) => {
      if (!document.body?.hasAttribute("data-hydrated")) return;
      observer.disconnect();
      const w = window as unknown as { atHydrated: Record<string, boolean> };
      w.atHydrated = {
        // The wire panel is the room's last panel hydrated later (HydrateLater)...
        wire: document.querySelector('[data-testid="wire"]') !== null,
        // ...and its trace button is browser-only (ClientOnly): mounted in a task after it, not in
        // the task that hydrated the panel, which would then run long on a phone.
        har: document.querySelector('[data-testid="download-har"]') !== null,
      };
    }).observe(document, { attributes: true, subtree: true, attributeFilter: ["data-hydrated"] });
  });
  await page.goto("/room");
  await hydrated(page);
  const at = await page.evaluate(() => (window as unknown as { atHydrated?: Record<string, boolean> }).atHydrated);
  expect(at).toEqual({ wire: true, har: false });
  await expect(page.getByTestId("download-har")).toBeVisible();
});
