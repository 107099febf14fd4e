import { act, fireEvent, render, screen } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { EventDto } from "../bindings/EventDto";
import { plural } from "../format";
import { TOAST_MS, Toasts, useToasts } from "./Toasts";

let feed: (e: EventDto) => void = () => {};
function Harness() {
  const { toasts, onEvent, close, hold } = useToasts();
  feed = onEvent;
  return <Toasts toasts={toasts} close={close} hold={hold} />;
}

const counts = { created: 0, updated: 0, skipped: 0, failed: 0, processed: 0 };
const finished = (job: string, status: string, failed: number, id = "e1"): EventDto =>
  ({ type: "execution_finished", execution_id: id, job_id: job, job_name: `Job ${job}`, status, counts: { ...counts, failed }, note: null }) as EventDto;
const send = (e: EventDto) => act(() => feed(e));
const texts = () => screen.queryAllByTestId("toast").map((t) => t.textContent ?? "");

describe("toasts (issue 14 item 4)", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it("i4_plural_agrees_with_the_count", () => {
    expect(plural(1, "failed record")).toBe("1 failed record");
    expect(plural(2, "failed record")).toBe("2 failed records");
    expect(plural(0, "entry", "entries")).toBe("0 entries");
  });

  it("i4_toast_text_uses_correct_plurals", () => {
    render(<Harness />);
    send(finished("j1", "completed_with_errors", 1));
    send(finished("j2", "completed_with_errors", 2));
    expect(texts()[0]).toMatch(/completed with 1 failed record →/);
    expect(texts()[1]).toMatch(/completed with 2 failed records →/);
  });

  it("i4_toast_auto_dismisses_unless_hovered_or_focused", () => {
    render(<Harness />);
    send(finished("j1", "completed_with_errors", 3));
    act(() => vi.advanceTimersByTime(TOAST_MS - 100));
    expect(texts()).toHaveLength(1);
    act(() => vi.advanceTimersByTime(200));
    expect(texts()).toHaveLength(0);

    send(finished("j1", "failed", 0, "e2"));
    const t = screen.getByTestId("toast");
    fireEvent.mouseEnter(t);
    act(() => vi.advanceTimersByTime(TOAST_MS * 3));
    expect(texts()).toHaveLength(1);
    fireEvent.focus(screen.getByRole("button", { name: "Dismiss" }));
    fireEvent.mouseLeave(t);
    act(() => vi.advanceTimersByTime(TOAST_MS * 3));
    expect(texts()).toHaveLength(1);
    fireEvent.blur(screen.getByRole("button", { name: "Dismiss" }));
    act(() => vi.advanceTimersByTime(TOAST_MS + 10));
    expect(texts()).toHaveLength(0);
  });

  it("i4_toast_goes_when_its_condition_resolves", () => {
    render(<Harness />);
    send({ type: "connection_expired", connection_id: "c1", connection_name: "Acme", detail: "revoked" });
    send(finished("j1", "failed", 0));
    send(finished("j2", "completed_with_errors", 4));
    expect(texts()).toHaveLength(3);
    send({ type: "alerts_resolved", alert_ids: [1], job_id: null, connection_id: "c1" });
    expect(texts().some((t) => t.includes("Acme"))).toBe(false);
    send(finished("j1", "completed", 0, "e9"));
    expect(texts()).toHaveLength(1);
    expect(texts()[0]).toMatch(/Job j2/);
  });

  it("i4_at_most_three_and_closing_one_does_not_shift_the_others_under_the_pointer", () => {
    const { container } = render(<Harness />);
    for (let i = 1; i <= 4; i++) send(finished(`j${i}`, "failed", 0, `e${i}`));
    expect(texts()).toHaveLength(3);
    expect(texts()[0]).toMatch(/Job j2/);
    const stack = container.querySelector(".toasts")!;
    fireEvent.mouseEnter(stack);
    fireEvent.click(screen.getAllByRole("button", { name: "Dismiss" })[0]);
    // Still three slots: the closed one is kept invisible, so the others stay where they were.
    expect(stack.children).toHaveLength(3);
    expect(stack.children[0].className).toMatch(/toast-gone/);
    expect(texts()).toHaveLength(2);
    fireEvent.mouseLeave(stack);
    expect(stack.children).toHaveLength(2);
  });
});
