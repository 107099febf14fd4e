#!/usr/bin/env node
// The "system browser" of the e2e: xdg-open runs this for http(s) URLs (app.e2e.mjs registers
// it as the default x-scheme-handler in a private XDG config). It does what a user's browser
// does on the provider's consent page that needs no click: follow the redirects, which end on
// Syncdesk's 127.0.0.1 loopback listener with the authorization code. It appends the URL it was
// asked to open to $E2E_BROWSER_LOG so the test can check what the app sent the user to.
import { appendFileSync } from "node:fs";

const url = process.argv[2];
if (!url) {
  console.error("usage: browser.mjs <url>");
  process.exit(2);
}
const log = (line) => process.env.E2E_BROWSER_LOG && appendFileSync(process.env.E2E_BROWSER_LOG, `${line}\n`);
log(url);
try {
  const res = await fetch(url, { redirect: "follow", signal: AbortSignal.timeout(30000) });
  const body = await res.text();
  // Where the redirects ended, minus the query (it holds the one-time code).
  const end = new URL(res.url);
  log(`# ${res.status} at ${end.origin}${end.pathname}: ${body.replace(/<[^>]*>/g, "").trim()}`);
  process.exit(res.ok ? 0 : 1);
} catch (e) {
  log(`# failed: ${e.cause ?? e}`);
  process.exit(1);
}
