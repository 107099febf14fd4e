import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

/** Every source the UI is built from: code, styles, the generated bindings (whose doc comments
 * editors show beside the fields) and the mock backend; the tests, which name the rules they
 * prove, aside. */
function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return name === "test" ? [] : sources(p);
    return /\.(tsx?|css)$/.test(name) && !/\.test\.tsx?$/.test(name) ? [p] : [];
  });
}

describe("plain words: no rule ids anywhere the UI is made from", () => {
  it("no source of the UI, comments included, names a spec rule (R-E2, R-R1…); the tests keep them", () => {
    const found = sources(join(__dirname)).flatMap((p) =>
      readFileSync(p, "utf8")
        .split("\n")
        .filter((line) => /\bR-(?:[ABDEIR]\d|D\b)/.test(line))
        .map((line) => `${p}: ${line.trim()}`),
    );
    expect(found).toEqual([]);
  });
});
