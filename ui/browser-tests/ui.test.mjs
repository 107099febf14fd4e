// Browser tests: the built UI (ui/dist) with the `?mock` fixture backend, in headless Chromium.
// Every wait is for a condition (selector, text, URL), never for time.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { axeViolations, launch, newPage, shot, startServer, T, tid } from "./harness.mjs";

let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await server?.close();
});

async function open(path = "/", { dark = false, scenario = "", width } = {}) {
  const { page, errors, context } = await newPage(browser, { dark, width });
  await page.goto(`${server.base}/?mock=${scenario}#${path}`);
  return { page, errors, context };
}

describe("Syncdesk UI against mocked IPC", () => {
  test("dashboard lists jobs with health, last status and the expired connection", async () => {
    const { page, errors, context } = await open("/");
    await page.waitForSelector(tid(`${T.jobRowPrefix}j1customers`));
    const row = page.locator(tid(`${T.jobRowPrefix}j1customers`));
    assert.equal(await row.locator(tid(T.statusBadge)).getAttribute("data-status"), "completed_with_errors");
    assert.match(await page.locator(".banner-bad").first().innerText(), /Acme Books\s+is expired/);
    assert.match(await page.locator(tid(T.navAlerts)).innerText(), /2/);
    await shot(page, "01-dashboard");
    assert.deepEqual(errors, []);
    await context.close();
  });

  test("first run leads to the sandbox, which starts and creates its connection", async () => {
    const { page, context } = await open("/", { scenario: "empty" });
    await page.waitForSelector(tid(T.trySandbox));
    await shot(page, "00-first-run");
    await page.click(tid(T.trySandbox));
    await page.waitForSelector(tid(T.sandboxStart));
    await shot(page, "02-first-run-sandbox");
    await page.click(tid(T.sandboxStart));
    await page.waitForSelector(`${tid(T.sandboxStatus)}[data-status="running"]`);
    await page.waitForSelector(tid(`${T.faultPrefix}schema-drift`));
    await page.click(tid(T.navConnections));
    await page.waitForSelector(`${tid(T.connectionCard)}[data-connection-id="c0sandbox"]`);
    await context.close();
  });

  test("job executions: newest first, completed_with_errors stands out, retry chain visible", async () => {
    const { page, context } = await open("/jobs/j1customers");
    await page.waitForSelector(tid(T.executionRow));
    const statuses = await page.locator(tid(T.executionRow)).evaluateAll((rows) => rows.map((r) => r.getAttribute("data-status")));
    assert.equal(statuses[0], "completed_with_errors");
    const first = page.locator(tid(T.executionRow)).first();
    const bg = await first.evaluate((el) => getComputedStyle(el).backgroundColor);
    assert.notEqual(bg, "rgba(0, 0, 0, 0)", "completed_with_errors rows are highlighted");
    assert.match(await page.locator(".retry-of").first().innerText(), /Retry of/i);
    await shot(page, "03-job-executions");
    await context.close();
  });

  test("execution detail: breakdown counts, R-I1 error lines (kinds in plain words), kind filter, diagnosis action", async () => {
    const { page, context, errors } = await open("/executions/e7c1a4f09b2d4c1e");
    await page.waitForSelector(tid(T.breakdown));
    const count = (id) => page.locator(tid(id)).getAttribute("data-count");
    assert.equal(await count(T.breakdownCreated), "180");
    assert.equal(await count(T.breakdownUpdated), "42");
    assert.equal(await count(T.breakdownSkipped), "6");
    assert.equal(await count(T.breakdownFailed), "22");
    assert.equal(await page.locator(tid(T.executionStatus)).getAttribute("data-status"), "completed_with_errors");
    await page.waitForSelector(tid(T.errorRow));
    assert.match(await page.locator(tid(T.errorRow)).first().innerText(), /Record ID: cus_\d{8}, Error: Missing required value - Required field 'email' is null/);
    assert.equal(await page.locator(tid(T.errorRow)).count(), 10, "first page of 10");
    // Segment widths are set through the CSSOM, which the strict CSP allows.
    const w = await page.locator(".breakdown-bar .seg-created").evaluate((el) => el.getBoundingClientRect().width);
    const total = await page.locator(".breakdown-bar").evaluate((el) => el.getBoundingClientRect().width);
    assert.ok(Math.abs(w / total - 0.72) < 0.02, `created segment is 72% wide (got ${w}/${total})`);
    await shot(page, "04-execution-detail");
    assert.deepEqual(errors, [], "no console errors (CSP violations included)");
    await page.click(tid(T.loadMore));
    await page.waitForFunction((sel) => document.querySelectorAll(sel).length > 10, tid(T.errorRow));
    await page.selectOption(tid(T.errorKindFilter), "TransformError");
    // Wait for the filtered page itself: rows present (not the loading state) and all of that kind.
    await page.waitForFunction((sel) => {
      const rows = [...document.querySelectorAll(sel)];
      return rows.length > 0 && rows.every((r) => r.getAttribute("data-kind") === "TransformError");
    }, tid(T.errorRow));
    assert.equal(await page.locator(tid(T.errorRow)).count(), 5);
    await page.click(tid(`${T.diagnosisActionPrefix}open_failed_records`));
    await page.waitForURL(/#\/jobs\/j1customers\/failed/);
    await page.waitForSelector(tid(T.failedRow));
    await context.close();
  });

  test("failed records: R-D3 columns, bulk dismiss needs a note, retry leaves the queue, drawer", async () => {
    const { page, context } = await open("/jobs/j1customers/failed");
    await page.waitForSelector(tid(T.failedRow));
    const headers = await page.locator(".failed-records table thead th").allInnerTexts();
    assert.deepEqual(
      headers.slice(1).map((h) => h.trim().toLowerCase()),
      ["record id", "entity type", "first failed", "last failed", "attempts", "error", "actions"],
    );
    const before = await page.locator(tid(T.failedRow)).count();
    assert.equal(before, 14);
    // Below the dead letters: records failing but not yet there, read-only.
    await page.waitForSelector(tid(T.failingRow));
    const failing = page.locator(tid(T.failingSection));
    assert.equal(await failing.locator(tid(T.failingRow)).count(), 8);
    assert.equal(await failing.locator("button, input").count(), 0, "no retry or dismiss on failing records");
    const rows = page.locator(tid(T.failedRow));
    await rows.nth(1).locator(tid(T.failedRowCheckbox)).check();
    await rows.nth(2).locator(tid(T.failedRowCheckbox)).check();
    await shot(page, "05-failed-records-selected");
    await page.click(tid(T.bulkDismiss));
    await page.waitForSelector(tid(T.dismissNote));
    await page.click(tid(T.dismissConfirm));
    await page.waitForSelector(tid(`${T.fieldErrorPrefix}note`));
    await shot(page, "06-dismiss-note-required");
    assert.equal(await page.locator(tid(T.failedRow)).count(), before, "nothing dismissed without a note");
    await page.fill(tid(T.dismissNote), "Duplicates of merged accounts");
    await page.click(tid(T.dismissConfirm));
    await page.waitForFunction((n) => document.querySelectorAll('[data-testid="failed-row"]').length === n, before - 2);
    // Row 1 (index 1 was dismissed, so this is the old third) — retry a record whose payload is fixed.
    const target = page.locator(tid(T.failedRow)).nth(0);
    const id = await target.getAttribute("data-record-id");
    await target.locator(tid(T.failedRetry)).click();
    await page.waitForSelector(".banner-ok, .banner-warn");
    await shot(page, "07-after-retry");
    // Open the drawer on another record.
    await page.locator(tid(T.failedRow)).nth(0).locator("button.link-btn").click();
    await page.waitForSelector(`${tid(T.recordDrawer)} .history li`);
    assert.match(await page.locator(tid(T.recordDrawer)).innerText(), /Stored payload/);
    await shot(page, "08-record-drawer");
    await page.keyboard.press("Escape");
    await page.waitForSelector(tid(T.recordDrawer), { state: "detached" });
    // The audit log has the note.
    await page.click(tid(T.navAudit));
    await page.waitForSelector(tid(T.auditRow));
    assert.match(await page.locator("table").innerText(), /Duplicates of merged accounts/);
    await shot(page, "09-audit-log");
    void id;
    await context.close();
  });

  test("expired connection says so and re-authenticates from the diagnosis action", async () => {
    const { page, context } = await open("/executions/f0e1d2c3b4a59687");
    await page.click(tid(`${T.diagnosisActionPrefix}reauthenticate`));
    await page.waitForURL(/#\/connections\/c1acmebooks/);
    await page.waitForSelector(".dialog[open]");
    await shot(page, "10-reauth-dialog");
    await page.keyboard.press("Escape");
    const card = page.locator(`${tid(T.connectionCard)}[data-connection-id="c1acmebooks"]`);
    assert.equal(await card.locator(tid(T.connectionStatus)).getAttribute("data-status"), "expired");
    assert.match(await card.innerText(), /This connection has expired/);
    await shot(page, "11-connections");
    await card.locator(tid(T.reauthButton)).click();
    await page.fill(".dialog[open] input[type=password]", "new-refresh-token");
    await page.click(".dialog[open] button[type=submit]");
    await page.waitForSelector(`${tid(T.connectionCard)}[data-connection-id="c1acmebooks"] ${tid(T.connectionStatus)}[data-status="active"]`);
    await context.close();
  });

  test("job editor: invalid input is flagged next to the field and nothing is saved", async () => {
    const { page, context } = await open("/jobs/j1customers/settings");
    await page.waitForSelector(tid(T.jobSave));
    await page.fill('[data-field="batch_size"]', "0");
    await page.fill('[data-field="mappings[1].target"]', "name");
    await page.fill('[data-field="timeout"]', "soon");
    await page.click(tid(T.jobSave));
    await page.waitForSelector(tid(`${T.fieldErrorPrefix}batch_size`));
    assert.match(await page.locator(tid(`${T.fieldErrorPrefix}mappings[1].target`)).innerText(), /mapped twice/);
    assert.match(await page.locator(tid(`${T.fieldErrorPrefix}timeout`)).innerText(), /duration/);
    await shot(page, "12-job-editor-invalid");
    const saved = await page.evaluate(() => window.__syncdeskMock.backend.state.jobs.find((j) => j.id === "j1customers").settings.batch_size);
    assert.equal(saved, 100);
    await context.close();
  });

  test("running a job shows live progress until it finishes", async () => {
    const { page, context } = await open("/jobs/j3products");
    await page.click(tid(T.runJob));
    await page.waitForURL(/#\/executions\//);
    await page.waitForSelector(`${tid(T.executionStatus)}[data-status="running"]`);
    await shot(page, "13-execution-running");
    await page.waitForSelector(`${tid(T.executionStatus)}[data-status="completed_with_errors"]`, { timeout: 30000 });
    assert.equal(await page.locator(tid(T.breakdownFailed)).getAttribute("data-count"), "10");
    await context.close();
  });

  test("a shell navigate event (notification click) opens the execution", async () => {
    const { page, context } = await open("/");
    await page.waitForSelector(tid(`${T.jobRowPrefix}j1customers`));
    await page.evaluate(() => window.__syncdeskMock.emit("syncdesk://navigate", { view: "execution", id: "a1b2c3d4e5f60718" }));
    await page.waitForURL(/#\/executions\/a1b2c3d4e5f60718/);
    await page.waitForSelector(tid(T.executionNote));
    assert.match(await page.locator(tid(T.executionNote)).innerText(), /Circuit breaker tripped/);
    await shot(page, "14-breaker-execution");
    await context.close();
  });

  test("i16: pause all syncs shows the banner on every page, the quit question asks first; axe-clean, light and dark", async () => {
    for (const dark of [false, true]) {
      const { page, context, errors } = await open("/", { dark });
      await page.waitForSelector(tid(T.pauseSyncs));
      await page.click(tid(T.pauseSyncs));
      await page.waitForSelector(tid(T.pausedBanner));
      assert.match(await page.locator(tid(T.pausedBanner)).innerText(), /All syncs are paused/);
      assert.equal(await page.locator(tid(T.runDue)).isDisabled(), true);
      assert.deepEqual(await axeViolations(page), [], `axe-clean with the paused banner (dark: ${dark})`);
      await page.click(tid(T.navAlerts));
      await page.waitForSelector(tid(T.pausedBanner));
      await page.evaluate(() => window.__syncdeskMock.emit("syncdesk://quit-request", { runs_in_progress: 1 }));
      await page.waitForSelector(tid(T.quitConfirm));
      assert.match(await page.locator("dialog").innerText(), /A sync is running/);
      if (!dark) await shot(page, "20-quit-question");
      assert.deepEqual(await axeViolations(page), [], `axe-clean with the quit question (dark: ${dark})`);
      await page.click(tid(T.quitCancel));
      await page.locator(tid(T.quitConfirm)).waitFor({ state: "hidden" });
      await page.click(tid(T.resumeSyncs));
      await page.locator(tid(T.pausedBanner)).waitFor({ state: "detached" });
      assert.deepEqual(errors, []);
      await context.close();
    }
  });

  test("i16: Settings is axe-clean in light and dark, and its theme overrides the system's", async () => {
    const { page, context, errors } = await open("/settings");
    await page.waitForSelector(tid(T.settingsTheme));
    assert.deepEqual(await axeViolations(page), [], "axe-clean, light");
    await shot(page, "21-settings");
    await page.selectOption(tid(T.settingsTheme), "dark");
    await page.waitForFunction(() => document.documentElement.dataset.theme === "dark");
    assert.equal(await page.evaluate(() => getComputedStyle(document.body).backgroundColor), "rgb(15, 17, 21)");
    assert.deepEqual(await axeViolations(page), [], "axe-clean, dark");
    await page.selectOption(tid(T.settingsTheme), "light");
    await page.waitForFunction(() => document.documentElement.dataset.theme === "light");
    assert.notEqual(await page.evaluate(() => getComputedStyle(document.body).backgroundColor), "rgb(15, 17, 21)");
    assert.deepEqual(errors, []);
    await context.close();
    // Light chosen in a dark system stays light.
    const dark = await open("/settings", { dark: true });
    await dark.page.waitForSelector(tid(T.settingsTheme));
    assert.equal(await dark.page.evaluate(() => getComputedStyle(document.body).backgroundColor), "rgb(15, 17, 21)");
    await dark.page.selectOption(tid(T.settingsTheme), "light");
    await dark.page.waitForFunction(() => document.documentElement.dataset.theme === "light");
    assert.notEqual(await dark.page.evaluate(() => getComputedStyle(document.body).backgroundColor), "rgb(15, 17, 21)");
    assert.deepEqual(await axeViolations(dark.page), [], "axe-clean, light over a dark system");
    await dark.context.close();
  });

  test("sandbox faults flip and are sent to the shell", async () => {
    const { page, context } = await open("/sandbox");
    await page.waitForSelector(tid(`${T.faultPrefix}schema-drift`));
    await page.locator(tid(`${T.faultPrefix}schema-drift`)).check({ force: true });
    await page.waitForFunction(() => window.__syncdeskMock.backend.handle("sandbox_status").faults.schema_drift === true);
    await shot(page, "15-sandbox");
    await context.close();
  });

  test("dark mode: execution detail and dashboard", async () => {
    const { page, context } = await open("/executions/e7c1a4f09b2d4c1e", { dark: true });
    await page.waitForSelector(tid(T.errorRow));
    const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    assert.equal(bg, "rgb(15, 17, 21)");
    await shot(page, "16-execution-dark");
    await page.click(tid(T.navDashboard));
    await page.waitForSelector(tid(`${T.jobRowPrefix}j1customers`));
    await shot(page, "17-dashboard-dark");
    await context.close();
  });

  test("alerts center: click opens the execution and marks it read", async () => {
    const { page, context } = await open("/alerts");
    await page.waitForSelector(tid(T.alertRow));
    await shot(page, "18-alerts");
    await page.locator(`${tid(T.alertRow)}[data-alert-id="3"] .alert-main`).click();
    await page.waitForURL(/#\/executions\/e7c1a4f09b2d4c1e/);
    // The mark-read call goes over (mock) IPC with latency, so it may land after the navigation.
    await page.waitForFunction(() => window.__syncdeskMock.backend.state.alerts.find((a) => a.id === 3).read === true);
    await context.close();
  });

  test("i11: at 800 px the sidebar is a menu button that opens the nav, navigates and closes", async () => {
    const { page, context, errors } = await open("/", { width: 800 });
    const button = page.locator(tid(T.menuButton));
    await button.waitFor({ state: "visible" });
    assert.equal(await page.locator(tid(T.navAlerts)).isVisible(), false, "nav hidden until the menu opens");
    assert.equal(await button.getAttribute("aria-expanded"), "false");
    await button.focus();
    await page.keyboard.press("Enter");
    await page.locator(tid(T.navAlerts)).waitFor({ state: "visible" });
    assert.equal(await button.getAttribute("aria-expanded"), "true");
    await shot(page, "19-narrow-menu-open");
    assert.deepEqual(await axeViolations(page), [], "axe-clean with the menu open");
    await page.keyboard.press("Escape");
    await page.locator(tid(T.navAlerts)).waitFor({ state: "hidden" });
    assert.equal(await page.evaluate(() => document.activeElement?.getAttribute("data-testid")), T.menuButton);
    await button.click();
    await page.click(tid(T.navAlerts));
    await page.waitForURL(/#\/alerts/);
    await page.locator(tid(T.navAlerts)).waitFor({ state: "hidden" });
    assert.equal(await button.getAttribute("aria-expanded"), "false");
    await page.waitForSelector(tid(T.alertRow));
    await shot(page, "20-narrow-alerts");
    assert.deepEqual(errors, []);
    await context.close();
  });

  test("i15: the connection wizard walks provider → key → check → entities → jobs, axe-clean at each step, no spec shown", async () => {
    const { page, errors, context } = await open("/connections", { scenario: "empty" });
    const found = [];
    const check = async (step) => {
      for (const v of await axeViolations(page)) found.push(`${step}: axe ${v}`);
      const text = await page.locator(tid(T.wizard)).innerText();
      if (/\[entities|base_url =|R-[A-Z][0-9]|oauth2|bearer/.test(text)) found.push(`${step}: spec or jargon shown`);
      if ((await page.locator(`${tid(T.wizard)} textarea`).count()) > 0) found.push(`${step}: a text area`);
    };
    await page.getByRole("button", { name: "Add connection" }).first().click();
    await page.waitForSelector(tid(`${T.wizardProviderPrefix}stripe`));
    await check("provider");
    await shot(page, "30-wizard-provider");
    await page.click(tid(`${T.wizardProviderPrefix}stripe`));
    await page.click(tid(T.wizardNext));
    await page.waitForSelector(tid(T.wizardSecret));
    await check("sign in");
    await page.fill(tid(T.wizardSecret), "wrong");
    await page.click(tid(T.wizardConnect));
    await page.waitForSelector(tid(`${T.fieldErrorPrefix}secret`));
    assert.match(await page.locator(tid(`${T.fieldErrorPrefix}secret`)).innerText(), /did not accept.*Nothing was saved/);
    await check("wrong key");
    await shot(page, "31-wizard-wrong-key");
    await page.click(tid(T.wizardAdvanced));
    await page.waitForSelector(tid(T.wizardBaseUrl));
    await check("advanced");
    await page.fill(tid(T.wizardSecret), "rk_test_good");
    await page.click(tid(T.wizardConnect));
    await page.waitForSelector(tid(`${T.wizardEntityPrefix}customers`));
    await check("entities");
    await shot(page, "32-wizard-entities");
    await page.click(tid(T.wizardCreateJobs));
    await page.waitForSelector(tid(T.wizardDone));
    await check("done");
    await shot(page, "33-wizard-done");
    await page.click(tid(T.wizardFinish));
    await page.waitForSelector(`${tid(T.connectionCard)}`);
    assert.deepEqual(found, []);
    assert.deepEqual(errors, []);
    await context.close();
  });

  test("i15: the wizard's organisation step (Xero) and dark mode are axe-clean", async () => {
    const { page, context } = await open("/connections", { scenario: "empty", dark: true });
    await page.getByRole("button", { name: "Add connection" }).first().click();
    await page.click(tid(`${T.wizardProviderPrefix}xero`));
    await page.click(tid(T.wizardNext));
    await page.fill(tid(T.wizardClientId), "xero-app");
    await page.click(tid(T.wizardConnect));
    await page.waitForSelector(tid(T.wizardChoice));
    assert.deepEqual(await axeViolations(page), []);
    await shot(page, "34-wizard-organisation-dark");
    await context.close();
  });

  test("i7: no rule ids or type names in the text of any main view, each axe-clean", async () => {
    const { page, context } = await open("/");
    const views = [
      ["/", tid(`${T.jobRowPrefix}j1customers`)],
      ["/jobs/j1customers", tid(T.executionRow)],
      ["/jobs/j2invoices", tid(T.executionRow)],
      ["/jobs/j1customers/failed", tid(T.failedRow)],
      ["/jobs/j1customers/settings", tid(T.jobSave)],
      ["/executions/e7c1a4f09b2d4c1e", tid(T.errorRow)],
      ["/executions/a1b2c3d4e5f60718", tid(T.executionNote)],
      ["/executions/f0e1d2c3b4a59687", tid(T.executionStatus)],
      ["/connections", tid(T.connectionCard)],
      ["/alerts", tid(T.alertRow)],
      ["/audit", tid(T.auditRow)],
      ["/sandbox", tid(`${T.faultPrefix}schema-drift`)],
    ];
    const jargon = /\b(SchemaMismatch|TransformError|ValidationError|DuplicateConflict|ReferenceNotFound|dead_letter|provider_unavailable|circuit_breaker|completed_with_errors|timed_out)\b/;
    const found = [];
    for (const [path, ready] of views) {
      await page.goto(`${server.base}/?mock=#${path}`);
      await page.waitForSelector(ready);
      const text = await page.evaluate(() => document.body.innerText);
      const rule = text.match(/R-[A-Z][0-9]/);
      const type = text.match(jargon);
      if (rule || type) found.push(`${path}: ${rule?.[0] ?? ""} ${type?.[0] ?? ""}`);
      for (const v of await axeViolations(page)) found.push(`${path}: axe ${v}`);
    }
    assert.deepEqual(found, []);
    await context.close();
  });
});
