import { useEffect, useRef, type ReactNode } from "react";
import type { ErrorDto } from "../bindings/ErrorDto";
import { explainError, isCode, toErrorDto } from "../api/errors";
import { Link, paths } from "../router";
import { statusLabel, statusTone } from "../format";
import { T } from "../testids";

export function StatusBadge({ status, testId = T.statusBadge }: { status: string; testId?: string }) {
  const tone = statusTone(status);
  return (
    <span className={`badge badge-${tone}`} data-testid={testId} data-status={status}>
      <span className="badge-dot" aria-hidden="true" />
      {statusLabel(status)}
    </span>
  );
}

export function Loading({ label = "Loading…" }: { label?: string }) {
  return (
    <div className="state state-loading" role="status" aria-live="polite">
      <span className="spinner" aria-hidden="true" />
      {label}
    </div>
  );
}

export function Empty({ title, children, action }: { title: string; children?: ReactNode; action?: ReactNode }) {
  return (
    <div className="state state-empty">
      <div className="state-title">{title}</div>
      {children && <div className="state-body">{children}</div>}
      {action && <div className="state-action">{action}</div>}
    </div>
  );
}

/** An error as the UI shows it: headline and hint chosen by code, message as detail. */
export function ErrorState({
  error,
  onRetry,
  action,
}: {
  error: unknown;
  onRetry?: () => void;
  action?: ReactNode;
}) {
  const err: ErrorDto = toErrorDto(error);
  const ex = explainError(err);
  return (
    <div className="state state-error" role="alert" data-error-code={err.code}>
      <div className="state-title">{ex.title}</div>
      <div className="state-body">{ex.hint}</div>
      {err.message && <div className="state-detail mono">{err.message}</div>}
      <div className="state-action">
        {action}
        {ex.reauth && (
          <Link className="btn btn-primary" to={paths.connections()}>
            Open connections
          </Link>
        )}
        {isCode(err, "sandbox") && (
          <Link className="btn btn-primary" to={paths.sandbox()}>
            Start the sandbox
          </Link>
        )}
        {onRetry && (
          <button className="btn" onClick={onRetry}>
            Try again
          </button>
        )}
      </div>
    </div>
  );
}

/** Inline error for a mutation (below a form or in a dialog). */
export function InlineError({ error }: { error: unknown }) {
  if (!error) return null;
  const err = toErrorDto(error);
  const ex = explainError(err);
  return (
    <div className="inline-error" role="alert" data-error-code={err.code}>
      <strong>{ex.title}.</strong> {err.message || ex.hint}
      {ex.reauth && (
        <>
          {" "}
          <Link to={paths.connections()}>Re-authenticate →</Link>
        </>
      )}
      {isCode(err, "sandbox") && (
        <>
          {" "}
          <Link to={paths.sandbox()}>Start the sandbox →</Link>
        </>
      )}
    </div>
  );
}

/** A modal dialog on the native <dialog> element: focus trapping and Escape come for free. */
export function Dialog({
  open,
  title,
  onClose,
  children,
  footer,
}: {
  open: boolean;
  title: string;
  onClose: () => void;
  children: ReactNode;
  footer?: ReactNode;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    if (open && !d.open) {
      if (typeof d.showModal === "function") d.showModal();
      else d.setAttribute("open", "");
    } else if (!open && d.open) {
      if (typeof d.close === "function") d.close();
      else d.removeAttribute("open");
    }
  }, [open]);
  return (
    <dialog
      ref={ref}
      className="dialog"
      aria-label={title}
      onCancel={(e) => {
        e.preventDefault();
        onClose();
      }}
    >
      {open && (
        <>
          <header className="dialog-head">
            <h2>{title}</h2>
            <button className="icon-btn" aria-label="Close" onClick={onClose}>
              ×
            </button>
          </header>
          <div className="dialog-body">{children}</div>
          {footer && <footer className="dialog-foot">{footer}</footer>}
        </>
      )}
    </dialog>
  );
}

/** A side drawer (modal, Escape closes). */
export function Drawer({
  title,
  onClose,
  children,
  testId,
}: {
  title: ReactNode;
  onClose: () => void;
  children: ReactNode;
  testId?: string;
}) {
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const prev = document.activeElement as HTMLElement | null;
    ref.current?.focus();
    const onKey = (e: KeyboardEvent) => {
      if (e.key === "Escape") onClose();
    };
    window.addEventListener("keydown", onKey);
    return () => {
      window.removeEventListener("keydown", onKey);
      prev?.focus?.();
    };
  }, [onClose]);
  return (
    <div className="drawer-backdrop" onClick={onClose}>
      <aside
        className="drawer"
        role="dialog"
        aria-modal="true"
        tabIndex={-1}
        ref={ref}
        data-testid={testId}
        onClick={(e) => e.stopPropagation()}
      >
        <header className="drawer-head">
          <h2>{title}</h2>
          <button className="icon-btn" aria-label="Close" onClick={onClose}>
            ×
          </button>
        </header>
        <div className="drawer-body">{children}</div>
      </aside>
    </div>
  );
}

export function PageHeader({ title, sub, actions }: { title: ReactNode; sub?: ReactNode; actions?: ReactNode }) {
  return (
    <header className="page-head">
      <div>
        <h1>{title}</h1>
        {sub && <div className="page-sub">{sub}</div>}
      </div>
      {actions && <div className="page-actions">{actions}</div>}
    </header>
  );
}

export function Stat({ label, value, tone }: { label: string; value: ReactNode; tone?: string }) {
  return (
    <div className={`stat ${tone ? `stat-${tone}` : ""}`}>
      <div className="stat-label">{label}</div>
      <div className="stat-value">{value}</div>
    </div>
  );
}

/** What a paginated list's "load more" button needs from its TanStack infinite query. */
type MorePages = { hasNextPage: boolean; isFetchingNextPage: boolean; fetchNextPage: () => unknown };

/** The "load more" button of a keyset-paginated list; nothing when there is no next page. */
export function LoadMore({ q, label = "Load more" }: { q: MorePages; label?: string }) {
  if (!q.hasNextPage) return null;
  return (
    <button className="btn" data-testid={T.loadMore} disabled={q.isFetchingNextPage} onClick={() => void q.fetchNextPage()}>
      {q.isFetchingNextPage ? "Loading…" : label}
    </button>
  );
}
