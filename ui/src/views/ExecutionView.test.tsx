import { screen, within } from "@testing-library/react";
import { describe, expect, test } from "vitest";
import { renderWithQuery, withBackend } from "../test/render";
import { T } from "../testids";
import { ExecutionView } from "./ExecutionView";

describe("Execution: what changed in the provider's schema (R-E5)", () => {
  test("a schema-change diagnosis lists the field to remap first, then the new one, once each", async () => {
    withBackend();
    renderWithQuery(<ExecutionView id="a1b2c3d4e5f60718" />);
    const note = await screen.findByTestId(T.schemaChange);
    expect(within(note).getByRole("heading").textContent).toBe("What changed in customers");
    const rows = [...note.querySelectorAll("li")].map((li) => [li.dataset.field, li.dataset.change]);
    // `email` is both removed and read by the mappings: shown once, as the one to remap.
    expect(rows).toEqual([
      ["email", "missing"],
      ["email_address", "added"],
    ]);
    expect(note.textContent).toMatch(/read by your mappings, no longer sent/);
    expect(note.querySelector("time")?.getAttribute("dateTime")).toMatch(/Z$/);
    // The fix sits right under it.
    expect(screen.getByTestId(`${T.diagnosisActionPrefix}edit_mappings`)).toBeTruthy();
  });

  test("other diagnoses show no schema note", async () => {
    withBackend();
    renderWithQuery(<ExecutionView id="e7c1a4f09b2d4c1e" />);
    await screen.findByTestId(T.diagnosis);
    expect(screen.queryByTestId(T.schemaChange)).toBeNull();
  });
});

describe("Execution: live progress", () => {
  test("a running execution says what it waits for and until when", async () => {
    const { backend } = withBackend();
    const e = backend.state.executions.find((x) => x.id === "e7c1a4f09b2d4c1e")!;
    Object.assign(e, {
      status: "running",
      finished_at: null,
      duration_ms: null,
      waiting: { reason: "provider error (HTTP 503 from /v1/customers), retry 2 of 3", until: "2026-12-02T11:02:31Z" },
    });
    renderWithQuery(<ExecutionView id="e7c1a4f09b2d4c1e" />);
    const w = await screen.findByTestId(T.executionWaiting);
    expect(w.textContent).toMatch(/^Waiting: provider error \(HTTP 503 from \/v1\/customers\), retry 2 of 3; resuming at /);
    expect(w.querySelector("time")?.getAttribute("dateTime")).toBe("2026-12-02T11:02:31Z");
    expect(w.closest(".banner")?.textContent).toMatch(/elapsed/);
  });
});

describe("Execution: counts that add up (issue 14 item 5)", () => {
  test("i5_execution_says_why_failed_records_are_not_in_failed_records_and_duplicates_are_skipped", async () => {
    withBackend();
    renderWithQuery(<ExecutionView id="e7c1a4f09b2d4c1e" />);
    const note = await screen.findByTestId(T.countsNote);
    expect(note.textContent).toMatch(/22 records failed in this run\. The next run tries them again; a record that has failed in three runs moves to Failed Records/);
    expect(note.textContent).toMatch(/6 duplicates were skipped, not failed: the error log lists them as “Skipped: duplicate”/);
    expect(within(note).getByRole("link", { name: "Failed Records" }).getAttribute("href")).toBe("#/jobs/j1customers/failed");
  });

  test("i5_a_clean_run_has_no_counts_note", async () => {
    withBackend();
    renderWithQuery(<ExecutionView id="f0e1d2c3b4a59687" />);
    await screen.findByTestId(T.executionStatus);
    expect(screen.queryByTestId(T.countsNote)).toBeNull();
  });
});
