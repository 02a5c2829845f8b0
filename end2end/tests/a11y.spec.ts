import AxeBuilder from "@axe-core/playwright";
import { test, expect, hydrated } from "./fixtures";

for (const path of ["/", "/login", "/register"]) {
  test(`${path} has no accessibility violations`, async ({ page }) => {
    await page.goto(path);
    await hydrated(page);
    const results = await new AxeBuilder({ page }).analyze();
    expect(results.violations.map((v) => `${v.id}: ${v.help}`)).toEqual([]);
  });
}

test("the room has no accessibility violations", async ({ page }) => {
  await page.goto("/register");
  await hydrated(page);
  await page.getByLabel("Username").fill(`axe${Date.now()}`);
  await page.getByLabel("Password").fill("correct horse battery");
  await page.getByRole("button", { name: "Register and check in" }).click();
  await expect(page).toHaveURL(/\/room$/);
  for (const path of ["/room", "/sessions", "/amenities"]) {
    await page.goto(path);
    await hydrated(page);
    const results = await new AxeBuilder({ page }).analyze();
    expect(results.violations.map((v) => `${path} ${v.id}: ${v.help}`)).toEqual([]);
  }
});
