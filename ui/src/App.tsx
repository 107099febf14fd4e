import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useRef, useState } from "react";
import { api, qk } from "./api/client";
import { subscribe } from "./api/events";
import type { QuitRequestDto } from "./bindings/QuitRequestDto";
import { PausedBanner, QuitDialog } from "./components/Syncs";
import { Toasts, useToasts } from "./components/Toasts";
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
import { SettingsView, StartAtLoginOffer, useSettings } from "./views/SettingsView";

export function App() {
  const route = useRoute();
  const qc = useQueryClient();
  const { toasts, onEvent, close, hold } = useToasts();
  const [menuOpen, setMenuOpen] = useState(false);
  const [quitRequest, setQuitRequest] = useState<QuitRequestDto | null>(null);
  // The theme applies from the first paint of any page.
  useSettings();
  const jobs = useQuery({ queryKey: qk.jobs, queryFn: api.jobsList });
  const anySynced = (jobs.data ?? []).some((j) => j.last_execution && ["completed", "completed_with_errors"].includes(j.last_execution.status));
  const menuButton = useRef<HTMLButtonElement>(null);

  // The narrow-window menu closes on navigation and on Escape (focus back on its button).
  useEffect(() => setMenuOpen(false), [route]);
  useEffect(() => {
    if (!menuOpen) return;
    const onKey = (e: KeyboardEvent) => {
      if (e.key === "Escape") {
        setMenuOpen(false);
        menuButton.current?.focus();
      }
    };
    document.addEventListener("keydown", onKey);
    return () => document.removeEventListener("keydown", onKey);
  }, [menuOpen]);

  useEffect(() => {
    let off: (() => void) | undefined;
    let cancelled = false;
    subscribe(qc, navigate, onEvent, setQuitRequest)
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
  }, [qc, onEvent]);

  // Keep the document title useful in the task switcher.
  useEffect(() => {
    document.title = `Syncdesk — ${titleOf(route)}`;
  }, [route]);

  return (
    <div className="app">
      <header className="topbar">
        <button
          ref={menuButton}
          type="button"
          className="menu-btn"
          aria-expanded={menuOpen}
          aria-controls="sidebar"
          data-testid={T.menuButton}
          onClick={() => setMenuOpen((o) => !o)}
        >
          <span aria-hidden="true">☰</span> Menu
        </button>
        <span className="brand topbar-brand">Syncdesk</span>
      </header>
      <Sidebar route={route} open={menuOpen} />
      <main className="main" id="main" tabIndex={-1}>
        <PausedBanner />
        <StartAtLoginOffer show={anySynced} />
        <RouteView route={route} />
      </main>
      <Toasts toasts={toasts} close={close} hold={hold} />
      <QuitDialog request={quitRequest} onClose={() => setQuitRequest(null)} />
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
    case "settings":
      return "Settings";
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
    case "settings":
      return <SettingsView />;
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

function Sidebar({ route, open }: { route: Route; open: boolean }) {
  const health = useQuery({ queryKey: qk.health, queryFn: api.health });
  const jobs = useQuery({ queryKey: qk.jobs, queryFn: api.jobsList });
  const unread = health.data?.unread_alerts ?? 0;
  const expired = health.data?.expired_connections ?? 0;
  const cur = (name: Route["name"]) => (route.name === name ? "page" : undefined);
  return (
    <nav className={open ? "sidebar sidebar-open" : "sidebar"} id="sidebar" aria-label="Main">
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
        <li>
          <Link to={paths.settings()} aria-current={cur("settings")} data-testid={T.navSettings}>
            Settings
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
