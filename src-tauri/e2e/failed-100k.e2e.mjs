// A measurement on the real binary, not a timed test: how long Failed Records takes to open
// when the job has 100k dead letters (and 100k executions, 100k error rows). scripts/e2e.sh
// seeds the database with `syncdesk-bench --seed-lists` and passes its directory in
// E2E_SEEDED_DIR. The figures are printed as a `# timings` line; the assertions check that
// what opened is the right first page.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { T } from "./testids.mjs";
import { Session, startDriver } from "./webdriver.mjs";

const BINARY = process.env.SYNCDESK_DESKTOP_BIN;
const SEEDED = process.env.E2E_SEEDED_DIR;
const SCREENS = process.env.E2E_SCREENS ?? "target/e2e-screens";
const LOGS = process.env.E2E_LOGS ?? tmpdir();
assert.ok(BINARY, "set SYNCDESK_DESKTOP_BIN to the built syncdesk-desktop binary");
assert.ok(SEEDED, "set E2E_SEEDED_DIR to a directory seeded by syncdesk-bench --seed-lists");
/** Rows per page of the shell's list commands (src-tauri/src/desktop.rs). */
const PAGE = 50;

let driver;
let s;
const timings = {};

before(async () => {
  driver = await startDriver({
    logFile: join(LOGS, "webdriver-100k.log"),
    env: { ...process.env, TAURI_WEBVIEW_AUTOMATION: "true", SYNCDESK_DATA_DIR: SEEDED },
  });
  const t0 = performance.now();
  s = await Session.create(driver.url, BINARY);
  await s.testId(T.navDashboard, 30000);
  timings.coldStartToFirstPaintMs100k = Math.round(performance.now() - t0);
});

after(async () => {
  if (s) await s.close();
  if (driver) await driver.stop();
  console.log(`# timings ${JSON.stringify(timings)}`);
});

/** Click `tab` and resolve with the ms until `rowTestId` rows (at least `want`) are painted. */
const OPEN_AND_WAIT = `
  const [tab, row, want, done] = arguments;
  const t0 = performance.now();
  document.querySelector('[data-testid="' + tab + '"]').click();
  (function poll() {
    if (document.querySelectorAll('[data-testid="' + row + '"]').length >= want) {
      requestAnimationFrame(() => done(performance.now() - t0));
    } else {
      requestAnimationFrame(poll);
    }
  })();
`;

test("Failed Records opens on its first page with 100k dead letters", async () => {
  const nav = await s.find(`[data-testid^="${T.navJobPrefix}"]`);
  const jobId = (await s.attr(nav, "data-testid")).slice(T.navJobPrefix.length);
  await s.go(`/jobs/${jobId}`);
  await s.find(s.byTestId(T.executionRow));
  const ms = await s.scriptAsync(OPEN_AND_WAIT, [T.tabFailed, T.failedRow, PAGE]);
  timings.openFailedRecords100kMs = Math.round(ms);
  const rows = await s.all(s.byTestId(T.failedRow));
  assert.equal(rows.length, PAGE, "one page, not the whole queue");
  // Newest failure first (R-D3): the seeded rows fail one minute apart.
  const first = await s.attr(rows[0], "data-record-id");
  const second = await s.attr(rows[1], "data-record-id");
  assert.ok(first > second, `${first} before ${second}`);
  await s.find(s.byTestId(T.loadMore));
  await s.screenshot(SCREENS, "11-failed-records-100k");
});
