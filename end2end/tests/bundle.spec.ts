// The browser bundle as a browser meets it (issue 9): hashed file names that load and hydrate,
// kept for a year when the content is what the name says, so that the next page takes them from
// the cache without asking the server; the page itself is asked for every time. A split build
// (`--split`) has files that cargo-leptos named before rewriting them (the main wasm and script):
// the server checks, and those are revalidated instead (see keycard_server::assets).
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test, expect, hydrated } from "./fixtures";

const HASHED = /\/pkg\/[A-Za-z0-9_]+\.([A-Za-z0-9_-]{8,})\.(wasm|js|css)$/;

/** Whether the content is what the name's hash says (cargo-leptos: URL-safe base64 of the MD5). */
const honest = (path: string, body: Buffer) =>
  createHash("md5").update(body).digest("base64url") === path.match(HASHED)?.[1];

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
    const kept = new Set<string>();
    for (const [path, answer] of seen) {
      expect(path, "a content hash in the name").toMatch(HASHED);
      expect(answer.status, path).toBe(200);
      expect(answer.fromCache, `${path} came from the server the first time`).toBe(false);
      const body = await (await page.request.get(path)).body();
      if (honest(path, body)) {
        kept.add(path);
        expect(answer.cacheControl, path).toBe("public, max-age=31536000, immutable");
      } else {
        expect(answer.cacheControl, `${path}: its name does not fix its content`).toBe("no-cache");
      }
    }
    // The stylesheet is always named after its content; so is every file of an unsplit build.
    expect([...kept].some((path) => path.endsWith(".css")), `kept: ${[...kept]}`).toBe(true);

    // Another page of the site: the same files, the kept ones not asked of the server again.
    seen = new Map();
    const second = await page.goto("/login");
    expect(second?.headers()["cache-control"]).toBe("no-cache, private");
    await hydrated(page);
    expect([...seen.keys()].sort()).toEqual(files);
    for (const path of kept) {
      expect(seen.get(path)?.fromCache, `${path} from the browser's cache`).toBe(true);
    }
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
});
