import { useInfiniteQuery } from "@tanstack/react-query";
import { useState } from "react";
import { api, qk } from "../api/client";
import { formatRecordError, formatRecordErrorPlain, formatShortTime, formatTime, kindLabel, plural, rowKindLabel } from "../format";
import { T } from "../testids";
import { Empty, ErrorState, LoadMore, Loading } from "./ui";

/**
 * every failed record of an execution, in the spec's line format, paginated (keyset
 * cursor) and filterable by error kind. The kinds and their counts come from the execution's
 * `error_counts`, so the filter shows only kinds that happened.
 */
export function ErrorLog({ executionId, errorCounts }: { executionId: string; errorCounts: Record<string, number> }) {
  const [kind, setKind] = useState<string | null>(null);
  const kinds = Object.entries(errorCounts).sort((a, b) => b[1] - a[1]);
  const total = kinds.reduce((n, [, c]) => n + c, 0);
  const q = useInfiniteQuery({
    // Keyed by the execution's error total, not only invalidated by its events: a first fetch
    // still in flight when the run finishes absorbs the invalidation (TanStack dedupes onto
    // it) and would leave the log at what it held mid-run.
    queryKey: qk.recordErrors(executionId, kind, total),
    queryFn: ({ pageParam }) => api.recordErrors(executionId, kind, pageParam),
    initialPageParam: null as string | null,
    getNextPageParam: (last) => last.next_cursor ?? undefined,
    // A new total keeps the rows on screen while it reloads; a new kind does not show the old.
    placeholderData: (previous, previousQuery) => (previousQuery?.queryKey[2] === kind ? previous : undefined),
  });
  const rows = q.data?.pages.flatMap((p) => p.items) ?? [];

  return (
    <section className="panel" aria-labelledby="errlog-h">
      <header className="panel-head">
        <h2 id="errlog-h">Error log</h2>
        <label className="inline-field">
          <span>Kind</span>
          <select
            data-testid={T.errorKindFilter}
            value={kind ?? ""}
            onChange={(e) => setKind(e.target.value || null)}
          >
            <option value="">All kinds ({total.toLocaleString()})</option>
            {kinds.map(([k, c]) => (
              <option key={k} value={k}>
                {kindLabel(k)} ({c.toLocaleString()})
              </option>
            ))}
          </select>
        </label>
      </header>
      {q.isPending ? (
        <Loading label="Loading errors…" />
      ) : q.isError ? (
        <ErrorState error={q.error} onRetry={() => void q.refetch()} />
      ) : rows.length === 0 ? (
        <Empty title={kind ? `No “${kindLabel(kind)}” errors` : "No record errors"}>
          {kind ? "Pick another kind or show all." : "Every processed record went through."}
        </Empty>
      ) : (
        <>
          <ol className="errlog" aria-label="Record errors">
            {rows.map((e) => (
              <li key={e.id} className="errlog-row" data-testid={T.errorRow} data-kind={e.kind}>
                <span className={`kind-chip kind-${e.kind}`} title={e.kind}>
                  {rowKindLabel(e.kind)}
                </span>
                <span className="errlog-text mono" title={formatRecordError(e)}>
                  {formatRecordErrorPlain(e)}
                </span>
                <span className="errlog-meta">
                  {e.entity}
                  {e.field ? ` · ${e.field}` : ""} · <time dateTime={e.at ?? undefined} title={formatTime(e.at)}>{formatShortTime(e.at)}</time>
                </span>
              </li>
            ))}
          </ol>
          <footer className="list-foot">
            <span className="muted">
              Showing {plural(rows.length, "error")}
              {kind ? ` of kind “${kindLabel(kind)}”` : ""}
            </span>
            <LoadMore q={q} />
          </footer>
        </>
      )}
    </section>
  );
}
