import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, test } from "vitest";
import { renderWithQuery, withBackend } from "../test/render";
import { T } from "../testids";
import { ConnectionsView } from "./ConnectionsView";
import { entityTitle, freeName } from "./ConnectWizard";

async function openWizard() {
  await userEvent.click((await screen.findAllByRole("button", { name: /Add connection/ }))[0]);
  return screen.getByRole("dialog");
}

async function pickProvider(d: HTMLElement, name: RegExp) {
  await userEvent.click(await within(d).findByRole("radio", { name }));
  await userEvent.click(within(d).getByRole("button", { name: "Next" }));
}

describe("Connection wizard (issue 15): provider, sign in, check, choose, jobs", () => {
  test("a wrong Stripe key is refused in plain words and nothing is saved; the right one leads to jobs", async () => {
    const { sent, backend } = withBackend({ scenario: "empty" });
    renderWithQuery(<ConnectionsView />);
    const d = await openWizard();
    // The provider step says what each one syncs, and shows no connector spec.
    expect(within(d).getByText(/customers, products, invoices and charges/)).toBeTruthy();
    expect(d.querySelector("textarea")).toBeNull();
    await pickProvider(d, /Stripe/);

    const key = within(d).getByLabelText("Stripe restricted or secret key") as HTMLInputElement;
    expect(key.type).toBe("password");
    expect((within(d).getByLabelText("Name for this connection") as HTMLInputElement).value).toBe("Stripe");
    expect(within(d).getByText(/restricted key with Read access/)).toBeTruthy();
    await userEvent.type(key, "wrong");
    await userEvent.click(within(d).getByRole("button", { name: "Connect" }));
    const refused = await within(d).findByTestId(`${T.fieldErrorPrefix}secret`);
    expect(refused.textContent).toMatch(/Stripe did not accept the Stripe restricted or secret key you pasted.*Nothing was saved/);
    expect(refused.textContent).not.toMatch(/HTTP|401|auth/);
    expect(key.value).toBe(""); // the refused key is cleared
    expect(key.getAttribute("aria-invalid")).toBe("true");
    expect(key.getAttribute("aria-describedby")).toContain(refused.id);
    expect(backend.state.connections).toHaveLength(0);

    await userEvent.type(key, "rk_test_good");
    await userEvent.click(within(d).getByRole("button", { name: "Connect" }));
    expect(await within(d).findByTestId(T.wizardConnected)).toBeTruthy();
    expect(sent("connection_connect").at(-1)!.args).toEqual({
      input: { connector: "stripe", name: "Stripe", entities: [], auth_kind: "bearer", secret: "rk_test_good" },
    });
    // Every entity is chosen at first; the admin leaves out products and picks a schedule.
    await userEvent.click(within(d).getByTestId(`${T.wizardEntityPrefix}products`));
    await userEvent.selectOptions(within(d).getByLabelText("How often"), "Every 15 minutes");
    await userEvent.click(within(d).getByRole("button", { name: "Create 3 jobs" }));
    const done = await within(d).findByTestId(T.wizardDone);
    expect(done.textContent).toMatch(/3 jobs were created\. They run every 15 minutes\./);
    expect(sent("jobs_create_defaults")[0].args).toEqual({
      connection: backend.state.connections[0].id,
      entities: ["charges", "customers", "invoices"],
      schedule: "every 15m",
    });
    expect(within(d).getByTestId(`${T.wizardJobPrefix}customers`).textContent).toBe("Stripe customers");
    expect(sent("connection_create")).toHaveLength(0);
  });

  test("the server address is an advanced option, sent only when given", async () => {
    const { sent } = withBackend({ scenario: "empty" });
    renderWithQuery(<ConnectionsView />);
    const d = await openWizard();
    await pickProvider(d, /Stripe/);
    await userEvent.click(within(d).getByText("Advanced: server address"));
    await userEvent.type(within(d).getByLabelText("Server address"), "not a url");
    await userEvent.type(within(d).getByLabelText("Stripe restricted or secret key"), "rk_test_good");
    await userEvent.click(within(d).getByRole("button", { name: "Connect" }));
    expect(within(d).getByTestId(`${T.fieldErrorPrefix}base_url`).textContent).toMatch(/full address/);
    expect(sent("connection_connect")).toHaveLength(0);
    await userEvent.clear(within(d).getByLabelText("Server address"));
    await userEvent.type(within(d).getByLabelText("Server address"), "http://127.0.0.1:9001");
    await userEvent.type(within(d).getByLabelText("Stripe restricted or secret key"), "rk_test_good");
    await userEvent.click(within(d).getByRole("button", { name: "Connect" }));
    await waitFor(() => expect(sent("connection_connect")).toHaveLength(1));
    expect((sent("connection_connect")[0].args.input as { base_url: string }).base_url).toBe("http://127.0.0.1:9001");
  });

  test("Xero: browser sign-in, then the organisation from the ones the sign-in allowed", async () => {
    const { sent } = withBackend({ scenario: "empty" });
    renderWithQuery(<ConnectionsView />);
    const d = await openWizard();
    await pickProvider(d, /Xero/);
    expect(within(d).queryByRole("radio", { name: /Paste/ })).toBeNull();
    await userEvent.click(within(d).getByRole("button", { name: "Sign in with the browser" }));
    expect(within(d).getByTestId(`${T.fieldErrorPrefix}client_id`).textContent).toMatch(/client id of your Xero app/);
    await userEvent.type(within(d).getByLabelText("Client id of your Xero app"), "xero-app");
    await userEvent.click(within(d).getByRole("button", { name: "Sign in with the browser" }));
    await waitFor(() => expect(sent("connection_connect_sign_in")).toHaveLength(1));
    expect(sent("connection_connect_sign_in")[0].args).toEqual({
      input: { connector: "xero", name: "Xero", entities: [], auth_kind: "oauth2_refresh_token", client_id: "xero-app" },
    });
    // The organisations come from Xero once signed in.
    const org = await within(d).findByRole("radio", { name: "Harbour Bikes Ltd" });
    await userEvent.click(within(d).getByRole("button", { name: "Next" }));
    expect(within(d).getByText(/Choose the Xero organisation to sync/)).toBeTruthy();
    await userEvent.click(org);
    await userEvent.click(within(d).getByRole("button", { name: "Next" }));
    await within(d).findByRole("button", { name: "Create 2 jobs" });
    expect(sent("connection_set_value")[0].args).toMatchObject({ name: "tenant_id", value: "t-2" });
  });

  test("HubSpot offers both ways; the pasted token is called what HubSpot calls it", async () => {
    withBackend({ scenario: "empty" });
    renderWithQuery(<ConnectionsView />);
    const d = await openWizard();
    await pickProvider(d, /HubSpot/);
    expect(within(d).getByLabelText("Private app access token")).toBeTruthy();
    await userEvent.click(within(d).getByRole("radio", { name: "Sign in with the browser" }));
    expect(within(d).getByLabelText("Client id of your HubSpot app")).toBeTruthy();
    expect(within(d).queryByLabelText("Private app access token")).toBeNull();
  });

  test("a taken name is flagged at the name, and the default name avoids it", async () => {
    const { backend } = withBackend({ scenario: "empty" });
    renderWithQuery(<ConnectionsView />);
    let d = await openWizard();
    await pickProvider(d, /Stripe/);
    await userEvent.type(within(d).getByLabelText("Stripe restricted or secret key"), "rk_1");
    await userEvent.click(within(d).getByRole("button", { name: "Connect" }));
    await userEvent.click(await within(d).findByRole("button", { name: "Not now" }));
    expect(backend.state.connections.map((c) => c.name)).toEqual(["Stripe"]);
    d = await openWizard();
    await pickProvider(d, /Stripe/);
    await waitFor(() => expect((within(d).getByLabelText("Name for this connection") as HTMLInputElement).value).toBe("Stripe 2"));
    await userEvent.clear(within(d).getByLabelText("Name for this connection"));
    await userEvent.type(within(d).getByLabelText("Name for this connection"), "Stripe");
    await userEvent.type(within(d).getByLabelText("Stripe restricted or secret key"), "rk_2");
    await userEvent.click(within(d).getByRole("button", { name: "Connect" }));
    expect((await within(d).findByTestId(`${T.fieldErrorPrefix}name`)).textContent).toMatch(/already have a connection with this name/);
  });

  test("a custom connector is the way to a connector spec", async () => {
    withBackend({ scenario: "empty" });
    renderWithQuery(<ConnectionsView />);
    const d = await openWizard();
    await userEvent.click(await within(d).findByTestId(T.wizardCustom));
    const custom = await screen.findByRole("dialog", { name: "Custom connector" });
    expect(within(custom).getByLabelText("Connector spec")).toBeTruthy();
  });

  test("helpers: entity titles and free names", () => {
    expect(entityTitle("customers")).toBe("Customers");
    expect(freeName("Stripe", ["Stripe", "Stripe 2"])).toBe("Stripe 3");
    expect(freeName("Xero", ["Stripe"])).toBe("Xero");
  });
});
