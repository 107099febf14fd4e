// A stateful stand-in for the Tauri shell, used by `?mock` builds (browser tests, design work)
// and by component tests through mockIPC. Realistic data: a sandbox connection, an expired
// connection, a job whose newest run completed with errors, a retry chain, failed records.
import type { SettingsDto } from "../bindings/SettingsDto";
import type { AlertDto } from "../bindings/AlertDto";
import type { AuditDto } from "../bindings/AuditDto";
import type { ConnectDto } from "../bindings/ConnectDto";
import type { ConnectionDto } from "../bindings/ConnectionDto";
import type { ConnectorDto } from "../bindings/ConnectorDto";
import type { DeadLetterDto } from "../bindings/DeadLetterDto";
import type { ErrorCode } from "../bindings/ErrorCode";
import type { ErrorDto } from "../bindings/ErrorDto";
import type { ExecutionDetailDto } from "../bindings/ExecutionDetailDto";
import type { ExecutionDto } from "../bindings/ExecutionDto";
import type { HealthDto } from "../bindings/HealthDto";
import type { JobDto } from "../bindings/JobDto";
import type { JobSettings } from "../bindings/JobSettings";
import type { JobHealthDto } from "../bindings/JobHealthDto";
import type { JobSummaryDto } from "../bindings/JobSummaryDto";
import type { NewConnectionDto } from "../bindings/NewConnectionDto";
import type { NewJobDto } from "../bindings/NewJobDto";
import type { PageDto } from "../bindings/PageDto";
import type { RecordErrorDto } from "../bindings/RecordErrorDto";
import type { RecordRetryDto } from "../bindings/RecordRetryDto";
import type { SandboxDto } from "../bindings/SandboxDto";
import type { SandboxFaultsDto } from "../bindings/SandboxFaultsDto";
import type { SharedDatabaseDto } from "../bindings/SharedDatabaseDto";
import type { WorkerDto } from "../bindings/WorkerDto";

export interface BackendOptions {
  /** "empty": first run, nothing configured. */
  scenario?: string;
  /** Fixed "now" so screenshots and tests are stable. */
  now?: number;
  /** Called for each event the backend would emit (execution progress…). */
  emit?: (event: string, payload: unknown) => void;
}

const iso = (t: number) => new Date(t).toISOString().replace(/\.\d{3}Z$/, "Z");
const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;

function fail(code: ErrorCode, message: string, extra: Record<string, unknown> = {}): never {
  throw { code, message, ...extra } as ErrorDto;
}

function page<T>(items: T[], cursor: unknown, size: number): PageDto<T> {
  const start = typeof cursor === "string" ? Number(cursor) : 0;
  const slice = items.slice(start, start + size);
  const next = start + size < items.length ? String(start + size) : null;
  return { items: slice, next_cursor: next };
}

function defaultSettings(): JobSettings {
  return {
    batch_size: 100,
    timeout_secs: 3600,
    request_timeout_secs: 30,
    retry_on_failure: true,
    max_retries: 3,
    backoff_secs: [1, 5, 15],
    retry_delays_secs: [300, 1800, 7200],
    max_rate_limit_waits: 20,
    duplicate_detection: true,
    natural_keys: [],
    mappings: [],
    alerts: {
      on_circuit_breaker: true,
      on_retries_exhausted: true,
      on_connection_expired: true,
      on_failure: false,
      on_completed_with_errors: true,
      on_dead_letters: true,
    },
  };
}

function exec(p: Partial<ExecutionDto> & Pick<ExecutionDto, "id" | "job_id" | "status">): ExecutionDto {
  return {
    trigger: "manual",
    attempt: 1,
    retry_of: null,
    mode: "incremental",
    created_at: null,
    started_at: null,
    finished_at: null,
    duration_ms: null,
    counts: { processed: 0, created: 0, updated: 0, skipped: 0, failed: 0 },
    excluded: 0,
    batch_in_progress: null,
    failure_kind: null,
    note: null,
    retry: { state: "none", execution_id: null, at: null },
    waiting: null,
    request_retries: 0,
    rate_limit_waits: 0,
    record_id: null,
    ran_by: "office-pc",
    ...p,
  };
}

/** The built-in catalog as the shell lists it (crates/engine/catalog). */
export const CONNECTORS: ConnectorDto[] = [
  {
    key: "stripe",
    name: "Stripe",
    summary: "Payments and billing: customers, products, invoices and charges.",
    setup: "In the Stripe Dashboard, open Developers, then API keys, and create a restricted key with Read access to Customers, Products, Invoices, Charges and Events. Paste it here.",
    base_url: "https://api.stripe.com",
    auth_kinds: ["bearer"],
    secret_label: "Stripe restricted or secret key",
    browser_sign_in: false,
    entities: [
      { name: "charges", label: "Charge", incremental: true, fields: ["customer_id", "amount", "currency", "status", "paid_on"], natural_keys: [] },
      { name: "customers", label: "Customer", incremental: true, fields: ["email", "name", "phone", "customer_since"], natural_keys: ["email"] },
      { name: "invoices", label: "Invoice", incremental: true, fields: ["number", "customer_id", "amount", "currency", "status"], natural_keys: ["number"] },
      { name: "products", label: "Product", incremental: true, fields: ["name", "description", "active"], natural_keys: [] },
    ],
    values: [],
  },
  {
    key: "xero",
    name: "Xero",
    summary: "Accounting: contacts, items, sales invoices and their payments.",
    setup: "You need a Xero app of the kind \"Mobile or desktop app\": enter its client id when asked. Then pick the organisation to sync.",
    base_url: "https://api.xero.com",
    auth_kinds: ["oauth2_refresh_token"],
    secret_label: null,
    browser_sign_in: true,
    entities: [
      { name: "contacts", label: "Contact", incremental: true, fields: ["name", "email", "status"], natural_keys: ["email"] },
      { name: "invoices", label: "Invoice", incremental: true, fields: ["number", "customer_id", "amount"], natural_keys: ["number"] },
    ],
    values: [{ name: "tenant_id", label: "Xero organisation", help: null, has_choices: true }],
  },
  {
    key: "hubspot",
    name: "HubSpot",
    summary: "CRM: contacts, companies and deals.",
    setup: "In HubSpot, open Settings, then Integrations, then Private Apps, and create an app with the read scopes for contacts, companies and deals. Paste its access token here.",
    base_url: "https://api.hubapi.com",
    auth_kinds: ["bearer", "oauth2_refresh_token"],
    secret_label: "Private app access token",
    browser_sign_in: true,
    entities: [
      { name: "companies", label: "Company", incremental: true, fields: ["name", "domain"], natural_keys: ["domain"] },
      { name: "contacts", label: "Contact", incremental: true, fields: ["email", "first_name", "last_name"], natural_keys: ["email"] },
      { name: "deals", label: "Deal", incremental: true, fields: ["name", "amount", "stage"], natural_keys: [] },
    ],
    values: [],
  },
];

const FIRST = ["Michael", "Ana", "Kenji", "Fatima", "Lars", "Priya", "Diego", "Chloe", "Omar", "Grace"];
const LAST = ["Miller", "Souza", "Tanaka", "Haddad", "Berg", "Nair", "Lopez", "Martin", "Aziz", "Kim"];

export function createBackend(opts: BackendOptions = {}) {
  const now = opts.now ?? Date.parse("2026-11-28T15:00:00Z");
  const emit = opts.emit ?? (() => {});
  const empty = opts.scenario === "empty";
  let seq = 1000;
  const nextId = (prefix: string) => `${prefix}${(++seq).toString(16).padStart(4, "0")}a9c2e71b4d`;

  const connections: ConnectionDto[] = empty
    ? []
    : [
        {
          id: "c0sandbox",
          name: "sandbox",
          provider: "sandbox",
          base_url: "http://127.0.0.1:47311",
          auth_kind: "oauth2_client_credentials",
          status: "active",
          status_note: null,
          token_expires_at: iso(now + 42 * MIN),
          // The sandbox also hands client-credentials grants a refresh token, as some providers do.
          refresh_expires_at: iso(now + 30 * DAY),
          last_checked_at: iso(now - 3 * MIN),
          values: {},
        },
        {
          id: "c1acmebooks",
          name: "Acme Books",
          provider: "acme-accounting",
          base_url: "https://api.acmebooks.example/v2",
          auth_kind: "oauth2_refresh_token",
          status: "expired",
          status_note: "The provider rejected the refresh token (invalid_grant) on Nov 28, 13:58.",
          token_expires_at: iso(now - 61 * MIN),
          refresh_expires_at: iso(now - 62 * MIN),
          last_checked_at: iso(now - 62 * MIN),
          values: {},
        },
      ];

  const customersSettings: JobSettings = {
    ...defaultSettings(),
    natural_keys: ["email"],
    mappings: [
      { source: "name", target: "name", transform: null, default: null, required: true, type: "string", optional: false },
      { source: "email", target: "email", transform: "email", default: null, required: true, type: "string", optional: false },
      { source: "phone", target: "phone", transform: "trim", default: null, required: false, type: "string", optional: true },
      { source: "created_at", target: "created_at", transform: "date", default: "1970-01-01", required: false, type: null, optional: false },
      { source: "address.city", target: "city", transform: null, default: null, required: false, type: null, optional: true },
    ],
  };
  const jobs: JobDto[] = empty
    ? []
    : [
        {
          id: "j1customers",
          name: "Sandbox customers",
          connection_id: "c0sandbox",
          entity: "customers",
          direction: "pull",
          mode: "incremental",
          schedule: "every 15m",
          enabled: true,
          next_run_at: iso(now + 11 * MIN),
          watermark: iso(now - 4 * MIN),
          settings: customersSettings,
        },
        {
          id: "j2invoices",
          name: "Acme invoices",
          connection_id: "c1acmebooks",
          entity: "invoices",
          direction: "pull",
          mode: "incremental",
          schedule: "every 1h",
          enabled: true,
          next_run_at: iso(now + 38 * MIN),
          watermark: null,
          settings: {
            ...defaultSettings(),
            natural_keys: ["number"],
            mappings: [
              { source: "number", target: "number", transform: null, default: null, required: true, type: "string", optional: false },
              { source: "customer", target: "customer_id", transform: "reference:customers", default: null, required: true, type: null, optional: false },
              { source: "amount_cents", target: "amount", transform: "cents_to_decimal", default: null, required: true, type: "integer", optional: false },
            ],
          },
        },
        {
          id: "j3products",
          name: "Sandbox products",
          connection_id: "c0sandbox",
          entity: "products",
          direction: "pull",
          mode: "full",
          schedule: "manual",
          enabled: true,
          next_run_at: null,
          watermark: null,
          settings: { ...defaultSettings(), natural_keys: ["sku"], mappings: [{ source: "sku", target: "sku", transform: null, default: null, required: true, type: "string", optional: false }] },
        },
      ];

  // Executions, newest first per job.
  const executions: ExecutionDto[] = [];
  const details: Record<string, Pick<ExecutionDetailDto, "error_counts" | "diagnosis"> & Partial<Pick<ExecutionDetailDto, "schema_change">>> = {};
  const recordErrors: RecordErrorDto[] = [];
  let errId = 1;

  const addErrors = (executionId: string, kinds: [string, number][], at: number) => {
    let i = 0;
    for (const [kind, n] of kinds) {
      for (let k = 0; k < n; k++, i++) {
        const rec = `cus_${String(17 + i * 7).padStart(8, "0")}`;
        const message =
          kind === "ValidationError"
            ? i % 3 === 0
              ? "Required field 'email' is null"
              : "Field 'email' is not a valid email address: 'michael.miller@'"
            : kind === "TransformError"
              ? "Field 'created_at': '31/02/2026' is not a date (expected YYYY-MM-DD)"
              : kind === "DuplicateConflict"
                ? `A customer with email 'ana.souza${i}@example.com' already exists`
                : kind === "SchemaMismatch"
                  ? "Field 'phone' should be string but is number"
                  : "Reference 'customer' → cus_99999999 not found";
        recordErrors.push({
          id: errId++,
          execution_id: executionId,
          record_id: rec,
          entity: "customers",
          kind,
          message,
          field: kind === "DuplicateConflict" ? "email" : kind === "TransformError" ? "created_at" : kind === "SchemaMismatch" ? "phone" : "email",
          at: iso(at + i * 900),
        });
      }
    }
  };

  if (!empty) {
    const e1 = "e7c1a4f09b2d4c1e";
    executions.push(
      exec({
        id: e1,
        job_id: "j1customers",
        status: "completed_with_errors",
        trigger: "scheduled",
        created_at: iso(now - 5 * MIN),
        started_at: iso(now - 5 * MIN),
        finished_at: iso(now - 5 * MIN + 8_412),
        duration_ms: 8412,
        counts: { processed: 250, created: 180, updated: 42, skipped: 6, failed: 22 },
        excluded: 3,
        request_retries: 2,
      }),
    );
    details[e1] = {
      error_counts: { ValidationError: 14, TransformError: 5, SchemaMismatch: 3, DuplicateConflict: 6 },
      diagnosis: [
        {
          pattern: "validation",
          title: "Specific records fail validation",
          likely_cause: "22 records have missing or invalid fields at the source (most often 'email').",
          resolution: "Fix the source data, or relax the mapping (a default, or not required), then retry the failed records.",
          actions: ["open_failed_records", "edit_mappings"],
        },
        {
          pattern: "provider_instability",
          title: "Intermittent 5xx errors",
          likely_cause: "Provider instability: some requests failed and succeeded on retry.",
          resolution: "Nothing to do: the automatic retry policy handles this.",
          actions: ["wait_for_retry"],
        },
      ],
    };
    addErrors(e1, [["ValidationError", 14], ["TransformError", 5], ["SchemaMismatch", 3], ["DuplicateConflict", 6]], now - 5 * MIN);

    // A retry chain: failed (breaker) → retry failed (provider) → retry completed.
    const c1 = "a1b2c3d4e5f60718";
    const c2 = "b2c3d4e5f6071829";
    const c3 = "c3d4e5f60718293a";
    executions.push(
      exec({
        id: c3,
        job_id: "j1customers",
        status: "completed",
        trigger: "retry",
        attempt: 3,
        retry_of: c2,
        created_at: iso(now - 3 * HOUR),
        started_at: iso(now - 3 * HOUR),
        finished_at: iso(now - 3 * HOUR + 5200),
        duration_ms: 5200,
        counts: { processed: 31, created: 4, updated: 27, skipped: 0, failed: 0 },
      }),
      exec({
        id: c2,
        job_id: "j1customers",
        status: "failed",
        trigger: "retry",
        attempt: 2,
        retry_of: c1,
        failure_kind: "provider_unavailable",
        note: "provider unavailable after 4 attempts: HTTP 503 from /v1/customers",
        created_at: iso(now - 3 * HOUR - 30 * MIN),
        started_at: iso(now - 3 * HOUR - 30 * MIN),
        finished_at: iso(now - 3 * HOUR - 30 * MIN + 21_300),
        duration_ms: 21300,
        request_retries: 3,
        retry: { state: "retried", execution_id: c3, at: null },
      }),
      exec({
        id: c1,
        job_id: "j1customers",
        status: "failed",
        trigger: "scheduled",
        attempt: 1,
        failure_kind: "circuit_breaker",
        note: "Circuit breaker tripped: 12 of 20 processed records failed (more than 50% of at least 10).",
        retry: { state: "retried", execution_id: c2, at: null },
        created_at: iso(now - 3 * HOUR - 35 * MIN),
        started_at: iso(now - 3 * HOUR - 35 * MIN),
        finished_at: iso(now - 3 * HOUR - 35 * MIN + 2400),
        duration_ms: 2400,
        counts: { processed: 20, created: 6, updated: 2, skipped: 0, failed: 12 },
        batch_in_progress: "page 1 (after cus_00000000)",
      }),
    );
    details[c1] = {
      error_counts: { SchemaMismatch: 12 },
      diagnosis: [
        {
          pattern: "schema_change",
          title: "All records fail with a schema error",
          likely_cause: "Provider API changed: records no longer have the fields or types the mappings expect.",
          resolution: "Update the field mappings to match the new schema.",
          actions: ["edit_mappings"],
        },
      ],
      schema_change: {
        entity: "customers",
        missing: ["email"],
        added: ["email_address"],
        removed: ["email"],
        changed_at: iso(now - 3 * HOUR - 35 * MIN + 2400),
        observed_at: iso(now - 3 * HOUR - 35 * MIN + 2400),
      },
    };
    addErrors(c1, [["SchemaMismatch", 12]], now - 3 * HOUR - 35 * MIN);
    details[c2] = {
      error_counts: {},
      diagnosis: [
        {
          pattern: "provider_instability",
          title: "The provider answers 5xx or does not respond",
          likely_cause: "Provider instability: the provider failed every retry of a request (1 s, 5 s, 15 s).",
          resolution: "Wait: the automatic retry policy runs the job again.",
          actions: ["wait_for_retry", "retry_now"],
        },
      ],
    };
    for (let i = 0; i < 6; i++) {
      executions.push(
        exec({
          id: `d${i}e5f60718293a4b`,
          job_id: "j1customers",
          status: "completed",
          trigger: "scheduled",
          created_at: iso(now - (4 + i) * HOUR),
          started_at: iso(now - (4 + i) * HOUR),
          finished_at: iso(now - (4 + i) * HOUR + 3100 + i * 211),
          duration_ms: 3100 + i * 211,
          counts: { processed: 40 - i * 3, created: 5, updated: 35 - i * 3, skipped: 0, failed: 0 },
        }),
      );
    }
    // The invoices job: expired connection.
    const a1 = "f0e1d2c3b4a59687";
    executions.push(
      exec({
        id: a1,
        job_id: "j2invoices",
        status: "failed",
        trigger: "scheduled",
        failure_kind: "auth",
        note: "authentication failed: refresh token rejected (invalid_grant)",
        retry: { state: "waiting_for_reauth", execution_id: "f0e1d2c3b4a59688", at: null },
        created_at: iso(now - 62 * MIN),
        started_at: iso(now - 62 * MIN),
        finished_at: iso(now - 62 * MIN + 1900),
        duration_ms: 1900,
      }),
    );
    details[a1] = {
      error_counts: {},
      diagnosis: [
        {
          pattern: "auth",
          title: "All requests fail with 401",
          likely_cause: "Expired or invalid credentials: the provider rejected the token and a refresh did not help.",
          resolution: "Re-authenticate the connection, then run the job again.",
          actions: ["reauthenticate"],
        },
      ],
    };
  }

  const deadLetters: (DeadLetterDto & { job_id: string })[] = empty
    ? []
    : Array.from({ length: 14 }, (_, i) => {
        const f = FIRST[i % FIRST.length];
        const l = LAST[(i * 3) % LAST.length];
        const id = `cus_${String(42 + i * 13).padStart(8, "0")}`;
        const bad = i % 4;
        return {
          job_id: "j1customers",
          record_id: id,
          entity: "customers",
          state: "dead_letter",
          first_failed_at: iso(now - (3 + i) * DAY - i * 37 * MIN),
          last_failed_at: iso(now - 5 * MIN - i * 11 * MIN),
          attempts: 3 + (i % 3),
          error:
            bad === 0
              ? "ValidationError - Required field 'email' is null"
              : bad === 1
                ? "TransformError - Field 'created_at': '31/02/2026' is not a date"
                : bad === 2
                  ? "SchemaMismatch - Field 'phone' should be string but is number"
                  : "ValidationError - Field 'email' is not a valid email address",
          payload: {
            id,
            object: "customer",
            email: bad === 0 ? null : `${f.toLowerCase()}.${l.toLowerCase()}${i}@example.com`,
            name: `${f} ${l}`,
            phone: bad === 2 ? 5551234 : `+1-555-${String(300 + i).padStart(3, "0")}-${String(1000 + i * 17)}`,
            created_at: bad === 1 ? "31/02/2026" : "2025-01-23",
            address: { city: "Boise", country: "US" },
          },
        };
      });

  // Failed once or twice: not dead letters yet; the next run tries them again.
  const failingRecords: (DeadLetterDto & { job_id: string })[] = empty
    ? []
    : Array.from({ length: 8 }, (_, i) => {
        const id = `cus_${String(900 + i * 7).padStart(8, "0")}`;
        return {
          job_id: "j1customers",
          record_id: id,
          entity: "customers",
          state: "failing",
          first_failed_at: iso(now - 6 * MIN - i * 40 * MIN),
          last_failed_at: iso(now - 6 * MIN),
          attempts: 1 + (i % 2),
          error: i % 2 ? "TransformError - Field 'created_at': '2026-13-01' is not a date" : "ValidationError - Required field 'email' is null",
          payload: { id, object: "customer", email: i % 2 ? `user${i}@example.com` : null, name: `Customer ${i}` },
        };
      });

  const alerts: AlertDto[] = empty
    ? []
    : [
        {
          id: 4,
          kind: "connection_expired",
          title: "Acme Books needs re-authentication",
          body: "The refresh token was rejected. Jobs on this connection fail until you sign in again.",
          job_id: "j2invoices",
          execution_id: "f0e1d2c3b4a59687",
          connection_id: "c1acmebooks",
          created_at: iso(now - 62 * MIN),
          read: false,
          occurrences: 1,
          last_seen_at: iso(now - 62 * MIN),
          resolved_at: null,
          resolution: null,
        },
        {
          id: 3,
          kind: "completed_with_errors",
          title: "Sandbox customers completed with 22 failed records",
          body: "250 processed: 180 created, 42 updated, 6 skipped, 22 failed.",
          job_id: "j1customers",
          execution_id: "e7c1a4f09b2d4c1e",
          connection_id: null,
          created_at: iso(now - 5 * MIN),
          read: false,
          occurrences: 1,
          last_seen_at: iso(now - 5 * MIN),
          resolved_at: null,
          resolution: null,
        },
        {
          id: 2,
          kind: "circuit_breaker",
          title: "Circuit breaker tripped on 'Sandbox customers'",
          body: "12 of 20 processed records failed (more than 50%). The run was halted.",
          job_id: "j1customers",
          execution_id: "a1b2c3d4e5f60718",
          connection_id: null,
          created_at: iso(now - 3 * HOUR - 35 * MIN),
          read: true,
          occurrences: 1,
          last_seen_at: iso(now - 3 * HOUR - 35 * MIN),
          resolved_at: null,
          resolution: null,
        },
      ];

  const audit: AuditDto[] = empty
    ? []
    : [
        { id: 2, at: iso(now - 2 * DAY), actor: "admin", action: "record_dismissed", subject: "j1customers/cus_00000003", note: "Test account, deleted at the source" },
        { id: 1, at: iso(now - 3 * DAY), actor: "admin", action: "connection_created", subject: "sandbox", note: null },
      ];

  let sandbox: SandboxDto = {
    running: !empty,
    base_url: empty ? null : "http://127.0.0.1:47311",
    connection_id: empty ? null : "c0sandbox",
    data_requests: empty ? 0 : 1284,
    faults: {
      error_rate: 0,
      error_burst: 0,
      rate_limit_burst: 0,
      latency_ms: 0,
      bad_record_rate: empty ? 0 : 0.05,
      schema_drift: false,
      credentials_revoked: false,
    },
  };

  function connectFromCatalog(input: ConnectDto, how: "paste" | "browser"): ConnectionDto {
    const k = CONNECTORS.find((x) => x.key === input.connector) ?? fail("invalid", `invalid connector: there is no built-in connector '${input.connector}'`, { field: "connector" });
    if (!input.name.trim()) fail("invalid", "invalid name: must not be empty", { field: "name" });
    if (connections.some((c) => c.name === input.name.trim())) fail("conflict", `a connection named '${input.name}' already exists`);
    if (how === "paste" && input.secret === "wrong")
      fail("auth", "authentication failed: the provider refused these credentials (provider rejected /v1/charges with HTTP 401: Invalid API Key provided); nothing was saved");
    if (how === "browser" && input.client_id === "deny") fail("sign_in_failed", "sign-in failed: the provider refused: access_denied (the user denied access)");
    const c: ConnectionDto = {
      id: nextId("c"),
      name: input.name.trim(),
      provider: k.name,
      base_url: input.base_url ?? k.base_url ?? "",
      auth_kind: input.auth_kind ?? k.auth_kinds[0],
      status: "active",
      status_note: null,
      token_expires_at: how === "browser" ? iso(now + HOUR) : null,
      refresh_expires_at: null,
      last_checked_at: iso(now),
      values: { ...(input.values ?? {}) },
    };
    connections.push(c);
    audit.unshift({ id: audit.length + 1, at: iso(now), actor: "admin", action: "connection.create", subject: `connection ${c.name}`, note: `${k.name} at ${c.base_url}` });
    return c;
  }

  function defaultJob(c: ConnectionDto, entity: string, schedule: string): JobDto {
    let name = `${c.name} ${entity}`;
    for (let n = 2; jobs.some((j) => j.name === name); n++) name = `${c.name} ${entity} ${n}`;
    const j: JobDto = {
      id: nextId("j"),
      name,
      connection_id: c.id,
      entity,
      direction: "pull",
      mode: "incremental",
      schedule,
      enabled: true,
      next_run_at: schedule === "manual" ? null : iso(now + HOUR),
      watermark: null,
      settings: defaultSettings(),
    };
    jobs.push(j);
    return j;
  }

  const findJob = (id: unknown) => jobs.find((j) => j.id === id) ?? fail("not_found", `job not found: ${String(id)}`);
  const findExec = (id: unknown) => executions.find((e) => e.id === id) ?? fail("not_found", `execution not found: ${String(id)}`);

  function summary(j: JobDto): JobSummaryDto {
    // As the engine decides it: the newest run that started, its retry, Failed Records.
    const last = executions.find((e) => e.job_id === j.id && e.status !== "queued" && e.trigger !== "record_retry") ?? null;
    const dl = deadLetters.filter((d) => d.job_id === j.id).length;
    const failed = last?.status === "failed" || last?.status === "timed_out";
    const health: JobHealthDto = !last
      ? "never_run"
      : last.status === "running"
        ? "running"
        : failed
          ? last.retry.state === "pending" || last.retry.state === "running"
            ? "retrying"
            : last.retry.state === "waiting_for_reauth"
              ? "needs_reauth"
              : "failing"
          : last.status === "completed" && dl === 0
            ? "ok"
            : "needs_attention";
    return { job: j, last_execution: last, health, dead_letters: dl };
  }

  function validateJob(input: NewJobDto) {
    if (!input.name?.trim()) fail("invalid", "invalid name: must not be empty");
    if (!connections.some((c) => c.id === input.connection || c.name === input.connection))
      fail("not_found", `connection not found: ${input.connection}`);
    const s = input.settings;
    if (s) {
      if (s.batch_size < 1 || s.batch_size > 1000) fail("invalid", "invalid batch_size: must be between 1 and 1000");
      if (!s.mappings.length) fail("invalid", "invalid mappings: a job needs at least one field mapping");
    }
    if (jobs.some((j) => j.name === input.name.trim() && j.id !== (input as { id?: string }).id))
      fail("conflict", `a job named '${input.name.trim()}' already exists`);
  }

  function startRun(job: JobDto, trigger = "manual"): ExecutionDto {
    const conn = connections.find((c) => c.id === job.connection_id);
    const id = nextId("e");
    const e = exec({ id, job_id: job.id, status: "running", trigger, created_at: iso(Date.now()), started_at: iso(Date.now()), mode: job.mode, batch_in_progress: "page 1" });
    executions.unshift(e);
    details[id] = { error_counts: {}, diagnosis: [] };
    emit("syncdesk://event", { type: "execution_started", execution_id: id, job_id: job.id, job_name: job.name });
    // Progress in three steps, driven by the caller's clock (browser: real timers).
    const total = 250;
    let step = 0;
    const tick = () => {
      step++;
      const done = Math.min(total, step * 100);
      const failed = conn?.status === "expired" ? 0 : Math.round(done * 0.04);
      e.counts = { processed: done, created: done - failed - 10 > 0 ? done - failed - 10 : 0, updated: Math.min(10, done), skipped: 0, failed };
      e.counts.processed = e.counts.created + e.counts.updated + e.counts.skipped + e.counts.failed;
      e.batch_in_progress = `page ${step + 1}`;
      if (conn?.status === "expired") {
        Object.assign(e, { status: "failed", failure_kind: "auth", note: "authentication failed: refresh token rejected", finished_at: iso(Date.now()), duration_ms: 900, batch_in_progress: null, counts: { processed: 0, created: 0, updated: 0, skipped: 0, failed: 0 } });
        details[id] = details["f0e1d2c3b4a59687"] ?? details[id];
        emit("syncdesk://event", { type: "execution_finished", execution_id: id, job_id: job.id, job_name: job.name, status: e.status, counts: e.counts, note: e.note });
        return;
      }
      if (done >= total) {
        Object.assign(e, { status: failed ? "completed_with_errors" : "completed", finished_at: iso(Date.now()), duration_ms: 2400, batch_in_progress: null });
        details[id] = {
          error_counts: failed ? { ValidationError: failed } : {},
          diagnosis: failed
            ? [
                {
                  pattern: "validation",
                  title: "Specific records fail validation",
                  likely_cause: `${failed} records have missing or invalid fields at the source (most often 'email').`,
                  resolution: "Fix the source data, or relax the mapping (a default, or not required), then retry the failed records.",
                  actions: ["open_failed_records", "edit_mappings"],
                },
              ]
            : [],
        };
        addErrors(id, [["ValidationError", failed]], Date.now());
        emit("syncdesk://event", { type: "execution_finished", execution_id: id, job_id: job.id, job_name: job.name, status: e.status, counts: e.counts, note: null });
        return;
      }
      emit("syncdesk://event", { type: "execution_progress", execution_id: id, job_id: job.id, counts: e.counts, batch: e.batch_in_progress });
      setTimeout(tick, 1500);
    };
    setTimeout(tick, 1500);
    return { ...e };
  }

  // "Pause all syncs", as the engine keeps it: since when and by whom.
  let paused: { since: string; by: string } | null = null;
  let settings: SettingsDto = {
    start_at_login: false,
    start_at_login_message: null,
    start_at_login_offered: false,
    notify_circuit_breaker: true,
    notify_retries_exhausted: true,
    notify_connection_expired: true,
    notify_dead_letters: true,
    notify_completed_with_errors: true,
    theme: "system",
    data_dir: "/home/admin/.local/share/syncdesk",
    logs_dir: "/home/admin/.local/share/syncdesk/logs",
    version: "0.1.0",
    problem: null,
    shared_database: null,
    database_in_use: "this computer",
    database_restart_needed: false,
  };

  const handlers: Record<string, (a: Record<string, unknown>) => unknown> = {
    syncs_pause: () => {
      if (!paused) {
        paused = { since: iso(now), by: "admin" };
        audit.unshift({ id: audit.length + 1, at: iso(now), actor: "admin", action: "syncs.pause", subject: "all syncs", note: null });
        emit("syncdesk://event", { type: "syncs_paused", paused: true });
      }
      return handlers.health({});
    },
    syncs_resume: () => {
      if (paused) {
        paused = null;
        audit.unshift({ id: audit.length + 1, at: iso(now), actor: "admin", action: "syncs.resume", subject: "all syncs", note: null });
        emit("syncdesk://event", { type: "syncs_paused", paused: false });
      }
      return handlers.health({});
    },
    syncs_run_due: () => {
      if (paused) fail("conflict", "all syncs are paused; resume them to run due jobs");
      return jobs.filter((j) => j.enabled && j.schedule !== "manual").length;
    },
    app_quit: () => null,
    settings_get: () => ({ ...settings }),
    settings_update: (a) => {
      const u = a.input as Partial<SettingsDto>;
      if (u.theme !== undefined && !["system", "light", "dark"].includes(u.theme)) fail("invalid", `invalid theme: '${u.theme}' is not a theme (system, light or dark)`, { field: "theme" });
      settings = { ...settings, ...Object.fromEntries(Object.entries(u).filter(([, v]) => v !== undefined)) };
      if (u.start_at_login !== undefined) settings.start_at_login_offered = true;
      return { ...settings };
    },
    logs_open: () => null,
    shared_database_use: (a) => {
      const input = a.input as SharedDatabaseDto;
      if (!/^postgres(ql)?:\/\/[^/]+/.test(input.url.trim()))
        fail("invalid", "invalid url: a shared database's address looks like postgres://user@server:5432/syncdesk", { field: "url" });
      settings = { ...settings, shared_database: input.url.trim().replace(/:[^:@/]*@/, "@") };
      settings.database_restart_needed = settings.shared_database !== null;
      return { ...settings };
    },
    shared_database_stop: () => {
      settings = { ...settings, shared_database: null, database_restart_needed: false };
      return { ...settings };
    },
    app_restart: () => null,
    workers_list: (): WorkerDto[] => [
      { name: "office-pc", host: "office-pc", role: "app", started_at: iso(now - HOUR), last_seen_at: iso(now), alive: true, this_one: true },
      { name: "night-box", host: "server-1", role: "worker", started_at: iso(now - 30 * HOUR), last_seen_at: iso(now - 2 * HOUR), alive: false, this_one: false },
    ],
    update_check: () => ({ current_version: "0.1.0", version: "0.2.0", notes: "Faster Failed Records.", date: null, verified: false }),
    update_download: () => ({ current_version: "0.1.0", version: "0.2.0", notes: "Faster Failed Records.", date: null, verified: true }),
    update_install: () => null,
    health: (): HealthDto => ({
      jobs: jobs.length,
      failing_jobs: jobs.map(summary).filter((s) => ["failing", "retrying", "needs_reauth"].includes(s.health)).length,
      unread_alerts: alerts.filter((a) => !a.read).length,
      expired_connections: connections.filter((c) => c.status !== "active").length,
      dead_letters: deadLetters.length,
      notifications_available: true,
      notifications_message: null,
      keychain_available: true,
      keychain_message: null,
      worker_running: true,
      paused_since: paused?.since ?? null,
      paused_by: paused?.by ?? null,
    }),
    connections_list: () => connections,
    connection_get: (a) => connections.find((c) => c.id === a.id) ?? fail("not_found", `connection not found: ${String(a.id)}`),
    connection_create: (a) => {
      const input = a.input as NewConnectionDto;
      if (connections.some((c) => c.name === input.name)) fail("conflict", `a connection named '${input.name}' already exists`);
      const c: ConnectionDto = {
        id: nextId("c"),
        name: input.name,
        provider: input.spec === "sandbox" ? "sandbox" : "custom",
        base_url: input.base_url ?? "https://api.example.com",
        auth_kind: input.api_key ? "api_key" : "oauth2_client_credentials",
        status: "active",
        status_note: null,
        token_expires_at: input.api_key ? null : iso(now + HOUR),
        refresh_expires_at: null,
        last_checked_at: iso(now),
        values: {},
      };
      connections.push(c);
      audit.unshift({ id: audit.length + 1, at: iso(now), actor: "admin", action: "connection_created", subject: c.name, note: null });
      return c;
    },
    // The browser round trip cannot happen here: the mock signs in at once, or refuses
    // ("deny" as client id plays a user who clicks Deny at the provider).
    connection_sign_in: (a) => {
      const input = a.input as NewConnectionDto;
      if (!input.client_id) fail("invalid", "invalid client_id: browser sign-in needs the app's client id", { field: "client_id" });
      if (input.client_id === "deny") fail("sign_in_failed", "sign-in failed: the provider refused: access_denied (the user denied access)");
      if (connections.some((c) => c.name === input.name)) fail("conflict", `a connection named '${input.name}' already exists`);
      const c: ConnectionDto = {
        id: nextId("c"),
        name: input.name.trim(),
        provider: "Sandbox",
        base_url: input.base_url ?? "http://127.0.0.1:8787",
        auth_kind: "oauth2_refresh_token",
        status: "active",
        status_note: null,
        token_expires_at: iso(now + HOUR),
        refresh_expires_at: iso(now + 30 * DAY),
        last_checked_at: iso(now),
        values: {},
      };
      connections.push(c);
      audit.unshift({ id: audit.length + 1, at: iso(now), actor: "admin", action: "connection.sign_in", subject: c.name, note: "browser sign-in" });
      return c;
    },
    connection_sign_in_again: (a) => {
      const c = connections.find((x) => x.id === a.id) ?? fail("not_found", `connection not found: ${String(a.id)}`);
      Object.assign(c, { status: "active", status_note: null, token_expires_at: iso(now + HOUR), refresh_expires_at: iso(now + 30 * DAY), last_checked_at: iso(now) });
      audit.unshift({ id: audit.length + 1, at: iso(now), actor: "admin", action: "connection.reauthenticate", subject: c.name, note: "browser sign-in" });
      return c;
    },
    sign_in_cancel: () => null,
    connection_reauth: (a) => {
      const c = connections.find((x) => x.id === a.id) ?? fail("not_found", `connection not found: ${String(a.id)}`);
      const input = a.input as Record<string, unknown>;
      const given = ["client_secret", "api_key", "refresh_token"].filter((k) => typeof input[k] === "string" && input[k]);
      if (given.length !== 1) fail("invalid", "invalid input: give exactly one credential");
      if (input[given[0]] === "wrong") fail("auth", "authentication failed: the provider rejected the new credentials");
      Object.assign(c, { status: "active", status_note: null, token_expires_at: iso(now + HOUR), refresh_expires_at: iso(now + 30 * DAY), last_checked_at: iso(now) });
      audit.unshift({ id: audit.length + 1, at: iso(now), actor: "admin", action: "connection_reauthenticated", subject: c.name, note: null });
      return c;
    },
    connectors_list: () => CONNECTORS,
    // A pasted key is checked with the provider before anything is stored: "wrong" plays a
    // key the provider refuses.
    connection_connect: (a) => {
      const input = a.input as ConnectDto;
      const c = connectFromCatalog(input, "paste");
      const made = { connection: c, jobs: (input.entities ?? []).map((e) => defaultJob(c, e, input.schedule ?? "every 1h")) };
      return made;
    },
    connection_connect_sign_in: (a) => connectFromCatalog(a.input as ConnectDto, "browser"),
    connection_value_choices: (a) => {
      connections.find((x) => x.id === a.id) ?? fail("not_found", `connection not found: ${String(a.id)}`);
      return [
        { value: "t-1", label: "Demo Company (Global)" },
        { value: "t-2", label: "Harbour Bikes Ltd" },
      ];
    },
    connection_set_value: (a) => {
      const c = connections.find((x) => x.id === a.id) ?? fail("not_found", `connection not found: ${String(a.id)}`);
      c.values = { ...c.values, [String(a.name)]: String(a.value) };
      return c;
    },
    jobs_create_defaults: (a) => {
      const c = connections.find((x) => x.id === a.connection) ?? fail("not_found", `connection not found: ${String(a.connection)}`);
      const entities = a.entities as string[];
      if (!entities.length) fail("invalid", "invalid entities: choose at least one", { field: "entities" });
      return entities.map((e) => defaultJob(c, e, (a.schedule as string | null) ?? "every 1h"));
    },
    jobs_list: () => jobs.map(summary),
    job_get: (a) => findJob(a.id),
    job_create: (a) => {
      const input = a.input as NewJobDto;
      validateJob(input);
      const conn = connections.find((c) => c.id === input.connection || c.name === input.connection)!;
      const j: JobDto = {
        id: nextId("j"),
        name: input.name.trim(),
        connection_id: conn.id,
        entity: input.entity,
        direction: input.direction ?? "pull",
        mode: input.mode ?? "incremental",
        schedule: input.schedule ?? "manual",
        enabled: input.enabled ?? true,
        next_run_at: null,
        watermark: null,
        settings: input.settings ?? defaultSettings(),
      };
      jobs.push(j);
      return j;
    },
    job_update: (a) => {
      const j = findJob(a.id);
      const input = { ...(a.input as NewJobDto), id: j.id } as NewJobDto;
      validateJob(input);
      const conn = connections.find((c) => c.id === input.connection || c.name === input.connection)!;
      Object.assign(j, {
        name: input.name.trim(),
        connection_id: conn.id,
        entity: input.entity,
        direction: input.direction ?? j.direction,
        mode: input.mode ?? j.mode,
        schedule: input.schedule ?? j.schedule,
        enabled: input.enabled ?? j.enabled,
        settings: input.settings ?? j.settings,
      });
      audit.unshift({ id: audit.length + 1, at: iso(now), actor: "admin", action: "job_updated", subject: j.name, note: null });
      return j;
    },
    job_run: (a) => {
      const j = findJob(a.id);
      if (executions.some((e) => e.job_id === j.id && e.status === "running")) fail("conflict", `'${j.name}' is already running`);
      return startRun(j);
    },
    executions_list: (a) => page(executions.filter((e) => e.job_id === a.jobId), a.cursor, 10),
    execution_get: (a): ExecutionDetailDto => {
      const e = findExec(a.id);
      const j = findJob(e.job_id);
      const chain: string[] = [];
      let cur: ExecutionDto | undefined = e;
      while (cur) {
        chain.unshift(cur.id);
        cur = cur.retry_of ? executions.find((x) => x.id === cur!.retry_of) : undefined;
      }
      // …and the retries that followed it.
      let after = executions.find((x) => x.retry_of === e.id);
      while (after) {
        chain.push(after.id);
        const prev: string = after.id;
        after = executions.find((x) => x.retry_of === prev);
      }
      const d = details[e.id] ?? { error_counts: {}, diagnosis: [] };
      return { ...e, job_name: j.name, entity: j.entity, chain, schema_change: null, ...d };
    },
    execution_cancel: (a) => {
      const e = findExec(a.id);
      if (e.status !== "running") fail("conflict", "the execution is not running");
      Object.assign(e, { status: "cancelled", failure_kind: "cancelled", finished_at: iso(Date.now()) });
      return e;
    },
    record_errors: (a) =>
      page(
        recordErrors.filter((r) => r.execution_id === a.executionId && (!a.kind || r.kind === a.kind)),
        a.cursor,
        10,
      ),
    failed_records: (a) => {
      findJob(a.jobId);
      return page(
        deadLetters.filter((d) => d.job_id === a.jobId).map(({ job_id: _j, ...d }) => d),
        a.cursor,
        50,
      );
    },
    failing_records: (a) => {
      findJob(a.jobId);
      return page(
        failingRecords.filter((d) => d.job_id === a.jobId).map(({ job_id: _j, ...d }) => d),
        a.cursor,
        50,
      );
    },
    record_history: (a): RecordErrorDto[] => {
      const d = deadLetters.find((x) => x.record_id === a.recordId);
      if (!d) return [];
      return Array.from({ length: d.attempts }, (_, i) => ({
        id: 9000 + i,
        execution_id: ["e7c1a4f09b2d4c1e", "c3d4e5f60718293a", "d0e5f60718293a4b", "d1e5f60718293a4b", "d2e5f60718293a4b"][i % 5],
        record_id: d.record_id,
        entity: d.entity,
        kind: (d.error ?? "ValidationError - x").split(" - ")[0],
        message: (d.error ?? "x - Required field 'email' is null").split(" - ").slice(1).join(" - "),
        field: "email",
        at: iso(Date.parse(d.last_failed_at ?? iso(now)) - i * 15 * MIN),
      }));
    },
    failed_records_retry: (a): RecordRetryDto[] => {
      const ids = a.recordIds as string[];
      if (!ids?.length) fail("invalid", "invalid recordIds: give at least one record");
      return ids.map((rid) => {
        const d = deadLetters.find((x) => x.record_id === rid && x.job_id === a.jobId) ?? fail("not_found", `record not found: ${rid}`);
        // Records whose payload has an email are "fixed at the source" and go through.
        const ok = d.payload !== null && typeof d.payload === "object" && !Array.isArray(d.payload) && d.payload.email !== null && !String(d.error).startsWith("SchemaMismatch");
        const execution_id = nextId("e");
        executions.unshift(
          exec({ id: execution_id, job_id: d.job_id, status: ok ? "completed" : "completed_with_errors", trigger: "record_retry", record_id: rid, created_at: iso(now), started_at: iso(now), finished_at: iso(now + 400), duration_ms: 400, counts: { processed: 1, created: 0, updated: ok ? 1 : 0, skipped: 0, failed: ok ? 0 : 1 } }),
        );
        if (ok) deadLetters.splice(deadLetters.indexOf(d), 1);
        else {
          d.attempts += 1;
          d.last_failed_at = iso(now);
        }
        audit.unshift({ id: audit.length + 1, at: iso(now), actor: "admin", action: "record_retried", subject: `${d.job_id}/${rid}`, note: null });
        return { record_id: rid, execution_id, succeeded: ok, state: ok ? "ok" : "dead_letter", error: ok ? null : d.error };
      });
    },
    failed_records_dismiss: (a) => {
      const note = String(a.note ?? "").trim();
      if (!note) fail("invalid", "invalid note: a note is required to dismiss");
      const ids = a.recordIds as string[];
      let n = 0;
      for (const rid of ids) {
        const i = deadLetters.findIndex((x) => x.record_id === rid && x.job_id === a.jobId);
        if (i >= 0) {
          deadLetters.splice(i, 1);
          n++;
          audit.unshift({ id: audit.length + 1, at: iso(now), actor: "admin", action: "record_dismissed", subject: `${a.jobId}/${rid}`, note });
        }
      }
      return n;
    },
    alerts_list: (a) => page(alerts.filter((x) => !a.unreadOnly || (!x.read && !x.resolved_at)), a.cursor, 20),
    connection_test: (a) => {
      const c = connections.find((x) => x.id === a.id) ?? fail("not_found", `connection not found: ${String(a.id)}`);
      if (c.status === "expired") fail("auth", "authentication failed: the provider refused these credentials");
      c.last_checked_at = iso(now);
      return c;
    },
    alerts_mark_all_read: () => {
      const unread = alerts.filter((x) => !x.read);
      for (const x of unread) x.read = true;
      return unread.length;
    },
    alert_mark_read: (a) => {
      const al = alerts.find((x) => x.id === a.id) ?? fail("not_found", `alert not found: ${String(a.id)}`);
      al.read = true;
      return null;
    },
    audit_list: (a) => page(audit, a.cursor, 25),
    sandbox_status: () => sandbox,
    sandbox_start: () => {
      if (!sandbox.running) {
        let conn = connections.find((c) => c.name === "sandbox");
        if (!conn) {
          conn = {
            id: "c0sandbox",
            name: "sandbox",
            provider: "sandbox",
            base_url: "http://127.0.0.1:47311",
            auth_kind: "oauth2_client_credentials",
            status: "active",
            status_note: null,
            token_expires_at: iso(now + HOUR),
            refresh_expires_at: null,
            last_checked_at: iso(now),
            values: {},
          };
          connections.push(conn);
        }
        sandbox = { ...sandbox, running: true, base_url: "http://127.0.0.1:47311", connection_id: conn.id };
      }
      return sandbox;
    },
    sandbox_set_faults: (a) => {
      sandbox = { ...sandbox, faults: a.faults as SandboxFaultsDto };
      if (sandbox.faults.credentials_revoked) {
        const c = connections.find((x) => x.id === sandbox.connection_id);
        if (c) Object.assign(c, { status: "expired", status_note: "The token endpoint refused the client (credentials revoked in the sandbox)." });
      }
      return sandbox;
    },
  };

  return {
    handle(cmd: string, args?: unknown): unknown {
      const h = handlers[cmd];
      if (!h) throw `command ${cmd} not found`;
      return h((args ?? {}) as Record<string, unknown>);
    },
    state: { connections, jobs, executions, deadLetters, alerts, audit, recordErrors },
  };
}
