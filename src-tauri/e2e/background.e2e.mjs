// End to end on the real binary (issue 16): Syncdesk as a background tool. The admin closes
// the window (a real WM_DELETE_WINDOW, as a window manager's close button sends); the app
// keeps running with no window; a scheduled job fails in the background (the sandbox's schema
// drift trips the circuit breaker); the native notification arrives at a real notification
// daemon (dunst on this test's session bus); the admin clicks it (`dunstctl action`), and the
// window comes back on that execution. Before that, the first successful sync offers start at
// login once, and accepting writes the OS's autostart entry (XDG, in this test's own HOME).
// scripts/e2e.sh runs it under Xvfb and a private D-Bus session. The scheduled run is real
// time: the shortest schedule is one minute.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { T } from "./testids.mjs";
import { sandboxCustomersJob, startApp } from "./app.mjs";
import { until } from "./webdriver.mjs";

const BINARY = process.env.SYNCDESK_DESKTOP_BIN;
const SCREENS = process.env.E2E_SCREENS ?? "target/e2e-screens";
const LOGS = process.env.E2E_LOGS ?? tmpdir();
const HERE = dirname(fileURLToPath(import.meta.url));
assert.ok(BINARY, "set SYNCDESK_DESKTOP_BIN to the built syncdesk-desktop binary");

let app;
let s;
let dataDir;
let dunst;
let jobId;

/** Run a command; its stdout, or null when it exits non-zero. */
function run(cmd, args) {
  try {
    return execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
  } catch {
    return null;
  }
}

/** The app's visible top-level windows (X11 ids); none while it runs in the background. */
function visibleWindows() {
  return (run("xdotool", ["search", "--onlyvisible", "--name", "^Syncdesk$"]) ?? "").split("\n").filter(Boolean);
}

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "syncdesk-e2e-bg-"));
  mkdirSync(join(dataDir, "home"));
  // A real notification daemon on this session bus, before the app looks for one. The bus
  // may already have one: an earlier test's notification can have started dunst through its
  // D-Bus service file. Then that one is used, with its screen cleared.
  if (run("dunstctl", ["count", "displayed"]) === null) {
    const rc = join(dataDir, "dunstrc");
    writeFileSync(rc, "[global]\n    font = Monospace 8\n");
    dunst = spawn("dunst", ["-config", rc], { stdio: "ignore" });
    await until("dunst to answer", async () => run("dunstctl", ["count", "displayed"]) !== null, 20000);
  }
  run("dunstctl", ["close-all"]);
  await until("no notification on screen", async () => run("dunstctl", ["count", "displayed"])?.trim() === "0", 20000);
  app = await startApp({
    binary: BINARY,
    logFile: join(LOGS, "webdriver-background.log"),
    env: {
      SYNCDESK_DATA_DIR: join(dataDir, "data"),
      // Start at login writes ~/.config/autostart: this test's own home, not the machine's.
      HOME: join(dataDir, "home"),
    },
  });
  s = app.s;
});

after(async () => {
  await app?.stop();
  dunst?.kill();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

test("the first successful sync offers start at login once; accepting writes the autostart entry", async () => {
  jobId = await sandboxCustomersJob(s);
  assert.deepEqual(await s.all(s.byTestId(T.startAtLoginOffer)), [], "no offer before a sync worked");
  await s.go(`/jobs/${jobId}`);
  await s.clickTestId(T.runJob);
  await s.clickTestId(T.startAtLoginAccept, 60000);
  const entry = join(dataDir, "home", ".config", "autostart", "Syncdesk.desktop");
  await until("the autostart entry", async () => existsSync(entry));
  const text = readFileSync(entry, "utf8");
  assert.match(text, /^Exec=\S*syncdesk-desktop --background$/m, text);
  await until("the offer to go", async () => (await s.all(s.byTestId(T.startAtLoginOffer))).length === 0);
  await s.go("/settings");
  const box = await s.testId(T.settingsStartAtLogin);
  assert.equal(await s.cmd("GET", `/element/${box}/selected`), true, "Settings reads the OS's entry");
});

test("a customers job on the sandbox, every minute, with the schema drift switched on", async () => {
  await s.go("/sandbox");
  const drift = await s.testId("fault-schema-drift");
  if (!(await s.cmd("GET", `/element/${drift}/selected`))) await s.click(drift);
  await until("the drift to be on", async () => (await s.cmd("GET", `/element/${drift}/selected`)) === true);
  // The job's settings: every 1 minute (the shortest schedule there is), full runs (an
  // incremental one would fetch nothing: nothing changed since the clean run).
  await s.go(`/jobs/${jobId}/settings`);
  await s.click(await s.findXPath("//option[@value='full']"));
  await s.click(await s.findXPath("//select[@aria-label='Schedule kind']/option[@value='interval']"));
  const every = await s.findXPath("//select[@aria-label='Schedule kind']/following-sibling::input");
  await s.cmd("POST", `/element/${every}/clear`, {});
  await s.type(every, "1m");
  await s.click(await s.find('[data-testid="job-save"]'));
  await s.find(".saved");
});

test("closing the window leaves Syncdesk running in the background", async () => {
  const windows = visibleWindows();
  assert.ok(windows.length >= 1, "the window is on screen before it is closed");
  for (const w of windows) execFileSync("/usr/bin/python3", [join(HERE, "close-window.py"), w]);
  await until("the window to be hidden", async () => visibleWindows().length === 0, 10000);
  // Still alive: the page answers (the process did not exit with its last window).
  assert.equal(await s.script("return 1 + 1"), 2);
});

test("the scheduled run fails in the background, notifies, and the click reopens its execution", async () => {
  // The schedule comes due within a minute of the save; the breaker trips on the first page.
  await until("the native notification", async () => Number(run("dunstctl", ["count", "displayed"])?.trim() ?? 0) >= 1, 150000);
  assert.deepEqual(visibleWindows(), [], "nothing showed the window before the click");
  execFileSync("dunstctl", ["action", "0"]);
  await until("the window to come back", async () => visibleWindows().length >= 1, 20000);
  await until("the execution view", async () => (await s.hash()).startsWith("#/executions/"), 20000);
  const note = await s.testId(T.executionNote, 20000);
  assert.match(await s.text(note), /stopped early|breaker/i);
  const status = await s.attr(await s.testId(T.executionStatus), "data-status");
  assert.equal(status, "failed");
  await s.screenshot(SCREENS, "30-background-notification-opened");
});
