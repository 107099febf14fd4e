import type { RecordErrorDto } from "./bindings/RecordErrorDto";
import type { RetryDto } from "./bindings/RetryDto";

/** The spec's one-line form of a record error. */
export function formatRecordError(e: Pick<RecordErrorDto, "record_id" | "kind" | "message">): string {
  return `Record ID: ${e.record_id}, Error: ${e.kind} - ${e.message}`;
}

/** Record error kinds in plain words; the engine's names stay in titles and data attributes. */
export const KIND_LABELS: Record<string, string> = {
  ValidationError: "Missing required value",
  SchemaMismatch: "Wrong field type",
  TransformError: "Could not convert value",
  DuplicateConflict: "Duplicate",
  ReferenceNotFound: "Unknown reference",
};

export function kindLabel(kind: string): string {
  return KIND_LABELS[kind] ?? humanize(kind.replace(/([a-z])([A-Z])/g, "$1 $2").toLowerCase());
}

/** A duplicate is skipped (the record already exists), not a failure. */
export function isSkipKind(kind: string): boolean {
  return kind === "DuplicateConflict";
}

/** How an error-log row names its kind: "Skipped: duplicate" for duplicates. */
export function rowKindLabel(kind: string): string {
  return isSkipKind(kind) ? "Skipped: duplicate" : kindLabel(kind);
}

/** The spec's line with the kind in plain words: `Record ID: x, Error: Missing required value - …`. */
export function formatRecordErrorPlain(e: Pick<RecordErrorDto, "record_id" | "kind" | "message">): string {
  return `Record ID: ${e.record_id}, Error: ${rowKindLabel(e.kind)} - ${e.message}`;
}

/** A stored error text (`ValidationError - …`) with its leading kind in plain words. */
export function plainErrorText(text: string): string {
  const m = /^([A-Za-z]+) - ([\s\S]*)$/.exec(text);
  return m && KIND_LABELS[m[1]] ? `${KIND_LABELS[m[1]]} - ${m[2]}` : text;
}

/** Why a run failed, in plain words (the engine's `failure_kind`). */
export const FAILURE_LABELS: Record<string, string> = {
  provider_unavailable: "Provider unavailable",
  circuit_breaker: "Stopped early: most records were failing",
  auth: "Sign-in needed",
  timeout: "Took too long",
  timed_out: "Took too long",
  cancelled: "Cancelled",
  rate_limited: "Rate limited by the provider",
  schema_changed: "Provider's fields changed",
};

export function failureLabel(kind: string): string {
  return FAILURE_LABELS[kind] ?? humanize(kind);
}

/** `ValidationError - Required field 'email' is null` (the error part alone). */
export function formatErrorText(kind: string, message: string): string {
  return `${kind} - ${message}`;
}

export function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return "—";
  if (ms < 1000) return `${ms} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)} s`;
  const m = Math.floor(s / 60);
  const rs = Math.round(s % 60);
  if (m < 60) return `${m}m ${rs}s`;
  return `${Math.floor(m / 60)}h ${m % 60}m`;
}

/** Absolute local time, compact. */
export function formatTime(iso: string | null | undefined): string {
  if (!iso) return "—";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toLocaleString(undefined, {
    year: "numeric",
    month: "short",
    day: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  });
}

/** Time of day when it is today, else a short date and time; `now` injectable for tests. */
export function formatShortTime(iso: string | null | undefined, now: number = Date.now()): string {
  if (!iso) return "—";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const today = new Date(now).toDateString() === d.toDateString();
  return today
    ? d.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" })
    : d.toLocaleString(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
}

/** "3 min ago" / "in 2 h"; `now` is injectable for tests. */
export function formatRelative(iso: string | null | undefined, now: number = Date.now()): string {
  if (!iso) return "—";
  const t = new Date(iso).getTime();
  if (Number.isNaN(t)) return iso;
  const diff = t - now;
  const abs = Math.abs(diff) / 1000;
  let v: string;
  if (abs < 45) v = `${Math.round(abs)} s`;
  else if (abs < 3600) v = `${Math.round(abs / 60)} min`;
  else if (abs < 86400) v = `${Math.round(abs / 3600)} h`;
  else v = `${Math.round(abs / 86400)} d`;
  return diff >= 0 ? `in ${v}` : `${v} ago`;
}

export function humanize(s: string): string {
  const t = s.replace(/_/g, " ");
  return t.charAt(0).toUpperCase() + t.slice(1);
}

export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n.toLocaleString()} ${n === 1 ? one : many}`;
}

export type Tone = "ok" | "warn" | "bad" | "info" | "muted";

/** How an execution status is shown. completed_with_errors is deliberately loud. */
export function statusTone(status: string): Tone {
  switch (status) {
    case "completed":
    case "active":
      return "ok";
    case "completed_with_errors":
      return "warn";
    case "failed":
    case "timed_out":
    case "expired":
    case "error":
      return "bad";
    case "running":
    case "queued":
      return "info";
    default:
      return "muted";
  }
}

export function statusLabel(status: string): string {
  if (status === "completed_with_errors") return "Completed with errors";
  if (status === "timed_out") return "Timed out";
  return humanize(status);
}

/** What follows a run under the automatic retry rule, in words (the engine decides the state). */
export function retryText(r: RetryDto, now: number = Date.now()): string | null {
  switch (r.state) {
    case "pending":
      return `Automatic retry ${formatRelative(r.at, now)}`;
    case "waiting_for_reauth":
      return "Retries after you sign in to the connection again";
    case "running":
      return "Being retried now";
    case "retried":
      return "Retried";
    case "superseded":
      return "No retry needed: a later run succeeded";
    case "exhausted":
      return "All automatic retries used";
    case "off":
      return "Automatic retries are off for this job";
    case "none":
      return null;
  }
}

