import { useInfiniteQuery } from "@tanstack/react-query";
import { createColumnHelper, flexRender, getCoreRowModel, useReactTable } from "@tanstack/react-table";
import { useMemo } from "react";
import { api, qk } from "../api/client";
import type { ExecutionDto } from "../bindings/ExecutionDto";
import { failureLabel, formatDuration, formatRelative, formatTime, humanize, retryText } from "../format";
import { Link, navigate, paths } from "../router";
import { T } from "../testids";
import { BreakdownBar } from "./BreakdownBar";
import { Empty, ErrorState, LoadMore, Loading, StatusBadge } from "./ui";

const col = createColumnHelper<ExecutionDto>();

/** newest first; status, trigger, attempt, duration, counts; retry chains visible. */
export function ExecutionsTable({ jobId, emptyAction }: { jobId: string; emptyAction?: React.ReactNode }) {
  const q = useInfiniteQuery({
    queryKey: qk.executions(jobId),
    queryFn: ({ pageParam }) => api.executionsList(jobId, pageParam),
    initialPageParam: null as string | null,
    getNextPageParam: (last) => last.next_cursor ?? undefined,
    refetchInterval: (query) =>
      query.state.data?.pages[0]?.items.some((e) => e.status === "running" || e.status === "queued") ? 2000 : false,
  });
  const data = useMemo(() => q.data?.pages.flatMap((p) => p.items) ?? [], [q.data]);
  const columns = useMemo(
    () => [
      col.accessor("status", {
        header: "Status",
        cell: (c) => (
          <Link to={paths.execution(c.row.original.id)} className="row-link" title={`Open execution ${c.row.original.id}`}>
            <StatusBadge status={c.getValue()} />
          </Link>
        ),
      }),
      col.accessor("trigger", {
        header: "Trigger",
        cell: (c) => {
          const e = c.row.original;
          return (
            <span className={e.retry_of ? "retry-of" : ""}>
              {e.retry_of && <span aria-hidden="true">↳ </span>}
              {humanize(e.trigger)}
              {e.record_id && <span className="muted mono"> {e.record_id}</span>}
              {e.retry_of && (
                <span className="muted">
                  {" "}
                  of{" "}
                  <Link to={paths.execution(e.retry_of)} className="mono">
                    {e.retry_of.slice(0, 8)}
                  </Link>
                </span>
              )}
            </span>
          );
        },
      }),
      col.accessor("attempt", { header: "Attempt", cell: (c) => <span className="num">{c.getValue()}</span> }),
      col.accessor("started_at", {
        header: "Started",
        cell: (c) => <time title={formatTime(c.getValue() ?? c.row.original.created_at)}>{formatRelative(c.getValue() ?? c.row.original.created_at)}</time>,
      }),
      col.accessor("duration_ms", { header: "Duration", cell: (c) => <span className="num">{formatDuration(c.getValue())}</span> }),
      col.display({
        id: "counts",
        header: "Records",
        cell: (c) => {
          const k = c.row.original.counts;
          return (
            <div className="counts-cell">
              <BreakdownBar counts={k} compact />
              <span className="counts-text">
                <span className="c-created" title="created">{k.created}</span>
                <span className="c-updated" title="updated">{k.updated}</span>
                <span className="c-skipped" title="skipped">{k.skipped}</span>
                <span className={`c-failed ${k.failed === 0 ? "c-zero" : ""}`} title="failed">{k.failed}</span>
              </span>
            </div>
          );
        },
      }),
      col.display({
        id: "note",
        header: "Note",
        cell: (c) => {
          const e = c.row.original;
          const retry = retryText(e.retry);
          if (retry && e.retry.state !== "retried") return <span className="muted">{retry}</span>;
          return <span className="cell-note">{e.note ?? (e.failure_kind ? failureLabel(e.failure_kind) : "")}</span>;
        },
      }),
    ],
    [],
  );
  const table = useReactTable({ data, columns, getRowId: (r) => r.id, getCoreRowModel: getCoreRowModel() });

  if (q.isPending) return <Loading label="Loading executions…" />;
  if (q.isError) return <ErrorState error={q.error} onRetry={() => void q.refetch()} />;
  if (data.length === 0)
    return (
      <Empty title="No runs yet" action={emptyAction}>
        Run the job to see its history here, newest first.
      </Empty>
    );
  return (
    <div className="table-wrap">
      <table className="table table-click">
        <thead>
          {table.getHeaderGroups().map((hg) => (
            <tr key={hg.id}>
              {hg.headers.map((h) => (
                <th key={h.id} scope="col" className={`col-${h.column.id}`}>
                  {flexRender(h.column.columnDef.header, h.getContext())}
                </th>
              ))}
            </tr>
          ))}
        </thead>
        <tbody>
          {table.getRowModel().rows.map((row) => (
            <tr
              key={row.id}
              data-testid={T.executionRow}
              data-execution-id={row.original.id}
              data-status={row.original.status}
              className={`exec-${row.original.status}`}
              onClick={(e) => {
                if ((e.target as HTMLElement).closest("a,button")) return;
                navigate(paths.execution(row.original.id));
              }}
            >
              {row.getVisibleCells().map((cell) => (
                <td key={cell.id} className={`col-${cell.column.id}`}>
                  {flexRender(cell.column.columnDef.cell, cell.getContext())}
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
      {q.hasNextPage && (
        <footer className="list-foot">
          <LoadMore q={q} label="Load older runs" />
        </footer>
      )}
    </div>
  );
}
