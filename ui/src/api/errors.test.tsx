import { render, screen } from "@testing-library/react";
import { mockIPC } from "@tauri-apps/api/mocks";
import { describe, expect, test } from "vitest";
import { ErrorState } from "../components/ui";
import { call } from "./client";
import { explainError, invalidField, isCode, toErrorDto } from "./errors";

describe("error codes", () => {
  test("a rejected command becomes an ErrorDto; a bare string is code ipc", async () => {
    mockIPC(() => {
      throw { code: "not_found", message: "job not found: j9" };
    });
    await expect(call("job_get", { id: "j9" })).rejects.toMatchObject({ code: "not_found", message: "job not found: j9" });
    expect(toErrorDto("command foo not found")).toEqual({ code: "ipc", message: "command foo not found" });
    expect(toErrorDto(new Error("boom"))).toEqual({ code: "ipc", message: "boom" });
    expect(toErrorDto(undefined).code).toBe("ipc");
  });

  test("the explanation depends on the code only", () => {
    const same = "identical message";
    expect(explainError({ code: "auth", message: same }).reauth).toBe(true);
    expect(explainError({ code: "keychain_unavailable", message: same }).title).toMatch(/keychain/);
    expect(explainError({ code: "not_found", message: same }).title).toBe("Not found");
    expect(explainError({ code: "store", message: "Re-authenticate the connection" }).reauth).toBe(false);
    expect(explainError({ code: "store", message: same }).title).toBe("The local database failed");
    expect(explainError({ code: "provider", message: same }).title).toMatch(/provider/);
  });

  test("one vocabulary (ErrorCode): only `invalid` names a field; the field is read from `field`", () => {
    expect(isCode({ code: "invalid", message: "" }, "invalid")).toBe(true);
    expect(isCode({ code: "usage", message: "" }, "invalid")).toBe(false);
    expect(invalidField(toErrorDto({ code: "invalid", message: "invalid timeout: x", field: "timeout" }))).toBe("timeout");
    expect(invalidField({ code: "invalid", message: "invalid mappings[2].target: 'email' is mapped twice" })).toBe("mappings[2].target");
    expect(invalidField({ code: "invalid", message: "something else" })).toBeNull();
    expect(invalidField({ code: "store", message: "invalid batch_size: no" })).toBeNull();
    expect(invalidField(toErrorDto({ code: "conflict", message: "", field: "name" }))).toBeNull();
  });

  test("ErrorState shows the headline for the code and the message as detail", () => {
    render(<ErrorState error={{ code: "keychain_unavailable", message: "ServiceUnknown org.freedesktop.secrets" }} />);
    const alert = screen.getByRole("alert");
    expect(alert.dataset.errorCode).toBe("keychain_unavailable");
    expect(alert.textContent).toContain("The system keychain is not available");
    expect(alert.textContent).toContain("ServiceUnknown org.freedesktop.secrets");
  });
});
