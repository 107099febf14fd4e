import { screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { useState } from "react";
import { describe, expect, test } from "vitest";
import type { QuitRequestDto } from "../bindings/QuitRequestDto";
import { renderWithQuery, withBackend } from "../test/render";
import { T } from "../testids";
import { PausedBanner, QuitDialog, SyncsActions } from "./Syncs";

describe("all syncs at once (issue 16)", () => {
  test("pausing shows the banner from the engine's answer, and Resume clears it", async () => {
    const { sent } = withBackend();
    renderWithQuery(
      <>
        <PausedBanner />
        <SyncsActions />
      </>,
    );
    await userEvent.click(await screen.findByTestId(T.pauseSyncs));
    const banner = await screen.findByTestId(T.pausedBanner);
    expect(banner.textContent).toMatch(/All syncs are paused/);
    expect(banner.textContent).toMatch(/by admin/);
    expect(sent("syncs_pause")).toHaveLength(1);
    // While paused: no Pause button, and Run due jobs now waits for Resume.
    expect(screen.queryByTestId(T.pauseSyncs)).toBeNull();
    expect((screen.getByTestId(T.runDue) as HTMLButtonElement).disabled).toBe(true);
    await userEvent.click(screen.getByTestId(T.resumeSyncs));
    await waitFor(() => expect(screen.queryByTestId(T.pausedBanner)).toBeNull());
    expect(sent("syncs_resume")).toHaveLength(1);
    expect((screen.getByTestId(T.runDue) as HTMLButtonElement).disabled).toBe(false);
  });

  test("Run due jobs now says how many jobs started", async () => {
    const { sent } = withBackend();
    renderWithQuery(<SyncsActions />);
    await userEvent.click(await screen.findByTestId(T.runDue));
    await waitFor(() => expect(sent("syncs_run_due")).toHaveLength(1));
    expect(await screen.findByText(/jobs? started/)).toBeTruthy();
  });

  test("quitting with runs in progress asks first; Keep syncing quits nothing, Quit quits", async () => {
    const { sent } = withBackend();
    function Harness() {
      const [req, setReq] = useState<QuitRequestDto | null>({ runs_in_progress: 2 });
      return (
        <>
          <button onClick={() => setReq({ runs_in_progress: 1 })}>ask again</button>
          <QuitDialog request={req} onClose={() => setReq(null)} />
        </>
      );
    }
    renderWithQuery(<Harness />);
    const dialog = await screen.findByRole("dialog", { name: "Quit Syncdesk?" });
    expect(dialog.textContent).toMatch(/2 syncs are running/);
    await userEvent.click(screen.getByTestId(T.quitCancel));
    await waitFor(() => expect(screen.queryByRole("dialog")).toBeNull());
    expect(sent("app_quit")).toHaveLength(0);
    await userEvent.click(screen.getByRole("button", { name: "ask again" }));
    expect((await screen.findByRole("dialog", { name: "Quit Syncdesk?" })).textContent).toMatch(/A sync is running/);
    await userEvent.click(screen.getByTestId(T.quitConfirm));
    await waitFor(() => expect(sent("app_quit")).toHaveLength(1));
  });
});
