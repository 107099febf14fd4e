import { useQuery } from "@tanstack/react-query";
import { api, qk } from "../api/client";
import type { JobHealthDto } from "../bindings/JobHealthDto";
import type { JobSummaryDto } from "../bindings/JobSummaryDto";
import { BreakdownBar } from "../components/BreakdownBar";
import { SyncsActions } from "../components/Syncs";
import { Empty, ErrorState, Loading, PageHeader, StatusBadge } from "../components/ui";
import { formatRelative, formatTime } from "../format";
import { Link, navigate, paths } from "../router";
import { T } from "../testids";
import { AlertList } from "./AlertsView";

const HEALTH: Record<JobHealthDto, { label: string; tone: string }> = {
  never_run: { label: "Never run", tone: "muted" },
  running: { label: "Running", tone: "info" },
  ok: { label: "Healthy", tone: "ok" },
  needs_attention: { label: "Needs a look", tone: "warn" },
  failing: { label: "Failing", tone: "bad" },
  retrying: { label: "Failing — retry scheduled", tone: "bad" },
  needs_reauth: { label: "Failing — sign in again", tone: "bad" },
};

export function HealthChip({ health }: { health: JobHealthDto }) {
  const h = HEALTH[health];
  return (
    <span className={`chip chip-${h.tone}`} data-health={health}>
      {h.label}
    </span>
  );
}

export function Dashboard() {
  const health = useQuery({ queryKey: qk.health, queryFn: api.health });
  const jobs = useQuery({ queryKey: qk.jobs, queryFn: api.jobsList });
  const connections = useQuery({ queryKey: qk.connections, queryFn: api.connectionsList });

  if (jobs.isPending || connections.isPending) return <Loading label="Loading dashboard…" />;
  if (jobs.isError) return <ErrorState error={jobs.error} onRetry={() => void jobs.refetch()} />;
  if (connections.isError) return <ErrorState error={connections.error} onRetry={() => void connections.refetch()} />;

  const firstRun = jobs.data.length === 0 && connections.data.length === 0;
  if (firstRun) return <FirstRun />;

  const h = health.data;
  const expired = connections.data.filter((c) => c.status !== "active");
  return (
    <div className="page">
      <PageHeader
        title="Dashboard"
        actions={
          <>
            <SyncsActions />
            <button className="btn" data-testid={T.newJob} onClick={() => navigate(paths.jobNew())}>
              + New job
            </button>
          </>
        }
      />
      {h && (!h.keychain_available || !h.notifications_available) && (
        <div className="banner banner-warn" role="status">
          {!h.keychain_available && (
            <div>
              <strong>Keychain unavailable.</strong> {h.keychain_message ?? "Secrets cannot be stored until the OS keychain is reachable."}
            </div>
          )}
          {!h.notifications_available && (
            <div>
              <strong>Desktop notifications are off.</strong>{" "}
              {h.notifications_message ?? "Alerts are still recorded here in the Alerts center."}
            </div>
          )}
        </div>
      )}
      {expired.map((c) => (
        <div className="banner banner-bad" key={c.id}>
          <strong>{c.name}</strong> is {c.status}: its jobs cannot run until it is re-authenticated.{" "}
          <Link className="btn btn-sm" to={`${paths.connection(c.id)}?reauth=1`}>
            Re-authenticate
          </Link>
        </div>
      ))}
      <div className="stats">
        <StatLink label="Jobs" value={h?.jobs ?? jobs.data.length} />
        <StatLink label="Failing jobs" value={h?.failing_jobs ?? "—"} tone={h?.failing_jobs ? "bad" : undefined} />
        <StatLink label="Failed records" value={h?.dead_letters ?? "—"} tone={h?.dead_letters ? "warn" : undefined} />
        <StatLink label="Unread alerts" value={h?.unread_alerts ?? "—"} tone={h?.unread_alerts ? "warn" : undefined} to={paths.alerts()} />
        <StatLink
          label="Expired connections"
          value={h?.expired_connections ?? expired.length}
          tone={(h?.expired_connections ?? expired.length) ? "bad" : undefined}
          to={paths.connections()}
        />
      </div>

      <section className="panel" aria-labelledby="jobs-h">
        <header className="panel-head">
          <h2 id="jobs-h">Jobs</h2>
        </header>
        {jobs.data.length === 0 ? (
          <Empty
            title="No jobs yet"
            action={
              <button className="btn btn-primary" onClick={() => navigate(paths.jobNew())}>
                Create a job
              </button>
            }
          >
            A job pulls one kind of record (customers, invoices…) from a connection on a schedule.
          </Empty>
        ) : (
          <JobsTable jobs={jobs.data} />
        )}
      </section>

      <section className="panel" aria-labelledby="alerts-h">
        <header className="panel-head">
          <h2 id="alerts-h">Unread alerts</h2>
          <Link to={paths.alerts()}>All alerts →</Link>
        </header>
        <AlertList unreadOnly limit={5} />
      </section>
    </div>
  );
}

function StatLink({ label, value, tone, to }: { label: string; value: React.ReactNode; tone?: string; to?: string }) {
  const inner = (
    <>
      <div className="stat-label">{label}</div>
      <div className="stat-value">{value}</div>
    </>
  );
  return to ? (
    <Link to={to} className={`stat stat-link ${tone ? `stat-${tone}` : ""}`}>
      {inner}
    </Link>
  ) : (
    <div className={`stat ${tone ? `stat-${tone}` : ""}`}>{inner}</div>
  );
}

function JobsTable({ jobs }: { jobs: JobSummaryDto[] }) {
  return (
    <div className="table-wrap">
      <table className="table table-click">
        <thead>
          <tr>
            <th scope="col">Job</th>
            <th scope="col">Health</th>
            <th scope="col">Last run</th>
            <th scope="col">Records</th>
            <th scope="col">Failed records</th>
            <th scope="col">Next run</th>
          </tr>
        </thead>
        <tbody>
          {jobs.map(({ job, last_execution: last, health, dead_letters }) => (
            <tr key={job.id} data-testid={`${T.jobRowPrefix}${job.id}`} onClick={(e) => {
              if ((e.target as HTMLElement).closest("a,button")) return;
              navigate(paths.job(job.id));
            }}>
              <td>
                <Link to={paths.job(job.id)} className="strong">
                  {job.name}
                </Link>
                <div className="muted small">
                  {job.direction} {job.entity} · {job.mode}
                  {!job.enabled && " · disabled"}
                </div>
              </td>
              <td>
                <HealthChip health={health} />
              </td>
              <td>
                {last ? (
                  <Link to={paths.execution(last.id)} className="last-run">
                    <StatusBadge status={last.status} />
                    <span className="muted small" title={formatTime(last.finished_at ?? last.started_at)}>
                      {formatRelative(last.finished_at ?? last.started_at ?? last.created_at)}
                    </span>
                  </Link>
                ) : (
                  <span className="muted">Never</span>
                )}
              </td>
              <td className="col-counts">{last ? <BreakdownBar counts={last.counts} compact /> : null}</td>
              <td>
                {dead_letters > 0 ? (
                  <Link to={paths.job(job.id, "failed")} className="num warn-text">
                    {dead_letters.toLocaleString()}
                  </Link>
                ) : (
                  <span className="muted num">0</span>
                )}
              </td>
              <td className="muted">{job.next_run_at ? formatRelative(job.next_run_at) : job.schedule === "manual" ? "Manual" : "—"}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function FirstRun() {
  return (
    <div className="page">
      <div className="hero">
        <h1>Welcome to Syncdesk</h1>
        <p>
          Syncdesk keeps your customers, invoices, products and payments in sync with the services you use — and when something
          fails, it tells you what failed, why, and gives you the one-click fix.
        </p>
        <div className="hero-actions">
          <button className="btn btn-primary btn-lg" data-testid={T.trySandbox} onClick={() => navigate(paths.sandbox())}>
            Try it with the sandbox
          </button>
          <button className="btn btn-lg" onClick={() => navigate(paths.connections())}>
            Connect a provider
          </button>
        </div>
        <p className="muted small">
          The sandbox is a built-in practice provider. Flip its faults — outages, rate limits, bad records, expired tokens — and watch
          how each failure is handled.
        </p>
      </div>
    </div>
  );
}
