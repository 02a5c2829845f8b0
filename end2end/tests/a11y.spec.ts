// Every screen, in light and dark, at desktop and phone width: no axe violations, no sideways
// scrolling at 360 px, a top bar that leaves the phone's screen to the page, and a screenshot of
// each kept with the test's output (test-results/).
import AxeBuilder from "@axe-core/playwright";
import type { Page } from "@playwright/test";
import { test, expect, hydrated, register } from "./fixtures";

const screens = [
  { name: "desktop", viewport: { width: 1280, height: 800 } },
  { name: "phone", viewport: { width: 360, height: 740 } },
] as const;

async function check(page: Page, label: string, width: number) {
  const results = await new AxeBuilder({ page }).analyze();
  expect(results.violations.map((v) => `${label} ${v.id}: ${v.help} (${v.nodes.map((n) => n.target).join(", ")})`)).toEqual([]);
  // Nothing wider than the screen.
  const scrollWidth = await page.evaluate(() => document.documentElement.scrollWidth);
  expect(scrollWidth, `${label} scrolls sideways`).toBeLessThanOrEqual(width);
  // Nothing spills out of a card sideways. A card clips what does (the paint containment that
  // content-visibility brings, style/main.css), so the check above cannot see it there.
  const spills = await page.evaluate(() => {
    const found: string[] = [];
    for (const card of Array.from(document.querySelectorAll<HTMLElement>(".card"))) {
      const edge = card.getBoundingClientRect();
      for (const el of Array.from(card.querySelectorAll<HTMLElement>("*"))) {
        const box = el.getBoundingClientRect();
        if (box.width === 0 || box.height === 0) continue; // not shown (closed, hidden)
        // A box that scrolls or clips on its own (the diagram's scroller) answers for its content.
        let own = false;
        for (let up = el.parentElement; up && up !== card; up = up.parentElement) {
          if (getComputedStyle(up).overflowX !== "visible") own = true;
        }
        if (own) continue;
        if (box.left < edge.left - 0.5 || box.right > edge.right + 0.5) {
          found.push(`${el.tagName.toLowerCase()}.${el.className} (${Math.round(box.width)} px wide)`);
        }
      }
    }
    return found;
  });
  expect(spills, `${label}: past a card's edge`).toEqual([]);
  // A claim's tooltip hangs below its row, past its card's edge: that card keeps its paint.
  const clipping = await page.evaluate(() =>
    Array.from(document.querySelectorAll<HTMLElement>(".card"))
      .filter((card) => card.querySelector(".tip"))
      .map((card) => getComputedStyle(card).getPropertyValue("content-visibility"))
      .filter((value) => value !== "visible"),
  );
  expect(clipping, `${label}: a card with a tooltip would clip it`).toEqual([]);
  const shot = await page.screenshot({ fullPage: true });
  await test.info().attach(label, { body: shot, contentType: "image/png" });
}

for (const scheme of ["light", "dark"] as const) {
  for (const screen of screens) {
    test.describe(`${scheme}, ${screen.name}`, () => {
      test.use({ colorScheme: scheme, viewport: screen.viewport });
      const w = screen.viewport.width;

      test("the public pages", async ({ page, watch }) => {
        watch.allow((res) => res.status() === 404 && res.url().endsWith("/no-such-room"));
        for (const path of ["/", "/login", "/register", "/no-such-room"]) {
          await page.goto(path);
          await hydrated(page);
          await check(page, `${scheme} ${screen.name} ${path}`, w);
        }
        // On a phone the top bar leaves most of the first screen to the page.
        await page.goto("/");
        const bar = (await page.locator(".topbar").boundingBox())!;
        expect(bar.height).toBeLessThan(screen.viewport.height * 0.2);
      });

      test("the guest's pages, with every panel open", async ({ page, watch }) => {
        watch.allow((res) => res.status() === 401);
        await register(page, `axe${scheme}${screen.name}${Date.now()}`);
        const bar = (await page.locator(".topbar").boundingBox())!;
        expect(bar.height, "the checked-in top bar").toBeLessThan(screen.viewport.height * 0.2);
        // The room: an exchange on the wire opened, a claim's explanation shown, the lab answered.
        await page.getByTestId("wire").locator("summary").first().click();
        await page.getByTestId("forge-lab").getByRole("button", { name: "alg: none", exact: true }).click();
        await expect(page.getByTestId("lab-answer").locator(".lab-answer")).toBeVisible();
        // The DPoP thief's answer (the binding section says why it failed).
        await page.getByRole("button", { name: "A thief copies my key card" }).click();
        await expect(page.getByTestId("demo-said")).toContainText("refused");
        await page.getByTestId("claims").locator(".claim").first().focus();
        await check(page, `${scheme} ${screen.name} /room`, w);
        for (const path of ["/amenities", "/sessions"]) {
          await page.goto(path);
          await hydrated(page);
          if (path === "/amenities") await page.getByRole("button", { name: "Open the gym" }).click();
          await page.getByTestId("wire").locator("summary").first().click();
          await check(page, `${scheme} ${screen.name} ${path}`, w);
        }
        // A device waiting for approval: the request's facts and the phishing warning.
        const asked = await fetch(`${process.env.KEYCARD_BASE_URL}/oauth/device_authorization`, {
          method: "POST",
          headers: { "content-type": "application/x-www-form-urlencoded" },
          body: "client_id=keycard-cli",
        });
        const { user_code } = (await asked.json()) as { user_code: string };
        await page.goto(`/device?code=${user_code}`);
        await hydrated(page);
        await expect(page.getByTestId("device-request")).toContainText("wants to check in as you");
        await check(page, `${scheme} ${screen.name} /device`, w);
      });
    });
  }
}
