// End to end on the real binary (issue 16, point 4): updates are signed, and only a release
// signed with the app's release key is ever kept. A throwaway minisign key pair is made here
// with the Tauri CLI (never a key of the repository); an update server on 127.0.0.1 announces
// 0.2.0. The app finds it; a tampered artifact and an artifact signed with another key are
// refused with a clear message and the app keeps running; the genuine one is downloaded,
// verified and offered for install, which waits for the admin (not clicked here). A debug
// build takes the update address and key from SYNCDESK_UPDATE_ENDPOINT/_PUBKEY; a release
// build only from its configuration.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createServer } from "node:http";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { T } from "./testids.mjs";
import { startApp } from "./app.mjs";

const BINARY = process.env.SYNCDESK_DESKTOP_BIN;
const SCREENS = process.env.E2E_SCREENS ?? "target/e2e-screens";
const LOGS = process.env.E2E_LOGS ?? tmpdir();
const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const TAURI = join(ROOT, "ui", "node_modules", ".bin", "tauri");
assert.ok(BINARY, "set SYNCDESK_DESKTOP_BIN to the built syncdesk-desktop binary");

let app;
let s;
let dir;
let server;
let base;
/** What /latest.json announces now: genuine, tampered or signed with another key. */
let serving = "genuine";
const files = {};

/** A throwaway key pair (no password); the public key as the updater wants it. */
function keyPair(name) {
  const key = join(dir, name);
  execFileSync(TAURI, ["signer", "generate", "--ci", "-p", "", "-w", key], { stdio: "ignore" });
  return { key, pub: readFileSync(`${key}.pub`, "utf8").trim() };
}

/** The minisign signature of `file` by `key`, as the update manifest carries it. */
function sign(key, file) {
  execFileSync(TAURI, ["signer", "sign", "-f", key, file], {
    stdio: "ignore",
    env: { ...process.env, TAURI_SIGNING_PRIVATE_KEY_PASSWORD: "" },
  });
  return readFileSync(`${file}.sig`, "utf8").trim();
}

function manifest() {
  const entry = {
    genuine: { url: `${base}/artifact`, signature: files.signature },
    tampered: { url: `${base}/tampered`, signature: files.signature },
    other_key: { url: `${base}/artifact`, signature: files.otherSignature },
  }[serving];
  // Every name the updater may look for on Linux: with and without the bundle type.
  const platforms = Object.fromEntries(
    ["linux-x86_64", "linux-x86_64-deb", "linux-x86_64-rpm", "linux-x86_64-appimage"].map((k) => [k, entry]),
  );
  return { version: "0.2.0", notes: "Test release.", pub_date: "2026-12-03T00:00:00Z", platforms };
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "syncdesk-e2e-update-"));
  const release = keyPair("release.key");
  const other = keyPair("other.key");
  const artifact = join(dir, "Syncdesk_0.2.0_amd64.AppImage.tar.gz");
  writeFileSync(artifact, Buffer.from("Syncdesk 0.2.0, a stand-in artifact for the update test\n".repeat(64)));
  files.artifact = readFileSync(artifact);
  files.signature = sign(release.key, artifact);
  files.otherSignature = sign(other.key, artifact);
  // The same bytes with one changed after signing.
  files.tampered = Buffer.from(files.artifact);
  files.tampered[10] ^= 0x20;
  server = createServer((req, res) => {
    if (req.url.startsWith("/latest.json")) {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify(manifest()));
    } else if (req.url === "/artifact" || req.url === "/tampered") {
      res.writeHead(200, { "content-type": "application/octet-stream" });
      res.end(req.url === "/artifact" ? files.artifact : files.tampered);
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${server.address().port}`;
  app = await startApp({
    binary: BINARY,
    logFile: join(LOGS, "webdriver-update.log"),
    env: {
      SYNCDESK_DATA_DIR: join(dir, "data"),
      SYNCDESK_UPDATE_ENDPOINT: `${base}/latest.json`,
      SYNCDESK_UPDATE_PUBKEY: release.pub,
    },
  });
  s = app.s;
});

after(async () => {
  await app?.stop();
  server?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function checkForUpdates() {
  await s.go("/settings");
  await s.clickTestId(T.updateCheck);
  const result = await s.find(`${s.byTestId(T.updateResult)}[data-state="available"]`);
  assert.match(await s.text(result), /0\.2\.0 is available/);
}

async function refused() {
  await s.clickTestId(T.updateDownload);
  const err = await s.find('[data-error-code="update_refused"]', 30000);
  assert.match(await s.text(err), /refused.*Nothing was installed/s);
  assert.deepEqual(await s.all(s.byTestId(T.updateInstall)), [], "nothing to install");
  // The installed app still runs: the page answers and its commands work.
  await s.clickTestId(T.navDashboard);
  await s.testId(T.navSettings);
}

test("a tampered artifact is refused, nothing is installed, the app keeps running", async () => {
  serving = "tampered";
  await checkForUpdates();
  await refused();
});

test("an artifact signed with another key is refused the same way", async () => {
  serving = "other_key";
  await checkForUpdates();
  await refused();
});

test("the genuine release is found, downloaded and verified, and waits for the admin to install", async () => {
  serving = "genuine";
  await checkForUpdates();
  await s.clickTestId(T.updateDownload);
  const result = await s.find(`${s.byTestId(T.updateResult)}[data-state="verified"]`, 30000);
  assert.match(await s.text(result), /0\.2\.0 is downloaded and its signature checked/);
  await s.testId(T.updateInstall);
  await s.screenshot(SCREENS, "31-update-verified");
});
