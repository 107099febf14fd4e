// End to end on the real binary (issue 15, point 5): an admin connects Stripe through the
// connection wizard, against the Stripe persona of the sandbox (`syncdesk sandbox serve
// --persona stripe`, a loopback server speaking Stripe's paths, bodies and bearer keys). They
// paste a wrong key first (a plain refusal, nothing saved), then the right one; the app checks
// it with a real request before saving; they choose what to sync and get jobs with the
// catalog's defaults on a schedule, and the customers job then syncs. No connector spec is
// typed or shown at any step. scripts/e2e.sh passes the CLI binary in SYNCDESK_CLI_BIN.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { T } from "./testids.mjs";
import { Session, freePort, startDriver, until } from "./webdriver.mjs";

const BINARY = process.env.SYNCDESK_DESKTOP_BIN;
const CLI = process.env.SYNCDESK_CLI_BIN;
const SCREENS = process.env.E2E_SCREENS ?? "target/e2e-screens";
const LOGS = process.env.E2E_LOGS ?? tmpdir();
assert.ok(BINARY, "set SYNCDESK_DESKTOP_BIN to the built syncdesk-desktop binary");
assert.ok(CLI, "set SYNCDESK_CLI_BIN to the built syncdesk binary (it serves the Stripe persona)");

/** The key the Stripe persona accepts (crates/sandbox, persona Stripe). */
const GOOD_KEY = "sk_test_syncdesk_sandbox";

let driver;
let s;
let dataDir;
let persona;
let personaUrl;

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "syncdesk-e2e-wizard-"));
  const port = await freePort();
  persona = spawn(CLI, ["sandbox", "serve", "--persona", "stripe", "--port", String(port), "--customers", "40"], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, SYNCDESK_DATA_DIR: join(dataDir, "cli") },
  });
  let said = "";
  persona.stdout.on("data", (d) => (said += d));
  persona.stderr.on("data", (d) => (said += d));
  personaUrl = await until(
    "the Stripe persona to listen",
    async () => {
      if (persona.exitCode !== null) throw new Error(`the persona exited: ${said}`);
      return said.match(/listening on (http:\/\/127\.0\.0\.1:\d+)/)?.[1];
    },
    30000,
  );
  driver = await startDriver({
    logFile: join(LOGS, "webdriver-wizard.log"),
    env: { ...process.env, TAURI_WEBVIEW_AUTOMATION: "true", SYNCDESK_DATA_DIR: dataDir, SYNCDESK_LOG: process.env.SYNCDESK_LOG ?? "info" },
  });
  s = await Session.create(driver.url, BINARY);
  await s.testId(T.navDashboard, 30000);
});

after(async () => {
  if (s) await s.close();
  if (driver) await driver.stop();
  if (persona && persona.exitCode === null) {
    persona.kill("SIGINT");
    await until("the persona to stop", async () => persona.exitCode !== null, 10000).catch(() => persona.kill("SIGKILL"));
  }
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

/** The wizard's error next to the pasted key, once there is one. */
async function keyError() {
  return await until("the refusal next to the key", async () => (await s.all(s.byTestId(`${T.fieldErrorPrefix}secret`)))[0]);
}

async function connectionCards() {
  return await s.all(s.byTestId(T.connectionCard));
}

test("the wizard refuses a wrong Stripe key in plain words and saves nothing", async () => {
  await s.clickTestId(T.navConnections);
  await s.click(await s.findXPath("//button[contains(., 'Add connection')]"));
  await s.clickTestId(`${T.wizardProviderPrefix}stripe`);
  await s.screenshot(SCREENS, "20-wizard-provider");
  await s.clickTestId(T.wizardNext);
  // The server address is the persona's: an advanced option, the only thing besides the key.
  await s.clickTestId(T.wizardAdvanced);
  await s.type(await s.testId(T.wizardBaseUrl), personaUrl);
  await s.type(await s.testId(T.wizardSecret), "sk_test_not_the_key");
  await s.clickTestId(T.wizardConnect);
  const refusal = await s.text(await keyError());
  assert.match(refusal, /Stripe did not accept the Stripe restricted or secret key you pasted/);
  assert.match(refusal, /Nothing was saved/);
  assert.doesNotMatch(refusal, /HTTP|401|bearer|invalid_request_error/i, "plain words");
  assert.equal(await s.attr(await s.testId(T.wizardSecret), "value"), "", "the refused key is gone from the form");
  await s.screenshot(SCREENS, "21-wizard-wrong-key");
  assert.equal((await connectionCards()).length, 0, "no connection was saved");
  const textareas = await s.all(`${s.byTestId(T.wizard)} textarea`);
  assert.equal(textareas.length, 0, "no connector spec field");
});

test("the right key is checked with Stripe, then jobs are made for the chosen records", async () => {
  await s.type(await s.testId(T.wizardSecret), GOOD_KEY);
  await s.clickTestId(T.wizardConnect);
  await s.testId(`${T.wizardEntityPrefix}customers`, 30000);
  assert.match(await s.text(await s.testId(T.wizardConnected)), /Stripe accepted the sign-in/);
  await s.screenshot(SCREENS, "22-wizard-entities");
  // Products stay out; the other three sync every hour (the default).
  await s.clickTestId(`${T.wizardEntityPrefix}products`);
  await s.clickTestId(T.wizardCreateJobs);
  const done = await s.testId(T.wizardDone, 30000);
  assert.match(await s.text(done), /3 jobs were created\. They run every hour\./);
  await s.screenshot(SCREENS, "23-wizard-done");
  const customers = await s.testId(`${T.wizardJobPrefix}customers`);
  assert.equal(await s.text(customers), "Stripe customers");
  await s.click(customers);
  await until("the job page", async () => (await s.hash()).startsWith("#/jobs/"));
  const jobId = (await s.hash()).slice("#/jobs/".length).split(/[/?]/)[0];

  // One active connection; three jobs in the sidebar.
  await s.clickTestId(T.navConnections);
  const cards = await until("the connection card", async () => {
    const c = await connectionCards();
    return c.length ? c : null;
  });
  assert.equal(cards.length, 1);
  assert.match(await s.text(cards[0]), /Stripe/);
  assert.equal(await s.attr(await s.testId(T.connectionStatus), "data-status"), "active");
  const navJobs = await s.all(`[data-testid^="${T.navJobPrefix}"]`);
  assert.equal(navJobs.length, 3);

  // The customers job made by the wizard syncs from the persona with its defaults.
  await s.go(`/jobs/${jobId}`);
  await s.clickTestId(T.runJob);
  await until("the execution page", async () => (await s.hash()).startsWith("#/executions/"));
  const status = await until(
    "the run to finish",
    async () => {
      const el = (await s.all(s.byTestId(T.executionStatus)))[0];
      if (!el) return null;
      const st = await s.attr(el, "data-status");
      return st && !["running", "queued"].includes(st) ? st : null;
    },
    60000,
  );
  await s.screenshot(SCREENS, "24-wizard-job-run");
  assert.equal(status, "completed");
  assert.equal(Number(await s.attr(await s.testId(T.breakdownCreated), "data-count")), 40);
});
