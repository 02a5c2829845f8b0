// Sender-constrained key cards (DPoP, RFC 9449) in Chromium: the check-in binds the stay to a
// WebCrypto key kept in IndexedDB, every call carries a fresh proof, a thief with a perfect copy
// of the key card or of the booking confirmation is refused and the booking lives on, a reload
// keeps the key, check-out drops it, and a check-in without JavaScript still works (bearer).
import type { Page } from "@playwright/test";
import { test, expect, hydrated, register, PASSWORD } from "./fixtures";

async function stage(page: Page) {
  return page.getByTestId("stage");
}

/** The DPoP key this browser keeps, as IndexedDB holds it: whether there is one, and whether its private half can be exported. */
async function storedKey(page: Page): Promise<{ present: boolean; extractable?: boolean }> {
  return page.evaluate(
    () =>
      new Promise((resolve) => {
        const open = indexedDB.open("keycard", 1);
        open.onupgradeneeded = () => open.result.createObjectStore("dpop");
        open.onsuccess = () => {
          const get = open.result.transaction("dpop").objectStore("dpop").get("key");
          get.onsuccess = () =>
            resolve(get.result ? { present: true, extractable: (get.result.private as CryptoKey).extractable } : { present: false });
          get.onerror = () => resolve({ present: false });
        };
        open.onerror = () => resolve({ present: false });
      }),
  );
}

test("a bound stay: every call carries a proof, and a thief with perfect copies is refused", async ({ page }) => {
  await register(page, `bound${Date.now()}`);
  await expect(page.getByTestId("binding")).toHaveAttribute("data-bound", "true");
  // The key: in IndexedDB, its private half not exportable.
  expect(await storedKey(page)).toEqual({ present: true, extractable: false });
  // The key card names it.
  await expect(page.getByTestId("key-card")).toContainText("cnf");

  // Room service carries Authorization: DPoP and a proof made for that one request.
  await page.getByRole("button", { name: "Call room service" }).click();
  await expect(page.getByTestId("room-service-answer")).toContainText("Breakfast");
  const wire = page.getByTestId("wire");
  const service = wire.locator('[data-testid="exchange"][data-path="/api/room/service"]').first();
  await expect(service).toHaveAttribute("data-status", "200");
  await service.locator("summary").click();
  await expect(service).toContainText("authorization");
  await expect(service).toContainText("DPoP eyJ");
  const proof = service.getByTestId("wire-proof");
  await expect(proof).toHaveAttribute("data-htm", "POST");
  await expect(proof).toHaveAttribute("data-htu", /\/api\/room\/service$/);
  await expect(proof).toContainText("ath");

  // A thief with a perfect copy of the key card: refused at the gym, as a bearer token and with
  // a proof of its own key.
  await page.getByRole("button", { name: "A thief copies my key card" }).click();
  const said = page.getByTestId("demo-said");
  await expect(said).toContainText("As a bearer token: refused (missing");
  await expect(said).toContainText("With a proof of its own key: refused (key");

  // A thief with a perfect copy of the booking confirmation (and a key of its own): stopped,
  // and the booking lives on.
  await page.getByRole("button", { name: "A thief copies my booking confirmation" }).click();
  await expect(said).toContainText("copied");
  await page.getByRole("button", { name: "The thief uses it" }).click();
  await expect(said).toContainText("Stopped");
  await expect(await stage(page)).toHaveAttribute("data-stage", "CheckedIn");
  await page.getByRole("button", { name: "Call room service" }).click();
  await expect(page.getByTestId("room-service-answer")).toContainText("Breakfast");
});

test("the forge lab names each proof forgery by its rule", async ({ page }) => {
  await register(page, `prover${Date.now()}`);
  const lab = page.getByTestId("forge-lab");
  const answer = page.getByTestId("lab-answer");
  for (const [button, rule] of [
    ["A fresh proof", "genuine"],
    ["The same proof twice", "jti"],
    ["A proof for another URL", "htu"],
    ["A proof for another method", "htm"],
    ["A proof by another key", "key"],
    ["A proof without the key card's hash", "ath"],
  ]) {
    await lab.getByRole("button", { name: button, exact: true }).click();
    await expect(answer.locator(".lab-answer")).toHaveAttribute("data-rule", rule);
    if (rule !== "genuine") await expect(answer).toContainText("RFC 9449");
  }
});

test("a reload keeps the key, and check-out drops it", async ({ page, watch }) => {
  // The expired key card on the reloaded page goes to the front desk (with its proof).
  watch.allow((res) => res.status() === 401);
  await register(page, `reload${Date.now()}`);
  await page.reload();
  await hydrated(page);
  await expect(page.getByTestId("binding")).toHaveAttribute("data-bound", "true");
  await page.getByRole("button", { name: "Call room service" }).click();
  await expect(page.getByTestId("room-service-answer")).toContainText("Breakfast");
  // After its key card expired (6 s here): the front desk takes the bound confirmation with a
  // proof of the same key, and the new key card is bound again.
  await expect(await stage(page)).toHaveAttribute("data-stage", "KeyCardExpired", { timeout: 15_000 });
  await page.waitForTimeout(2_700);
  await page.reload();
  await hydrated(page);
  await expect(await stage(page)).toHaveAttribute("data-stage", "CheckedIn");
  await expect(page.getByTestId("generation")).toHaveText("2");
  await expect(page.getByTestId("binding")).toHaveAttribute("data-bound", "true");

  await page.getByRole("button", { name: "Check out", exact: true }).click();
  await expect(await stage(page)).toHaveAttribute("data-stage", "CheckedOut");
  await expect.poll(() => storedKey(page)).toEqual({ present: false });
});

test("a check-in without JavaScript still works, with a bearer key card", async ({ browser, baseURL, watch }) => {
  const context = await browser.newContext({ javaScriptEnabled: false, baseURL });
  const page = await context.newPage();
  watch.page(page, { noScript: true });
  await page.goto("/register");
  await expect(page.getByTestId("binding-note")).toContainText("Without JavaScript");
  await page.getByLabel("Username").fill(`nojs${Date.now()}`);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Register and check in" }).click();
  await expect(page).toHaveURL(/\/room$/);
  await expect(page.getByTestId("binding")).toHaveAttribute("data-bound", "false");
  await context.close();
});

test("the learner can choose the article's bearer key card", async ({ page }) => {
  await register(page, `bearer${Date.now()}`, { dpop: false });
  await expect(page.getByTestId("binding")).toHaveAttribute("data-bound", "false");
  await page.getByRole("button", { name: "A thief copies my key card" }).click();
  await expect(page.getByTestId("demo-said")).toContainText("As a bearer token: the door opened");
});
