import { describe, expect, it } from "vitest";
import { retryText } from "./format";

describe("retryText: the engine's retry state in words", () => {
  const now = Date.parse("2026-12-02T12:00:00Z");
  it("a pending retry says when; a superseded one never reads as pending", () => {
    expect(retryText({ state: "pending", execution_id: "r", at: "2026-12-02T12:05:00Z" }, now)).toMatch(/^Automatic retry in 5 min/);
    const superseded = retryText({ state: "superseded", execution_id: "r", at: null }, now);
    expect(superseded).toBe("No retry needed: a later run succeeded");
    expect(superseded).not.toMatch(/retry in/i);
  });
  it("an authentication failure waits for a new sign-in, not a time", () => {
    expect(retryText({ state: "waiting_for_reauth", execution_id: "r", at: null }, now)).toBe(
      "Retries after you sign in to the connection again",
    );
  });
  it("says nothing when no retry follows", () => {
    expect(retryText({ state: "none", execution_id: null, at: null }, now)).toBeNull();
    expect(retryText({ state: "exhausted", execution_id: null, at: null }, now)).toBe("All automatic retries used");
  });
});
