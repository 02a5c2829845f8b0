// Time to hydrated in Chromium: from the start of navigation to the moment the page's <body> gets
// `data-hydrated` (set by the App once its first effect runs in the browser). Run by
// scripts/bench-bundle, which starts the servers; usage:
//
//   node scripts/bundle-hydration.mjs RUNS LABEL=URL [LABEL=URL ...]
//
// Each run opens a fresh browser context (an empty cache), loads the URL, then loads it again in
// the same context (a repeat visit: what the cache headers save). Runs alternate between the URLs
// so that a busy moment of the machine falls on all of them alike. Each case is measured on
// loopback and on a throttled link (DevTools' network emulation: 40 ms round trip, 10 Mbit/s
// down), where the bytes on the wire count. Prints a Markdown table of medians and 90th
// percentiles in milliseconds.
import { createRequire } from "node:module";
import { existsSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(join(root, "end2end", "package.json"));
const { chromium } = require("playwright");

const [runsArg, ...targets] = process.argv.slice(2);
const runs = Number(runsArg);
if (!Number.isInteger(runs) || runs < 1 || targets.length === 0) {
  console.error("usage: node scripts/bundle-hydration.mjs RUNS LABEL=URL [LABEL=URL ...]");
  process.exit(2);
}
const sites = targets.map((t) => {
  const at = t.indexOf("=");
  return { label: t.slice(0, at), url: t.slice(at + 1) };
});

const links = {
  loopback: null,
  "40 ms, 10 Mbit/s": { offline: false, latency: 40, downloadThroughput: 1_250_000, uploadThroughput: 625_000 },
};

// Records when <body data-hydrated> appears, on the page's own clock (0 = navigation start).
const watchHydration = () => {
  new MutationObserver((_, observer) => {
    if (document.body?.dataset.hydrated) {
      window.__hydratedAt = performance.now();
      observer.disconnect();
    }
  }).observe(document, { attributes: true, subtree: true, attributeFilter: ["data-hydrated"] });
};

async function load(page, url) {
  // Bytes of the bundle's files as they came over the wire (after any compression), by kind.
  const wire = { wasm: 0, js: 0, css: 0 };
  const seen = [];
  const onFinished = async (request) => {
    const kind = request.url().match(/\.(wasm|js|css)(\?|$)/)?.[1];
    if (!kind) return;
    seen.push(
      request.sizes().then((s) => {
        // -1 when the browser took the file from its cache.
        wire[kind] += Math.max(0, s.responseBodySize);
      }),
    );
  };
  page.on("requestfinished", onFinished);
  await page.goto(url, { waitUntil: "commit" });
  await page.waitForFunction(() => window.__hydratedAt !== undefined, null, { timeout: 60_000, polling: 20 });
  const ms = await page.evaluate(() => window.__hydratedAt);
  await Promise.all(seen);
  page.off("requestfinished", onFinished);
  return { ms, wire };
}

const quantile = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)];
};

const browser = await chromium.launch({
  executablePath: process.env.KEYCARD_CHROMIUM || ["/usr/bin/chromium", "/usr/bin/chromium-browser"].find((p) => existsSync(p)),
});
const results = new Map(); // "label|link|visit" -> { ms: [], wire }
for (const [linkName, conditions] of Object.entries(links)) {
  for (let run = 0; run < runs; run++) {
    for (const site of sites) {
      const context = await browser.newContext();
      await context.addInitScript(watchHydration);
      const page = await context.newPage();
      if (conditions) {
        const cdp = await context.newCDPSession(page);
        await cdp.send("Network.enable");
        await cdp.send("Network.emulateNetworkConditions", conditions);
      }
      for (const visit of ["first visit", "repeat visit"]) {
        const { ms, wire } = await load(page, site.url);
        const key = `${site.label}|${linkName}|${visit}`;
        if (!results.has(key)) results.set(key, { ms: [], wire });
        results.get(key).ms.push(ms);
      }
      await context.close();
    }
  }
}
await browser.close();

console.log(`| build | link | visit | time to hydrated, median | p90 | bundle bytes over the wire (wasm + js + css) | (${runs} runs)`);
console.log("|---|---|---|---|---|---|");
for (const [key, { ms, wire }] of results) {
  const [label, link, visit] = key.split("|");
  const bytes = wire.wasm + wire.js + wire.css;
  const kb = (n) => `${(n / 1000).toFixed(0)} KB`;
  const over = bytes === 0 ? "none (all from the cache)" : `${kb(bytes)} (${kb(wire.wasm)} + ${kb(wire.js)} + ${kb(wire.css)})`;
  console.log(
    `| ${label} | ${link} | ${visit} | ${quantile(ms, 0.5).toFixed(0)} ms | ${quantile(ms, 0.9).toFixed(0)} ms | ${over} |`,
  );
}
