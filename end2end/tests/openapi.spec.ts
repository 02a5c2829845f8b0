// The served OpenAPI description loads in Swagger UI (swagger-ui-dist, from npm) without errors
// and shows every operation. The viewer is served from a made-up origin by Playwright itself, so
// nothing is fetched from outside and Keycard's own pages keep their strict CSP.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test, expect } from "./fixtures";

const dist = join(__dirname, "..", "node_modules", "swagger-ui-dist");
const VIEWER = "http://viewer.test";

test("the OpenAPI description loads in Swagger UI without errors", async ({ browser, request }) => {
  const res = await request.get("/api/openapi.json");
  expect(res.status()).toBe(200);
  const spec = await res.json();
  const operations = Object.values(spec.paths as Record<string, object>).flatMap(Object.keys).length;

  const context = await browser.newContext();
  const page = await context.newPage();
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
  await context.route(`${VIEWER}/**`, (route) => {
    const path = new URL(route.request().url()).pathname;
    if (path === "/") {
      return route.fulfill({
        contentType: "text/html",
        body: `<!DOCTYPE html><html><head><link rel="stylesheet" href="/swagger-ui.css"></head>
          <body><div id="ui"></div><script src="/swagger-ui-bundle.js"></script>
          <script>window.ui = SwaggerUIBundle({ spec: ${JSON.stringify(spec)}, dom_id: "#ui", validatorUrl: null });</script>
          </body></html>`,
      });
    }
    const type = path.endsWith(".css") ? "text/css" : "text/javascript";
    return route.fulfill({ contentType: `${type}; charset=utf-8`, body: readFileSync(join(dist, path.slice(1))) });
  });
  await page.goto(`${VIEWER}/`);
  await expect(page.locator(".info .title")).toContainText("Keycard");
  await expect(page.locator(".opblock")).toHaveCount(operations);
  await expect(page.locator(".errors-wrapper")).toHaveCount(0);
  expect(errors).toEqual([]);
  await context.close();
});
