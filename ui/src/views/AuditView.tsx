import { useInfiniteQuery } from "@tanstack/react-query";
import { api, qk } from "../api/client";
import { Empty, ErrorState, LoadMore, Loading, PageHeader } from "../components/ui";
import { formatTime, humanize } from "../format";
import { T } from "../testids";

export function AuditView() {
  const q = useInfiniteQuery({
    queryKey: qk.audit,
    queryFn: ({ pageParam }) => api.auditList(pageParam),
    initialPageParam: null as string | null,
    getNextPageParam: (last) => last.next_cursor ?? undefined,
  });
  return (
    <div className="page">
      <PageHeader title="Audit log" sub="Who did what, when, and why: dismissals, retries, re-authentications, settings changes." />
      <section className="panel">
        {q.isPending ? (
          <Loading label="Loading audit log…" />
        ) : q.isError ? (
          <ErrorState error={q.error} onRetry={() => void q.refetch()} />
        ) : q.data.pages[0].items.length === 0 ? (
          <Empty title="Nothing recorded yet">Dismissing a failed record, retrying one or changing a job is recorded here.</Empty>
        ) : (
          <div className="table-wrap">
            <table className="table">
              <thead>
                <tr>
                  <th scope="col">When</th>
                  <th scope="col">Who</th>
                  <th scope="col">Action</th>
                  <th scope="col">Subject</th>
                  <th scope="col">Note</th>
                </tr>
              </thead>
              <tbody>
                {q.data.pages
                  .flatMap((p) => p.items)
                  .map((a) => (
                    <tr key={a.id} data-testid={T.auditRow}>
                      <td className="nowrap muted">{formatTime(a.at)}</td>
                      <td>{a.actor}</td>
                      <td>
                        <span className="chip chip-muted">{humanize(a.action)}</span>
                      </td>
                      <td className="mono">{a.subject}</td>
                      <td>{a.note ?? <span className="muted">—</span>}</td>
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
      </section>
    </div>
  );
}
