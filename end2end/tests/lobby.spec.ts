import { test, expect, hydrated } from "./fixtures";

test("the lobby renders on the server and hydrates without errors", async ({ page }) => {
  const response = await page.goto("/");
  expect(response?.status()).toBe(200);
  // Server-rendered content is there before any script runs.
  await expect(page.getByRole("heading", { level: 1 })).toHaveText("Welcome to the Keycard hotel");
  const csp = response?.headers()["content-security-policy"] ?? "";
  expect(csp).toContain("frame-ancestors 'none'");
  expect(csp).toMatch(/'nonce-[^']+'/);

  await hydrated(page);
  // Only a hydrated page reacts to clicks: pick step 3 and see its text.
  await page.getByRole("button", { name: /Key card expires/ }).click();
  await expect(page.getByTestId("step-text")).toContainText("stops opening doors");
  await expect(page.getByRole("button", { name: /Key card expires/ })).toHaveAttribute("aria-pressed", "true");
});

test("unknown pages answer 404", async ({ page, watch }) => {
  watch.allow((res) => res.status() === 404 && res.url().endsWith("/no-such-room"));
  const response = await page.goto("/no-such-room");
  expect(response?.status()).toBe(404);
  await expect(page.getByRole("heading", { name: "No such room" })).toBeVisible();
});
