import { useInfiniteQuery, useMutation, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { api, qk } from "../api/client";
import type { AlertDto } from "../bindings/AlertDto";
import { Empty, ErrorState, InlineError, LoadMore, Loading, PageHeader } from "../components/ui";
import { formatRelative, formatTime, humanize, plural } from "../format";
import { navigate, paths } from "../router";
import { T } from "../testids";

const KIND_TONE: Record<string, string> = {
  circuit_breaker: "bad",
  retries_exhausted: "bad",
  connection_expired: "bad",
  execution_failed: "bad",
  completed_with_errors: "warn",
  dead_letters: "warn",
};

/** What each kind is called on screen: what happened, not how the engine names it. */
const KIND_LABEL: Record<string, string> = {
  circuit_breaker: "Stopped early",
  retries_exhausted: "Retries used up",
  connection_expired: "Sign-in needed",
  execution_failed: "Run failed",
  completed_with_errors: "Some records failed",
  dead_letters: "Failed Records",
};

/** Where clicking an alert goes: the execution, else the connection, else the job. */
export function alertTarget(a: AlertDto): string | null {
  if (a.kind === "connection_expired" && a.connection_id) return `${paths.connection(a.connection_id)}?reauth=1`;
  if (a.execution_id) return paths.execution(a.execution_id);
  if (a.connection_id) return paths.connection(a.connection_id);
  if (a.job_id) return paths.job(a.job_id);
  return null;
}

export function AlertList({ unreadOnly, limit }: { unreadOnly: boolean; limit?: number }) {
  const qc = useQueryClient();
  const q = useInfiniteQuery({
    queryKey: [...qk.alerts, unreadOnly],
    queryFn: ({ pageParam }) => api.alertsList(unreadOnly, pageParam),
    initialPageParam: null as string | null,
    getNextPageParam: (last) => last.next_cursor ?? undefined,
  });
  const markRead = useMutation({
    mutationFn: (id: number) => api.alertMarkRead(id),
    onSettled: () => {
      void qc.invalidateQueries({ queryKey: qk.alerts });
      void qc.invalidateQueries({ queryKey: qk.health });
    },
  });
  if (q.isPending) return <Loading label="Loading alerts…" />;
  if (q.isError) return <ErrorState error={q.error} onRetry={() => void q.refetch()} />;
  let items = q.data.pages.flatMap((p) => p.items);
  const more = limit !== undefined && items.length > limit;
  if (limit !== undefined) items = items.slice(0, limit);
  if (items.length === 0)
    return <Empty title={unreadOnly ? "All caught up" : "No alerts yet"}>Runs stopped early, used-up retries, records moved to Failed Records and connections that need signing in again show up here.</Empty>;
  const open = (a: AlertDto) => {
    const to = alertTarget(a);
    if (!a.read) markRead.mutate(a.id);
    if (to) navigate(to);
  };
  return (
    <>
      <InlineError error={markRead.error} />
      <ul className="alerts">
        {items.map((a) => (
          <li
            key={a.id}
            className={`alert alert-${a.resolved_at ? "ok" : (KIND_TONE[a.kind] ?? "info")} ${a.read || a.resolved_at ? "read" : "unread"}`}
            data-testid={T.alertRow}
            data-alert-id={a.id}
            data-resolved={a.resolved_at ? "true" : "false"}
          >
            <button className="alert-main" onClick={() => open(a)}>
              <span className="alert-kind">{KIND_LABEL[a.kind] ?? humanize(a.kind)}</span>
              <span className="alert-title">
                {a.title}
                {a.occurrences > 1 && <span className="muted small"> · {plural(a.occurrences, "time")}</span>}
              </span>
              <span className="alert-body">{a.resolved_at ? `Resolved: ${a.resolution ?? "the cause cleared"}.` : a.body}</span>
            </button>
            <span className="alert-side">
              <time className="muted small" title={formatTime(a.last_seen_at ?? a.created_at)}>
                {formatRelative(a.last_seen_at ?? a.created_at)}
              </time>
              {!a.read && !a.resolved_at && (
                <button className="btn btn-sm btn-quiet" data-testid={T.alertMarkRead} onClick={() => markRead.mutate(a.id)}>
                  Mark read
                </button>
              )}
            </span>
          </li>
        ))}
      </ul>
      {(more || (limit === undefined && q.hasNextPage)) && (
        <footer className="list-foot">
          {limit === undefined ? (
            <LoadMore q={q} />
          ) : (
            <a href={`#${paths.alerts()}`}>More alerts →</a>
          )}
        </footer>
      )}
    </>
  );
}

export function AlertsView() {
  const [unreadOnly, setUnreadOnly] = useState(false);
  const qc = useQueryClient();
  const markAll = useMutation({
    mutationFn: () => api.alertsMarkAllRead(),
    onSettled: () => {
      void qc.invalidateQueries({ queryKey: qk.alerts });
      void qc.invalidateQueries({ queryKey: qk.health });
    },
  });
  return (
    <div className="page">
      <PageHeader
        title="Alerts"
        sub="Each alert opens the execution or connection it is about. An alert resolves itself when its cause clears."
        actions={
          <div className="row-actions">
            <button className="btn btn-sm" data-testid={T.alertsMarkAllRead} onClick={() => markAll.mutate()} disabled={markAll.isPending}>
              Mark all read
            </button>
          <div className="segmented" role="group" aria-label="Filter">
            <button className={!unreadOnly ? "active" : ""} aria-pressed={!unreadOnly} onClick={() => setUnreadOnly(false)}>
              All
            </button>
            <button className={unreadOnly ? "active" : ""} aria-pressed={unreadOnly} onClick={() => setUnreadOnly(true)}>
              Unread
            </button>
          </div>
          </div>
        }
      />
      <InlineError error={markAll.error} />
      <section className="panel">
        <AlertList unreadOnly={unreadOnly} />
      </section>
    </div>
  );
}
