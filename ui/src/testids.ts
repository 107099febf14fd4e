// data-testid values the end-to-end tests (ui/browser-tests and the shell's WebDriver e2e) rely
// on. Change one here and in the tests together.
export const T = {
  /** Sidebar link to the dashboard. */
  navDashboard: "nav-dashboard",
  menuButton: "menu-button",
  /** Sidebar link to the connections list. */
  navConnections: "nav-connections",
  /** Sidebar link to the alerts center (shows the unread count). */
  navAlerts: "nav-alerts",
  /** Sidebar link to the audit log. */
  navAudit: "nav-audit",
  /** Sidebar link to the sandbox panel. */
  navSandbox: "nav-sandbox",
  /** Sidebar link to a job, suffixed with the job id: `nav-job-<id>`. */
  navJobPrefix: "nav-job-",
  /** Dashboard row of one job, suffixed with the job id: `job-row-<id>`. */
  jobRowPrefix: "job-row-",
  /** "Try it with the sandbox" call to action on the empty dashboard. */
  trySandbox: "try-sandbox",
  /** The banner every page shows while all syncs are paused, and its Resume button. */
  pausedBanner: "paused-banner",
  resumeSyncs: "resume-syncs",
  /** Dashboard: "Run due jobs now" and "Pause all syncs". */
  runDue: "run-due",
  pauseSyncs: "pause-syncs",
  /** The question before quitting stops runs: its buttons. */
  quitDialog: "quit-dialog",
  quitConfirm: "quit-confirm",
  quitCancel: "quit-cancel",
  /** Sidebar link to Settings, and its controls: start at login, a notification kind
   * (`settings-notify-<field>`), the theme, the version. */
  navSettings: "nav-settings",
  settingsStartAtLogin: "settings-start-at-login",
  settingsNotifyPrefix: "settings-notify-",
  settingsTheme: "settings-theme",
  settingsVersion: "settings-version",
  /** Settings → Shared database: where the data is, the address and password fields, use,
   * stop, restart, and one row per app or worker (data-alive). */
  sharedDatabaseInUse: "shared-database-in-use",
  sharedDatabaseUrl: "shared-database-url",
  sharedDatabasePassword: "shared-database-password",
  sharedDatabaseUse: "shared-database-use",
  sharedDatabaseStop: "shared-database-stop",
  appRestart: "app-restart",
  workerRow: "worker-row",
  /** Settings → Updates: check, the result line (data-state: none, available, verified), download, install. */
  updateCheck: "update-check",
  updateResult: "update-result",
  updateDownload: "update-download",
  updateInstall: "update-install",
  /** The one-time offer of start at login after the first successful sync, and its answers. */
  startAtLoginOffer: "start-at-login-offer",
  startAtLoginAccept: "start-at-login-accept",
  startAtLoginDecline: "start-at-login-decline",
  /** "New job" button. */
  newJob: "new-job",
  /** "Run now" button on the job detail page. */
  runJob: "run-job",
  /** Job detail tabs. */
  tabExecutions: "tab-executions",
  tabFailed: "tab-failed",
  tabSettings: "tab-settings",
  /** One row of the executions table; carries data-status and data-execution-id. */
  executionRow: "execution-row",
  /** Status badge (executions, connections); its text is the human label, data-status the raw value. */
  statusBadge: "status-badge",
  /** The execution detail header's status badge. */
  executionStatus: "execution-status",
  /** Breakdown bar container. */
  breakdown: "breakdown",
  /** Breakdown segments/legend counts: data-count holds the number. */
  breakdownCreated: "breakdown-created",
  breakdownUpdated: "breakdown-updated",
  breakdownSkipped: "breakdown-skipped",
  breakdownFailed: "breakdown-failed",
  /** Error log: the kind filter select and each formatted row. */
  errorKindFilter: "error-kind-filter",
  errorRow: "error-row",
  /** "Load more" for any paginated list. */
  loadMore: "load-more",
  /** Diagnosis panel and its action buttons: `diagnosis-action-<action>` (reauthenticate, edit_mappings, open_failed_records…). */
  diagnosis: "diagnosis",
  diagnosisActionPrefix: "diagnosis-action-",
  /** "What changed" beside a schema-change diagnosis; each field row carries data-field and data-change (missing, removed, added). */
  schemaChange: "schema-change",
  /** Circuit-breaker / failure note on the execution page. */
  executionNote: "execution-note",
  /** Failed Records: a row (data-record-id), its checkbox, the header select-all checkbox. */
  failedRow: "failed-row",
  failingSection: "failing-records",
  failingRow: "failing-row",
  countsNote: "counts-note",
  failedRowCheckbox: "failed-row-checkbox",
  failedSelectAll: "failed-select-all",
  /** Per-row actions. */
  failedRetry: "failed-retry",
  failedDismiss: "failed-dismiss",
  /** Bulk actions over the selected rows. */
  bulkRetry: "bulk-retry",
  bulkDismiss: "bulk-dismiss",
  /** Dismiss dialog: note textarea and confirm button. */
  dismissNote: "dismiss-note",
  dismissConfirm: "dismiss-confirm",
  /** Record drawer (payload + history). */
  recordDrawer: "record-drawer",
  /** Connections: a card (data-connection-id), its status badge and its Re-authenticate button. */
  connectionCard: "connection-card",
  connectionStatus: "connection-status",
  reauthButton: "reauth-button",
  /** Browser sign-in (authorization code + PKCE): the explanation / waiting note, Stop waiting, sign in again. */
  signInNote: "sign-in-note",
  signInCancel: "sign-in-cancel",
  signInAgain: "sign-in-again",
  /** Job editor: the save button; field errors are `field-error-<field>`. */
  jobSave: "job-save",
  fieldErrorPrefix: "field-error-",
  /** Sandbox: start button, running indicator, fault toggles `fault-<name>`, apply button. */
  sandboxStart: "sandbox-start",
  sandboxStatus: "sandbox-status",
  faultPrefix: "fault-",
  sandboxApply: "sandbox-apply",
  /** Alerts center: a row (data-alert-id) and its mark-read button. */
  alertRow: "alert-row",
  alertMarkRead: "alert-mark-read",
  /** Execution page: what a running execution waits for. */
  executionWaiting: "execution-waiting",
  /** Connections: a card's Test connection button. */
  connectionTest: "connection-test",
  /** Alerts center: marks every unread alert read. */
  alertsMarkAllRead: "alerts-mark-all-read",
  /** Audit log row. */
  auditRow: "audit-row",
  /** Connection wizard: the dialog body (data-step), a provider option `wizard-provider-<key>`,
   * the custom-connector way out, Next, the name, the pasted secret, the client id, the
   * "Advanced: server address" toggle and field, Connect, a listed value (organisation),
   * the note that the connection is saved, an entity checkbox `wizard-entity-<name>`, the
   * schedule, Create jobs, the last step, a created job's link `wizard-job-<entity>`, Done. */
  wizard: "wizard",
  wizardProviderPrefix: "wizard-provider-",
  wizardCustom: "wizard-custom",
  wizardNext: "wizard-next",
  wizardName: "wizard-name",
  wizardSecret: "wizard-secret",
  wizardClientId: "wizard-client-id",
  wizardAdvanced: "wizard-advanced",
  wizardBaseUrl: "wizard-base-url",
  wizardConnect: "wizard-connect",
  wizardChoice: "wizard-choice",
  wizardConnected: "wizard-connected",
  wizardEntityPrefix: "wizard-entity-",
  wizardSchedule: "wizard-schedule",
  wizardCreateJobs: "wizard-create-jobs",
  wizardDone: "wizard-done",
  wizardJobPrefix: "wizard-job-",
  wizardFinish: "wizard-finish",
} as const;
