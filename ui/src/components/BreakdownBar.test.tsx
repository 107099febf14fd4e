import { render, screen } from "@testing-library/react";
import { describe, expect, test } from "vitest";
import { T } from "../testids";
import { BreakdownBar } from "./BreakdownBar";

describe("BreakdownBar (R-I2)", () => {
  test("shows every count and sizes each coloured segment by its share", () => {
    const { container } = render(<BreakdownBar counts={{ processed: 250, created: 180, updated: 42, skipped: 6, failed: 22 }} />);
    expect(screen.getByTestId(T.breakdownCreated).dataset.count).toBe("180");
    expect(screen.getByTestId(T.breakdownUpdated).dataset.count).toBe("42");
    expect(screen.getByTestId(T.breakdownSkipped).dataset.count).toBe("6");
    expect(screen.getByTestId(T.breakdownFailed).dataset.count).toBe("22");
    expect(screen.getByTestId(T.breakdownFailed).textContent).toContain("22 failed");
    const width = (cls: string) => (container.querySelector(`.breakdown-bar .${cls}`) as HTMLElement | null)?.style.width;
    expect(width("seg-created")).toBe("72%");
    expect(width("seg-updated")).toBe("16.8%");
    expect(width("seg-skipped")).toBe("2.4%");
    expect(width("seg-failed")).toBe("8.8%");
  });

  test("colours map to created green, updated blue, skipped grey, failed red", () => {
    const { container } = render(<BreakdownBar counts={{ processed: 4, created: 1, updated: 1, skipped: 1, failed: 1 }} />);
    const order = [...container.querySelectorAll(".breakdown-bar .seg")].map((e) => e.className);
    expect(order).toEqual(["seg seg-created", "seg seg-updated", "seg seg-skipped", "seg seg-failed"]);
  });

  test("leaves out empty segments and describes the bar for screen readers", () => {
    const { container } = render(<BreakdownBar counts={{ processed: 10, created: 0, updated: 10, skipped: 0, failed: 0 }} />);
    expect(container.querySelectorAll(".breakdown-bar .seg")).toHaveLength(1);
    expect(screen.getByRole("img").getAttribute("aria-label")).toBe("10 processed: 0 created, 10 updated, 0 skipped, 0 failed");
  });

  test("an execution with nothing processed shows an empty track, not NaN widths", () => {
    const { container } = render(<BreakdownBar counts={{ processed: 0, created: 0, updated: 0, skipped: 0, failed: 0 }} />);
    expect(container.querySelector(".seg-empty")).not.toBeNull();
    expect(container.innerHTML).not.toContain("NaN");
  });
});
