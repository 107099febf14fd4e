// Settings: start at login, which events raise a desktop notification, the theme, and where
// Syncdesk keeps its data and log. Each change is saved at once and the shell's answer shown.
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useId, useState } from "react";
import { api, qk } from "../api/client";
import type { SettingsDto } from "../bindings/SettingsDto";
import type { SettingsUpdateDto } from "../bindings/SettingsUpdateDto";
import type { UpdateDto } from "../bindings/UpdateDto";
import type { WorkerDto } from "../bindings/WorkerDto";
import { formatTime } from "../format";
import { ErrorState, InlineError, Loading, PageHeader } from "../components/ui";
import { T } from "../testids";

/** Apply the theme to the page: the OS's choice unless the admin picked one. */
export function applyTheme(theme: string | undefined) {
  const root = document.documentElement;
  if (theme === "light" || theme === "dark") root.dataset.theme = theme;
  else delete root.dataset.theme;
}

/** The settings, shared by the view, the theme and the start-at-login offer. */
export function useSettings() {
  const qc = useQueryClient();
  const q = useQuery({ queryKey: qk.settings, queryFn: api.settingsGet });
  const update = useMutation({
    mutationFn: (u: SettingsUpdateDto) => api.settingsUpdate(u),
    onSuccess: (s) => qc.setQueryData(qk.settings, s),
  });
  useEffect(() => applyTheme(q.data?.theme), [q.data?.theme]);
  return { q, update };
}

const NOTIFY: { key: keyof SettingsDto & keyof SettingsUpdateDto; label: string }[] = [
  { key: "notify_circuit_breaker", label: "A sync stopped early because most records were failing" },
  { key: "notify_retries_exhausted", label: "A job failed and will not be retried automatically any more" },
  { key: "notify_connection_expired", label: "A connection needs you to sign in again" },
  { key: "notify_dead_letters", label: "Records moved to Failed Records" },
  { key: "notify_completed_with_errors", label: "A sync completed with some records failing (for jobs that ask for it)" },
];

export function SettingsView() {
  const { q, update } = useSettings();
  const logs = useMutation({ mutationFn: api.logsOpen });
  const ids = useId();
  if (q.isPending) return <Loading label="Loading settings…" />;
  if (q.isError) return <ErrorState error={q.error} onRetry={() => void q.refetch()} />;
  const s = q.data;
  const set = (u: SettingsUpdateDto) => update.mutate(u);
  return (
    <div className="page">
      <PageHeader title="Settings" />
      {s.problem && (
        <div className="banner banner-warn" role="status">
          {s.problem}
        </div>
      )}
      {update.isError && <InlineError error={update.error} />}

      <section className="panel" aria-labelledby={`${ids}-bg`}>
        <header className="panel-head">
          <h2 id={`${ids}-bg`}>In the background</h2>
        </header>
        <div className="panel-body settings-body">
          <label className="check">
            <input
              type="checkbox"
              data-testid={T.settingsStartAtLogin}
              checked={s.start_at_login}
              disabled={update.isPending || s.start_at_login_message !== null}
              onChange={(e) => set({ start_at_login: e.target.checked })}
            />{" "}
            Start Syncdesk when I log in (in the background, so scheduled syncs run without opening
            the window)
          </label>
          {s.start_at_login_message && <p className="muted small">Start at login is not available here: {s.start_at_login_message}</p>}
          <p className="muted small">
            Closing the window keeps Syncdesk running in the tray. To stop it, choose Quit Syncdesk there.
          </p>
        </div>
      </section>

      <section className="panel" aria-labelledby={`${ids}-notify`}>
        <header className="panel-head">
          <h2 id={`${ids}-notify`}>Desktop notifications</h2>
        </header>
        <fieldset className="panel-body settings-body">
          <legend className="muted small">Show a notification when… (alerts are kept in the Alerts center either way)</legend>
          {NOTIFY.map(({ key, label }) => (
            <label className="check" key={key}>
              <input
                type="checkbox"
                data-testid={`${T.settingsNotifyPrefix}${key}`}
                checked={s[key] as boolean}
                disabled={update.isPending}
                onChange={(e) => set({ [key]: e.target.checked })}
              />{" "}
              {label}
            </label>
          ))}
        </fieldset>
      </section>

      <section className="panel" aria-labelledby={`${ids}-look`}>
        <header className="panel-head">
          <h2 id={`${ids}-look`}>Appearance</h2>
        </header>
        <div className="panel-body settings-body">
          <label className="field-label" htmlFor={`${ids}-theme`}>
            Theme
          </label>
          <select
            id={`${ids}-theme`}
            data-testid={T.settingsTheme}
            value={s.theme}
            disabled={update.isPending}
            onChange={(e) => set({ theme: e.target.value })}
          >
            <option value="system">Same as the system</option>
            <option value="light">Light</option>
            <option value="dark">Dark</option>
          </select>
        </div>
      </section>

      <Updates />

      {/* After Updates: the list of computers arrives a moment later, and what it moves down
          should not be a button the admin is about to press. */}
      <SharedDatabase settings={s} />

      <section className="panel" aria-labelledby={`${ids}-about`}>
        <header className="panel-head">
          <h2 id={`${ids}-about`}>About this installation</h2>
        </header>
        <dl className="panel-body settings-about">
          <dt>Version</dt>
          <dd data-testid={T.settingsVersion}>{s.version}</dd>
          <dt>Data folder</dt>
          <dd className="mono">{s.data_dir}</dd>
          <dt>Log folder</dt>
          <dd>
            <span className="mono">{s.logs_dir}</span>{" "}
            <button className="btn btn-sm" onClick={() => logs.mutate()} disabled={logs.isPending}>
              Open log folder
            </button>
            {logs.isError && <InlineError error={logs.error} />}
          </dd>
        </dl>
      </section>
    </div>
  );
}

/** What the database's address is called when it is this computer's own (the shell's words). */
const THIS_COMPUTER = "this computer";

/** Team mode: where the data is, "Use a shared database" (its password goes to the keychain),
 * and the apps and workers running syncs on it. */
function SharedDatabase({ settings: s }: { settings: SettingsDto }) {
  const ids = useId();
  const qc = useQueryClient();
  const [url, setUrl] = useState(s.shared_database ?? "");
  const [password, setPassword] = useState("");
  const saved = (next: SettingsDto) => {
    qc.setQueryData(qk.settings, next);
    setPassword("");
  };
  const use = useMutation({ mutationFn: () => api.sharedDatabaseUse({ url, password: password || undefined }), onSuccess: saved });
  const stop = useMutation({ mutationFn: api.sharedDatabaseStop, onSuccess: saved });
  const restart = useMutation({ mutationFn: api.appRestart });
  const workers = useQuery({ queryKey: qk.workers, queryFn: api.workersList, refetchInterval: 15_000 });
  const shared = s.database_in_use !== THIS_COMPUTER;
  const error = use.error ?? stop.error ?? restart.error;
  return (
    <section className="panel" aria-labelledby={`${ids}-db`}>
      <header className="panel-head">
        <h2 id={`${ids}-db`}>Shared database</h2>
      </header>
      <div className="panel-body settings-body">
        <p data-testid={T.sharedDatabaseInUse} data-shared={shared}>
          {shared ? (
            <>
              Your syncs are kept in the shared database <span className="mono">{s.database_in_use}</span>, with the other
              computers of your team that use it.
            </>
          ) : (
            "Your syncs are kept on this computer. To share them with your team, or with a computer that syncs through the night, use a shared database (PostgreSQL)."
          )}
        </p>
        {s.database_restart_needed && (
          <div className="banner banner-info banner-row" role="status">
            <div>
              {s.shared_database
                ? "Syncdesk switches to the shared database when it restarts."
                : "Syncdesk goes back to this computer's database when it restarts."}{" "}
              A sync in progress is stopped and retried later.
            </div>
            <button className="btn btn-sm btn-primary" data-testid={T.appRestart} disabled={restart.isPending} onClick={() => restart.mutate()}>
              Restart now
            </button>
          </div>
        )}
        <form
          className="settings-body"
          onSubmit={(e) => {
            e.preventDefault();
            use.mutate();
          }}
        >
          <label className="field-label" htmlFor={`${ids}-url`}>
            Database address
          </label>
          <input
            id={`${ids}-url`}
            data-testid={T.sharedDatabaseUrl}
            className="mono"
            value={url}
            placeholder="postgres://syncdesk@server:5432/syncdesk"
            autoComplete="off"
            onChange={(e) => setUrl(e.target.value)}
          />
          <label className="field-label" htmlFor={`${ids}-pw`}>
            Password (kept in this computer's keychain)
          </label>
          <input
            id={`${ids}-pw`}
            data-testid={T.sharedDatabasePassword}
            type="password"
            value={password}
            autoComplete="new-password"
            onChange={(e) => setPassword(e.target.value)}
          />
          <div>
            <button className="btn" type="submit" data-testid={T.sharedDatabaseUse} disabled={use.isPending || !url.trim()}>
              {use.isPending ? "Checking…" : "Use this shared database"}
            </button>{" "}
            {s.shared_database && (
              <button className="btn" type="button" data-testid={T.sharedDatabaseStop} disabled={stop.isPending} onClick={() => stop.mutate()}>
                Stop using it
              </button>
            )}
          </div>
        </form>
        {error && <InlineError error={error} />}
        {workers.data && workers.data.length > 0 && <Workers workers={workers.data} />}
      </div>
    </section>
  );
}

function workerKind(w: WorkerDto): string {
  if (w.this_one) return "This app";
  return w.role === "worker" ? "Background worker" : "Syncdesk app";
}

/** The apps and workers running syncs on this database, and whether each is still there. */
function Workers({ workers }: { workers: WorkerDto[] }) {
  return (
    <table className="table">
      <caption className="muted small">Computers running syncs on this database</caption>
      <thead>
        <tr>
          <th scope="col">Name</th>
          <th scope="col">Kind</th>
          <th scope="col">State</th>
          <th scope="col">Running since</th>
        </tr>
      </thead>
      <tbody>
        {workers.map((w) => (
          <tr key={`${w.name}-${w.started_at}`} data-testid={T.workerRow} data-alive={w.alive}>
            <td>{w.name}</td>
            <td>{workerKind(w)}</td>
            <td>{w.alive ? "Active" : `Not heard from since ${formatTime(w.last_seen_at)}`}</td>
            <td>{formatTime(w.started_at)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** Offered once, after the first successful sync: start at login. */
export function StartAtLoginOffer({ show }: { show: boolean }) {
  const { q, update } = useSettings();
  const s = q.data;
  if (!show || !s || s.start_at_login_offered || s.start_at_login || s.start_at_login_message) return null;
  return (
    <div className="banner banner-info banner-row paused-banner" role="status" data-testid={T.startAtLoginOffer}>
      <div>
        <strong>Your first sync worked.</strong> Start Syncdesk when you log in, so scheduled syncs
        keep running in the background? You can change this in Settings.
        {update.isError && <InlineError error={update.error} />}
      </div>
      <button
        className="btn btn-sm btn-primary"
        data-testid={T.startAtLoginAccept}
        disabled={update.isPending}
        onClick={() => update.mutate({ start_at_login: true })}
      >
        Start at login
      </button>
      <button
        className="btn btn-sm"
        data-testid={T.startAtLoginDecline}
        disabled={update.isPending}
        onClick={() => update.mutate({ start_at_login_offered: true })}
      >
        Not now
      </button>
    </div>
  );
}

/** Look for a newer release, download and verify it, and install it only when asked. */
function Updates() {
  const ids = useId();
  const [found, setFound] = useState<UpdateDto | null>(null);
  const check = useMutation({ mutationFn: api.updateCheck, onSuccess: setFound });
  const download = useMutation({ mutationFn: api.updateDownload, onSuccess: setFound, onError: () => setFound(null) });
  const install = useMutation({ mutationFn: api.updateInstall });
  const state = !found ? null : !found.version ? "none" : found.verified ? "verified" : "available";
  const error = check.error ?? download.error ?? install.error;
  return (
    <section className="panel" aria-labelledby={`${ids}-upd`}>
      <header className="panel-head">
        <h2 id={`${ids}-upd`}>Updates</h2>
      </header>
      <div className="panel-body settings-body">
        <div>
          <button
            className="btn"
            data-testid={T.updateCheck}
            disabled={check.isPending || download.isPending}
            onClick={() => {
              download.reset();
              install.reset();
              check.mutate();
            }}
          >
            {check.isPending ? "Looking…" : "Check for updates"}
          </button>
        </div>
        {found && state && (
          <p role="status" data-testid={T.updateResult} data-state={state}>
            {state === "none" && `Syncdesk ${found.current_version} is the newest version.`}
            {state === "available" && `Syncdesk ${found.version} is available (you have ${found.current_version}).`}
            {state === "verified" &&
              `Syncdesk ${found.version} is downloaded and its signature checked. Install it now? Syncdesk restarts; a sync in progress is stopped and retried later.`}
            {found.notes && state !== "none" && <span className="muted small"> {found.notes}</span>}
          </p>
        )}
        {state === "available" && (
          <div>
            <button className="btn" data-testid={T.updateDownload} disabled={download.isPending} onClick={() => download.mutate()}>
              {download.isPending ? "Downloading and checking…" : "Download and check"}
            </button>
          </div>
        )}
        {state === "verified" && (
          <div>
            <button className="btn btn-primary" data-testid={T.updateInstall} disabled={install.isPending} onClick={() => install.mutate()}>
              Install and restart
            </button>
          </div>
        )}
        {error && <InlineError error={error} />}
      </div>
    </section>
  );
}
