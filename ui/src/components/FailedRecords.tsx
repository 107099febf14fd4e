import { useInfiniteQuery, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import {
  createColumnHelper,
  flexRender,
  getCoreRowModel,
  useReactTable,
  type RowSelectionState,
} from "@tanstack/react-table";
import { useMemo, useState } from "react";
import { api, qk } from "../api/client";
import type { DeadLetterDto } from "../bindings/DeadLetterDto";
import type { RecordRetryDto } from "../bindings/RecordRetryDto";
import { formatRecordError, formatRecordErrorPlain, formatRelative, formatTime, plainErrorText, plural } from "../format";
import { Link, paths } from "../router";
import { T } from "../testids";
import { Dialog, Drawer, Empty, ErrorState, InlineError, LoadMore, Loading } from "./ui";

const col = createColumnHelper<DeadLetterDto>();

/**
 * Failed Records: Record ID, Entity Type, First Failed, Last Failed, Attempts, Error,
 * Actions. Retry and Dismiss with a required note, per row and for the selected
 * rows; a drawer shows the stored payload and the record's error history.
 */
export function FailedRecords({ jobId }: { jobId: string }) {
  const qc = useQueryClient();
  const q = useInfiniteQuery({
    queryKey: qk.failedRecords(jobId),
    queryFn: ({ pageParam }) => api.failedRecords(jobId, pageParam),
    initialPageParam: null as string | null,
    getNextPageParam: (last) => last.next_cursor ?? undefined,
  });
  const data = useMemo(() => q.data?.pages.flatMap((p) => p.items) ?? [], [q.data]);
  const [selection, setSelection] = useState<RowSelectionState>({});
  const [dismissIds, setDismissIds] = useState<string[] | null>(null);
  const [openRecord, setOpenRecord] = useState<DeadLetterDto | null>(null);
  const [retryResults, setRetryResults] = useState<RecordRetryDto[] | null>(null);

  const refresh = () => {
    void qc.invalidateQueries({ queryKey: qk.failedRecords(jobId) });
    void qc.invalidateQueries({ queryKey: qk.executions(jobId) });
    void qc.invalidateQueries({ queryKey: qk.jobs });
    void qc.invalidateQueries({ queryKey: qk.audit });
  };
  const retry = useMutation({
    mutationFn: (ids: string[]) => api.failedRecordsRetry(jobId, ids),
    onSuccess: (res) => {
      setRetryResults(res);
      setSelection({});
    },
    onSettled: refresh,
  });

  const columns = useMemo(
    () => [
      col.display({
        id: "select",
        header: ({ table }) => (
          <input
            type="checkbox"
            aria-label="Select all records"
            data-testid={T.failedSelectAll}
            checked={table.getIsAllRowsSelected()}
            ref={(el) => {
              if (el) el.indeterminate = table.getIsSomeRowsSelected();
            }}
            onChange={table.getToggleAllRowsSelectedHandler()}
          />
        ),
        cell: ({ row }) => (
          <input
            type="checkbox"
            aria-label={`Select ${row.original.record_id}`}
            data-testid={T.failedRowCheckbox}
            checked={row.getIsSelected()}
            onChange={row.getToggleSelectedHandler()}
          />
        ),
      }),
      col.accessor("record_id", {
        header: "Record ID",
        cell: (c) => (
          <button className="link-btn mono" onClick={() => setOpenRecord(c.row.original)} title="Show payload and history">
            {c.getValue()}
          </button>
        ),
      }),
      col.accessor("entity", { header: "Entity Type" }),
      col.accessor("first_failed_at", {
        header: "First Failed",
        cell: (c) => <time title={formatTime(c.getValue())}>{formatRelative(c.getValue())}</time>,
      }),
      col.accessor("last_failed_at", {
        header: "Last Failed",
        cell: (c) => <time title={formatTime(c.getValue())}>{formatRelative(c.getValue())}</time>,
      }),
      col.accessor("attempts", { header: "Attempts", cell: (c) => <span className="num">{c.getValue()}</span> }),
      col.accessor("error", {
        header: "Error",
        cell: (c) => {
          const v = c.getValue();
          return v ? (
            <span className="cell-error" title={v}>
              {plainErrorText(v)}
            </span>
          ) : (
            <span className="cell-error">—</span>
          );
        },
      }),
      col.display({
        id: "actions",
        header: "Actions",
        cell: ({ row }) => (
          <div className="row-actions">
            <button
              className="btn btn-sm"
              data-testid={T.failedRetry}
              disabled={retry.isPending}
              onClick={() => retry.mutate([row.original.record_id])}
            >
              Retry
            </button>
            <button
              className="btn btn-sm btn-quiet"
              data-testid={T.failedDismiss}
              onClick={() => setDismissIds([row.original.record_id])}
            >
              Dismiss
            </button>
          </div>
        ),
      }),
    ],
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [retry.isPending],
  );

  const table = useReactTable({
    data,
    columns,
    state: { rowSelection: selection },
    onRowSelectionChange: setSelection,
    getRowId: (r) => r.record_id,
    enableRowSelection: true,
    getCoreRowModel: getCoreRowModel(),
  });
  const selectedIds = Object.keys(selection).filter((k) => selection[k]);

  if (q.isPending) return <Loading label="Loading failed records…" />;
  if (q.isError) return <ErrorState error={q.error} onRetry={() => void q.refetch()} />;

  return (
    <div className="failed-records">
      <div className="toolbar" role="toolbar" aria-label="Bulk actions">
        <span className="muted">
          {selectedIds.length > 0 ? `${plural(selectedIds.length, "record")} selected` : plural(data.length, "record") + (q.hasNextPage ? "+" : "")}
        </span>
        <div className="toolbar-actions">
          <button
            className={`btn ${selectedIds.length ? "btn-primary" : ""}`}
            data-testid={T.bulkRetry}
            disabled={selectedIds.length === 0 || retry.isPending}
            onClick={() => retry.mutate(selectedIds)}
          >
            {retry.isPending ? "Retrying…" : `Retry selected`}
          </button>
          <button
            className="btn"
            data-testid={T.bulkDismiss}
            disabled={selectedIds.length === 0}
            onClick={() => setDismissIds(selectedIds)}
          >
            Dismiss selected…
          </button>
        </div>
      </div>
      <InlineError error={retry.error} />
      {retryResults && <RetrySummary results={retryResults} onClose={() => setRetryResults(null)} />}

      {data.length === 0 ? (
        <Empty title="No failed records">
          A record lands here after failing in three separate runs; it then waits for you to retry or dismiss it.
        </Empty>
      ) : (
        <div className="table-wrap">
          <table className="table">
            <thead>
              {table.getHeaderGroups().map((hg) => (
                <tr key={hg.id}>
                  {hg.headers.map((h) => (
                    <th key={h.id} className={`col-${h.column.id}`} scope="col">
                      {h.isPlaceholder ? null : flexRender(h.column.columnDef.header, h.getContext())}
                    </th>
                  ))}
                </tr>
              ))}
            </thead>
            <tbody>
              {table.getRowModel().rows.map((row) => (
                <tr
                  key={row.id}
                  data-testid={T.failedRow}
                  data-record-id={row.original.record_id}
                  className={row.getIsSelected() ? "selected" : ""}
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
              <LoadMore q={q} />
            </footer>
          )}
        </div>
      )}

      <DismissDialog
        jobId={jobId}
        ids={dismissIds}
        onClose={() => setDismissIds(null)}
        onDone={() => {
          setDismissIds(null);
          setSelection({});
          refresh();
        }}
      />
      {openRecord && <RecordDrawer jobId={jobId} record={openRecord} onClose={() => setOpenRecord(null)} />}
    </div>
  );
}

function RetrySummary({ results, onClose }: { results: RecordRetryDto[]; onClose: () => void }) {
  const ok = results.filter((r) => r.succeeded);
  const bad = results.filter((r) => !r.succeeded);
  return (
    <div className={`banner banner-row ${bad.length ? "banner-warn" : "banner-ok"}`} role="status">
      <div>
        <strong>
          {ok.length > 0 && `${plural(ok.length, "record")} retried successfully and left the queue. `}
          {bad.length > 0 && `${plural(bad.length, "record")} failed again.`}
        </strong>
        {bad.length > 0 && (
          <ul className="retry-failures">
            {bad.slice(0, 5).map((r) => (
              <li key={r.record_id}>
                <span className="mono">{r.record_id}</span>: {r.error ? plainErrorText(r.error) : "failed"} —{" "}
                <Link to={paths.execution(r.execution_id)}>open execution</Link>
              </li>
            ))}
          </ul>
        )}
      </div>
      <button className="icon-btn" aria-label="Dismiss message" onClick={onClose}>
        ×
      </button>
    </div>
  );
}

/** Dismiss asks for a note; the note is required and goes to the audit log. */
export function DismissDialog({
  jobId,
  ids,
  onClose,
  onDone,
}: {
  jobId: string;
  ids: string[] | null;
  onClose: () => void;
  onDone: (dismissed: number) => void;
}) {
  const [note, setNote] = useState("");
  const [touched, setTouched] = useState(false);
  const m = useMutation({
    mutationFn: () => api.failedRecordsDismiss(jobId, ids ?? [], note.trim()),
    onSuccess: (n) => {
      setNote("");
      setTouched(false);
      onDone(n);
    },
  });
  const noteMissing = note.trim().length === 0;
  const close = () => {
    setNote("");
    setTouched(false);
    m.reset();
    onClose();
  };
  const submit = () => {
    setTouched(true);
    if (noteMissing) return;
    m.mutate();
  };
  const n = ids?.length ?? 0;
  return (
    <Dialog
      open={ids !== null}
      title={n === 1 ? `Dismiss ${ids?.[0]}` : `Dismiss ${n} records`}
      onClose={close}
      footer={
        <>
          <button className="btn" onClick={close}>
            Cancel
          </button>
          <button className="btn btn-danger" data-testid={T.dismissConfirm} onClick={submit} disabled={m.isPending}>
            {m.isPending ? "Dismissing…" : n === 1 ? "Dismiss record" : `Dismiss ${n} records`}
          </button>
        </>
      }
    >
      <p>
        Dismissed records are never retried automatically and leave this list. The note is kept in the audit log with your
        name and the time.
      </p>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          submit();
        }}
      >
        <label className="field">
          <span className="field-label">Why are you dismissing {n === 1 ? "it" : "them"}? (required)</span>
          <textarea
            data-testid={T.dismissNote}
            value={note}
            rows={3}
            autoFocus
            aria-invalid={touched && noteMissing}
            aria-describedby="dismiss-note-err"
            onChange={(e) => setNote(e.target.value)}
            placeholder="e.g. Test customer deleted at the source"
          />
          {touched && noteMissing && (
            <span className="field-error" id="dismiss-note-err" data-testid={`${T.fieldErrorPrefix}note`}>
              A note is required to dismiss.
            </span>
          )}
        </label>
      </form>
      <InlineError error={m.error} />
    </Dialog>
  );
}

function RecordDrawer({ jobId, record, onClose }: { jobId: string; record: DeadLetterDto; onClose: () => void }) {
  const h = useQuery({
    queryKey: qk.recordHistory(jobId, record.record_id),
    queryFn: () => api.recordHistory(jobId, record.record_id),
  });
  return (
    <Drawer title={<span className="mono">{record.record_id}</span>} onClose={onClose} testId={T.recordDrawer}>
      <dl className="kv">
        <dt>Entity</dt>
        <dd>{record.entity}</dd>
        <dt>State</dt>
        <dd>{record.state}</dd>
        <dt>Attempts</dt>
        <dd>{record.attempts}</dd>
        <dt>First failed</dt>
        <dd>{formatTime(record.first_failed_at)}</dd>
        <dt>Last failed</dt>
        <dd>{formatTime(record.last_failed_at)}</dd>
      </dl>
      <h3>Stored payload</h3>
      {record.payload === null ? (
        <p className="muted">No payload was stored for this record.</p>
      ) : (
        <pre className="code">{JSON.stringify(record.payload, null, 2)}</pre>
      )}
      <h3>Error history</h3>
      {h.isPending ? (
        <Loading />
      ) : h.isError ? (
        <ErrorState error={h.error} onRetry={() => void h.refetch()} />
      ) : h.data.length === 0 ? (
        <p className="muted">No errors recorded.</p>
      ) : (
        <ol className="history">
          {h.data.map((e) => (
            <li key={e.id}>
              <div className="mono" title={formatRecordError(e)}>
                {formatRecordErrorPlain(e)}
              </div>
              <div className="muted">
                {formatTime(e.at)} · <Link to={paths.execution(e.execution_id)}>execution {e.execution_id.slice(0, 8)}</Link>
              </div>
            </li>
          ))}
        </ol>
      )}
    </Drawer>
  );
}

/**
 * Records that failed in a run but not yet three times: not in Failed Records, the next run
 * tries them again by itself. Shown read-only below the dead letters so "completed with N failed
 * records" never lands on an empty tab.
 */
export function FailingRecords({ jobId }: { jobId: string }) {
  const q = useInfiniteQuery({
    queryKey: qk.failingRecords(jobId),
    queryFn: ({ pageParam }) => api.failingRecords(jobId, pageParam),
    initialPageParam: null as string | null,
    getNextPageParam: (last) => last.next_cursor ?? undefined,
  });
  const rows = q.data?.pages.flatMap((p) => p.items) ?? [];
  return (
    <section className="panel failing-records" aria-labelledby="failing-h" data-testid={T.failingSection}>
      <header className="panel-head">
        <h2 id="failing-h">Failing, will be retried by the next run</h2>
      </header>
      {q.isPending ? (
        <Loading label="Loading failing records…" />
      ) : q.isError ? (
        <ErrorState error={q.error} onRetry={() => void q.refetch()} />
      ) : rows.length === 0 ? (
        <p className="muted panel-body">No other records are failing.</p>
      ) : (
        <>
          <p className="muted panel-body">
            {plural(rows.length, "record")}
            {q.hasNextPage ? "+" : ""} failed in a run but not yet three times. Syncdesk tries them again on the next run;
            a record that fails a third time moves to Failed Records above. Nothing to do here yet.
          </p>
          <div className="table-wrap">
            <table className="table">
              <thead>
                <tr>
                  <th scope="col">Record ID</th>
                  <th scope="col">Entity Type</th>
                  <th scope="col">Last Failed</th>
                  <th scope="col">Failures</th>
                  <th scope="col">Error</th>
                </tr>
              </thead>
              <tbody>
                {rows.map((r) => (
                  <tr key={r.record_id} data-testid={T.failingRow} data-record-id={r.record_id}>
                    <td className="mono">{r.record_id}</td>
                    <td>{r.entity}</td>
                    <td>
                      <time title={formatTime(r.last_failed_at)}>{formatRelative(r.last_failed_at)}</time>
                    </td>
                    <td className="num">{r.attempts} of 3</td>
                    <td className="cell-error" title={r.error ?? undefined}>
                      {r.error ? plainErrorText(r.error) : "—"}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <footer className="list-foot">
            <LoadMore q={q} />
          </footer>
        </>
      )}
    </section>
  );
}
