// Engine events → TanStack Query invalidation, and shell navigation requests → routes.
import { listen, type UnlistenFn } from "@tauri-apps/api/event";
import type { QueryClient } from "@tanstack/react-query";
import type { EventDto } from "../bindings/EventDto";
import type { NavigateDto } from "../bindings/NavigateDto";
import type { QuitRequestDto } from "../bindings/QuitRequestDto";
import { paths } from "../router";
import { qk } from "./client";

export const EVENT = "syncdesk://event";
export const NAVIGATE = "syncdesk://navigate";
export const QUIT_REQUEST = "syncdesk://quit-request";

/** Which query keys an event makes stale. */
export function keysFor(e: EventDto): readonly (readonly unknown[])[] {
  switch (e.type) {
    case "execution_started":
    case "execution_waiting":
    case "execution_progress":
      return [qk.execution(e.execution_id), qk.executions(e.job_id), qk.jobs];
    case "execution_finished":
    case "breaker_tripped":
    case "retries_exhausted":
      return [
        qk.execution(e.execution_id),
        ["recordErrors", e.execution_id],
        qk.executions(e.job_id),
        qk.failedRecords(e.job_id),
        qk.jobs,
        qk.health,
        qk.alerts,
      ];
    case "retry_scheduled":
      return [qk.execution(e.execution_id), qk.executions(e.job_id), qk.jobs];
    case "connection_expired":
      return [qk.connections, qk.health, qk.alerts, qk.jobs];
    case "dead_lettered":
      return [qk.failedRecords(e.job_id), qk.jobs, qk.health];
    case "records_dead_lettered":
      return [qk.failedRecords(e.job_id), qk.jobs, qk.health, qk.alerts];
    case "alerts_resolved":
      return [qk.alerts, qk.health];
    case "syncs_paused":
      return [qk.health, qk.jobs];
  }
}

/**
 * Whether an event settles what reads show (a run finished, a record dead-lettered, …), so a
 * read already in flight may predate it. TanStack Query joins an invalidation onto a query's
 * first fetch still in flight (it only restarts fetches of queries that have data), which
 * would keep that fetch's older answer. So such a read is cancelled and made again. Progress
 * events do not cancel: they come often, and a read restarted on each might never finish.
 */
export function settles(e: EventDto): boolean {
  return e.type !== "execution_started" && e.type !== "execution_progress" && e.type !== "execution_waiting";
}

/** Make `key` stale; after a settling event, not answered by a read that started before it. */
async function refresh(qc: QueryClient, key: readonly unknown[], settling: boolean) {
  if (settling) await qc.cancelQueries({ queryKey: key });
  await qc.invalidateQueries({ queryKey: key });
}

/** The route a navigate request opens; null for anything it does not know. */
export function routeFor(n: NavigateDto): string | null {
  switch (n.view) {
    case "execution":
      return n.id ? paths.execution(n.id) : null;
    case "connection":
      return n.id ? `${paths.connection(n.id)}?reauth=1` : paths.connections();
    case "job":
      return n.id ? paths.job(n.id) : null;
    case "failed_records":
      return n.id ? paths.job(n.id, "failed") : null;
    case "alerts":
      return paths.alerts();
    default:
      return null;
  }
}

export async function subscribe(
  qc: QueryClient,
  go: (path: string) => void,
  onEvent?: (e: EventDto) => void,
  onQuitRequest?: (q: QuitRequestDto) => void,
): Promise<UnlistenFn> {
  const offs = await Promise.all([
    listen<EventDto>(EVENT, ({ payload }) => {
      if (!payload || typeof payload !== "object" || !("type" in payload)) return;
      const settling = settles(payload);
      for (const key of keysFor(payload)) void refresh(qc, key, settling);
      onEvent?.(payload);
    }),
    listen<NavigateDto>(NAVIGATE, ({ payload }) => {
      const to = payload ? routeFor(payload) : null;
      if (to) go(to);
    }),
    listen<QuitRequestDto>(QUIT_REQUEST, ({ payload }) => {
      if (payload && typeof payload.runs_in_progress === "number") onQuitRequest?.(payload);
    }),
  ]);
  return () => offs.forEach((off) => off());
}
