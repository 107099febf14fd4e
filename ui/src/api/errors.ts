import type { ErrorCode } from "../bindings/ErrorCode";
import type { ErrorDto } from "../bindings/ErrorDto";

/**
 * Every failed command rejects with an ErrorDto. `invoke` can also reject with a bare string
 * (unknown command, a panic in the shell); that becomes code "ipc". The UI switches on `code`
 * and never on `message`.
 */
export function toErrorDto(e: unknown): ErrorDto {
  if (e && typeof e === "object" && "code" in e && typeof (e as { code: unknown }).code === "string") {
    // Keep whatever else the shell sent (e.g. the field an `invalid` error names). The shell
    // sends only `ErrorCode`s (crates/dto); the type says so.
    const o = e as { code: ErrorCode; message?: unknown };
    return { ...o, code: o.code, message: typeof o.message === "string" ? o.message : "" };
  }
  if (typeof e === "string") return { code: "ipc", message: e };
  if (e instanceof Error) return { code: "ipc", message: e.message };
  return { code: "ipc", message: "Unknown error" };
}

/**
 * The codes each explanation covers: one vocabulary, `ErrorCode` (crates/dto), shared with the
 * CLI. Typed against the generated union, so a renamed or removed code fails the build here.
 */
export const ErrorGroups = {
  notFound: ["not_found"],
  invalid: ["invalid"],
  conflict: ["conflict"],
  auth: ["auth"],
  keychain: ["keychain_unavailable"],
  notifications: ["notifications_unavailable"],
  provider: ["provider"],
  sandbox: ["sandbox"],
  signIn: ["sign_in_failed"],
  browser: ["browser_unavailable"],
  updateUnavailable: ["update_unavailable"],
  updateRefused: ["update_refused"],
} as const satisfies Record<string, readonly ErrorCode[]>;

export function isCode(err: ErrorDto, group: keyof typeof ErrorGroups): boolean {
  return (ErrorGroups[group] as readonly ErrorCode[]).includes(err.code);
}

export interface ErrorExplanation {
  /** Short headline an admin reads first. */
  title: string;
  /** What to do about it. */
  hint: string;
  /** Whether the fix is re-authenticating a connection. */
  reauth: boolean;
}

/** What the UI says for an error, chosen by its code. The message is shown as detail only. */
export function explainError(err: ErrorDto): ErrorExplanation {
  if (isCode(err, "auth"))
    return {
      title: "The connection needs to be re-authenticated",
      hint: "Its credentials were rejected or are missing. Re-authenticate it, then try again.",
      reauth: true,
    };
  if (isCode(err, "keychain"))
    return {
      title: "The system keychain is not available",
      hint: "Syncdesk keeps secrets only in the OS keychain. Unlock or start your keyring, then try again.",
      reauth: false,
    };
  if (isCode(err, "notFound"))
    return { title: "Not found", hint: "It may have been deleted. Go back and refresh the list.", reauth: false };
  if (isCode(err, "invalid"))
    return { title: "Some input is not valid", hint: "Fix the highlighted field and try again.", reauth: false };
  if (isCode(err, "conflict"))
    return { title: "That conflicts with what is stored", hint: "Refresh and try again.", reauth: false };
  if (isCode(err, "provider"))
    return {
      title: "The provider did not cooperate",
      hint: "It was down, rate limited, or answered something unexpected. Try again later; the details are below.",
      reauth: false,
    };
  if (isCode(err, "updateRefused"))
    return {
      title: "The update was refused",
      hint: "It did not pass Syncdesk's signature check, so nothing was installed and this version keeps running. Try again later.",
      reauth: false,
    };
  if (isCode(err, "updateUnavailable"))
    return {
      title: "No update could be fetched",
      hint: "The update server could not be reached, or this copy is updated by your package manager. Try again later.",
      reauth: false,
    };
  if (isCode(err, "signIn"))
    return {
      title: "Sign-in did not complete",
      hint: "The provider or you refused it in the browser, so nothing was saved. Sign in again when ready.",
      reauth: false,
    };
  if (isCode(err, "browser"))
    return {
      title: "The system browser could not be opened",
      hint: "Sign-in happens in your default web browser. Set one up (xdg-open must work), then try again.",
      reauth: false,
    };
  if (isCode(err, "sandbox"))
    return { title: "The sandbox is not running", hint: "Start it from the Sandbox page, then try again.", reauth: false };
  if (err.code === "timed_out")
    return { title: "That took too long", hint: "It timed out. Try again, or give the job a longer timeout.", reauth: false };
  if (err.code === "cancelled") return { title: "Cancelled", hint: "It was stopped before it finished.", reauth: false };
  if (err.code === "store")
    return { title: "The local database failed", hint: "Nothing was changed. Try again; if it persists, restart Syncdesk.", reauth: false };
  if (err.code === "ipc")
    return {
      title: "The app backend did not answer",
      hint: "The command is not available in this build, or the shell stopped. Restart Syncdesk.",
      reauth: false,
    };
  return { title: "Something went wrong", hint: "Try again. If it keeps failing, check the audit log.", reauth: false };
}

const INVALID_PREFIX = /^invalid ([A-Za-z0-9_.\[\]]+): /;

/**
 * The input field an `invalid` error names (engine spelling: `batch_size`, `timeout`,
 * `mappings[2].target`): the error's `field` member (docs/desktop.md). Errors that do not
 * carry one (the mock backend, an older shell) still name it in the message,
 * `invalid <field>: <what is wrong>`. Errors of any other code never yield a field.
 */
export function invalidField(err: ErrorDto): string | null {
  if (!isCode(err, "invalid")) return null;
  if (err.field) return err.field;
  return INVALID_PREFIX.exec(err.message)?.[1] ?? null;
}

/** What is wrong with the field, without the `invalid <field>: ` prefix. */
export function invalidReason(err: ErrorDto): string {
  return err.message.replace(INVALID_PREFIX, "");
}
