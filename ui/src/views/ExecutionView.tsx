import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, qk } from "../api/client";
import type { DiagnosisDto } from "../bindings/DiagnosisDto";
import type { ExecutionDetailDto } from "../bindings/ExecutionDetailDto";
import type { SchemaChangeDto } from "../bindings/SchemaChangeDto";
import { BreakdownBar } from "../components/BreakdownBar";
import { ErrorLog } from "../components/ErrorLog";
import { ErrorState, InlineError, Loading, PageHeader, Stat, StatusBadge } from "../components/ui";
import { formatDuration, formatRelative, formatShortTime, formatTime, failureLabel, humanize, isSkipKind, plural, retryText } from "../format";
import { Link, navigate, paths } from "../router";
import { T } from "../testids";

const RUNNING = new Set(["queued", "running"]);

export function ExecutionView({ id }: { id: string }) {
  const q = useQuery({
    queryKey: qk.execution(id),
    queryFn: () => api.executionGet(id),
    // Events invalidate this while it runs; the interval is a safety net if one is missed.
    refetchInterval: (query) => (query.state.data && RUNNING.has(query.state.data.status) ? 2000 : false),
  });
  if (q.isPending) return <Loading label="Loading execution…" />;
  if (q.isError) return <ErrorState error={q.error} onRetry={() => void q.refetch()} />;
  return <ExecutionDetail ex={q.data} />;
}

function ExecutionDetail({ ex }: { ex: ExecutionDetailDto }) {
  const qc = useQueryClient();
  const running = RUNNING.has(ex.status);
  const job = useQuery({ queryKey: qk.job(ex.job_id), queryFn: () => api.jobGet(ex.job_id) });
  const cancel = useMutation({
    mutationFn: () => api.executionCancel(ex.id),
    onSettled: () => qc.invalidateQueries({ queryKey: qk.execution(ex.id) }),
  });
  const breaker = ex.failure_kind === "circuit_breaker";

  return (
    <div className="page">
      <nav className="crumbs" aria-label="Breadcrumb">
        <Link to={paths.job(ex.job_id)}>{ex.job_name}</Link> <span aria-hidden="true">/</span> Executions <span aria-hidden="true">/</span>{" "}
        <span className="mono">{ex.id.slice(0, 8)}</span>
      </nav>
      <PageHeader
        title={
          <>
            {ex.job_name} <StatusBadge status={ex.status} testId={T.executionStatus} />
          </>
        }
        sub={
          <>
            Execution <span className="mono">{ex.id.slice(0, 8)}</span> · {humanize(ex.trigger)} · attempt {ex.attempt}
            {ex.retry_of && (
              <>
                {" "}
                (retry of <Link to={paths.execution(ex.retry_of)} className="mono">{ex.retry_of.slice(0, 8)}</Link>)
              </>
            )}{" "}
            · {ex.mode} · {ex.entity}
            {ex.record_id && (
              <>
                {" "}
                · record <span className="mono">{ex.record_id}</span>
              </>
            )}
          </>
        }
        actions={
          running ? (
            <button className="btn" onClick={() => cancel.mutate()} disabled={cancel.isPending}>
              Cancel run
            </button>
          ) : undefined
        }
      />
      <InlineError error={cancel.error} />

      {running && (
        <div className="banner banner-info" role="status" aria-live="polite">
          <span className="spinner" aria-hidden="true" />
          Running — {plural(ex.counts.processed, "record")} processed so far
          {ex.batch_in_progress && (
            <>
              , batch <span className="mono">{ex.batch_in_progress}</span>
            </>
          )}
          {ex.started_at && <>, {formatDuration(Date.now() - new Date(ex.started_at).getTime())} elapsed</>}.
          {ex.waiting && (
            <div className="banner-sub" data-testid={T.executionWaiting}>
              Waiting: {ex.waiting.reason}; resuming at <time dateTime={ex.waiting.until ?? undefined}>{formatTime(ex.waiting.until)}</time>.
            </div>
          )}
        </div>
      )}

      {ex.note && (
        <div className={`banner ${breaker ? "banner-bad" : "banner-warn"}`} data-testid={T.executionNote}>
          <div className="banner-title" title={ex.failure_kind ?? undefined}>{ex.failure_kind ? failureLabel(ex.failure_kind) : "Note"}</div>
          <div>{ex.note}</div>
          {breaker && (
            <div className="banner-sub">
              Syncdesk stops a run once more than half of the records it processed fail (its circuit breaker), so a broken
              source does not flood Failed Records. The remaining records were not processed; the next attempt starts afresh.
            </div>
          )}
        </div>
      )}

      {ex.status === "timed_out" && ex.batch_in_progress && (
        <div className="banner banner-warn">
          Timed out while processing batch <span className="mono">{ex.batch_in_progress}</span>. Counts are kept as they
          were; records committed before the timeout are saved.
        </div>
      )}

      <div className="stats">
        <Stat label="Started" value={<span className="stat-value-sm" title={formatTime(ex.started_at)}>{formatShortTime(ex.started_at)}</span>} />
        <Stat label="Finished" value={<span className="stat-value-sm" title={formatTime(ex.finished_at)}>{running ? "—" : formatShortTime(ex.finished_at)}</span>} />
        <Stat label="Duration" value={running && ex.started_at ? `${formatDuration(Date.now() - new Date(ex.started_at).getTime())} so far` : formatDuration(ex.duration_ms)} />
        <Stat label="Request retries" value={ex.request_retries} tone={ex.request_retries ? "warn" : undefined} />
        <Stat label="Rate-limit waits" value={ex.rate_limit_waits} tone={ex.rate_limit_waits ? "warn" : undefined} />
        {ex.ran_by && <Stat label="Ran on" value={<span className="stat-value-sm">{ex.ran_by}</span>} />}
        {ex.excluded > 0 && <Stat label="Not tried: in Failed Records" value={ex.excluded} />}
        {retryText(ex.retry) && (
          <Stat
            label="Automatic retry"
            value={<span className="stat-value-sm" data-retry={ex.retry.state}>{retryText(ex.retry)}</span>}
            tone={ex.retry.state === "pending" || ex.retry.state === "waiting_for_reauth" ? "info" : undefined}
          />
        )}
      </div>

      <section className="panel" aria-labelledby="bd-h">
        <header className="panel-head">
          <h2 id="bd-h">Records</h2>
        </header>
        <BreakdownBar counts={ex.counts} />
        {!running && <CountsNote ex={ex} />}
      </section>

      {ex.diagnosis.length > 0 && (
        <section className="panel diagnosis" data-testid={T.diagnosis} aria-labelledby="dx-h">
          <header className="panel-head">
            <h2 id="dx-h">Diagnosis</h2>
          </header>
          {ex.diagnosis.map((d, i) => (
            <DiagnosisItem key={`${d.pattern}-${i}`} d={d} ex={ex} connectionId={job.data?.connection_id ?? null} />
          ))}
        </section>
      )}

      {ex.chain.length > 1 && (
        <section className="panel" aria-labelledby="chain-h">
          <header className="panel-head">
            <h2 id="chain-h">Retry chain</h2>
          </header>
          <ol className="chain">
            {ex.chain.map((cid, i) => (
              <li key={cid} className={cid === ex.id ? "current" : ""}>
                {cid === ex.id ? (
                  <span>
                    Attempt {i + 1} <span className="mono">{cid.slice(0, 8)}</span> (this one)
                  </span>
                ) : (
                  <Link to={paths.execution(cid)}>
                    Attempt {i + 1} <span className="mono">{cid.slice(0, 8)}</span>
                  </Link>
                )}
              </li>
            ))}
          </ol>
        </section>
      )}

      <ErrorLog executionId={ex.id} errorCounts={ex.error_counts} />
    </div>
  );
}

/**
 * Why the numbers differ, from this execution's own counts (decided by the engine): failed
 * records are tried again by the next run and reach Failed Records only after their third
 * failure; duplicates are skipped records that still have an error-log line.
 */
function CountsNote({ ex }: { ex: ExecutionDetailDto }) {
  const failed = ex.counts.failed;
  const dup = ex.error_counts.DuplicateConflict ?? 0;
  const errors = Object.entries(ex.error_counts).reduce((n, [k, c]) => (isSkipKind(k) ? n : n + c), 0);
  if (failed === 0 && dup === 0) return null;
  return (
    <div className="counts-note" data-testid={T.countsNote}>
      {failed > 0 && (
        <p>
          {plural(failed, "record")} failed in this run. The next run tries {failed === 1 ? "it" : "them"} again; a record that
          has failed in three runs moves to <Link to={paths.job(ex.job_id, "failed")}>Failed Records</Link> and waits for
          you there.
        </p>
      )}
      {errors > failed && (
        <p>
          The error log has {plural(errors, "error")} for {failed === 1 ? "this record" : `these ${plural(failed, "record")}`}: one
          record can fail for more than one reason.
        </p>
      )}
      {dup > 0 && (
        <p>
          {plural(dup, "duplicate")} {dup === 1 ? "was" : "were"} skipped, not failed: the error log lists{" "}
          {dup === 1 ? "it" : "them"} as “Skipped: duplicate”.
        </p>
      )}
    </div>
  );
}

const ACTION_LABEL: Record<string, string> = {
  reauthenticate: "Re-authenticate",
  edit_mappings: "Edit mappings",
  open_failed_records: "Open failed records",
  edit_job_settings: "Edit job settings",
  retry_now: "Run again now",
};

/** What changed in the provider's fields: the fields to remap first, then the diff. */
function SchemaChangeNote({ c }: { c: SchemaChangeDto }) {
  const rows: { field: string; change: "missing" | "removed" | "added"; text: string }[] = [
    ...c.missing.map((field) => ({ field, change: "missing" as const, text: "read by your mappings, no longer sent" })),
    ...c.removed.filter((f) => !c.missing.includes(f)).map((field) => ({ field, change: "removed" as const, text: "no longer sent" })),
    ...c.added.map((field) => ({ field, change: "added" as const, text: "new" })),
  ];
  return (
    <div className="dx-schema" data-testid={T.schemaChange}>
      <h4>What changed in {c.entity}</h4>
      {rows.length > 0 ? (
        <ul className="field-diff">
          {rows.map((r) => (
            <li key={`${r.change}-${r.field}`} className={`field-${r.change}`} data-field={r.field} data-change={r.change}>
              <span className="field-sign" aria-hidden="true">{r.change === "added" ? "+" : "−"}</span>
              <code>{r.field}</code> <span className="muted">{r.text}</span>
            </li>
          ))}
        </ul>
      ) : (
        <p className="muted">The fields your mappings read are all still sent; a field's type changed.</p>
      )}
      <p className="muted dx-schema-when">
        {c.changed_at
          ? <>Fields changed {formatRelative(c.changed_at)} (<time dateTime={c.changed_at}>{formatTime(c.changed_at)}</time>).</>
          : <>No earlier field set to compare with; fields last seen {formatRelative(c.observed_at)}.</>}
      </p>
    </div>
  );
}

function DiagnosisItem({ d, ex, connectionId }: { d: DiagnosisDto; ex: ExecutionDetailDto; connectionId: string | null }) {
  const qc = useQueryClient();
  const run = useMutation({
    mutationFn: () => api.jobRun(ex.job_id),
    onSuccess: (started) => {
      void qc.invalidateQueries({ queryKey: qk.executions(ex.job_id) });
      navigate(paths.execution(started.id));
    },
  });
  const act = (a: string) => {
    switch (a) {
      case "reauthenticate":
        if (connectionId) navigate(`${paths.connection(connectionId)}?reauth=1`);
        else navigate(paths.connections());
        return;
      case "edit_mappings":
        navigate(`${paths.job(ex.job_id, "settings")}?focus=mappings`);
        return;
      case "edit_job_settings":
        navigate(paths.job(ex.job_id, "settings"));
        return;
      case "open_failed_records":
        navigate(paths.job(ex.job_id, "failed"));
        return;
      case "retry_now":
        run.mutate();
        return;
    }
  };
  return (
    <article className={`dx dx-${d.pattern}`} data-pattern={d.pattern}>
      <h3>{d.title}</h3>
      <dl>
        <dt>Likely cause</dt>
        <dd>{d.likely_cause}</dd>
        <dt>Resolution</dt>
        <dd>{d.resolution}</dd>
      </dl>
      {d.pattern === "schema_change" && ex.schema_change && <SchemaChangeNote c={ex.schema_change} />}
      <div className="dx-actions">
        {d.actions.map((a, i) =>
          a === "wait_for_retry" ? (
            <span key={a} className="muted dx-wait">
              {retryText(ex.retry) ? `${retryText(ex.retry)}.` : "Run the job again when the provider is back."}
            </span>
          ) : (
            <button
              key={a}
              className={`btn ${i === 0 ? "btn-primary" : ""}`}
              data-testid={`${T.diagnosisActionPrefix}${a}`}
              onClick={() => act(a)}
              disabled={a === "retry_now" && run.isPending}
            >
              {ACTION_LABEL[a] ?? humanize(a)}
            </button>
          ),
        )}
      </div>
      <InlineError error={run.error} />
    </article>
  );
}
