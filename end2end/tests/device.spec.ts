// Native clients (RFC 8628) for real: the `keycard` binary checks in from a terminal while a
// checked-in Chromium approves its code at /device; its booking shows among the guest's, and
// ending it there ends the CLI's next call. The approval page also works without JavaScript,
// and a denied code is denied.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { test, expect, register, PASSWORD } from "./fixtures";

const binary = resolve(__dirname, "..", "..", "target", "debug", "keycard");

/** `keycard args…` with its own token folder: its output so far, and how it ends. */
function keycard(args: string[], dir: string) {
  if (!existsSync(binary)) throw new Error(`${binary} is missing: run \`cargo build -p keycard-cli\` (scripts/test does)`);
  const child = spawn(binary, ["--verbose", ...args], { env: { ...process.env, KEYCARD_CLI_DIR: dir } });
  let out = "";
  let err = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (err += d));
  const ended = new Promise<number>((done) => child.on("close", (code) => done(code ?? -1)));
  return { out: () => out, err: () => err, ended, child };
}

async function finished(args: string[], dir: string) {
  const run = keycard(args, dir);
  const code = await run.ended;
  return { code, out: run.out(), err: run.err() };
}

test("keycard login in a terminal, approved in the browser, then whoami", async ({ page, baseURL }) => {
  const dir = mkdtempSync(join(tmpdir(), "keycard-cli-"));
  try {
    const user = `cli${Date.now()}`;
    await register(page, user);
    const started = Date.now();
    const login = keycard(["login", baseURL!], dir);
    await expect.poll(() => login.out(), { timeout: 15_000 }).toMatch(/\/device\?code=[A-Z]{4}-[A-Z]{4}/);
    const [link, code] = login.out().match(/(http\S+\/device\?code=([A-Z]{4}-[A-Z]{4}))/)!.slice(1);

    // The page the terminal names: what asks, from where, and the phishing warning.
    await page.goto(link);
    const request = page.getByTestId("device-request");
    await expect(request).toContainText("Keycard CLI wants to check in as you");
    await expect(request).toContainText(code);
    await expect(request).toContainText("keycard-cli/");
    await expect(page.getByRole("note")).toContainText("device-code phishing");
    await page.getByRole("button", { name: "Approve" }).click();
    await expect(page.getByTestId("device-state")).toContainText("Approved");

    expect(await login.ended, login.err()).toBe(0);
    expect(login.out()).toContain("checked in: key card (DPoP)");
    // The terminal's side of the wire: every exchange named, no token shown.
    expect(login.err()).toContain("→ POST /oauth/device_authorization");
    expect(login.err()).toContain("authorization_pending");
    expect(login.err()).toContain("device_code (secret)");
    expect(login.err()).not.toMatch(/eyJ[\w-]+\.eyJ/);

    const whoami = await finished(["whoami"], dir);
    expect(whoami.code, whoami.err).toBe(0);
    expect(whoami.out).toContain(user);
    const took = Date.now() - started;
    console.log(`keycard login to whoami: ${(took / 1000).toFixed(1)} s (the browser's approval included)`);
    expect(took, "from command to whoami").toBeLessThan(60_000);
    // The key card lives 6 s here: after that the CLI visits its front desk first (step 3).
    await new Promise((r) => setTimeout(r, 7_000));
    const gym = await finished(["gym"], dir);
    expect(gym.code, gym.err).toBe(0);
    expect(gym.err).toContain("grant_type=refresh_token");
    expect(gym.err).toContain("refresh_token (secret)");
    expect(gym.out).toContain("The gym is open");

    // The CLI's booking is among the guest's, by its client's name; ending it ends the CLI.
    await page.goto("/sessions");
    const cli = page.getByTestId("bookings").locator("li", { hasText: "Keycard CLI" });
    await expect(cli).toHaveCount(1);
    await cli.getByRole("button", { name: "End this booking" }).click();
    await expect(cli).toHaveClass(/ended/);
    const after = await finished(["whoami"], dir);
    expect(after.code).toBe(1);
    expect(after.err).toContain("the booking is over");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the approval page works without JavaScript, and a denied code is denied", async ({ browser, baseURL, watch }) => {
  const ask = async () => {
    const res = await fetch(`${baseURL}/oauth/device_authorization`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "client_id=keycard-cli",
    });
    expect(res.status).toBe(200);
    return (await res.json()) as { device_code: string; user_code: string };
  };
  const poll = async (deviceCode: string) => {
    const res = await fetch(`${baseURL}/oauth/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        grant_type: "urn:ietf:params:oauth:grant-type:device_code",
        device_code: deviceCode,
        client_id: "keycard-cli",
      }).toString(),
    });
    return { status: res.status, body: await res.json() };
  };

  const context = await browser.newContext({ javaScriptEnabled: false, baseURL });
  const page = await context.newPage();
  watch.page(page, { noScript: true });
  await page.goto("/register");
  await page.getByLabel("Username").fill(`nojsdev${Date.now()}`);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Register and check in" }).click();
  await expect(page).toHaveURL(/\/room$/);

  // Typed by hand into the look-up form, lower case and without the dash.
  const approved = await ask();
  await page.goto("/device");
  await page.getByLabel("The code your device shows").fill(approved.user_code.replace("-", "").toLowerCase());
  await page.getByRole("button", { name: "Look it up" }).click();
  await expect(page.getByTestId("device-request")).toContainText("Keycard CLI wants to check in as you");
  await page.getByRole("button", { name: "Approve" }).click();
  await expect(page).toHaveURL(/\/device\?code=/);
  await expect(page.getByTestId("device-state")).toContainText("Approved");
  const tokens = await poll(approved.device_code);
  expect(tokens.status).toBe(200);
  expect(tokens.body.token_type).toBe("Bearer");

  const denied = await ask();
  await page.goto(`/device?code=${denied.user_code}`);
  await page.getByRole("button", { name: "Deny" }).click();
  await expect(page.getByTestId("device-state")).toContainText("Denied");
  expect((await poll(denied.device_code)).body.error).toBe("access_denied");

  // A code nobody asked for.
  await page.goto("/device?code=BCDF-GHJK");
  await expect(page.getByTestId("device-request")).toContainText("No device is waiting for that code");
  await context.close();
});
