import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useRef } from "react";
import { api, qk } from "../api/client";
import { ExecutionsTable } from "../components/ExecutionsTable";
import { FailedRecords, FailingRecords } from "../components/FailedRecords";
import { JobEditor } from "../components/JobEditor";
import { ErrorState, InlineError, Loading, PageHeader, StatusBadge } from "../components/ui";
import { formatRelative } from "../format";
import { jobToForm, newJobForm } from "../jobForm";
import { hashQuery, Link, navigate, paths } from "../router";
import { T } from "../testids";

type Tab = "executions" | "failed" | "settings";

export function JobView({ id, tab }: { id: string; tab: Tab }) {
  const qc = useQueryClient();
  const job = useQuery({ queryKey: qk.job(id), queryFn: () => api.jobGet(id) });
  const connections = useQuery({ queryKey: qk.connections, queryFn: api.connectionsList });
  const summary = useQuery({ queryKey: qk.jobs, queryFn: api.jobsList });
  const run = useMutation({
    mutationFn: () => api.jobRun(id),
    onSuccess: (ex) => {
      void qc.invalidateQueries({ queryKey: qk.executions(id) });
      void qc.invalidateQueries({ queryKey: qk.jobs });
      navigate(paths.execution(ex.id));
    },
  });
  const tabRefs = useRef<Record<Tab, HTMLAnchorElement | null>>({ executions: null, failed: null, settings: null });

  if (job.isPending) return <Loading label="Loading job…" />;
  if (job.isError) return <ErrorState error={job.error} onRetry={() => void job.refetch()} />;
  const j = job.data;
  const conn = connections.data?.find((c) => c.id === j.connection_id);
  const s = summary.data?.find((x) => x.job.id === id);
  const deadLetters = s?.dead_letters ?? null;

  const tabs: { key: Tab; label: string; testId: string }[] = [
    { key: "executions", label: "Executions", testId: T.tabExecutions },
    { key: "failed", label: deadLetters ? `Failed Records (${deadLetters.toLocaleString()})` : "Failed Records", testId: T.tabFailed },
    { key: "settings", label: "Settings", testId: T.tabSettings },
  ];
  const onTabKey = (e: React.KeyboardEvent, i: number) => {
    const d = e.key === "ArrowRight" ? 1 : e.key === "ArrowLeft" ? -1 : 0;
    if (!d) return;
    e.preventDefault();
    const next = tabs[(i + d + tabs.length) % tabs.length];
    navigate(paths.job(id, next.key));
    tabRefs.current[next.key]?.focus();
  };

  return (
    <div className="page">
      <PageHeader
        title={j.name}
        sub={
          <>
            {j.direction === "pull" ? "Pull" : "Push"} {j.entity} · {j.mode} · {j.schedule}
            {j.next_run_at && <> · next run {formatRelative(j.next_run_at)}</>}
            {" · "}
            {conn ? (
              <Link to={paths.connection(conn.id)}>
                {conn.name} {conn.status !== "active" && <StatusBadge status={conn.status} />}
              </Link>
            ) : (
              <span className="muted">connection {j.connection_id}</span>
            )}
            {!j.enabled && <span className="badge badge-muted">Disabled</span>}
          </>
        }
        actions={
          <button className="btn btn-primary" data-testid={T.runJob} onClick={() => run.mutate()} disabled={run.isPending}>
            {run.isPending ? "Starting…" : "▶ Run now"}
          </button>
        }
      />
      <InlineError error={run.error} />
      {conn && conn.status === "expired" && (
        <div className="banner banner-bad">
          The connection <strong>{conn.name}</strong> has expired; runs will fail until you{" "}
          <Link to={`${paths.connection(conn.id)}?reauth=1`}>re-authenticate it</Link>.
        </div>
      )}
      <div className="tabs" role="tablist" aria-label="Job sections">
        {tabs.map((t, i) => (
          <a
            key={t.key}
            ref={(el) => {
              tabRefs.current[t.key] = el;
            }}
            role="tab"
            href={`#${paths.job(id, t.key)}`}
            aria-selected={tab === t.key}
            tabIndex={tab === t.key ? 0 : -1}
            className={`tab ${tab === t.key ? "active" : ""}`}
            data-testid={t.testId}
            onKeyDown={(e) => onTabKey(e, i)}
          >
            {t.label}
          </a>
        ))}
      </div>
      <div role="tabpanel" className="tabpanel">
        {tab === "executions" && (
          <ExecutionsTable
            jobId={id}
            emptyAction={
              <button className="btn btn-primary" onClick={() => run.mutate()}>
                Run it now
              </button>
            }
          />
        )}
        {tab === "failed" && (
          <>
            <FailedRecords jobId={id} />
            <FailingRecords jobId={id} />
          </>
        )}
        {tab === "settings" &&
          (connections.isPending ? (
            <Loading />
          ) : (
            <JobEditor
              key={j.id}
              jobId={j.id}
              initial={jobToForm(j)}
              connections={connections.data ?? []}
              focusMappings={hashQuery().get("focus") === "mappings"}
            />
          ))}
      </div>
    </div>
  );
}

export function JobNewView() {
  const connections = useQuery({ queryKey: qk.connections, queryFn: api.connectionsList });
  if (connections.isPending) return <Loading />;
  if (connections.isError) return <ErrorState error={connections.error} onRetry={() => void connections.refetch()} />;
  const conns = connections.data;
  return (
    <div className="page">
      <PageHeader title="New job" sub="Incremental pull on a manual schedule is a safe start; you can change everything later." />
      {conns.length === 0 ? (
        <div className="banner banner-info">
          You need a connection first. <Link to={paths.connections()}>Add one</Link> or{" "}
          <Link to={paths.sandbox()}>start the sandbox</Link>.
        </div>
      ) : (
        <JobEditor
          initial={newJobForm(conns.length === 1 ? conns[0].id : "")}
          connections={conns}
          onSaved={(job) => navigate(paths.job(job.id))}
        />
      )}
    </div>
  );
}
