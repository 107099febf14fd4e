// A minimal W3C WebDriver client over fetch (Node 20, no dependencies), for driving the real
// Syncdesk binary through WebKitWebDriver. Waits are bounded polls on conditions.
import { spawn } from "node:child_process";
import { openSync, writeFileSync, mkdirSync } from "node:fs";
import { createServer } from "node:net";
import { setTimeout as delay } from "node:timers/promises";
import { inflateSync } from "node:zlib";

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

  /**
   * A PNG of the window, after letting the UI settle: a pause (RECIPES: a screenshot taken
   * right after a change can miss it), then two animation frames, so a rendering update has
   * run since the last DOM change. WebKitGTK under Xvfb has been seen to hand back a stale,
   * empty tile for the scrolling main pane while the DOM held the page; the pane is checked
   * and, while it is one flat colour, scrolled by a pixel and back (what a user's wheel
   * would do) and taken again. A pane still empty after that is reported on the returned
   * value, not hidden.
   */
  async screenshot(dir, name) {
    await delay(500);
    let png;
    let blank = true;
    const start = Date.now();
    for (let attempt = 0; blank && Date.now() - start < 10000; attempt++) {
      if (attempt > 0) {
        await this.script("const m = document.querySelector('.main'); if (m) { m.scrollTop += 1; m.scrollTop -= 1; }");
      }
      await this.scriptAsync("const done = arguments[arguments.length - 1]; requestAnimationFrame(() => requestAnimationFrame(() => done()));");
      const rect = await this.script(
        "const m = document.querySelector('.main'); if (!m) return null; const r = m.getBoundingClientRect(); const k = window.devicePixelRatio || 1; return [r.x * k, r.y * k, r.width * k, r.height * k].map(Math.round);",
      );
      png = Buffer.from(await this.cmd("GET", "/screenshot"), "base64");
      blank = rect ? isFlat(decodePng(png), rect) : false;
    }
    mkdirSync(dir, { recursive: true });
    const file = `${dir}/${name}.png`;
    writeFileSync(file, png);
    if (blank) console.log(`# screenshot ${name}: the main pane stayed one flat colour for 10 s`);
    return { file, blank };
  }
}

/** The RGB(A) pixels of an 8-bit, non-interlaced PNG (what WebKitWebDriver returns). */
export function decodePng(buf) {
  let pos = 8;
  let width = 0;
  let height = 0;
  let channels = 0;
  const idat = [];
  while (pos < buf.length) {
    const len = buf.readUInt32BE(pos);
    const type = buf.toString("latin1", pos + 4, pos + 8);
    const data = buf.subarray(pos + 8, pos + 8 + len);
    if (type === "IHDR") {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      const [depth, colour, , , interlace] = data.subarray(8, 13);
      channels = { 2: 3, 6: 4 }[colour];
      if (depth !== 8 || !channels || interlace !== 0) throw new Error(`unsupported PNG: depth ${depth}, colour type ${colour}, interlace ${interlace}`);
    } else if (type === "IDAT") {
      idat.push(data);
    } else if (type === "IEND") {
      break;
    }
    pos += 12 + len;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  const px = Buffer.alloc(stride * height);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let x = 0; x < stride; x++) {
      const a = x >= channels ? px[y * stride + x - channels] : 0;
      const b = y > 0 ? px[(y - 1) * stride + x] : 0;
      const c = x >= channels && y > 0 ? px[(y - 1) * stride + x - channels] : 0;
      let pred = 0;
      if (filter === 1) pred = a;
      else if (filter === 2) pred = b;
      else if (filter === 3) pred = (a + b) >> 1;
      else if (filter === 4) {
        const p = a + b - c;
        const pa = Math.abs(p - a);
        const pb = Math.abs(p - b);
        const pc = Math.abs(p - c);
        pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      }
      px[y * stride + x] = (line[x] + pred) & 0xff;
    }
  }
  return { width, height, channels, px };
}

/** Whether every pixel of `rect` ([x, y, w, h], clipped to the image) has one colour. */
export function isFlat({ width, height, channels, px }, [rx, ry, rw, rh]) {
  const x0 = Math.max(0, rx);
  const y0 = Math.max(0, ry);
  const x1 = Math.min(width, rx + rw);
  const y1 = Math.min(height, ry + rh);
  if (x0 >= x1 || y0 >= y1) return false;
  const first = (y0 * width + x0) * channels;
  for (let y = y0; y < y1; y++) {
    for (let x = x0; x < x1; x++) {
      const i = (y * width + x) * channels;
      if (px[i] !== px[first] || px[i + 1] !== px[first + 1] || px[i + 2] !== px[first + 2]) return false;
    }
  }
  return true;
}
