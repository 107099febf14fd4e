// End to end on the real Syncdesk binary through WebKitWebDriver (scripts/e2e.sh runs it
// under Xvfb, a private D-Bus session and a real gnome-keyring). One admin's story: start the
// sandbox, sync customers with bad records, watch them reach Failed Records, retry one,
// dismiss one with a note, then lose the credentials and be told to re-authenticate.
// Screenshots of each main view go to $E2E_SCREENS.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { sandboxCustomersJob } from "./app.mjs";
import { T } from "./testids.mjs";
import { Session, startDriver, until } from "./webdriver.mjs";

const BINARY = process.env.SYNCDESK_DESKTOP_BIN;
const SCREENS = process.env.E2E_SCREENS ?? "target/e2e-screens";
const LOGS = process.env.E2E_LOGS ?? tmpdir();
assert.ok(BINARY, "set SYNCDESK_DESKTOP_BIN to the built syncdesk-desktop binary");

let driver;
let s;
let dataDir;
const timings = {};

/**
 * A private XDG config whose default http(s) handler is browser.mjs, so the app's real
 * `xdg-open` of the provider's sign-in page (R-E1) lands in a "browser" the test controls,
 * whatever browsers the machine has registered.
 */
function systemBrowser(root) {
  const config = join(root, "config");
  const apps = join(root, "data", "applications");
  mkdirSync(config, { recursive: true });
  mkdirSync(apps, { recursive: true });
  const script = join(dirname(fileURLToPath(import.meta.url)), "browser.mjs");
  writeFileSync(
    join(apps, "syncdesk-e2e-browser.desktop"),
    `[Desktop Entry]\nType=Application\nName=Syncdesk e2e browser\nExec=${process.execPath} ${script} %u\nMimeType=x-scheme-handler/http;x-scheme-handler/https;\n`,
  );
  writeFileSync(
    join(config, "mimeapps.list"),
    "[Default Applications]\nx-scheme-handler/http=syncdesk-e2e-browser.desktop\nx-scheme-handler/https=syncdesk-e2e-browser.desktop\n",
  );
  return { XDG_CONFIG_HOME: config, XDG_DATA_HOME: join(root, "data"), E2E_BROWSER_LOG: join(root, "browser.log") };
}

let browser;

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "syncdesk-e2e-"));
  browser = systemBrowser(join(dataDir, "xdg"));
  driver = await startDriver({
    logFile: join(LOGS, "webdriver.log"),
    env: {
      ...process.env,
      ...browser,
      TAURI_WEBVIEW_AUTOMATION: "true",
      SYNCDESK_DATA_DIR: dataDir,
      SYNCDESK_LOG: process.env.SYNCDESK_LOG ?? "info",
    },
  });
  const t0 = performance.now();
  s = await Session.create(driver.url, BINARY);
  await s.testId(T.navDashboard, 30000);
  timings.coldStartToFirstPaintMs = Math.round(performance.now() - t0);
});

after(async () => {
  if (s) await s.close();
  if (driver) await driver.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  console.log(`# timings ${JSON.stringify(timings)}`);
});

/** Wait for the execution page's status badge to reach a final status; the status. */
async function finalStatus() {
  return await until(
    "the execution to finish",
    async () => {
      const el = (await s.all(s.byTestId(T.executionStatus)))[0];
      if (!el) return null;
      const st = await s.attr(el, "data-status");
      return st && !["running", "queued"].includes(st) ? st : null;
    },
    60000,
  );
}

async function count(testId) {
  return Number(await s.attr(await s.testId(testId), "data-count"));
}

let jobId;

async function runJobFromJobPage() {
  await s.go(`/jobs/${jobId}`);
  await s.clickTestId(T.runJob);
  await until("the execution page", async () => (await s.hash()).startsWith("#/executions/"));
  return await finalStatus();
}

async function failedRows() {
  return await s.all(s.byTestId(T.failedRow));
}

test("the app opens on the dashboard", async () => {
  // The welcome of a new install, once the dashboard has its data.
  await s.testId(T.trySandbox);
  await s.screenshot(SCREENS, "01-dashboard-empty");
  assert.ok(timings.coldStartToFirstPaintMs > 0);
});

test("start the sandbox and create a customers job on it", async () => {
  jobId = await sandboxCustomersJob(s);
  assert.ok(jobId);
  await s.screenshot(SCREENS, "02-sandbox");
});

test("a run with bad records completes with errors and shows the breakdown", async () => {
  await s.go("/sandbox");
  const bad = await s.testId("fault-bad-records");
  if (!(await s.cmd("GET", `/element/${bad}/selected`))) await s.click(bad);
  await until("the fault to apply", async () => (await s.cmd("GET", `/element/${bad}/selected`)) === true);
  const status = await runJobFromJobPage();
  assert.equal(status, "completed_with_errors");
  const created = await count(T.breakdownCreated);
  const failed = await count(T.breakdownFailed);
  assert.ok(created > 0, `created ${created}`);
  assert.ok(failed > 0, `failed ${failed}`);
  await s.find(s.byTestId(T.errorRow));
  await s.screenshot(SCREENS, "03-execution-completed-with-errors");
});

/**
 * A run after the first: the next execution attempts the records that failed again even in
 * incremental mode (SPEC, R-D1 decision), and nothing else changed at the source. When ten
 * or more of them are bad, every record processed fails and the breaker trips (R-B1); either
 * way the records that failed take another strike.
 */
async function rerunFailing() {
  const status = await runJobFromJobPage();
  if (status === "failed") {
    const note = await s.text(await s.testId(T.executionNote));
    assert.match(note, /stopped early/i);
  } else {
    assert.equal(status, "completed_with_errors");
  }
}

test("failing three times puts records in Failed Records", async () => {
  await rerunFailing();
  await rerunFailing();
  await s.go(`/jobs/${jobId}`);
  await until("three executions listed", async () => (await s.all(s.byTestId(T.executionRow))).length >= 3);
  await s.screenshot(SCREENS, "04-job-executions");
  await s.clickTestId(T.tabFailed);
  await until("dead letters listed", async () => (await failedRows()).length >= 2);
  await s.screenshot(SCREENS, "05-failed-records");
});

test("retry one (fault off) and dismiss one with a note", async () => {
  await s.go("/sandbox");
  const bad = await s.testId("fault-bad-records");
  if (await s.cmd("GET", `/element/${bad}/selected`)) await s.click(bad);
  await until("the fault to clear", async () => (await s.cmd("GET", `/element/${bad}/selected`)) === false);

  await s.go(`/jobs/${jobId}/failed`);
  await until("dead letters listed", async () => (await failedRows()).length >= 2);
  const before = await failedRows();
  const first = await s.attr(before[0], "data-record-id");
  await s.click((await s.all(`[data-record-id="${first}"] ${s.byTestId(T.failedRetry)}`))[0]);
  await until(`${first} to leave the queue`, async () => (await s.all(`[data-record-id="${first}"]`)).length === 0, 30000);

  const rows = await failedRows();
  const second = await s.attr(rows[0], "data-record-id");
  await s.click((await s.all(`[data-record-id="${second}"] ${s.byTestId(T.failedDismiss)}`))[0]);
  await s.type(await s.testId(T.dismissNote), "test data from the old CRM import");
  await s.clickTestId(T.dismissConfirm);
  await until(`${second} to leave the view`, async () => (await s.all(`[data-record-id="${second}"]`)).length === 0);

  await s.clickTestId(T.navAudit);
  await until("the audit entry with the note", async () => {
    for (const r of await s.all(s.byTestId(T.auditRow))) {
      const t = await s.text(r);
      if (t.includes(second) && t.includes("test data from the old CRM import")) return true;
    }
    return false;
  });
  await s.screenshot(SCREENS, "06-audit-log");
});

test("revoked credentials mark the connection expired with the re-auth action", async () => {
  await s.go("/sandbox");
  const revoke = await s.testId("fault-token-expiry");
  await s.click(revoke);
  await until("the fault to apply", async () => (await s.cmd("GET", `/element/${revoke}/selected`)) === true);
  assert.equal(await runJobFromJobPage(), "failed");
  await s.screenshot(SCREENS, "07-execution-auth-failed");
  await s.clickTestId(T.navConnections);
  await until("the connection to show expired", async () => {
    for (const b of await s.all(s.byTestId(T.connectionStatus))) {
      if ((await s.attr(b, "data-status")) === "expired") return true;
    }
    return false;
  });
  await s.testId(T.reauthButton);
  await s.screenshot(SCREENS, "08-connections-expired");
  await s.clickTestId(T.navAlerts);
  await s.testId(T.alertRow);
  await s.screenshot(SCREENS, "09-alerts");
  await s.clickTestId(T.navDashboard);
  await s.screenshot(SCREENS, "10-dashboard");
});

test("sign in through the browser: authorization code with PKCE creates an active connection", async () => {
  await s.clickTestId(T.navConnections);
  await s.click(await s.findXPath("//button[contains(., 'Add connection')]"));
  // A spec of one's own is the wizard's way out for technical users.
  await s.clickTestId(T.wizardCustom);
  const field = (label) => s.findXPath(`//form[@id='new-conn']//label[.//span[starts-with(., '${label}')]]/*[self::input or self::textarea]`);
  await s.type(await field("Name"), "Acme (browser)");
  await s.type(await field("Connector spec"), "sandbox");
  await s.click(await s.findXPath("//form[@id='new-conn']//label[contains(., 'Sign in through the browser')]/input"));
  await s.type(await field("Client ID"), "sandbox-client");
  await s.click(await s.findXPath("//button[@form='new-conn']"));
  // The app opens the system browser, which comes back to its loopback listener with a code.
  let card;
  try {
    card = await until(
      "the signed-in connection",
      async () => {
        for (const c of await s.all(s.byTestId(T.connectionCard))) {
          if ((await s.text(c)).includes("Acme (browser)")) return c;
        }
        return null;
      },
      60000,
    );
  } catch (e) {
    await s.screenshot(SCREENS, "12-connection-browser-sign-in-failed");
    const dialog = (await s.all("[role=dialog]"))[0];
    const said = dialog ? await s.text(dialog) : "(no dialog)";
    const opened = existsSync(browser.E2E_BROWSER_LOG) ? readFileSync(browser.E2E_BROWSER_LOG, "utf8") : "(browser never ran)";
    throw new Error(`${e.message}\ndialog: ${said}\nbrowser: ${opened}`);
  }
  const status = await s.cmd("POST", `/element/${card}/element`, { using: "css selector", value: s.byTestId(T.connectionStatus) });
  assert.equal(await s.attr(Object.values(status)[0], "data-status"), "active");
  assert.match(await s.text(card), /authorization code/);
  await s.screenshot(SCREENS, "12-connection-browser-sign-in");

  assert.ok(existsSync(browser.E2E_BROWSER_LOG), "xdg-open ran the system browser");
  const visits = readFileSync(browser.E2E_BROWSER_LOG, "utf8").trim().split("\n");
  assert.match(visits.at(-1), /^# 200 at http:\/\/127\.0\.0\.1:\d+\/callback: .*Signed in\./, "the browser ended on the app's page");
  const opened = new URL(visits.at(-2));
  assert.equal(opened.hostname, "127.0.0.1", "the sandbox's sign-in page");
  assert.equal(opened.searchParams.get("response_type"), "code");
  assert.equal(opened.searchParams.get("client_id"), "sandbox-client");
  assert.equal(opened.searchParams.get("code_challenge_method"), "S256");
  assert.match(opened.searchParams.get("code_challenge"), /^[A-Za-z0-9_-]{43}$/);
  assert.match(opened.searchParams.get("redirect_uri"), /^http:\/\/127\.0\.0\.1:\d+\//);
  assert.ok(opened.searchParams.get("state"));
});

test("at 800 px wide the sidebar becomes a menu and every view still works", async () => {
  // The app's own window, resized as a user would drag it: Xvfb runs no window manager, so
  // WebDriver's Set Window Rect is not honoured there; xdotool resizes the X window itself.
  execFileSync("xdotool", ["search", "--name", "^Syncdesk", "windowsize", "%@", "800", "760"]);
  await until("the window to be 800 px wide", async () => (await s.script("return window.innerWidth;")) <= 800);
  await s.clickTestId(T.menuButton);
  await s.clickTestId(T.navDashboard);
  await s.screenshot(SCREENS, "13-dashboard-800");
  await s.clickTestId(T.menuButton);
  await s.screenshot(SCREENS, "14-menu-800");
  await s.clickTestId(T.navAlerts);
  await s.testId(T.alertRow);
  assert.equal(await s.attr(await s.testId(T.menuButton), "aria-expanded"), "false", "the menu closes on navigation");
  await s.screenshot(SCREENS, "15-alerts-800");
  await s.clickTestId(T.menuButton);
  await s.clickTestId(T.navConnections);
  await s.testId(T.connectionCard);
  await s.screenshot(SCREENS, "16-connections-800");
  execFileSync("xdotool", ["search", "--name", "^Syncdesk", "windowsize", "%@", "1280", "800"]);
});
