import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useEffect, useId, useRef, useState, type ReactNode } from "react";
import { api, qk } from "../api/client";
import { invalidField, invalidReason, toErrorDto } from "../api/errors";
import type { ConnectionDto } from "../bindings/ConnectionDto";
import type { JobDto } from "../bindings/JobDto";
import type { ValueType } from "../bindings/ValueType";
import {
  emptyMapping,
  ENTITIES,
  formToNewJob,
  serverFieldToFormKey,
  validateJobForm,
  VALUE_TYPES,
  type FormErrors,
  type JobForm,
  type MappingRow,
} from "../jobForm";
import { T } from "../testids";
import { InlineError } from "./ui";

const capitalize = (s: string) => (s ? s.charAt(0).toUpperCase() + s.slice(1) : s);

function Field({
  label,
  name,
  errors,
  hint,
  children,
}: {
  label: string;
  name: string;
  errors: FormErrors;
  hint?: ReactNode;
  children: (props: { id: string; "aria-invalid": boolean; "aria-describedby"?: string; "data-field": string }) => ReactNode;
}) {
  const id = useId();
  const err = errors[name];
  const describedBy = err ? `${id}-err` : hint ? `${id}-hint` : undefined;
  return (
    <div className={`field ${err ? "has-error" : ""}`}>
      <label className="field-label" htmlFor={id}>
        {label}
      </label>
      {children({ id, "aria-invalid": Boolean(err), "aria-describedby": describedBy, "data-field": name })}
      {err ? (
        <span className="field-error" id={`${id}-err`} data-testid={`${T.fieldErrorPrefix}${name}`}>
          {err}
        </span>
      ) : (
        hint && (
          <span className="field-hint" id={`${id}-hint`}>
            {hint}
          </span>
        )
      )}
    </div>
  );
}

/**
 * Create or edit a job. Everything is validated on the client first (messages next to each
 * field); a server `invalid` error that names a field lands on that field. Nothing is sent
 * while any field is invalid.
 */
export function JobEditor({
  initial,
  jobId,
  connections,
  onSaved,
  focusMappings = false,
}: {
  initial: JobForm;
  jobId?: string;
  connections: ConnectionDto[];
  onSaved?: (job: JobDto) => void;
  focusMappings?: boolean;
}) {
  const qc = useQueryClient();
  const [f, setF] = useState<JobForm>(initial);
  const [errors, setErrors] = useState<FormErrors>({});
  const [submitted, setSubmitted] = useState(false);
  const [saved, setSaved] = useState(false);
  const formRef = useRef<HTMLFormElement>(null);
  const mappingsRef = useRef<HTMLFieldSetElement>(null);

  useEffect(() => {
    if (focusMappings) {
      mappingsRef.current?.scrollIntoView?.({ block: "start" });
      mappingsRef.current?.querySelector<HTMLInputElement>("input")?.focus();
    }
  }, [focusMappings]);

  const save = useMutation({
    mutationFn: () => {
      const input = formToNewJob(f);
      return jobId ? api.jobUpdate(jobId, input) : api.jobCreate(input);
    },
    onSuccess: (job) => {
      setSaved(true);
      void qc.invalidateQueries({ queryKey: qk.jobs });
      qc.setQueryData(qk.job(job.id), job);
      onSaved?.(job);
    },
    onError: (e) => {
      const err = toErrorDto(e);
      const field = invalidField(err);
      if (field) {
        const key = serverFieldToFormKey(field);
        setErrors((prev) => ({ ...prev, [key]: capitalize(invalidReason(err)) }));
        focusField(key);
      }
    },
  });

  const focusField = (key: string) => {
    requestAnimationFrame(() => {
      const el = formRef.current?.querySelector<HTMLElement>(`[data-field="${CSS.escape(key)}"]`);
      el?.focus();
    });
  };

  const update = (patch: Partial<JobForm>) => {
    const next = { ...f, ...patch };
    setF(next);
    setSaved(false);
    if (submitted) setErrors(validateJobForm(next));
  };
  const updateMapping = (i: number, patch: Partial<MappingRow>) =>
    update({ mappings: f.mappings.map((m, j) => (j === i ? { ...m, ...patch } : m)) });

  const submit = (e: React.FormEvent) => {
    e.preventDefault();
    setSubmitted(true);
    const errs = validateJobForm(f);
    setErrors(errs);
    const first = Object.keys(errs)[0];
    if (first) {
      focusField(first);
      return;
    }
    save.mutate();
  };

  const errCount = Object.keys(errors).length;
  const serverErr = save.error && !invalidField(toErrorDto(save.error)) ? save.error : null;

  return (
    <form ref={formRef} className="editor" onSubmit={submit} noValidate aria-label={jobId ? "Job settings" : "New job"}>
      {errCount > 0 && (
        <div className="banner banner-bad" role="alert">
          {errCount === 1 ? "One field needs attention" : `${errCount} fields need attention`} — nothing was saved.
        </div>
      )}
      <InlineError error={serverErr} />

      <fieldset className="card">
        <legend>What to sync</legend>
        <div className="grid-2">
          <Field label="Name" name="name" errors={errors}>
            {(p) => <input {...p} value={f.name} onChange={(e) => update({ name: e.target.value })} placeholder="Customers from Acme" />}
          </Field>
          <Field label="Connection" name="connection" errors={errors} hint={jobId ? "Connection, entity and direction are fixed once a job exists." : undefined}>
            {(p) => (
              <select {...p} value={f.connection} disabled={Boolean(jobId)} onChange={(e) => update({ connection: e.target.value })}>
                <option value="">Choose…</option>
                {connections.map((c) => (
                  <option key={c.id} value={c.id}>
                    {c.name}
                    {c.status !== "active" ? ` (${c.status})` : ""}
                  </option>
                ))}
              </select>
            )}
          </Field>
          <Field label="Entity" name="entity" errors={errors}>
            {(p) => (
              <select {...p} value={f.entity} disabled={Boolean(jobId)} onChange={(e) => update({ entity: e.target.value })}>
                {ENTITIES.map((x) => (
                  <option key={x} value={x}>
                    {x}
                  </option>
                ))}
                {!(ENTITIES as readonly string[]).includes(f.entity) && <option value={f.entity}>{f.entity}</option>}
              </select>
            )}
          </Field>
          <Field label="Direction" name="direction" errors={errors}>
            {(p) => (
              <select {...p} value={f.direction} disabled={Boolean(jobId)} onChange={(e) => update({ direction: e.target.value as JobForm["direction"] })}>
                <option value="pull">Pull (provider → Syncdesk)</option>
                <option value="push">Push (Syncdesk → provider)</option>
              </select>
            )}
          </Field>
          <Field
            label="Mode"
            name="mode"
            errors={errors}
            hint={f.mode === "full" ? "Full runs fetch everything every time and are slower; incremental is recommended." : "Only records changed since the last successful run."}
          >
            {(p) => (
              <select {...p} value={f.mode} onChange={(e) => update({ mode: e.target.value as JobForm["mode"] })}>
                <option value="incremental">Incremental (recommended)</option>
                <option value="full">Full</option>
              </select>
            )}
          </Field>
          <Field label="Schedule" name="schedule" errors={errors}>
            {(p) => (
              <div className="input-group">
                <select
                  aria-label="Schedule kind"
                  value={f.scheduleKind}
                  onChange={(e) => update({ scheduleKind: e.target.value as JobForm["scheduleKind"], scheduleValue: e.target.value === "interval" ? "15m" : e.target.value === "cron" ? "0 * * * *" : "" })}
                >
                  <option value="manual">Manual</option>
                  <option value="interval">Every…</option>
                  <option value="cron">Cron</option>
                </select>
                {f.scheduleKind !== "manual" && (
                  <input
                    {...p}
                    className="mono"
                    value={f.scheduleValue}
                    placeholder={f.scheduleKind === "interval" ? "15m" : "0 * * * *"}
                    onChange={(e) => update({ scheduleValue: e.target.value })}
                  />
                )}
              </div>
            )}
          </Field>
        </div>
        <label className="check">
          <input type="checkbox" checked={f.enabled} onChange={(e) => update({ enabled: e.target.checked })} /> Enabled (scheduled runs
          and automatic retries happen)
        </label>
      </fieldset>

      <fieldset className="card">
        <legend>Runs and failures</legend>
        <div className="grid-4">
          <Field label="Batch size" name="batch_size" errors={errors} hint="Records per page, 1–1000.">
            {(p) => <input {...p} inputMode="numeric" value={f.batchSize} onChange={(e) => update({ batchSize: e.target.value })} />}
          </Field>
          <Field label="Timeout" name="timeout" errors={errors} hint="Whole run, e.g. 30m, 2h.">
            {(p) => <input {...p} value={f.timeout} onChange={(e) => update({ timeout: e.target.value })} />}
          </Field>
          <Field label="Request timeout" name="request_timeout" errors={errors} hint="One request, e.g. 30s.">
            {(p) => <input {...p} value={f.requestTimeout} onChange={(e) => update({ requestTimeout: e.target.value })} />}
          </Field>
          <Field label="Max retries" name="max_retries" errors={errors} hint="After 5 min, 30 min, 2 h.">
            {(p) => (
              <input
                {...p}
                inputMode="numeric"
                value={f.maxRetries}
                disabled={!f.retryOnFailure}
                onChange={(e) => update({ maxRetries: e.target.value })}
              />
            )}
          </Field>
        </div>
        <label className="check">
          <input type="checkbox" checked={f.retryOnFailure} onChange={(e) => update({ retryOnFailure: e.target.checked })} /> Retry
          automatically when a run fails or times out
        </label>
        <label className="check">
          <input
            type="checkbox"
            checked={f.duplicateDetection}
            onChange={(e) => update({ duplicateDetection: e.target.checked })}
          />{" "}
          Duplicate detection (skip records whose natural key already exists)
        </label>
        <Field label="Natural keys" name="natural_keys" errors={errors} hint="Target fields, comma separated, e.g. email.">
          {(p) => <input {...p} className="mono" value={f.naturalKeys} onChange={(e) => update({ naturalKeys: e.target.value })} />}
        </Field>
      </fieldset>

      <fieldset className="card" ref={mappingsRef} id="mappings">
        <legend>Field mappings</legend>
        {errors.mappings && (
          <span className="field-error" data-testid={`${T.fieldErrorPrefix}mappings`}>
            {errors.mappings}
          </span>
        )}
        <div className="mappings">
          <div className="mapping-head" aria-hidden="true">
            <span>Source (provider)</span>
            <span>Target (local)</span>
            <span>Transform</span>
            <span>Default</span>
            <span>Type</span>
            <span>Required</span>
            <span />
          </div>
          {f.mappings.map((m, i) => (
            <MappingEditor
              key={i}
              i={i}
              m={m}
              errors={errors}
              onChange={(patch) => updateMapping(i, patch)}
              onRemove={() => update({ mappings: f.mappings.filter((_, j) => j !== i) })}
            />
          ))}
        </div>
        <button type="button" className="btn btn-sm" onClick={() => update({ mappings: [...f.mappings, emptyMapping()] })}>
          + Add mapping
        </button>
      </fieldset>

      <fieldset className="card">
        <legend>Alerts</legend>
        <div className="checks">
          {(
            [
              ["on_circuit_breaker", "A run stops early because most records were failing"],
              ["on_retries_exhausted", "Automatic retries are exhausted"],
              ["on_connection_expired", "The connection needs re-authentication"],
              ["on_failure", "Any failed run"],
              ["on_completed_with_errors", "Runs that complete with errors"],
              ["on_dead_letters", "Records move to Failed Records"],
            ] as const
          ).map(([k, label]) => (
            <label className="check" key={k}>
              <input type="checkbox" checked={f.alerts[k]} onChange={(e) => update({ alerts: { ...f.alerts, [k]: e.target.checked } })} />{" "}
              {label}
            </label>
          ))}
        </div>
      </fieldset>

      <div className="form-actions">
        {saved && !save.isPending && (
          <span className="saved" role="status">
            Saved.
          </span>
        )}
        <button type="submit" className="btn btn-primary" data-testid={T.jobSave} disabled={save.isPending}>
          {save.isPending ? "Saving…" : jobId ? "Save changes" : "Create job"}
        </button>
      </div>
    </form>
  );
}

function MappingEditor({
  i,
  m,
  errors,
  onChange,
  onRemove,
}: {
  i: number;
  m: MappingRow;
  errors: FormErrors;
  onChange: (patch: Partial<MappingRow>) => void;
  onRemove: () => void;
}) {
  const k = (f: string) => `mappings[${i}].${f}`;
  const cell = (f: string, input: ReactNode) => (
    <div className={`mcell ${errors[k(f)] ? "has-error" : ""}`}>
      {input}
      {errors[k(f)] && (
        <span className="field-error" data-testid={`${T.fieldErrorPrefix}${k(f)}`}>
          {errors[k(f)]}
        </span>
      )}
    </div>
  );
  const aria = (f: string, label: string) => ({
    "aria-label": `Mapping ${i + 1} ${label}`,
    "aria-invalid": Boolean(errors[k(f)]),
    "data-field": k(f),
  });
  return (
    <div className="mapping-row">
      {cell("source", <input {...aria("source", "source")} className="mono" value={m.source} placeholder="address.city" onChange={(e) => onChange({ source: e.target.value })} />)}
      {cell("target", <input {...aria("target", "target")} className="mono" value={m.target} placeholder="city" onChange={(e) => onChange({ target: e.target.value })} />)}
      {cell(
        "transform",
        <input {...aria("transform", "transform")} className="mono" value={m.transform} placeholder="trim|lowercase" onChange={(e) => onChange({ transform: e.target.value })} />,
      )}
      {cell("default", <input {...aria("default", "default")} className="mono" value={m.defaultText} placeholder="—" onChange={(e) => onChange({ defaultText: e.target.value })} />)}
      {cell(
        "type",
        <select {...aria("type", "type")} value={m.type} onChange={(e) => onChange({ type: e.target.value as ValueType | "" })}>
          <option value="">any</option>
          {VALUE_TYPES.map((t) => (
            <option key={t} value={t}>
              {t}
            </option>
          ))}
        </select>,
      )}
      <div className="mcell mcell-check">
        <input type="checkbox" aria-label={`Mapping ${i + 1} required`} checked={m.required} onChange={(e) => onChange({ required: e.target.checked })} />
      </div>
      <button type="button" className="icon-btn" aria-label={`Remove mapping ${i + 1}`} onClick={onRemove}>
        ×
      </button>
    </div>
  );
}
