import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useState } from "react";
import { api, qk } from "../api/client";
import type { SandboxDto } from "../bindings/SandboxDto";
import type { SandboxFaultsDto } from "../bindings/SandboxFaultsDto";
import { ErrorState, InlineError, Loading, PageHeader, StatusBadge } from "../components/ui";
import { formToNewJob } from "../jobForm";
import { Link, navigate, paths } from "../router";
import { sandboxCustomersJob, sandboxInvoicesJob } from "../sandboxPresets";
import { T } from "../testids";

type NumKey = "error_rate" | "error_burst" | "rate_limit_burst" | "latency_ms" | "bad_record_rate";

interface FaultDef {
  name: string;
  title: string;
  what: string;
  /** The value key it turns on, with the value used when toggled on. */
  num?: { key: NumKey; on: number; label: string; min: number; max: number; step: number; unit?: string };
  flag?: "schema_drift" | "credentials_revoked";
}

/** Each switch demonstrates one kind of failure and what Syncdesk does about it. */
export const FAULTS: FaultDef[] = [
  { name: "error-rate", title: "Flaky provider (5xx rate)", what: "A share of requests answer 503; each is retried after 1 s, 5 s, 15 s.", num: { key: "error_rate", on: 0.3, label: "Share of requests", min: 0, max: 1, step: 0.05 } },
  { name: "error-burst", title: "Outage (next requests 503)", what: "The next N requests fail. Past 3 retries the run fails and an automatic retry is scheduled.", num: { key: "error_burst", on: 4, label: "Requests", min: 0, max: 100, step: 1 } },
  { name: "rate-limit", title: "Rate limited (429)", what: "The next N requests answer 429; the run pauses as Retry-After says and resumes.", num: { key: "rate_limit_burst", on: 2, label: "Requests", min: 0, max: 100, step: 1 } },
  { name: "latency", title: "Slow provider / hang", what: "Every response is delayed. With a short job timeout the run ends timed out, keeping its counts.", num: { key: "latency_ms", on: 5000, label: "Delay", min: 0, max: 600000, step: 500, unit: "ms" } },
  { name: "bad-records", title: "Bad records", what: "A share of records is invalid (null email, bad date, dangling reference, duplicate key, wrong type). When more than half fail, the run stops early.", num: { key: "bad_record_rate", on: 0.05, label: "Share of records", min: 0, max: 1, step: 0.01 } },
  { name: "schema-drift", title: "Schema drift", what: "Customers' email is renamed to email_address: every record mismatches and the run stops early.", flag: "schema_drift" },
  { name: "token-expiry", title: "Credentials revoked", what: "Tokens are revoked and refresh fails: the run fails and the connection is marked expired.", flag: "credentials_revoked" },
];

function isOn(f: FaultDef, faults: SandboxFaultsDto): boolean {
  if (f.flag) return faults[f.flag];
  return f.num ? faults[f.num.key] > 0 : false;
}

export function SandboxView() {
  const q = useQuery({ queryKey: qk.sandbox, queryFn: api.sandboxStatus });
  const qc = useQueryClient();
  const start = useMutation({
    mutationFn: api.sandboxStart,
    onSuccess: (s) => {
      qc.setQueryData(qk.sandbox, s);
      void qc.invalidateQueries({ queryKey: qk.connections });
      void qc.invalidateQueries({ queryKey: qk.jobs });
    },
  });
  return (
    <div className="page">
      <PageHeader
        title="Sandbox"
        sub="A practice provider that runs inside Syncdesk on 127.0.0.1. Turn on a fault, run a job, and watch how Syncdesk handles it."
      />
      {q.isPending ? (
        <Loading label="Checking the sandbox…" />
      ) : q.isError ? (
        <ErrorState error={q.error} onRetry={() => void q.refetch()} />
      ) : (
        <>
          <section className="panel sandbox-status" aria-labelledby="sb-h">
            <header className="panel-head">
              <h2 id="sb-h">Status</h2>
              <StatusBadge status={q.data.running ? "running" : "stopped"} testId={T.sandboxStatus} />
            </header>
            {q.data.running ? (
              <dl className="kv">
                <dt>Address</dt>
                <dd className="mono">{q.data.base_url}</dd>
                <dt>Connection</dt>
                <dd>{q.data.connection_id ? <Link to={paths.connection(q.data.connection_id)}>sandbox</Link> : "—"}</dd>
                <dt>Requests served</dt>
                <dd className="num">{q.data.data_requests.toLocaleString()}</dd>
              </dl>
            ) : (
              <div className="sandbox-start">
                <p>The sandbox serves 250 customers, 50 products, 400 invoices and 300 payments over a real OAuth2 API.</p>
                <button className="btn btn-primary btn-lg" data-testid={T.sandboxStart} onClick={() => start.mutate()} disabled={start.isPending}>
                  {start.isPending ? "Starting…" : "Start the sandbox"}
                </button>
              </div>
            )}
            <InlineError error={start.error} />
          </section>
          {q.data.running && <DemoJobs sandbox={q.data} />}
          {q.data.running && <FaultsPanel sandbox={q.data} />}
        </>
      )}
    </div>
  );
}

function DemoJobs({ sandbox }: { sandbox: SandboxDto }) {
  const qc = useQueryClient();
  const jobs = useQuery({ queryKey: qk.jobs, queryFn: api.jobsList });
  const create = useMutation({
    mutationFn: (which: "customers" | "invoices") => {
      const form = which === "customers" ? sandboxCustomersJob(sandbox.connection_id ?? "sandbox") : sandboxInvoicesJob(sandbox.connection_id ?? "sandbox");
      return api.jobCreate(formToNewJob(form));
    },
    onSuccess: () => void qc.invalidateQueries({ queryKey: qk.jobs }),
  });
  const run = useMutation({
    mutationFn: (jobId: string) => api.jobRun(jobId),
    onSuccess: (ex) => navigate(paths.execution(ex.id)),
  });
  const mine = (jobs.data ?? []).filter((s) => s.job.connection_id === sandbox.connection_id);
  const has = (entity: string) => mine.some((s) => s.job.entity === entity);
  return (
    <section className="panel" aria-labelledby="dj-h">
      <header className="panel-head">
        <h2 id="dj-h">Jobs on the sandbox</h2>
      </header>
      {mine.length > 0 && (
        <ul className="demo-jobs">
          {mine.map((s) => (
            <li key={s.job.id}>
              <Link to={paths.job(s.job.id)}>{s.job.name}</Link>
              {s.last_execution && <StatusBadge status={s.last_execution.status} />}
              <button className="btn btn-sm" onClick={() => run.mutate(s.job.id)} disabled={run.isPending}>
                ▶ Run
              </button>
            </li>
          ))}
        </ul>
      )}
      <div className="row-gap">
        {!has("customers") && (
          <button className="btn" onClick={() => create.mutate("customers")} disabled={create.isPending}>
            + Create a customers job
          </button>
        )}
        {!has("invoices") && (
          <button className="btn" onClick={() => create.mutate("invoices")} disabled={create.isPending}>
            + Create an invoices job
          </button>
        )}
      </div>
      <InlineError error={create.error ?? run.error} />
    </section>
  );
}

function FaultsPanel({ sandbox }: { sandbox: SandboxDto }) {
  const qc = useQueryClient();
  const [draft, setDraft] = useState<SandboxFaultsDto>(sandbox.faults);
  useEffect(() => setDraft(sandbox.faults), [sandbox.faults]);
  const apply = useMutation({
    mutationFn: (faults: SandboxFaultsDto) => api.sandboxSetFaults(faults),
    onSuccess: (s) => qc.setQueryData(qk.sandbox, s),
  });
  const set = (next: SandboxFaultsDto) => {
    setDraft(next);
    apply.mutate(next);
  };
  const toggle = (f: FaultDef, on: boolean) => {
    if (f.flag) set({ ...draft, [f.flag]: on });
    else if (f.num) set({ ...draft, [f.num.key]: on ? f.num.on : 0 });
  };
  const anyOn = FAULTS.some((f) => isOn(f, draft));
  return (
    <section className="panel" aria-labelledby="faults-h">
      <header className="panel-head">
        <h2 id="faults-h">Faults</h2>
        <div className="row-gap">
          {apply.isPending && <span className="muted small">Applying…</span>}
          <button
            className="btn btn-sm"
            disabled={!anyOn}
            onClick={() =>
              set({ ...draft, error_rate: 0, error_burst: 0, rate_limit_burst: 0, latency_ms: 0, bad_record_rate: 0, schema_drift: false, credentials_revoked: false })
            }
          >
            Turn all off
          </button>
        </div>
      </header>
      <InlineError error={apply.error} />
      <ul className="faults">
        {FAULTS.map((f) => {
          const on = isOn(f, draft);
          return (
            <li key={f.name} className={`fault ${on ? "on" : ""}`}>
              <label className="switch">
                <input
                  type="checkbox"
                  role="switch"
                  data-testid={`${T.faultPrefix}${f.name}`}
                  checked={on}
                  onChange={(e) => toggle(f, e.target.checked)}
                />
                <span className="switch-track" aria-hidden="true" />
                <span className="fault-title">{f.title}</span>
              </label>
              <p className="fault-what">{f.what}</p>
              {f.num && on && (
                <NumberSetting
                  label={f.num.label}
                  value={draft[f.num.key]}
                  min={f.num.min}
                  max={f.num.max}
                  step={f.num.step}
                  unit={f.num.unit}
                  testId={`${T.faultPrefix}${f.name}-value`}
                  onCommit={(v) => set({ ...draft, [f.num!.key]: v })}
                />
              )}
              {f.name === "rate-limit" && on && (
                <NumberSetting
                  label="Retry-After"
                  unit="s"
                  value={draft.retry_after_secs ?? 0}
                  min={0}
                  max={3600}
                  step={1}
                  onCommit={(v) => set({ ...draft, retry_after_secs: v > 0 ? v : undefined })}
                />
              )}
            </li>
          );
        })}
      </ul>
    </section>
  );
}

function NumberSetting({
  label,
  value,
  min,
  max,
  step,
  unit,
  testId,
  onCommit,
}: {
  label: string;
  value: number;
  min: number;
  max: number;
  step: number;
  unit?: string;
  testId?: string;
  onCommit: (v: number) => void;
}) {
  const [text, setText] = useState(String(value));
  useEffect(() => setText(String(value)), [value]);
  const n = Number(text);
  const invalid = text.trim() === "" || Number.isNaN(n) || n < min || n > max;
  const commit = () => {
    if (!invalid && n !== value) onCommit(n);
  };
  return (
    <label className="inline-field fault-value">
      <span>{label}</span>
      <input
        type="number"
        min={min}
        max={max}
        step={step}
        value={text}
        data-testid={testId}
        aria-invalid={invalid}
        onChange={(e) => setText(e.target.value)}
        onBlur={commit}
        onKeyDown={(e) => {
          if (e.key === "Enter") commit();
        }}
      />
      {unit && <span className="muted">{unit}</span>}
      {invalid && <span className="field-error">Between {min} and {max}.</span>}
    </label>
  );
}
