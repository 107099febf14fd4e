import { QueryClientProvider } from "@tanstack/react-query";
import { screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { mockIPC } from "@tauri-apps/api/mocks";
import { describe, expect, test } from "vitest";
import { formatRecordError } from "../format";
import { renderWithQuery, withBackend } from "../test/render";
import { T } from "../testids";
import { ErrorLog } from "./ErrorLog";

const EXEC = "e7c1a4f09b2d4c1e";
const COUNTS = { ValidationError: 14, TransformError: 5, SchemaMismatch: 3, DuplicateConflict: 6 };

describe("error log (R-I1)", () => {
  test("formats a record error exactly as the spec writes it", () => {
    expect(formatRecordError({ record_id: "cus_00000017", kind: "ValidationError", message: "Required field 'email' is null" })).toBe(
      "Record ID: cus_00000017, Error: ValidationError - Required field 'email' is null",
    );
  });

  test("lists rows in the spec format and pages with the cursor", async () => {
    const { sent } = withBackend();
    renderWithQuery(<ErrorLog executionId={EXEC} errorCounts={COUNTS} />);
    await waitFor(() => expect(screen.getAllByTestId(T.errorRow)).toHaveLength(10));
    const first = screen.getAllByTestId(T.errorRow)[0];
    expect(first.textContent).toContain("Record ID: cus_00000017, Error: Missing required value - Required field 'email' is null");
    // The engine's kind stays one hover away, and in the data attribute.
    expect(first.querySelector(".errlog-text")?.getAttribute("title")).toBe(
      "Record ID: cus_00000017, Error: ValidationError - Required field 'email' is null",
    );
    expect(first.dataset.kind).toBe("ValidationError");
    await userEvent.click(screen.getByTestId(T.loadMore));
    await waitFor(() => expect(screen.getAllByTestId(T.errorRow)).toHaveLength(20));
    expect(sent("record_errors").map((c) => c.args.cursor)).toEqual([null, "10"]);
  });

  test("the kind filter offers the kinds that happened, with counts, and asks the shell for that kind", async () => {
    const { sent } = withBackend();
    renderWithQuery(<ErrorLog executionId={EXEC} errorCounts={COUNTS} />);
    await waitFor(() => expect(screen.getAllByTestId(T.errorRow).length).toBeGreaterThan(0));
    const select = screen.getByTestId(T.errorKindFilter) as HTMLSelectElement;
    expect([...select.options].map((o) => o.textContent)).toEqual([
      "All kinds (28)",
      "Missing required value (14)",
      "Duplicate (6)",
      "Could not convert value (5)",
      "Wrong field type (3)",
    ]);
    await userEvent.selectOptions(select, "TransformError");
    await waitFor(() => expect(screen.getAllByTestId(T.errorRow)).toHaveLength(5));
    for (const row of screen.getAllByTestId(T.errorRow)) expect(row.dataset.kind).toBe("TransformError");
    expect(sent("record_errors").at(-1)?.args).toMatchObject({ executionId: EXEC, kind: "TransformError", cursor: null });
  });

  test("i7_kinds_in_plain_words_and_duplicates_labelled_skipped", async () => {
    const dup = { id: 1, execution_id: "run1", record_id: "cus_1", entity: "customers", kind: "DuplicateConflict", message: "key 'email' already used", field: null, at: null };
    const bad = { ...dup, id: 2, record_id: "cus_2", kind: "TransformError", message: "'x' is not a date" };
    mockIPC((cmd) => (cmd === "record_errors" ? { items: [dup, bad], next_cursor: null } : null));
    renderWithQuery(<ErrorLog executionId="run1" errorCounts={{ DuplicateConflict: 1, TransformError: 1 }} />);
    await waitFor(() => expect(screen.getAllByTestId(T.errorRow)).toHaveLength(2));
    const [a, b] = screen.getAllByTestId(T.errorRow).map((r) => r.textContent ?? "");
    expect(a).toMatch(/^Skipped: duplicate/);
    expect(a).toContain("Error: Skipped: duplicate - key 'email' already used");
    expect(b).toMatch(/^Could not convert value/);
    for (const t of [a, b]) expect(t).not.toMatch(/DuplicateConflict|TransformError/);
  });

  test("an execution without record errors says so", async () => {
    withBackend();
    renderWithQuery(<ErrorLog executionId="f0e1d2c3b4a59687" errorCounts={{}} />);
    expect(await screen.findByText("No record errors")).toBeTruthy();
  });

  test("a log read mid-run is read again once the execution reports more errors", async () => {
    // The race the WebDriver e2e met on a release build: the log's first read happened before
    // the run wrote its errors, and the run's 'finished' event landed while that read was in flight.
    let rows: { id: number; execution_id: string; record_id: string; entity: string; kind: string; message: string; field: null; at: null }[] = [];
    mockIPC((cmd) => (cmd === "record_errors" ? { items: rows, next_cursor: null } : null));
    const { rerender, qc } = renderWithQuery(<ErrorLog executionId="run1" errorCounts={{}} />);
    expect(await screen.findByText("No record errors")).toBeTruthy();
    rows = [1, 2].map((id) => ({
      id, execution_id: "run1", record_id: `cus_${id}`, entity: "customers", kind: "ValidationError",
      message: "Required field 'email' is null", field: null, at: null,
    }));
    rerender(<QueryClientProvider client={qc}><ErrorLog executionId="run1" errorCounts={{ ValidationError: 2 }} /></QueryClientProvider>);
    await waitFor(() => expect(screen.getAllByTestId(T.errorRow)).toHaveLength(2));
  });
});
