// The one typed wrapper around the IPC contract (docs/desktop.md). Command names and argument
// names are the contract's; every type comes from the generated bindings.
import { invoke } from "@tauri-apps/api/core";
import type { AlertDto } from "../bindings/AlertDto";
import type { AuditDto } from "../bindings/AuditDto";
import type { ConnectDto } from "../bindings/ConnectDto";
import type { ConnectionDto } from "../bindings/ConnectionDto";
import type { ConnectorDto } from "../bindings/ConnectorDto";
import type { DeadLetterDto } from "../bindings/DeadLetterDto";
import type { ExecutionDetailDto } from "../bindings/ExecutionDetailDto";
import type { ExecutionDto } from "../bindings/ExecutionDto";
import type { JobDto } from "../bindings/JobDto";
import type { PageDto } from "../bindings/PageDto";
import type { RecordErrorDto } from "../bindings/RecordErrorDto";
import type { HealthDto } from "../bindings/HealthDto";
import type { NewConnectionDto } from "../bindings/NewConnectionDto";
import type { ReauthDto } from "../bindings/ReauthDto";
import type { JobSummaryDto } from "../bindings/JobSummaryDto";
import type { NewJobDto } from "../bindings/NewJobDto";
import type { RecordRetryDto } from "../bindings/RecordRetryDto";
import type { SandboxDto } from "../bindings/SandboxDto";
import type { SandboxFaultsDto } from "../bindings/SandboxFaultsDto";
import type { SettingsDto } from "../bindings/SettingsDto";
import type { SettingsUpdateDto } from "../bindings/SettingsUpdateDto";
import type { SharedDatabaseDto } from "../bindings/SharedDatabaseDto";
import type { WorkerDto } from "../bindings/WorkerDto";
import type { SetupDto } from "../bindings/SetupDto";
import type { UpdateDto } from "../bindings/UpdateDto";
import type { ValueChoiceDto } from "../bindings/ValueChoiceDto";
import { toErrorDto } from "./errors";

/** invoke, with the rejection normalised to an ErrorDto. */
export async function call<T>(cmd: string, args?: Record<string, unknown>): Promise<T> {
  try {
    return await invoke<T>(cmd, args);
  } catch (e) {
    throw toErrorDto(e);
  }
}

export const api = {
  health: () => call<HealthDto>("health"),
  /** "Pause all syncs": no scheduled run or automatic retry starts until resumed. */
  syncsPause: () => call<HealthDto>("syncs_pause"),
  syncsResume: () => call<HealthDto>("syncs_resume"),
  /** "Run due jobs now": how many jobs start. Refused (conflict) while paused. */
  syncsRunDue: () => call<number>("syncs_run_due"),
  /** Quit the app, confirmed: runs in progress stop and are retried later. */
  appQuit: () => call<null>("app_quit"),
  settingsGet: () => call<SettingsDto>("settings_get"),
  /** Only the fields given change; a wrong value changes nothing (code `invalid`). */
  settingsUpdate: (input: SettingsUpdateDto) => call<SettingsDto>("settings_update", { input }),
  logsOpen: () => call<null>("logs_open"),
  /** "Use a shared database": checked (it opens), its password into the keychain, used from
   * the next start. */
  sharedDatabaseUse: (input: SharedDatabaseDto) => call<SettingsDto>("shared_database_use", { input }),
  /** Back to this computer's database from the next start. */
  sharedDatabaseStop: () => call<SettingsDto>("shared_database_stop"),
  /** Restart the app (to open the database chosen). */
  appRestart: () => call<null>("app_restart"),
  /** The apps and headless workers running syncs on this database. */
  workersList: () => call<WorkerDto[]>("workers_list"),
  /** Look for a newer release (nothing is downloaded). */
  updateCheck: () => call<UpdateDto>("update_check"),
  /** Download the release found and verify its signature; `update_refused` when it fails. */
  updateDownload: () => call<UpdateDto>("update_download"),
  /** Install the verified download and restart (the admin confirmed). */
  updateInstall: () => call<null>("update_install"),

  connectionsList: () => call<ConnectionDto[]>("connections_list"),
  connectionGet: (id: string) => call<ConnectionDto>("connection_get", { id }),

  connectionCreate: (input: NewConnectionDto) => call<ConnectionDto>("connection_create", { input }),
  connectionReauth: (id: string, input: ReauthDto) => call<ConnectionDto>("connection_reauth", { id, input }),
  connectionTest: (id: string) => call<ConnectionDto>("connection_test", { id }),
  /** Resolves once the user finished in the system browser (authorization code + PKCE). */
  connectionSignIn: (input: NewConnectionDto) => call<ConnectionDto>("connection_sign_in", { input }),
  connectionSignInAgain: (id: string) => call<ConnectionDto>("connection_sign_in_again", { id }),
  signInCancel: () => call<null>("sign_in_cancel"),

  /** The built-in connectors (the connection wizard's first step). */
  connectorsList: () => call<ConnectorDto[]>("connectors_list"),
  /** Create a connection from a built-in connector with a pasted key, checked with a real
   * request first (and jobs for `input.entities`, if any). */
  connectionConnect: (input: ConnectDto) => call<SetupDto>("connection_connect", { input }),
  /** The same through the system browser (OAuth2 + PKCE); resolves once signed in. */
  connectionConnectSignIn: (input: ConnectDto) => call<ConnectionDto>("connection_connect_sign_in", { input }),
  /** What a connection-level value may be, as the provider lists it (the Xero organisations). */
  connectionValueChoices: (id: string, name: string) => call<ValueChoiceDto[]>("connection_value_choices", { id, name }),
  connectionSetValue: (id: string, name: string, value: string) => call<ConnectionDto>("connection_set_value", { id, name, value }),
  /** A job per entity with the connector's defaults, on `schedule`. */
  jobsCreateDefaults: (connection: string, entities: string[], schedule: string | null) =>
    call<JobDto[]>("jobs_create_defaults", { connection, entities, schedule }),

  jobsList: () => call<JobSummaryDto[]>("jobs_list"),
  jobCreate: (input: NewJobDto) => call<JobDto>("job_create", { input }),
  jobUpdate: (id: string, input: NewJobDto) => call<JobDto>("job_update", { id, input }),
  jobGet: (id: string) => call<JobDto>("job_get", { id }),
  jobRun: (id: string) => call<ExecutionDto>("job_run", { id }),

  executionsList: (jobId: string, cursor?: string | null) =>
    call<PageDto<ExecutionDto>>("executions_list", { jobId, cursor: cursor ?? null }),
  executionGet: (id: string) => call<ExecutionDetailDto>("execution_get", { id }),
  executionCancel: (id: string) => call<ExecutionDto>("execution_cancel", { id }),
  recordErrors: (executionId: string, kind?: string | null, cursor?: string | null) =>
    call<PageDto<RecordErrorDto>>("record_errors", { executionId, kind: kind ?? null, cursor: cursor ?? null }),

  failedRecords: (jobId: string, cursor?: string | null) =>
    call<PageDto<DeadLetterDto>>("failed_records", { jobId, cursor: cursor ?? null }),
  failingRecords: (jobId: string, cursor?: string | null) =>
    call<PageDto<DeadLetterDto>>("failing_records", { jobId, cursor: cursor ?? null }),
  recordHistory: (jobId: string, recordId: string) =>
    call<RecordErrorDto[]>("record_history", { jobId, recordId }),
  failedRecordsRetry: (jobId: string, recordIds: string[]) =>
    call<RecordRetryDto[]>("failed_records_retry", { jobId, recordIds }),
  failedRecordsDismiss: (jobId: string, recordIds: string[], note: string) =>
    call<number>("failed_records_dismiss", { jobId, recordIds, note }),

  alertsList: (unreadOnly: boolean, cursor?: string | null) =>
    call<PageDto<AlertDto>>("alerts_list", { unreadOnly, cursor: cursor ?? null }),
  alertMarkRead: (id: number) => call<null>("alert_mark_read", { id }),
  alertsMarkAllRead: () => call<number>("alerts_mark_all_read"),
  auditList: (cursor?: string | null) => call<PageDto<AuditDto>>("audit_list", { cursor: cursor ?? null }),

  sandboxStatus: () => call<SandboxDto>("sandbox_status"),
  sandboxStart: () => call<SandboxDto>("sandbox_start"),
  sandboxSetFaults: (faults: SandboxFaultsDto) => call<SandboxDto>("sandbox_set_faults", { faults }),
};

/** TanStack Query keys; events invalidate by prefix. */
export const qk = {
  health: ["health"] as const,
  settings: ["settings"] as const,
  workers: ["workers"] as const,
  connections: ["connections"] as const,
  connectors: ["connectors"] as const,
  valueChoices: (connectionId: string, name: string) => ["valueChoices", connectionId, name] as const,
  connection: (id: string) => ["connections", id] as const,
  jobs: ["jobs"] as const,
  job: (id: string) => ["job", id] as const,
  executions: (jobId: string) => ["executions", jobId] as const,
  execution: (id: string) => ["execution", id] as const,
  /** `total` is how many errors the execution says it has: a new total is a new log to read. */
  recordErrors: (executionId: string, kind: string | null, total: number) =>
    ["recordErrors", executionId, kind, total] as const,
  failedRecords: (jobId: string) => ["failedRecords", jobId] as const,
  failingRecords: (jobId: string) => ["failedRecords", jobId, "failing"] as const,
  recordHistory: (jobId: string, recordId: string) => ["recordHistory", jobId, recordId] as const,
  alerts: ["alerts"] as const,
  audit: ["audit"] as const,
  sandbox: ["sandbox"] as const,
};
