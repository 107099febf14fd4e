// Shared set-up for the browser tests: serve ui/dist on 127.0.0.1 with Vite's preview server
// and drive Debian's Chromium through playwright-core (no browser download).
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { preview } from "vite";

const here = dirname(fileURLToPath(import.meta.url));
export const uiRoot = join(here, "..");
export const shotsDir = join(uiRoot, "test-results");
mkdirSync(shotsDir, { recursive: true });

export const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; " +
  "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

export async function startServer() {
  const server = await preview({
    root: uiRoot,
    configFile: join(uiRoot, "vite.config.ts"),
    logLevel: "error",
    preview: {
      host: "127.0.0.1",
      port: 0,
      strictPort: false,
      open: false,
      // The shell's CSP (src-tauri/tauri.conf.json): the UI must work without inline scripts or styles.
      headers: { "Content-Security-Policy": CSP },
    },
  });
  const addr = server.httpServer.address();
  const base = `http://127.0.0.1:${addr.port}`;
  return { base, close: () => new Promise((r) => server.httpServer.close(() => r())) };
}

export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
  });
}

export async function newPage(browser, { dark = false, width = 1360 } = {}) {
  const context = await browser.newContext({
    viewport: { width, height: 860 },
    colorScheme: dark ? "dark" : "light",
    deviceScaleFactor: 1,
  });
  // Generous limits: CI shares 2 cores with Rust builds. Waits are still for conditions.
  context.setDefaultTimeout(90_000);
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(m.text());
  });
  return { page, errors, context };
}

export async function shot(page, name) {
  await page.screenshot({ path: join(shotsDir, `${name}.png`), fullPage: false });
}

/** The constants of src/testids.ts, read the same way the shell's WebDriver e2e reads them. */
import { readFileSync } from "node:fs";
export const T = Object.fromEntries(
  [...readFileSync(join(uiRoot, "src", "testids.ts"), "utf8").matchAll(/^\s*(\w+):\s*"([^"]+)",/gm)].map((m) => [m[1], m[2]]),
);
export const tid = (id) => `[data-testid="${id}"]`;

/** axe-core's violations on the page (contrast included). Evaluated over CDP, so the strict CSP stays. */
const axeSource = readFileSync(join(uiRoot, "node_modules", "axe-core", "axe.min.js"), "utf8");
export async function axeViolations(page) {
  return page.evaluate(async (src) => {
    if (!window.axe) (0, eval)(src);
    const r = await window.axe.run(document);
    return r.violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(" ")).slice(0, 3).join(" | ")}`);
  }, axeSource);
}
