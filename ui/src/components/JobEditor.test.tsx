import { screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { mockIPC } from "@tauri-apps/api/mocks";
import { describe, expect, test, vi } from "vitest";
import type { ConnectionDto } from "../bindings/ConnectionDto";
import { newJobForm } from "../jobForm";
import { renderWithQuery, withBackend } from "../test/render";
import { T } from "../testids";
import { JobEditor } from "./JobEditor";

const conn: ConnectionDto = {
  id: "c0sandbox",
  name: "sandbox",
  provider: "sandbox",
  base_url: "http://127.0.0.1:1",
  auth_kind: "oauth2_client_credentials",
  status: "active",
  status_note: null,
  token_expires_at: null,
  refresh_expires_at: null,
  last_checked_at: null,
  values: {},
};

const fieldError = (name: string) => screen.queryByTestId(`${T.fieldErrorPrefix}${name}`)?.textContent;

describe("job editor", () => {
  test("invalid input: a message next to each field, nothing sent", async () => {
    const { sent } = withBackend();
    renderWithQuery(<JobEditor initial={newJobForm("c0sandbox")} connections={[conn]} />);
    await userEvent.clear(screen.getByLabelText("Batch size"));
    await userEvent.type(screen.getByLabelText("Batch size"), "5000");
    await userEvent.click(screen.getByTestId(T.jobSave));
    expect(fieldError("name")).toBe("Give the job a name.");
    expect(fieldError("batch_size")).toBe("Between 1 and 1000 records per page.");
    expect(fieldError("mappings[0].source")).toBe("Source field is required.");
    expect(fieldError("natural_keys")).toMatch(/natural key/);
    expect(screen.getByRole("alert").textContent).toMatch(/fields need attention — nothing was saved/);
    expect(screen.getByLabelText("Batch size").getAttribute("aria-invalid")).toBe("true");
    expect(sent("job_create")).toHaveLength(0);
  });

  test("errors clear as the admin fixes them, then the job is created once", async () => {
    const { sent } = withBackend();
    const onSaved = vi.fn();
    renderWithQuery(<JobEditor initial={newJobForm("c0sandbox")} connections={[conn]} onSaved={onSaved} />);
    await userEvent.click(screen.getByTestId(T.jobSave));
    expect(fieldError("name")).toBeTruthy();
    await userEvent.type(screen.getByLabelText("Name"), "Customers");
    expect(fieldError("name")).toBeUndefined();
    await userEvent.type(screen.getByLabelText("Mapping 1 source"), "email");
    await userEvent.type(screen.getByLabelText("Mapping 1 target"), "email");
    await userEvent.type(screen.getByLabelText("Natural keys"), "email");
    await userEvent.click(screen.getByTestId(T.jobSave));
    await waitFor(() => expect(onSaved).toHaveBeenCalledTimes(1));
    expect(sent("job_create")).toHaveLength(1);
    expect(sent("job_create")[0].args.input).toMatchObject({ name: "Customers", connection: "c0sandbox", mode: "incremental" });
  });

  test("a server `invalid` error naming a field is shown next to that field", async () => {
    mockIPC((cmd) => {
      // The contract's shape: `invalid <field>: <reason>` (docs/desktop.md).
      if (cmd === "job_create") throw { code: "invalid", message: "invalid batch_size: must be between 1 and 1000" };
      return null;
    });
    const f = { ...newJobForm("c0sandbox"), name: "X", naturalKeys: "email" };
    f.mappings = [{ ...f.mappings[0], source: "email", target: "email" }];
    renderWithQuery(<JobEditor initial={f} connections={[conn]} />);
    await userEvent.click(screen.getByTestId(T.jobSave));
    await waitFor(() => expect(fieldError("batch_size")).toBe("Must be between 1 and 1000"));
    expect(screen.getByLabelText("Batch size").getAttribute("aria-invalid")).toBe("true");
  });

  test("a server error of another code is explained by its code, not its text", async () => {
    mockIPC((cmd) => {
      if (cmd === "job_update") throw { code: "conflict", message: "whatever the engine says" };
      return null;
    });
    const f = { ...newJobForm("c0sandbox"), name: "X", naturalKeys: "email" };
    f.mappings = [{ ...f.mappings[0], source: "email", target: "email" }];
    renderWithQuery(<JobEditor jobId="j1" initial={f} connections={[conn]} />);
    await userEvent.click(screen.getByTestId(T.jobSave));
    const alert = await screen.findByRole("alert");
    expect(alert.dataset.errorCode).toBe("conflict");
    expect(alert.textContent).toContain("That conflicts with what is stored");
  });
});
