import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, test } from "vitest";
import { renderWithQuery, withBackend } from "../test/render";
import { T } from "../testids";
import { FailedRecords, FailingRecords } from "./FailedRecords";

const JOB = "j1customers";
const rows = () => screen.getAllByTestId(T.failedRow);
const ids = () => rows().map((r) => r.dataset.recordId);

async function loaded() {
  await waitFor(() => expect(rows().length).toBeGreaterThan(0));
}

describe("Failed Records (R-D3, R-D4, R-D5)", () => {
  test("has exactly the R-D3 columns", async () => {
    withBackend();
    renderWithQuery(<FailedRecords jobId={JOB} />);
    await loaded();
    const headers = screen.getAllByRole("columnheader").map((h) => h.textContent);
    // The first column is the row-selection checkbox.
    expect(headers.slice(1)).toEqual(["Record ID", "Entity Type", "First Failed", "Last Failed", "Attempts", "Error", "Actions"]);
    const first = within(rows()[0]);
    expect(first.getByText("cus_00000042")).toBeTruthy();
    const err = first.getByText("Missing required value - Required field 'email' is null");
    expect(err.getAttribute("title")).toBe("ValidationError - Required field 'email' is null");
  });

  test("bulk actions are disabled until rows are selected; select-all selects every row", async () => {
    withBackend();
    renderWithQuery(<FailedRecords jobId={JOB} />);
    await loaded();
    const bulkRetry = screen.getByTestId(T.bulkRetry) as HTMLButtonElement;
    const bulkDismiss = screen.getByTestId(T.bulkDismiss) as HTMLButtonElement;
    expect(bulkRetry.disabled).toBe(true);
    expect(bulkDismiss.disabled).toBe(true);
    await userEvent.click(within(rows()[1]).getByTestId(T.failedRowCheckbox));
    expect(bulkRetry.disabled).toBe(false);
    expect(screen.getByText("1 record selected")).toBeTruthy();
    await userEvent.click(screen.getByTestId(T.failedSelectAll));
    expect(screen.getByText("14 records selected")).toBeTruthy();
    await userEvent.click(screen.getByTestId(T.failedSelectAll));
    expect(bulkDismiss.disabled).toBe(true);
  });

  test("bulk retry sends the selected ids; records that succeed leave the list", async () => {
    const { sent } = withBackend();
    renderWithQuery(<FailedRecords jobId={JOB} />);
    await loaded();
    const [a, b] = [ids()[0]!, ids()[1]!]; // a: email null (fails again), b: fixed at the source
    await userEvent.click(within(rows()[0]).getByTestId(T.failedRowCheckbox));
    await userEvent.click(within(rows()[1]).getByTestId(T.failedRowCheckbox));
    await userEvent.click(screen.getByTestId(T.bulkRetry));
    await waitFor(() => expect(ids()).not.toContain(b));
    expect(sent("failed_records_retry")[0].args).toEqual({ jobId: JOB, recordIds: [a, b] });
    expect(ids()).toContain(a);
    expect(screen.getByRole("status").textContent).toMatch(/1 record retried successfully.*1 record failed again/);
  });

  test("per-row Retry retries only that record", async () => {
    const { sent } = withBackend();
    renderWithQuery(<FailedRecords jobId={JOB} />);
    await loaded();
    const id = ids()[3]!;
    await userEvent.click(within(rows()[3]).getByTestId(T.failedRetry));
    await waitFor(() => expect(sent("failed_records_retry")).toHaveLength(1));
    expect(sent("failed_records_retry")[0].args.recordIds).toEqual([id]);
  });

  test("Dismiss requires a note: without one nothing is sent, with one the rows go and the note is sent", async () => {
    const { sent, backend } = withBackend();
    renderWithQuery(<FailedRecords jobId={JOB} />);
    await loaded();
    const picked = [ids()[2]!, ids()[4]!];
    await userEvent.click(within(rows()[2]).getByTestId(T.failedRowCheckbox));
    await userEvent.click(within(rows()[4]).getByTestId(T.failedRowCheckbox));
    await userEvent.click(screen.getByTestId(T.bulkDismiss));
    await userEvent.click(await screen.findByTestId(T.dismissConfirm));
    expect(screen.getByTestId(`${T.fieldErrorPrefix}note`).textContent).toBe("A note is required to dismiss.");
    // Whitespace is not a note either.
    await userEvent.type(screen.getByTestId(T.dismissNote), "   ");
    await userEvent.click(screen.getByTestId(T.dismissConfirm));
    expect(sent("failed_records_dismiss")).toHaveLength(0);

    await userEvent.type(screen.getByTestId(T.dismissNote), "Test accounts, deleted at the source");
    await userEvent.click(screen.getByTestId(T.dismissConfirm));
    await waitFor(() => expect(ids()).toHaveLength(12));
    expect(sent("failed_records_dismiss")[0].args).toEqual({ jobId: JOB, recordIds: picked, note: "Test accounts, deleted at the source" });
    for (const id of picked) expect(ids()).not.toContain(id);
    expect(backend.state.audit.filter((a) => a.action === "record_dismissed" && a.note === "Test accounts, deleted at the source")).toHaveLength(2);
  });

  test("per-row Dismiss targets that one record", async () => {
    const { sent } = withBackend();
    renderWithQuery(<FailedRecords jobId={JOB} />);
    await loaded();
    const id = ids()[5]!;
    await userEvent.click(within(rows()[5]).getByTestId(T.failedDismiss));
    await userEvent.type(await screen.findByTestId(T.dismissNote), "Known bad import");
    await userEvent.click(screen.getByTestId(T.dismissConfirm));
    await waitFor(() => expect(sent("failed_records_dismiss")).toHaveLength(1));
    expect(sent("failed_records_dismiss")[0].args.recordIds).toEqual([id]);
  });

  test("the drawer shows the stored payload and the record's error history", async () => {
    const { sent } = withBackend();
    renderWithQuery(<FailedRecords jobId={JOB} />);
    await loaded();
    await userEvent.click(within(rows()[0]).getByRole("button", { name: "cus_00000042" }));
    const drawer = await screen.findByTestId(T.recordDrawer);
    expect(drawer.textContent).toContain('"email": null');
    await waitFor(() => expect(within(drawer).getAllByRole("listitem")).toHaveLength(3));
    expect(sent("record_history")[0].args).toEqual({ jobId: JOB, recordId: "cus_00000042" });
    await userEvent.keyboard("{Escape}");
    await waitFor(() => expect(screen.queryByTestId(T.recordDrawer)).toBeNull());
  });

  test("an empty queue says nothing is waiting", async () => {
    const { backend } = withBackend();
    backend.state.deadLetters.splice(0);
    renderWithQuery(<FailedRecords jobId={JOB} />);
    expect(await screen.findByText("No failed records")).toBeTruthy();
    expect((screen.getByTestId(T.bulkRetry) as HTMLButtonElement).disabled).toBe(true);
  });
});

describe("Failing records, not yet in Failed Records (issue 14 item 5)", () => {
  test("i5_failing_records_listed_read_only_below_dead_letters", async () => {
    const { sent } = withBackend();
    renderWithQuery(<FailingRecords jobId={JOB} />);
    const section = await screen.findByTestId(T.failingSection);
    await waitFor(() => expect(within(section).getAllByTestId(T.failingRow)).toHaveLength(8));
    expect(section.textContent).toMatch(/Failing, will be retried by the next run/);
    expect(section.textContent).toMatch(/8 records failed in a run but not yet three times/);
    // Read-only: no retry, dismiss or selection.
    expect(within(section).queryAllByRole("button")).toHaveLength(0);
    expect(within(section).queryAllByRole("checkbox")).toHaveLength(0);
    const first = within(section).getAllByTestId(T.failingRow)[0];
    expect(first.textContent).toMatch(/Missing required value - Required field 'email' is null/);
    expect(first.textContent).toMatch(/1 of 3/);
    expect(sent("failing_records")[0].args).toMatchObject({ jobId: JOB, cursor: null });
  });
});
