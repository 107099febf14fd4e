// The job editor's form model, its validation (mirrors the engine's JobSettings::validate so
// the admin sees every problem next to its field before anything is sent) and its conversion
// to NewJobDto. Field keys use the engine's names so server `invalid` errors land on the
// same field.
import type { FieldMapping } from "./bindings/FieldMapping";
import type { JobDto } from "./bindings/JobDto";
import type { JobSettings } from "./bindings/JobSettings";
import type { JsonValue } from "./bindings/serde_json/JsonValue";
import type { NewJobDto } from "./bindings/NewJobDto";
import type { ValueType } from "./bindings/ValueType";

export const ENTITIES = ["customers", "invoices", "products", "payments"] as const;
export const VALUE_TYPES: ValueType[] = ["string", "number", "integer", "boolean", "object", "array"];

export interface MappingRow {
  source: string;
  target: string;
  transform: string;
  /** As typed: JSON (`0`, `true`, `"x"`) or plain text; empty means no default. */
  defaultText: string;
  required: boolean;
  type: ValueType | "";
  optional: boolean;
}

export interface JobForm {
  name: string;
  connection: string;
  entity: string;
  direction: "pull" | "push";
  mode: "incremental" | "full";
  scheduleKind: "manual" | "interval" | "cron";
  /** `15m` for interval, `0 * * * *` for cron. */
  scheduleValue: string;
  enabled: boolean;
  batchSize: string;
  /** Duration text: `90s`, `15m`, `1h`. */
  timeout: string;
  requestTimeout: string;
  retryOnFailure: boolean;
  maxRetries: string;
  duplicateDetection: boolean;
  /** Comma separated target fields. */
  naturalKeys: string;
  mappings: MappingRow[];
  alerts: JobSettings["alerts"];
  /** Settings the editor does not show, carried over unchanged. */
  hidden: Pick<JobSettings, "backoff_secs" | "retry_delays_secs" | "max_rate_limit_waits">;
}

export type FormErrors = Record<string, string>;

export function emptyMapping(): MappingRow {
  return { source: "", target: "", transform: "", defaultText: "", required: false, type: "", optional: false };
}

/** A new job: incremental pull, manual schedule, the engine's default settings. */
export function newJobForm(connection = ""): JobForm {
  return {
    name: "",
    connection,
    entity: "customers",
    direction: "pull",
    mode: "incremental",
    scheduleKind: "manual",
    scheduleValue: "",
    enabled: true,
    batchSize: "100",
    timeout: "1h",
    requestTimeout: "30s",
    retryOnFailure: true,
    maxRetries: "3",
    duplicateDetection: true,
    naturalKeys: "",
    mappings: [emptyMapping()],
    alerts: {
      on_circuit_breaker: true,
      on_retries_exhausted: true,
      on_connection_expired: true,
      on_failure: false,
      on_completed_with_errors: false,
      on_dead_letters: true,
    },
    hidden: { backoff_secs: [1, 5, 15], retry_delays_secs: [300, 1800, 7200], max_rate_limit_waits: 20 },
  };
}

export function formatSecs(secs: number): string {
  if (secs % 86400 === 0) return `${secs / 86400}d`;
  if (secs % 3600 === 0) return `${secs / 3600}h`;
  if (secs % 60 === 0) return `${secs / 60}m`;
  return `${secs}s`;
}

/** `90s`, `15m`, `2h`, `1d` or plain seconds, like the engine's parse_duration. */
export function parseDuration(s: string): number | null {
  const m = /^\s*(\d+)\s*([smhd]?)\s*$/.exec(s);
  if (!m) return null;
  const n = Number(m[1]);
  const mult = { "": 1, s: 1, m: 60, h: 3600, d: 86400 }[m[2] as "" | "s" | "m" | "h" | "d"];
  return n * mult;
}

function parseSchedule(schedule: string): Pick<JobForm, "scheduleKind" | "scheduleValue"> {
  const s = schedule.trim();
  if (s.startsWith("every ")) return { scheduleKind: "interval", scheduleValue: s.slice(6).trim() };
  if (s.startsWith("cron ")) return { scheduleKind: "cron", scheduleValue: s.slice(5).trim() };
  return { scheduleKind: "manual", scheduleValue: "" };
}

export function scheduleText(f: Pick<JobForm, "scheduleKind" | "scheduleValue">): string {
  if (f.scheduleKind === "interval") return `every ${f.scheduleValue.trim()}`;
  if (f.scheduleKind === "cron") return `cron ${f.scheduleValue.trim()}`;
  return "manual";
}

function defaultToText(v: JsonValue | null | undefined): string {
  if (v === null || v === undefined) return "";
  if (typeof v === "string") return v;
  return JSON.stringify(v);
}

/** Plain text stays a string; valid JSON that is not a bare string becomes that value. */
export function parseDefault(text: string): JsonValue | null {
  const t = text.trim();
  if (t === "") return null;
  try {
    return JSON.parse(t) as JsonValue;
  } catch {
    return text;
  }
}

export function jobToForm(job: JobDto): JobForm {
  const s = job.settings;
  return {
    name: job.name,
    connection: job.connection_id,
    entity: job.entity,
    direction: job.direction === "push" ? "push" : "pull",
    mode: job.mode === "full" ? "full" : "incremental",
    ...parseSchedule(job.schedule),
    enabled: job.enabled,
    batchSize: String(s.batch_size),
    timeout: formatSecs(s.timeout_secs),
    requestTimeout: formatSecs(s.request_timeout_secs),
    retryOnFailure: s.retry_on_failure,
    maxRetries: String(s.max_retries),
    duplicateDetection: s.duplicate_detection,
    naturalKeys: s.natural_keys.join(", "),
    mappings: s.mappings.map((m) => ({
      source: m.source,
      target: m.target,
      transform: m.transform ?? "",
      defaultText: defaultToText(m.default),
      required: m.required,
      type: m.type ?? "",
      optional: m.optional,
    })),
    alerts: { ...s.alerts },
    hidden: {
      backoff_secs: s.backoff_secs,
      retry_delays_secs: s.retry_delays_secs,
      max_rate_limit_waits: s.max_rate_limit_waits,
    },
  };
}

export function naturalKeyList(text: string): string[] {
  return text
    .split(",")
    .map((k) => k.trim())
    .filter(Boolean);
}

const INT = /^\s*\d+\s*$/;
const PLAIN_TRANSFORMS = new Set(["trim", "lowercase", "uppercase", "string", "number", "integer", "boolean", "datetime", "cents_to_decimal", "email"]);

/** Checks one `|`-separated transform step like the engine does; null when it is fine. */
export function transformStepError(step: string): string | null {
  const t = step.trim();
  const i = t.indexOf(":");
  const name = (i >= 0 ? t.slice(0, i) : t).trim();
  const arg = i >= 0 ? t.slice(i + 1).trim() : null;
  if (arg === null && PLAIN_TRANSFORMS.has(name)) return null;
  if (name === "date") return null;
  if (name === "enum" && arg !== null) {
    const pairs = arg.split(",").filter((p) => p.trim());
    if (pairs.length === 0) return "enum needs at least one from=to pair";
    const bad = pairs.find((p) => !p.includes("="));
    return bad ? `enum pair '${bad.trim()}' must look like from=to` : null;
  }
  if (name === "reference" && arg) return null;
  return `unknown transform '${t}'`;
}

/** Every problem, keyed by field; empty means the form can be saved. */
export function validateJobForm(f: JobForm): FormErrors {
  const e: FormErrors = {};
  if (!f.name.trim()) e.name = "Give the job a name.";
  if (!f.connection) e.connection = "Choose a connection.";
  if (!f.entity.trim()) e.entity = "Choose what to sync.";
  if (f.scheduleKind === "interval") {
    const secs = parseDuration(f.scheduleValue);
    if (secs === null) e.schedule = "Use a duration like 15m, 2h or 1d.";
    else if (secs < 60) e.schedule = "Intervals shorter than 1m are not allowed.";
  } else if (f.scheduleKind === "cron") {
    const n = f.scheduleValue.trim().split(/\s+/).filter(Boolean).length;
    if (n < 5 || n > 6) e.schedule = "A cron expression has 5 or 6 fields, e.g. 0 * * * *.";
  }
  if (!INT.test(f.batchSize) || Number(f.batchSize) < 1 || Number(f.batchSize) > 1000)
    e.batch_size = "Between 1 and 1000 records per page.";
  const t = parseDuration(f.timeout);
  if (t === null) e.timeout = "Use a duration like 30m or 2h.";
  else if (t < 1 || t > 7 * 86400) e.timeout = "Between 1s and 7d.";
  const rt = parseDuration(f.requestTimeout);
  if (rt === null) e.request_timeout = "Use a duration like 30s.";
  else if (rt < 1 || rt > 3600) e.request_timeout = "Between 1s and 1h.";
  if (!INT.test(f.maxRetries) || Number(f.maxRetries) > 20) e.max_retries = "A whole number from 0 to 20.";

  if (f.mappings.length === 0) e.mappings = "A job needs at least one field mapping.";
  const targets = new Map<string, number>();
  f.mappings.forEach((m, i) => {
    if (!m.source.trim()) e[`mappings[${i}].source`] = "Source field is required.";
    if (!m.target.trim()) e[`mappings[${i}].target`] = "Target field is required.";
    else if (targets.has(m.target.trim())) e[`mappings[${i}].target`] = `'${m.target.trim()}' is mapped twice.`;
    else targets.set(m.target.trim(), i);
    const tr = m.transform.trim();
    if (tr) {
      const bad = tr.split("|").map(transformStepError).find((x) => x !== null);
      if (bad) e[`mappings[${i}].transform`] = `${bad.charAt(0).toUpperCase()}${bad.slice(1)}.`;
    }
  });
  const keys = naturalKeyList(f.naturalKeys);
  const missing = keys.filter((k) => !targets.has(k));
  if (missing.length) e.natural_keys = `Not the target of any mapping: ${missing.join(", ")}.`;
  else if (f.duplicateDetection && keys.length === 0)
    e.natural_keys = "Duplicate detection needs at least one natural key (or turn it off).";
  return e;
}

export function formToNewJob(f: JobForm): NewJobDto {
  const mappings: FieldMapping[] = f.mappings.map((m) => ({
    source: m.source.trim(),
    target: m.target.trim(),
    transform: m.transform.trim() || null,
    default: parseDefault(m.defaultText),
    required: m.required,
    type: m.type || null,
    optional: m.optional,
  }));
  const settings: JobSettings = {
    batch_size: Number(f.batchSize),
    timeout_secs: parseDuration(f.timeout) ?? 0,
    request_timeout_secs: parseDuration(f.requestTimeout) ?? 0,
    retry_on_failure: f.retryOnFailure,
    max_retries: Number(f.maxRetries),
    backoff_secs: f.hidden.backoff_secs,
    retry_delays_secs: f.hidden.retry_delays_secs,
    max_rate_limit_waits: f.hidden.max_rate_limit_waits,
    duplicate_detection: f.duplicateDetection,
    natural_keys: naturalKeyList(f.naturalKeys),
    mappings,
    alerts: f.alerts,
  };
  return {
    name: f.name.trim(),
    connection: f.connection,
    entity: f.entity,
    direction: f.direction,
    mode: f.mode,
    schedule: scheduleText(f),
    enabled: f.enabled,
    settings,
  };
}

/** Server field names that differ from the form's keys. */
export function serverFieldToFormKey(field: string): string {
  if (field === "timeout_secs") return "timeout";
  if (field === "request_timeout_secs") return "request_timeout";
  return field;
}
