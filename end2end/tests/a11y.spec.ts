import AxeBuilder from "@axe-core/playwright";
import { test, expect, hydrated, register } from "./fixtures";

for (const path of ["/", "/login", "/register"]) {
  test(`${path} has no accessibility violations`, async ({ page }) => {
    await page.goto(path);
    await hydrated(page);
    const results = await new AxeBuilder({ page }).analyze();
    expect(results.violations.map((v) => `${v.id}: ${v.help}`)).toEqual([]);
  });
}

test("the room has no accessibility violations", async ({ page }) => {
  await register(page, `axe${Date.now()}`);
  for (const path of ["/room", "/sessions", "/amenities"]) {
    await page.goto(path);
    await hydrated(page);
    const results = await new AxeBuilder({ page }).analyze();
    expect(results.violations.map((v) => `${path} ${v.id}: ${v.help}`)).toEqual([]);
  }
});
