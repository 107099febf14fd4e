import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useState } from "react";
import { api, qk } from "./api/client";
import { subscribe } from "./api/events";
import type { EventDto } from "./bindings/EventDto";
import { Empty } from "./components/ui";
import { Link, navigate, paths, useRoute, type Route } from "./router";
import { T } from "./testids";
import { AlertsView } from "./views/AlertsView";
import { AuditView } from "./views/AuditView";
import { ConnectionsView } from "./views/ConnectionsView";
import { Dashboard } from "./views/Dashboard";
import { ExecutionView } from "./views/ExecutionView";
import { JobNewView, JobView } from "./views/JobView";
import { SandboxView } from "./views/SandboxView";

interface Toast {
  id: number;
  tone: "bad" | "warn" | "info";
  text: string;
  to: string;
}

function toastFor(e: EventDto, id: number): Toast | null {
  switch (e.type) {
    case "breaker_tripped":
      return { id, tone: "bad", text: `Circuit breaker tripped on ${e.job_name}`, to: paths.execution(e.execution_id) };
    case "retries_exhausted":
      return { id, tone: "bad", text: `${e.job_name}: automatic retries exhausted after ${e.attempts} attempts`, to: paths.execution(e.execution_id) };
    case "connection_expired":
      return { id, tone: "bad", text: `${e.connection_name} needs re-authentication`, to: `${paths.connection(e.connection_id)}?reauth=1` };
    case "execution_finished":
      if (e.status === "completed_with_errors")
        return { id, tone: "warn", text: `${e.job_name} completed with ${e.counts.failed} failed records`, to: paths.execution(e.execution_id) };
      if (e.status === "failed" || e.status === "timed_out")
        return { id, tone: "bad", text: `${e.job_name} ${e.status === "failed" ? "failed" : "timed out"}`, to: paths.execution(e.execution_id) };
      return null;
    default:
      return null;
  }
}

export function App() {
  const route = useRoute();
  const qc = useQueryClient();
  const [toasts, setToasts] = useState<Toast[]>([]);

  useEffect(() => {
    let off: (() => void) | undefined;
    let n = 0;
    let cancelled = false;
    subscribe(qc, navigate, (e) => {
      const t = toastFor(e, ++n);
      if (t) setToasts((ts) => [...ts.slice(-2), t]);
    })
      .then((f) => {
        if (cancelled) f();
        else off = f;
      })
      .catch(() => {
        /* not inside the shell (plain browser): no events */
      });
    return () => {
      cancelled = true;
      off?.();
    };
  }, [qc]);

  // Keep the document title useful in the task switcher.
  useEffect(() => {
    document.title = `Syncdesk — ${titleOf(route)}`;
  }, [route]);

  return (
    <div className="app">
      <Sidebar route={route} />
      <main className="main" id="main" tabIndex={-1}>
        <RouteView route={route} />
      </main>
      <div className="toasts" aria-live="polite">
        {toasts.map((t) => (
          <div key={t.id} className={`toast toast-${t.tone}`}>
            <Link to={t.to} onClick={() => setToasts((ts) => ts.filter((x) => x.id !== t.id))}>
              {t.text} →
            </Link>
            <button className="icon-btn" aria-label="Dismiss" onClick={() => setToasts((ts) => ts.filter((x) => x.id !== t.id))}>
              ×
            </button>
          </div>
        ))}
      </div>
    </div>
  );
}

function titleOf(r: Route): string {
  switch (r.name) {
    case "dashboard":
      return "Dashboard";
    case "connections":
      return "Connections";
    case "jobNew":
      return "New job";
    case "job":
      return "Job";
    case "execution":
      return "Execution";
    case "alerts":
      return "Alerts";
    case "audit":
      return "Audit log";
    case "sandbox":
      return "Sandbox";
    default:
      return "Not found";
  }
}

function RouteView({ route }: { route: Route }) {
  switch (route.name) {
    case "dashboard":
      return <Dashboard />;
    case "connections":
      return <ConnectionsView key={route.id ?? ""} focusId={route.id} />;
    case "jobNew":
      return <JobNewView />;
    case "job":
      return <JobView key={route.id} id={route.id} tab={route.tab} />;
    case "execution":
      return <ExecutionView key={route.id} id={route.id} />;
    case "alerts":
      return <AlertsView />;
    case "audit":
      return <AuditView />;
    case "sandbox":
      return <SandboxView />;
    case "notFound":
      return (
        <div className="page">
          <Empty title="Nothing here" action={<Link to={paths.dashboard()}>Back to the dashboard</Link>}>
            <span className="mono">{route.path}</span> is not a page of Syncdesk.
          </Empty>
        </div>
      );
  }
}

function Sidebar({ route }: { route: Route }) {
  const health = useQuery({ queryKey: qk.health, queryFn: api.health });
  const jobs = useQuery({ queryKey: qk.jobs, queryFn: api.jobsList });
  const unread = health.data?.unread_alerts ?? 0;
  const expired = health.data?.expired_connections ?? 0;
  const cur = (name: Route["name"]) => (route.name === name ? "page" : undefined);
  return (
    <nav className="sidebar" aria-label="Main">
      <a href="#main" className="skip">
        Skip to content
      </a>
      <div className="brand">
        <span className="brand-mark" aria-hidden="true">
          ⇄
        </span>
        Syncdesk
      </div>
      <ul className="nav">
        <li>
          <Link to={paths.dashboard()} aria-current={cur("dashboard")} data-testid={T.navDashboard}>
            Dashboard
          </Link>
        </li>
        <li>
          <Link to={paths.connections()} aria-current={cur("connections")} data-testid={T.navConnections}>
            Connections
            {expired > 0 && (
              <span className="count count-bad" aria-label={`${expired} expired`}>
                {expired}
              </span>
            )}
          </Link>
        </li>
        <li>
          <Link to={paths.alerts()} aria-current={cur("alerts")} data-testid={T.navAlerts}>
            Alerts
            {unread > 0 && (
              <span className="count" aria-label={`${unread} unread`}>
                {unread}
              </span>
            )}
          </Link>
        </li>
        <li>
          <Link to={paths.audit()} aria-current={cur("audit")} data-testid={T.navAudit}>
            Audit log
          </Link>
        </li>
        <li>
          <Link to={paths.sandbox()} aria-current={cur("sandbox")} data-testid={T.navSandbox}>
            Sandbox
          </Link>
        </li>
      </ul>
      <div className="nav-section">
        <span>Jobs</span>
        <Link to={paths.jobNew()} className="nav-add" aria-label="New job">
          +
        </Link>
      </div>
      <ul className="nav nav-jobs">
        {(jobs.data ?? []).map((s) => (
          <li key={s.job.id}>
            <Link
              to={paths.job(s.job.id)}
              aria-current={route.name === "job" && route.id === s.job.id ? "page" : undefined}
              data-testid={`${T.navJobPrefix}${s.job.id}`}
            >
              <span className={`dot dot-${s.health}`} aria-hidden="true" />
              <span className="nav-job-name">{s.job.name}</span>
            </Link>
          </li>
        ))}
        {jobs.data && jobs.data.length === 0 && <li className="muted small nav-empty">No jobs yet</li>}
      </ul>
      {health.data && !health.data.worker_running && <div className="nav-foot muted small">Scheduler paused</div>}
    </nav>
  );
}
