import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

/** Every .ts/.tsx source of the UI (tests, generated bindings and the mock backend's data aside). */
function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return name === "bindings" || name === "mock" || name === "test" ? [] : sources(p);
    return /\.tsx?$/.test(name) && !/\.test\.tsx?$/.test(name) ? [p] : [];
  });
}

/** The file without its comments: rule ids may stay there, for the engineers. */
function code(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|[^:])\/\/.*$/gm, "$1");
}

describe("plain words: no rule ids anywhere the UI could show them", () => {
  it("no string or JSX text in the UI's code names a spec rule (R-E2, R-R1…)", () => {
    const found = sources(join(__dirname)).flatMap((p) =>
      code(readFileSync(p, "utf8"))
        .split("\n")
        .filter((line) => /R-[A-Z][0-9]/.test(line))
        .map((line) => `${p}: ${line.trim()}`),
    );
    expect(found).toEqual([]);
  });
});
