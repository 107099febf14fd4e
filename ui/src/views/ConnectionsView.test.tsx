import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, test } from "vitest";
import { renderWithQuery, withBackend } from "../test/render";
import { T } from "../testids";
import { ConnectionsView } from "./ConnectionsView";

/** The custom-connector dialog (a connector spec), reached from the wizard's first step. */
async function openAddDialog() {
  await userEvent.click((await screen.findAllByRole("button", { name: /Add connection/ }))[0]);
  await userEvent.click(await within(screen.getByRole("dialog")).findByTestId(T.wizardCustom));
  return screen.findByRole("dialog", { name: "Custom connector" });
}

async function fillBrowserSignIn(d: HTMLElement, clientId: string) {
  const q = within(d);
  await userEvent.type(q.getByLabelText("Name"), "Acme");
  await userEvent.type(q.getByLabelText("Connector spec"), "sandbox");
  await userEvent.click(q.getByLabelText(/Sign in through the browser/));
  if (clientId) await userEvent.type(q.getByLabelText("Client ID"), clientId);
}

describe("Connections: browser sign-in (R-E1, authorization code + PKCE)", () => {
  test("signs in with the client id only; no secret is sent", async () => {
    const { sent } = withBackend();
    renderWithQuery(<ConnectionsView />);
    const d = await openAddDialog();
    await fillBrowserSignIn(d, "acme-desktop");
    expect(within(d).getByTestId(T.signInNote).textContent).toMatch(/never sees your password/);
    await userEvent.click(within(d).getByRole("button", { name: "Sign in with browser" }));
    await waitFor(() => expect(sent("connection_sign_in")).toHaveLength(1));
    expect(sent("connection_sign_in")[0].args).toEqual({ input: { name: "Acme", spec: "sandbox", client_id: "acme-desktop" } });
    expect(sent("connection_create")).toHaveLength(0);
    expect(await screen.findByText("Acme")).toBeTruthy();
  });

  test("a missing client id is flagged next to the field and nothing is sent", async () => {
    const { sent } = withBackend();
    renderWithQuery(<ConnectionsView />);
    const d = await openAddDialog();
    await fillBrowserSignIn(d, "");
    await userEvent.click(within(d).getByRole("button", { name: "Sign in with browser" }));
    expect(within(d).getByTestId(`${T.fieldErrorPrefix}client_id`).textContent).toMatch(/Client ID is required/);
    expect(sent("connection_sign_in")).toHaveLength(0);
  });

  test("a refused sign-in says so by its code and stores nothing", async () => {
    const { sent } = withBackend();
    renderWithQuery(<ConnectionsView />);
    const d = await openAddDialog();
    await fillBrowserSignIn(d, "deny");
    await userEvent.click(within(d).getByRole("button", { name: "Sign in with browser" }));
    const alert = await within(d).findByRole("alert");
    expect(alert.dataset.errorCode).toBe("sign_in_failed");
    expect(alert.textContent).toMatch(/Sign-in did not complete/);
    expect(sent("connection_sign_in")).toHaveLength(1);
    expect(screen.queryByText("Acme")).toBeNull();
  });

  test("a signed-in connection is re-authenticated by signing in again in the browser", async () => {
    const { sent } = withBackend();
    renderWithQuery(<ConnectionsView />);
    // The fixture's second connection, "Acme Books", signed in through the browser and expired.
    const buttons = await screen.findAllByTestId(T.reauthButton);
    await userEvent.click(buttons[1]);
    const d = screen.getByRole("dialog");
    expect(within(d).getByRole("heading").textContent).toMatch(/Acme Books/);
    await userEvent.click(within(d).getByTestId(T.signInAgain));
    await waitFor(() => expect(sent("connection_sign_in_again")).toHaveLength(1));
    expect(sent("connection_sign_in_again")[0].args).toEqual({ id: "c1acmebooks" });
    expect(sent("connection_reauth")).toHaveLength(0);
    await waitFor(() => expect(screen.queryByRole("dialog")).toBeNull());
  });
});

describe("Connections: what a card says about its credentials", () => {
  test("only a browser sign-in shows when it ends; client credentials renew on their own", async () => {
    withBackend();
    renderWithQuery(<ConnectionsView />);
    const cards = await screen.findAllByTestId(T.connectionCard);
    const card = (name: string) => cards.find((c) => within(c).queryByRole("heading", { name }))!;
    // The sandbox's client-credentials grant came with a refresh token that expires (the
    // fixture says so, as the real sandbox does); the card does not call that a sign-in.
    expect(within(card("sandbox")).queryByText("Sign-in valid until")).toBeNull();
    expect(within(card("Acme Books")).getByText("Sign-in valid until")).toBeTruthy();
  });
});

describe("Connections: Test connection (verified before active)", () => {
  test("a working connection says so; a refused one shows the provider's answer", async () => {
    const { sent } = withBackend();
    renderWithQuery(<ConnectionsView />);
    const cards = await screen.findAllByTestId(T.connectionCard);
    const active = cards.find((c) => within(c).getByTestId(T.connectionStatus).textContent?.match(/active/i))!;
    const expired = cards.find((c) => within(c).getByTestId(T.connectionStatus).textContent?.match(/expired/i))!;
    await userEvent.click(within(active).getByTestId(T.connectionTest));
    expect(await within(active).findByText(/It works: the provider accepted the credentials/)).toBeTruthy();
    await userEvent.click(within(expired).getByTestId(T.connectionTest));
    expect(await within(expired).findByText(/refused these credentials/)).toBeTruthy();
    expect(sent("connection_test")).toHaveLength(2);
  });
});
