//! Toasts: short news about a job or connection that goes away by itself (after a few seconds,
//! unless the pointer or focus is on it), when its cause clears, or when dismissed. They sit
//! bottom-left over the sidebar so they never cover the main pane's buttons, and a closed toast
//! keeps its slot (invisible) while the pointer is over the stack so nothing shifts under it.
import { useCallback, useEffect, useRef, useState } from "react";
import type { EventDto } from "../bindings/EventDto";
import { plural } from "../format";
import { Link, paths } from "../router";

export const TOAST_MS = 6000;
export const MAX_TOASTS = 3;

export interface Toast {
  id: number;
  tone: "bad" | "warn" | "info";
  text: string;
  to: string;
  /** What the toast is about, so it can go when that clears. */
  jobId?: string;
  connectionId?: string;
  /** Closed while the pointer was over the stack: kept invisible to hold its place. */
  gone?: boolean;
}

export function toastFor(e: EventDto, id: number): Toast | null {
  switch (e.type) {
    case "breaker_tripped":
      return { id, tone: "bad", text: `${e.job_name} stopped early: most records were failing`, to: paths.execution(e.execution_id), jobId: e.job_id };
    case "retries_exhausted":
      return {
        id,
        tone: "bad",
        text: `${e.job_name}: automatic retries used up after ${plural(e.attempts, "attempt")}`,
        to: paths.execution(e.execution_id),
        jobId: e.job_id,
      };
    case "connection_expired":
      return { id, tone: "bad", text: `${e.connection_name} needs you to sign in again`, to: `${paths.connection(e.connection_id)}?reauth=1`, connectionId: e.connection_id };
    case "records_dead_lettered":
      return { id, tone: "warn", text: `${e.job_name}: ${plural(e.count, "record")} moved to Failed Records`, to: paths.job(e.job_id, "failed"), jobId: e.job_id };
    case "execution_finished":
      if (e.status === "completed_with_errors")
        return {
          id,
          tone: "warn",
          text: `${e.job_name} completed with ${plural(e.counts.failed, "failed record")}`,
          to: paths.execution(e.execution_id),
          jobId: e.job_id,
        };
      if (e.status === "failed" || e.status === "timed_out")
        return { id, tone: "bad", text: `${e.job_name} ${e.status === "failed" ? "failed" : "timed out"}`, to: paths.execution(e.execution_id), jobId: e.job_id };
      return null;
    default:
      return null;
  }
}

/** The toasts that an event clears: its cause is gone (alerts resolved, a clean run). */
export function clearedBy(e: EventDto, t: Toast): boolean {
  if (e.type === "alerts_resolved")
    return (e.job_id !== null && t.jobId === e.job_id) || (e.connection_id !== null && t.connectionId === e.connection_id);
  if (e.type === "execution_finished" && e.status === "completed") return t.jobId === e.job_id;
  return false;
}

/** The stack after an event: cleared toasts closed, a new one added (at most MAX_TOASTS shown). */
export function applyEvent(ts: Toast[], e: EventDto, id: number, held: boolean): Toast[] {
  let next = ts.flatMap((t) => (clearedBy(e, t) ? (held ? [{ ...t, gone: true }] : []) : [t]));
  const t = toastFor(e, id);
  if (t) next = [...next, t];
  // Oldest live toasts go first when there are too many.
  let live = next.filter((x) => !x.gone).length;
  next = next.flatMap((x) => {
    if (!x.gone && live > MAX_TOASTS) {
      live--;
      return held ? [{ ...x, gone: true }] : [];
    }
    return [x];
  });
  return next;
}

/** The toast stack state, fed by engine events. */
export function useToasts() {
  const [toasts, setToasts] = useState<Toast[]>([]);
  const held = useRef(false);
  const n = useRef(0);
  const onEvent = useCallback((e: EventDto) => {
    setToasts((ts) => applyEvent(ts, e, ++n.current, held.current));
  }, []);
  const close = useCallback((id: number) => {
    setToasts((ts) => (held.current ? ts.map((t) => (t.id === id ? { ...t, gone: true } : t)) : ts.filter((t) => t.id !== id)));
  }, []);
  const hold = useCallback((on: boolean) => {
    held.current = on;
    if (!on) setToasts((ts) => ts.filter((t) => !t.gone));
  }, []);
  return { toasts, onEvent, close, hold };
}

export function Toasts({ toasts, close, hold }: Pick<ReturnType<typeof useToasts>, "toasts" | "close" | "hold">) {
  return (
    <div className="toasts" aria-live="polite" data-testid="toasts" onMouseEnter={() => hold(true)} onMouseLeave={() => hold(false)}>
      {toasts.map((t) => (
        <ToastItem key={t.id} toast={t} close={close} />
      ))}
    </div>
  );
}

function ToastItem({ toast: t, close }: { toast: Toast; close: (id: number) => void }) {
  const [paused, setPaused] = useState(false);
  const focused = useRef(false);
  useEffect(() => {
    if (paused || t.gone) return;
    const timer = setTimeout(() => close(t.id), TOAST_MS);
    return () => clearTimeout(timer);
  }, [paused, t.gone, t.id, close]);
  if (t.gone) {
    return (
      <div className={`toast toast-${t.tone} toast-gone`} aria-hidden="true" inert>
        <span>{t.text} →</span>
        <span className="icon-btn">×</span>
      </div>
    );
  }
  return (
    <div
      className={`toast toast-${t.tone}`}
      data-testid="toast"
      onMouseEnter={() => setPaused(true)}
      onMouseLeave={() => setPaused(focused.current)}
      onFocus={() => {
        focused.current = true;
        setPaused(true);
      }}
      onBlur={() => {
        focused.current = false;
        setPaused(false);
      }}
    >
      <Link to={t.to} onClick={() => close(t.id)}>
        {t.text} →
      </Link>
      <button className="icon-btn" aria-label="Dismiss" onClick={() => close(t.id)}>
        ×
      </button>
    </div>
  );
}
