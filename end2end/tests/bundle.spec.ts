// The browser bundle as a browser meets it (issue 9): hashed file names that load and hydrate,
// kept for a year, so that the next page takes the wasm, JavaScript and CSS from the cache without
// asking the server; the page itself is asked for every time.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test, expect, hydrated } from "./fixtures";

const HASHED = /\/pkg\/keycard\.[A-Za-z0-9_-]{8,}\.(wasm|js|css)$/;

test("hashed bundle files are cached for a year and reused by the next page", async ({ playwright, baseURL, watch }, testInfo) => {
  // A browser profile on disk, as a visitor's is: a fresh test context keeps its cache in memory,
  // where Chromium does not keep a file the size of the debug build's wasm (8 MB).
  const profile = mkdtempSync(join(tmpdir(), "keycard-profile-"));
  const context = await playwright.chromium.launchPersistentContext(profile, {
    ...testInfo.project.use.launchOptions,
    baseURL,
  });
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    watch.page(page);
    const cdp = await context.newCDPSession(page);
    await cdp.send("Network.enable");
    // path -> how the browser got it, per navigation
    let seen = new Map<string, { status: number; cacheControl: string; fromCache: boolean }>();
    const pathOf = new Map<string, string>();
    cdp.on("Network.requestWillBeSent", ({ requestId, request }) => {
      const path = new URL(request.url).pathname;
      if (path.startsWith("/pkg/")) pathOf.set(requestId, path);
    });
    cdp.on("Network.requestServedFromCache", ({ requestId }) => {
      const path = pathOf.get(requestId);
      if (path) seen.set(path, { ...(seen.get(path) ?? { status: 0, cacheControl: "" }), fromCache: true });
    });
    cdp.on("Network.responseReceived", ({ requestId, response }) => {
      const path = pathOf.get(requestId);
      if (!path) return;
      const headers = Object.fromEntries(Object.entries(response.headers).map(([k, v]) => [k.toLowerCase(), String(v)]));
      seen.set(path, {
        status: response.status,
        cacheControl: headers["cache-control"] ?? "",
        fromCache: Boolean(seen.get(path)?.fromCache || response.fromDiskCache),
      });
    });

    const first = await page.goto("/");
    expect(first?.headers()["cache-control"]).toBe("no-cache, private");
    await hydrated(page);
    const files = [...seen.keys()].sort();
    for (const kind of ["wasm", "js", "css"]) {
      expect(files.some((path) => path.endsWith(`.${kind}`)), `a ${kind} file among ${files}`).toBe(true);
    }
    for (const [path, answer] of seen) {
      expect(path, "a content hash in the name").toMatch(HASHED);
      expect(answer.status, path).toBe(200);
      expect(answer.fromCache, `${path} came from the server the first time`).toBe(false);
      expect(answer.cacheControl, path).toBe("public, max-age=31536000, immutable");
    }

    // Another page of the site: the same files, none of them asked of the server again.
    seen = new Map();
    const second = await page.goto("/login");
    expect(second?.headers()["cache-control"]).toBe("no-cache, private");
    await hydrated(page);
    expect([...seen.keys()].sort()).toEqual(files);
    for (const [path, answer] of seen) {
      expect(answer.fromCache, `${path} from the browser's cache`).toBe(true);
    }
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
});
