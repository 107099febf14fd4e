// A minimal W3C WebDriver client over fetch (Node 20, no dependencies), for driving the real
// Syncdesk binary through WebKitWebDriver. Waits are bounded polls on conditions.
import { spawn } from "node:child_process";
import { openSync, writeFileSync, mkdirSync } from "node:fs";
import { createServer } from "node:net";
import { setTimeout as delay } from "node:timers/promises";

const ELEMENT = "element-6066-11e4-a52e-4f735466cecf";

/** A free TCP port on 127.0.0.1. */
export async function freePort() {
  return await new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Poll `fn` until it returns a truthy value; throw with `what` after `timeoutMs`. */
export async function until(what, fn, timeoutMs = 20000) {
  const start = Date.now();
  let last;
  for (let wait = 25; ; wait = Math.min(wait * 2, 250)) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() - start > timeoutMs) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${last.message}` : ""}`);
    }
    await delay(wait);
  }
}

/**
 * Start WebKitWebDriver in its own process group (output to a file), so stopping it also
 * stops the app it launched and nothing outlives the run holding our pipes.
 */
export async function startDriver({ logFile, env }) {
  const port = await freePort();
  const out = openSync(logFile, "a");
  const child = spawn("WebKitWebDriver", [`--port=${port}`, "--host=127.0.0.1"], {
    detached: true,
    stdio: ["ignore", out, out],
    env,
  });
  const url = `http://127.0.0.1:${port}`;
  await until("WebKitWebDriver to listen", async () => (await fetch(`${url}/status`)).ok, 15000);
  const alive = () => {
    try {
      process.kill(-child.pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  return {
    url,
    /** SIGTERM the whole group (driver and app), wait for it, then SIGKILL what is left. */
    async stop() {
      if (!alive()) return;
      process.kill(-child.pid, "SIGTERM");
      await until("the driver's process group to exit", async () => !alive(), 5000).catch(() => {
        if (alive()) process.kill(-child.pid, "SIGKILL");
      });
    },
  };
}

export class Session {
  constructor(url, id) {
    this.url = url;
    this.id = id;
  }

  static async create(url, binary, args = []) {
    const res = await fetch(`${url}/session`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        capabilities: { alwaysMatch: { "webkitgtk:browserOptions": { binary, args } } },
      }),
    });
    const body = await res.json();
    if (!res.ok) throw new Error(`new session: ${JSON.stringify(body)}`);
    return new Session(url, body.value.sessionId);
  }

  async cmd(method, path, body) {
    const res = await fetch(`${this.url}/session/${this.id}${path}`, {
      method,
      headers: body ? { "content-type": "application/json" } : {},
      body: body ? JSON.stringify(body) : undefined,
    });
    const json = await res.json();
    if (!res.ok) {
      const e = new Error(`${method} ${path}: ${json.value?.error}: ${json.value?.message}`);
      e.code = json.value?.error;
      throw e;
    }
    return json.value;
  }

  async close() {
    await this.cmd("DELETE", "").catch(() => {});
  }

  /** Elements matching a CSS selector (possibly none). */
  async all(css) {
    const v = await this.cmd("POST", "/elements", { using: "css selector", value: css });
    return v.map((e) => e[ELEMENT]);
  }

  async allXPath(xpath) {
    const v = await this.cmd("POST", "/elements", { using: "xpath", value: xpath });
    return v.map((e) => e[ELEMENT]);
  }

  /** The first element matching `css`, waiting for it to appear. */
  async find(css, timeoutMs) {
    return await until(`element ${css}`, async () => (await this.all(css))[0], timeoutMs);
  }

  async findXPath(xpath, timeoutMs) {
    return await until(`element ${xpath}`, async () => (await this.allXPath(xpath))[0], timeoutMs);
  }

  byTestId(id) {
    return `[data-testid="${id}"]`;
  }

  async testId(id, timeoutMs) {
    return await this.find(this.byTestId(id), timeoutMs);
  }

  async click(el) {
    await this.cmd("POST", `/element/${el}/click`, {});
  }

  async clickTestId(id, timeoutMs) {
    await this.click(await this.testId(id, timeoutMs));
  }

  async type(el, text) {
    await this.cmd("POST", `/element/${el}/value`, { text });
  }

  async text(el) {
    return await this.cmd("GET", `/element/${el}/text`);
  }

  async attr(el, name) {
    return await this.cmd("GET", `/element/${el}/attribute/${name}`);
  }

  async script(source, args = []) {
    return await this.cmd("POST", "/execute/sync", { script: source, args });
  }

  /** Run an async script in the page: it gets `done` as its last argument and calls it. */
  async scriptAsync(source, args = []) {
    return await this.cmd("POST", "/execute/async", { script: source, args });
  }

  async go(hashPath) {
    await this.script("window.location.hash = arguments[0]", [hashPath]);
  }

  async hash() {
    return await this.script("return window.location.hash");
  }

  /** A PNG of the window, after letting the UI settle. */
  async screenshot(dir, name) {
    await delay(500); // RECIPES: a screenshot taken right after a change can miss it
    const b64 = await this.cmd("GET", "/screenshot");
    mkdirSync(dir, { recursive: true });
    const file = `${dir}/${name}.png`;
    writeFileSync(file, Buffer.from(b64, "base64"));
    return file;
  }
}
