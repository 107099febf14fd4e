import { screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, test } from "vitest";
import { renderWithQuery, withBackend } from "../test/render";
import { T } from "../testids";
import { SettingsView, StartAtLoginOffer } from "./SettingsView";

describe("Settings (issue 16)", () => {
  test("each change is sent alone and the shell's answer shown; the theme applies to the page", async () => {
    const { sent } = withBackend();
    renderWithQuery(<SettingsView />);
    const cwe = await screen.findByTestId(`${T.settingsNotifyPrefix}notify_completed_with_errors`);
    expect((cwe as HTMLInputElement).checked).toBe(true);
    await userEvent.click(cwe);
    await waitFor(() => expect(sent("settings_update")).toHaveLength(1));
    expect(sent("settings_update")[0].args).toEqual({ input: { notify_completed_with_errors: false } });
    await waitFor(() => expect((screen.getByTestId(`${T.settingsNotifyPrefix}notify_completed_with_errors`) as HTMLInputElement).checked).toBe(false));

    await userEvent.selectOptions(screen.getByTestId(T.settingsTheme), "dark");
    await waitFor(() => expect(document.documentElement.dataset.theme).toBe("dark"));
    await userEvent.selectOptions(screen.getByTestId(T.settingsTheme), "system");
    await waitFor(() => expect(document.documentElement.dataset.theme).toBeUndefined());
    expect(screen.getByTestId(T.settingsVersion).textContent).toBe("0.1.0");
  });

  test("start at login is offered once: Not now answers it for good", async () => {
    const { sent } = withBackend();
    renderWithQuery(<StartAtLoginOffer show />);
    await userEvent.click(await screen.findByTestId(T.startAtLoginDecline));
    await waitFor(() => expect(screen.queryByTestId(T.startAtLoginOffer)).toBeNull());
    expect(sent("settings_update")[0].args).toEqual({ input: { start_at_login_offered: true } });
  });

  test("no offer before a sync has worked", async () => {
    const { sent } = withBackend();
    const { qc } = renderWithQuery(<StartAtLoginOffer show={false} />);
    await waitFor(() => expect(sent("settings_get")).toHaveLength(1));
    await waitFor(() => expect(qc.getQueryData(["settings"])).toBeTruthy());
    expect(screen.queryByTestId(T.startAtLoginOffer)).toBeNull();
  });

  test("updates: check, then download and verify, then install only when asked", async () => {
    const { sent } = withBackend();
    renderWithQuery(<SettingsView />);
    await userEvent.click(await screen.findByTestId(T.updateCheck));
    const found = await screen.findByTestId(T.updateResult);
    expect(found.dataset.state).toBe("available");
    expect(found.textContent).toMatch(/0\.2\.0 is available/);
    expect(sent("update_download")).toHaveLength(0);
    await userEvent.click(screen.getByTestId(T.updateDownload));
    await waitFor(() => expect(screen.getByTestId(T.updateResult).dataset.state).toBe("verified"));
    expect(sent("update_install")).toHaveLength(0);
    await userEvent.click(screen.getByTestId(T.updateInstall));
    await waitFor(() => expect(sent("update_install")).toHaveLength(1));
  });

  test("shared database (issue 17): a wrong address is refused where it was typed; a good one asks for a restart, and the password is sent once and cleared", async () => {
    const { sent } = withBackend();
    renderWithQuery(<SettingsView />);
    const inUse = await screen.findByTestId(T.sharedDatabaseInUse);
    expect(inUse.dataset.shared).toBe("false");
    expect(inUse.textContent).toMatch(/kept on this computer/);
    await userEvent.type(screen.getByTestId(T.sharedDatabaseUrl), "mysql://db/syncdesk");
    await userEvent.click(screen.getByTestId(T.sharedDatabaseUse));
    expect(await screen.findByText(/looks like postgres:\/\/user@server:5432\/syncdesk/)).toBeTruthy();
    expect(screen.queryByTestId(T.appRestart)).toBeNull();

    await userEvent.clear(screen.getByTestId(T.sharedDatabaseUrl));
    await userEvent.type(screen.getByTestId(T.sharedDatabaseUrl), "postgres://syncdesk@db.office:5432/syncdesk");
    await userEvent.type(screen.getByTestId(T.sharedDatabasePassword), "pw-1");
    await userEvent.click(screen.getByTestId(T.sharedDatabaseUse));
    await screen.findByTestId(T.appRestart);
    expect(sent("shared_database_use").at(-1)?.args).toEqual({
      input: { url: "postgres://syncdesk@db.office:5432/syncdesk", password: "pw-1" },
    });
    expect((screen.getByTestId(T.sharedDatabasePassword) as HTMLInputElement).value).toBe("");
    await userEvent.click(screen.getByTestId(T.appRestart));
    await waitFor(() => expect(sent("app_restart")).toHaveLength(1));

    // Who runs syncs on it: this app, and a worker not heard from for two hours.
    const rows = (await screen.findAllByTestId(T.workerRow)) as HTMLTableRowElement[];
    expect(rows.map((r) => [r.cells[0].textContent, r.cells[1].textContent, r.dataset.alive])).toEqual([
      ["office-pc", "This app", "true"],
      ["night-box", "Background worker", "false"],
    ]);
    expect(rows[1].textContent).toMatch(/Not heard from since/);
  });
});
