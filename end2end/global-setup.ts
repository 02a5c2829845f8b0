// Starts the Keycard server built by `cargo leptos build` on 127.0.0.1:0 (a free port) with a
// temporary data folder and test settings, waits until /healthz answers, and hands its address to
// the tests. It never reuses a server someone left running, nor needs port 3000.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, existsSync, openSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const root = resolve(__dirname, "..");

export default async function globalSetup(): Promise<() => Promise<void>> {
  const binary = join(root, "target", "debug", "keycard-server");
  if (!existsSync(binary)) {
    throw new Error(`${binary} is missing: run \`cargo leptos build\` first (scripts/test does).`);
  }
  const dataDir = mkdtempSync(join(tmpdir(), "keycard-e2e-"));
  // The server's output goes to a file (kept for reading after a failure): a pipe nobody reads
  // would fill up and block the server.
  const logPath = join(__dirname, "server.log");
  const logFd = openSync(logPath, "w");
  const server = spawn(binary, [], {
    cwd: root,
    env: {
      ...process.env,
      KEYCARD_ADDR: "127.0.0.1:0",
      KEYCARD_DATA_DIR: dataDir,
      LEPTOS_SITE_ROOT: join(root, "target", "site"),
      KEYCARD_ENV: "development",
      KEYCARD_ISSUER: "http://keycard.test",
      // Short lifetimes so the browser tests see expiry and grace windows within seconds.
      KEYCARD_KEY_CARD_TTL_SECS: process.env.KEYCARD_KEY_CARD_TTL_SECS ?? "6",
      KEYCARD_REFRESH_GRACE_SECS: process.env.KEYCARD_REFRESH_GRACE_SECS ?? "3",
      KEYCARD_LOGIN_PER_ACCOUNT_PER_MINUTE: "1000",
      KEYCARD_LOGIN_PER_ADDRESS_PER_MINUTE: "1000",
      KEYCARD_REFRESH_PER_ADDRESS_PER_MINUTE: "1000",
      RUST_LOG: process.env.RUST_LOG ?? "warn,keycard=info,keycard_server=info",
    },
    stdio: ["ignore", logFd, logFd],
  });
  let exited: number | null = null;
  server.on("exit", (code) => (exited = code ?? -1));
  const log = () => readFileSync(logPath, "utf8");

  let address = "";
  for (let i = 0; !address; i++) {
    if (exited !== null) throw new Error(`the server exited with ${exited}:\n${log()}`);
    if (i > 300) throw new Error(`the server did not start:\n${log()}`);
    address = log().match(/Keycard is open at (http:\/\/[0-9.:]+)/)?.[1] ?? "";
    if (!address) await new Promise((r) => setTimeout(r, 100));
  }

  // The port is open once the line is printed; still, wait for the database to answer.
  for (let i = 0; ; i++) {
    try {
      const res = await fetch(`${address}/healthz`);
      if (res.ok) break;
    } catch {
      // not yet
    }
    if (i > 100) throw new Error(`/healthz never answered:\n${log()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  process.env.KEYCARD_BASE_URL = address;

  return async () => {
    server.kill("SIGTERM");
    await new Promise((r) => server.once("exit", r));
    rmSync(dataDir, { recursive: true, force: true });
    // The server's log is a test too: a panic anywhere in the run fails it, even one the server
    // turned into a 500 that no test happened to look at.
    const panics = log()
      .split("\n")
      .filter((line) => line.includes("panicked"));
    if (panics.length > 0) {
      throw new Error(`the server panicked during the run (${logPath}):\n${panics.join("\n")}`);
    }
  };
}
