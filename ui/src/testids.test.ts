import { describe, expect, it } from "vitest";
import { T } from "./testids";
// The desktop e2e's copy (plain .mjs, which cannot import this TypeScript module).
// @ts-expect-error: an untyped JavaScript module outside src
import { T as E2E } from "../../src-tauri/e2e/testids.mjs";

describe("test ids", () => {
  it("the desktop e2e uses the UI's ids", () => {
    for (const [key, value] of Object.entries(E2E as Record<string, string>)) {
      expect({ key, value }).toEqual({ key, value: (T as Record<string, string>)[key] });
    }
  });
});
