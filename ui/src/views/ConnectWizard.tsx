// The connection wizard (issue 15): pick a provider from the built-in catalog, sign in (paste
// a key, or the browser), let Syncdesk check it with a real request before anything is saved,
// pick the organisation when the provider has several, choose what to sync, and get a job per
// choice with the provider's defaults. No connector spec is shown unless the admin asks for
// a custom connector.
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useId, useRef, useState } from "react";
import { api, qk } from "../api/client";
import { invalidField, invalidReason, isCode, toErrorDto } from "../api/errors";
import type { ConnectDto } from "../bindings/ConnectDto";
import type { ConnectionDto } from "../bindings/ConnectionDto";
import type { ConnectorDto } from "../bindings/ConnectorDto";
import type { ConnectorValueDto } from "../bindings/ConnectorValueDto";
import type { JobDto } from "../bindings/JobDto";
import { Dialog, ErrorState, InlineError, Loading } from "../components/ui";
import { Link, paths } from "../router";
import { T } from "../testids";

type Step = "provider" | "sign_in" | "values" | "entities" | "done";

/** How often the new jobs run; the engine's schedule syntax, in plain words. */
export const SCHEDULES: { value: string; label: string; when: string }[] = [
  { value: "every 15m", label: "Every 15 minutes", when: "They run every 15 minutes." },
  { value: "every 1h", label: "Every hour", when: "They run every hour." },
  { value: "every 6h", label: "Every 6 hours", when: "They run every 6 hours." },
  { value: "cron 0 6 * * *", label: "Every day at 6:00 (UTC)", when: "They run every day at 6:00 (UTC)." },
  { value: "manual", label: "Only when I run it", when: "They run when you run them." },
];
const DEFAULT_SCHEDULE = "every 1h";

const PASTE_KINDS = ["bearer", "api_key"];

/** "customers" → "Customers". */
export function entityTitle(name: string): string {
  const words = name.replace(/[_-]+/g, " ").trim();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/** What the pasted secret is called: the provider's own word for it. */
export function secretName(c: ConnectorDto): string {
  return c.secret_label ?? (c.auth_kinds[0] === "api_key" ? "API key" : "access token");
}

/** A label inside a sentence: "Private app access token" → "private app access token", but
 * a name stays a name ("Stripe restricted or secret key", "Xero organisation"). */
export function mid(label: string, provider: string): string {
  return label.startsWith(provider) ? label : label.charAt(0).toLowerCase() + label.slice(1);
}

/** A name no connection has yet: the provider's, or "Stripe 2", "Stripe 3"… */
export function freeName(base: string, taken: readonly string[]): string {
  if (!taken.includes(base)) return base;
  for (let n = 2; ; n++) if (!taken.includes(`${base} ${n}`)) return `${base} ${n}`;
}

/** How the admin may connect: paste a secret, sign in with the browser, or both. */
function ways(c: ConnectorDto): { paste: boolean; browser: boolean } {
  return {
    paste: c.auth_kinds.some((k) => PASTE_KINDS.includes(k)),
    browser: c.auth_kinds.includes("oauth2_refresh_token") && c.browser_sign_in,
  };
}

const STEP_TITLES: Record<Step, string> = {
  provider: "Choose a provider",
  sign_in: "Sign in",
  values: "Choose",
  entities: "Choose what to sync",
  done: "Done",
};

export function ConnectWizard({ open, onClose, onCustom }: { open: boolean; onClose: () => void; onCustom: () => void }) {
  const qc = useQueryClient();
  const [step, setStep] = useState<Step>("provider");
  const [connector, setConnector] = useState<ConnectorDto | null>(null);
  const [connection, setConnection] = useState<ConnectionDto | null>(null);
  const [jobs, setJobs] = useState<JobDto[]>([]);

  const reset = () => {
    setStep("provider");
    setConnector(null);
    setConnection(null);
    setJobs([]);
  };
  const close = () => {
    // A browser sign-in still waiting is given up with the wizard.
    if (step === "sign_in") void api.signInCancel().catch(() => undefined);
    if (connection) {
      void qc.invalidateQueries({ queryKey: qk.connections });
      void qc.invalidateQueries({ queryKey: qk.health });
    }
    reset();
    onClose();
  };

  const choiceValues = connector?.values.filter((v) => v.has_choices) ?? [];
  const steps: Step[] = ["provider", "sign_in", ...(choiceValues.length ? (["values"] as Step[]) : []), "entities"];
  const title = connector && step !== "provider" ? `Connect ${connector.name}` : "Add connection";

  return (
    <Dialog open={open} title={title} onClose={close}>
      <div className="wizard" data-testid={T.wizard} data-step={step}>
        {step !== "done" && (
          <ol className="wizard-steps" aria-label="Steps">
            {steps.map((s, i) => (
              <li key={s} aria-current={s === step ? "step" : undefined} className={s === step ? "current" : ""}>
                <span className="wizard-step-n" aria-hidden="true">
                  {i + 1}
                </span>
                {s === "values" ? (choiceValues[0]?.label ?? STEP_TITLES.values) : STEP_TITLES[s]}
              </li>
            ))}
          </ol>
        )}
        {step === "provider" && (
          <ProviderStep
            chosen={connector}
            onCancel={close}
            onCustom={() => {
              reset();
              onCustom();
            }}
            onNext={(c) => {
              setConnector(c);
              setStep("sign_in");
            }}
          />
        )}
        {step === "sign_in" && connector && (
          <SignInStep
            connector={connector}
            onBack={() => setStep("provider")}
            onConnected={(c) => {
              setConnection(c);
              void qc.invalidateQueries({ queryKey: qk.connections });
              void qc.invalidateQueries({ queryKey: qk.health });
              setStep(choiceValues.length ? "values" : "entities");
            }}
          />
        )}
        {step === "values" && connector && connection && (
          <ValuesStep connector={connector} connection={connection} values={choiceValues} onDone={() => setStep("entities")} />
        )}
        {step === "entities" && connector && connection && (
          <EntitiesStep
            connector={connector}
            connection={connection}
            onLater={close}
            onCreated={(j) => {
              setJobs(j);
              void qc.invalidateQueries({ queryKey: qk.jobs });
              void qc.invalidateQueries({ queryKey: qk.health });
              setStep("done");
            }}
          />
        )}
        {step === "done" && connector && connection && <DoneStep connector={connector} connection={connection} jobs={jobs} onClose={close} />}
      </div>
    </Dialog>
  );
}

function StepFoot({ children }: { children: React.ReactNode }) {
  return <div className="wizard-foot">{children}</div>;
}

function ProviderStep({
  chosen,
  onNext,
  onCancel,
  onCustom,
}: {
  chosen: ConnectorDto | null;
  onNext: (c: ConnectorDto) => void;
  onCancel: () => void;
  onCustom: () => void;
}) {
  const q = useQuery({ queryKey: qk.connectors, queryFn: api.connectorsList, staleTime: Infinity });
  const [key, setKey] = useState<string | null>(chosen?.key ?? null);
  const [error, setError] = useState<string | null>(null);
  const errorId = useId();
  if (q.isPending) return <Loading label="Loading providers…" />;
  if (q.isError) return <ErrorState error={q.error} onRetry={() => void q.refetch()} />;
  const submit = (e: React.FormEvent) => {
    e.preventDefault();
    const c = q.data.find((x) => x.key === key);
    if (!c) {
      setError("Choose a provider to continue.");
      return;
    }
    onNext(c);
  };
  return (
    <form onSubmit={submit} noValidate className="stack">
      <fieldset className="provider-list" aria-describedby={error ? errorId : undefined}>
        <legend className="field-label">Which provider do you want to sync with?</legend>
        {q.data.map((c) => (
          <label key={c.key} className={`provider-option ${key === c.key ? "selected" : ""}`} data-testid={`${T.wizardProviderPrefix}${c.key}`}>
            <input
              type="radio"
              name="provider"
              value={c.key}
              checked={key === c.key}
              onChange={() => {
                setKey(c.key);
                setError(null);
              }}
            />
            <span>
              <span className="provider-name">{c.name}</span>
              {c.summary && <span className="provider-summary">{c.summary}</span>}
            </span>
          </label>
        ))}
        {error && (
          <span className="field-error" id={errorId} data-testid={`${T.fieldErrorPrefix}provider`}>
            {error}
          </span>
        )}
      </fieldset>
      <p className="muted small">
        Another provider?{" "}
        <button type="button" className="link-btn" onClick={onCustom} data-testid={T.wizardCustom}>
          Use a custom connector
        </button>{" "}
        (for technical users: describe its API in a connector file). Just exploring?{" "}
        <Link to={paths.sandbox()} onClick={onCancel}>
          Start the sandbox
        </Link>
        .
      </p>
      <StepFoot>
        <button className="btn" type="button" onClick={onCancel}>
          Cancel
        </button>
        <button className="btn btn-primary" type="submit" data-testid={T.wizardNext}>
          Next
        </button>
      </StepFoot>
    </form>
  );
}

/** The plain-words message next to the field an `invalid` error names. */
function fieldFor(field: string): string {
  if (field === "name") return "name";
  if (field === "base_url" || field === "auth_base_url") return field;
  if (field === "client_id") return "client_id";
  if (field.startsWith("values.")) return field;
  if (field === "api_key" || field === "access_token" || field === "secret") return "secret";
  if (field === "client_secret") return "client_secret";
  return "";
}

function SignInStep({ connector, onBack, onConnected }: { connector: ConnectorDto; onBack: () => void; onConnected: (c: ConnectionDto) => void }) {
  const w = ways(connector);
  const conns = useQuery({ queryKey: qk.connections, queryFn: api.connectionsList });
  const [how, setHow] = useState<"paste" | "browser">(w.paste ? "paste" : "browser");
  const [name, setName] = useState("");
  const [nameTouched, setNameTouched] = useState(false);
  const [secret, setSecret] = useState("");
  const [clientId, setClientId] = useState("");
  const [clientSecret, setClientSecret] = useState("");
  const [baseUrl, setBaseUrl] = useState("");
  const [authBaseUrl, setAuthBaseUrl] = useState("");
  const [advanced, setAdvanced] = useState(false);
  const typed = connector.values.filter((v) => !v.has_choices);
  const [values, setValues] = useState<Record<string, string>>({});
  const [errors, setErrors] = useState<Record<string, string>>({});
  const secretRef = useRef<HTMLInputElement>(null);
  const ids = useId();
  const label = secretName(connector);
  const labelMid = mid(label, connector.name);

  // The provider's name, or the next free one, until the admin types their own.
  useEffect(() => {
    if (!nameTouched && conns.data) setName(freeName(connector.name, conns.data.map((c) => c.name)));
  }, [conns.data, connector.name, nameTouched]);

  const m = useMutation({
    mutationFn: async (input: ConnectDto) =>
      how === "browser" ? await api.connectionConnectSignIn(input) : (await api.connectionConnect(input)).connection,
    onSuccess: (c) => {
      setSecret("");
      setClientSecret("");
      onConnected(c);
    },
    onError: (e) => {
      // Secrets never linger in memory longer than the attempt.
      setSecret("");
      setClientSecret("");
      const err = toErrorDto(e);
      if (isCode(err, "auth") && how === "paste") {
        setErrors({
          secret: `${connector.name} did not accept the ${labelMid} you pasted. Check that you copied all of it and that it is still valid at ${connector.name}. Nothing was saved.`,
        });
        secretRef.current?.focus();
        return;
      }
      if (isCode(err, "conflict")) {
        setErrors({ name: "You already have a connection with this name. Choose another name." });
        return;
      }
      const f = invalidField(err);
      const at = f ? fieldFor(f) : "";
      if (at) {
        if (at === "base_url" || at === "auth_base_url") setAdvanced(true);
        setErrors({ [at]: invalidReason(err) });
      }
    },
  });

  const submit = (e: React.FormEvent) => {
    e.preventDefault();
    const errs: Record<string, string> = {};
    if (!name.trim()) errs.name = "Give the connection a name.";
    if (how === "paste" && !secret.trim()) errs.secret = `Paste the ${labelMid}.`;
    if (how === "browser" && !clientId.trim()) errs.client_id = `Enter the client id of your ${connector.name} app.`;
    for (const v of typed) if (!values[v.name]?.trim()) errs[`values.${v.name}`] = `Enter the ${mid(v.label, connector.name)}.`;
    for (const [k, v] of [
      ["base_url", baseUrl],
      ["auth_base_url", authBaseUrl],
    ] as const)
      if (v.trim() && !/^https?:\/\/\S+$/.test(v.trim())) {
        errs[k] = "Use a full address, like https://api.example.com.";
        setAdvanced(true);
      }
    setErrors(errs);
    if (Object.keys(errs).length) return;
    const input: ConnectDto = { connector: connector.key, name: name.trim(), entities: [] };
    if (how === "paste") {
      input.auth_kind = connector.auth_kinds.find((k) => PASTE_KINDS.includes(k));
      input.secret = secret.trim();
    } else {
      input.auth_kind = "oauth2_refresh_token";
      input.client_id = clientId.trim();
      if (clientSecret) input.client_secret = clientSecret;
    }
    if (typed.length) input.values = Object.fromEntries(typed.map((v) => [v.name, values[v.name].trim()]));
    if (baseUrl.trim()) input.base_url = baseUrl.trim();
    if (how === "browser" && authBaseUrl.trim()) input.auth_base_url = authBaseUrl.trim();
    m.mutate(input);
  };

  const err = (k: string) =>
    errors[k] ? (
      <span className="field-error" id={`${ids}-${k}-error`} data-testid={`${T.fieldErrorPrefix}${k}`}>
        {errors[k]}
      </span>
    ) : null;
  const described = (k: string, hint?: boolean) =>
    [errors[k] ? `${ids}-${k}-error` : "", hint ? `${ids}-${k}-hint` : ""].filter(Boolean).join(" ") || undefined;
  const otherErr = m.error && !isCode(toErrorDto(m.error), "conflict") && !(isCode(toErrorDto(m.error), "auth") && how === "paste") && !fieldFor(invalidField(toErrorDto(m.error)) ?? "");

  return (
    <form onSubmit={submit} noValidate className="stack" aria-busy={m.isPending}>
      {connector.setup && (
        <div className="banner banner-info wizard-setup">
          <div className="banner-title">Before you start, at {connector.name}</div>
          <div className="banner-sub">{connector.setup}</div>
        </div>
      )}
      <div className="field">
        <label className="field-label" htmlFor={`${ids}-name`}>Name for this connection</label>
        <input
          id={`${ids}-name`}
          value={name}
          onChange={(e) => {
            setNameTouched(true);
            setName(e.target.value);
          }}
          aria-invalid={Boolean(errors.name)}
          aria-describedby={described("name")}
          data-testid={T.wizardName}
        />
        {err("name")}
      </div>
      {w.paste && w.browser && (
        <fieldset className="radio-row">
          <legend className="field-label">How do you want to connect?</legend>
          <label className="check">
            <input type="radio" name="how" checked={how === "paste"} onChange={() => setHow("paste")} /> Paste a {labelMid}
          </label>
          <label className="check">
            <input type="radio" name="how" checked={how === "browser"} onChange={() => setHow("browser")} /> Sign in with the browser
          </label>
        </fieldset>
      )}
      {how === "paste" ? (
        <div className="field">
          <label className="field-label" htmlFor={`${ids}-secret`}>{label}</label>
          <input
            id={`${ids}-secret`}
            ref={secretRef}
            type="password"
            autoComplete="off"
            spellCheck={false}
            value={secret}
            onChange={(e) => setSecret(e.target.value)}
            aria-invalid={Boolean(errors.secret)}
            aria-describedby={described("secret", true)}
            data-testid={T.wizardSecret}
          />
          {err("secret")}
          <span className="field-hint" id={`${ids}-secret-hint`}>
            Kept in your computer&apos;s keychain, never shown again. Syncdesk checks it with {connector.name} before saving anything.
          </span>
        </div>
      ) : (
        <>
          <div className="grid-2">
            <div className="field">
              <label className="field-label" htmlFor={`${ids}-client_id`}>Client id of your {connector.name} app</label>
              <input
                id={`${ids}-client_id`}
                className="mono"
                autoComplete="off"
                value={clientId}
                onChange={(e) => setClientId(e.target.value)}
                aria-invalid={Boolean(errors.client_id)}
                aria-describedby={described("client_id")}
                data-testid={T.wizardClientId}
              />
              {err("client_id")}
            </div>
            <div className="field">
              <label className="field-label" htmlFor={`${ids}-client_secret`}>Client secret (only if your app has one)</label>
              <input
                id={`${ids}-client_secret`}
                type="password"
                autoComplete="off"
                value={clientSecret}
                onChange={(e) => setClientSecret(e.target.value)}
                aria-invalid={Boolean(errors.client_secret)}
                aria-describedby={described("client_secret")}
              />
              {err("client_secret")}
            </div>
          </div>
          <div className="banner banner-info" data-testid={T.signInNote}>
            {m.isPending
              ? `Finish signing in in your browser. Syncdesk is waiting on this computer for ${connector.name} to send you back.`
              : `Your web browser opens ${connector.name}'s sign-in page. Syncdesk never sees your password: ${connector.name} gives it a one-time code, which it exchanges for a key kept in your computer's keychain.`}
          </div>
        </>
      )}
      {typed.map((v) => (
        <ValueField key={v.name} v={v} value={values[v.name] ?? ""} onChange={(x) => setValues({ ...values, [v.name]: x })} error={err(`values.${v.name}`)} />
      ))}
      <details
        className="wizard-advanced"
        open={advanced}
        onToggle={(e) => setAdvanced((e.target as HTMLDetailsElement).open)}
      >
        <summary data-testid={T.wizardAdvanced}>Advanced: server address</summary>
        <div className="stack">
          <div className="field">
            <label className="field-label" htmlFor={`${ids}-base_url`}>Server address</label>
            <input
              id={`${ids}-base_url`}
              className="mono"
              value={baseUrl}
              placeholder={connector.base_url ?? ""}
              onChange={(e) => setBaseUrl(e.target.value)}
              aria-invalid={Boolean(errors.base_url)}
              aria-describedby={described("base_url", true)}
              data-testid={T.wizardBaseUrl}
            />
            {err("base_url")}
            <span className="field-hint" id={`${ids}-base_url-hint`}>
              Leave empty to use {connector.name}&apos;s own address. Change it only to reach a test server.
            </span>
          </div>
          {how === "browser" && (
            <div className="field">
              <label className="field-label" htmlFor={`${ids}-auth_base_url`}>Sign-in server address</label>
              <input
                id={`${ids}-auth_base_url`}
                className="mono"
                value={authBaseUrl}
                onChange={(e) => setAuthBaseUrl(e.target.value)}
                aria-invalid={Boolean(errors.auth_base_url)}
                aria-describedby={described("auth_base_url")}
              />
              {err("auth_base_url")}
            </div>
          )}
        </div>
      </details>
      {otherErr && <InlineError error={m.error} />}
      <StepFoot>
        {m.isPending && how === "browser" && (
          <button className="btn" type="button" onClick={() => void api.signInCancel()} data-testid={T.signInCancel}>
            Stop waiting
          </button>
        )}
        <button className="btn" type="button" onClick={onBack} disabled={m.isPending}>
          Back
        </button>
        <button className="btn btn-primary" type="submit" disabled={m.isPending} data-testid={T.wizardConnect}>
          {m.isPending
            ? how === "browser"
              ? "Waiting for the browser…"
              : `Checking with ${connector.name}…`
            : how === "browser"
              ? "Sign in with the browser"
              : "Connect"}
        </button>
      </StepFoot>
      <span role="status" className="visually-hidden">
        {m.isPending && how === "paste" ? `Checking with ${connector.name}` : ""}
      </span>
    </form>
  );
}

function ValueField({ v, value, onChange, error }: { v: ConnectorValueDto; value: string; onChange: (v: string) => void; error: React.ReactNode }) {
  const hint = useId();
  return (
    <div className="field">
      <label className="field-label" htmlFor={hint + "-input"}>{v.label}</label>
      <input id={hint + "-input"} value={value} onChange={(e) => onChange(e.target.value)} aria-invalid={Boolean(error)} aria-describedby={v.help ? hint : undefined} />
      {error}
      {v.help && (
        <span className="field-hint" id={hint}>
          {v.help}
        </span>
      )}
    </div>
  );
}

/** A value the provider lists once signed in (the Xero organisation): pick one of them. */
function ValuesStep({
  connector,
  connection,
  values,
  onDone,
}: {
  connector: ConnectorDto;
  connection: ConnectionDto;
  values: ConnectorValueDto[];
  onDone: () => void;
}) {
  const [chosen, setChosen] = useState<Record<string, string>>({});
  const [errors, setErrors] = useState<Record<string, string>>({});
  const m = useMutation({
    mutationFn: async () => {
      for (const v of values) await api.connectionSetValue(connection.id, v.name, chosen[v.name]);
    },
    onSuccess: onDone,
  });
  const submit = (e: React.FormEvent) => {
    e.preventDefault();
    const errs: Record<string, string> = {};
    for (const v of values) if (!chosen[v.name]) errs[v.name] = `Choose the ${mid(v.label, connector.name)} to sync.`;
    setErrors(errs);
    if (!Object.keys(errs).length) m.mutate();
  };
  return (
    <form onSubmit={submit} noValidate className="stack">
      <ConnectedNote connector={connector} connection={connection} />
      {values.map((v) => (
        <ChoiceList
          key={v.name}
          connection={connection}
          v={v}
          connector={connector}
          value={chosen[v.name] ?? ""}
          error={errors[v.name]}
          onChange={(x) => setChosen((c) => ({ ...c, [v.name]: x }))}
        />
      ))}
      <InlineError error={m.error} />
      <StepFoot>
        <button className="btn btn-primary" type="submit" disabled={m.isPending} data-testid={T.wizardNext}>
          {m.isPending ? "Saving…" : "Next"}
        </button>
      </StepFoot>
    </form>
  );
}

function ChoiceList({
  connection,
  connector,
  v,
  value,
  error,
  onChange,
}: {
  connection: ConnectionDto;
  connector: ConnectorDto;
  v: ConnectorValueDto;
  value: string;
  error?: string;
  onChange: (v: string) => void;
}) {
  const q = useQuery({ queryKey: qk.valueChoices(connection.id, v.name), queryFn: () => api.connectionValueChoices(connection.id, v.name) });
  const errorId = useId();
  // One choice is no choice: take it.
  useEffect(() => {
    if (q.data?.length === 1 && !value) onChange(q.data[0].value);
  }, [q.data, value, onChange]);
  if (q.isPending) return <Loading label={`Asking ${connector.name} for the list…`} />;
  if (q.isError) return <ErrorState error={q.error} onRetry={() => void q.refetch()} />;
  if (!q.data.length)
    return (
      <div className="banner banner-warn" role="alert">
        {connector.name} lists no {mid(v.label, connector.name)} for this sign-in. Sign in with a user who has access to one, then try again.
      </div>
    );
  return (
    <fieldset className="provider-list" aria-describedby={error ? errorId : undefined}>
      <legend className="field-label">Which {mid(v.label, connector.name)} do you want to sync?</legend>
      {v.help && <p className="field-hint">{v.help}</p>}
      {q.data.map((c) => (
        <label key={c.value} className={`provider-option ${value === c.value ? "selected" : ""}`} data-testid={T.wizardChoice}>
          <input type="radio" name={`value-${v.name}`} value={c.value} checked={value === c.value} onChange={() => onChange(c.value)} />
          <span className="provider-name">{c.label}</span>
        </label>
      ))}
      {error && (
        <span className="field-error" id={errorId}>
          {error}
        </span>
      )}
    </fieldset>
  );
}

function ConnectedNote({ connector, connection }: { connector: ConnectorDto; connection: ConnectionDto }) {
  return connection.status === "active" ? (
    <div className="banner banner-ok" role="status" data-testid={T.wizardConnected}>
      {connector.name} accepted the sign-in. The connection &ldquo;{connection.name}&rdquo; is saved.
    </div>
  ) : (
    <div className="banner banner-warn" role="status" data-testid={T.wizardConnected}>
      The connection &ldquo;{connection.name}&rdquo; is saved, but Syncdesk could not check it with {connector.name} yet
      {connection.status_note ? `: ${connection.status_note}` : "."} Test it again later from Connections.
    </div>
  );
}

function EntitiesStep({
  connector,
  connection,
  onCreated,
  onLater,
}: {
  connector: ConnectorDto;
  connection: ConnectionDto;
  onCreated: (jobs: JobDto[]) => void;
  onLater: () => void;
}) {
  const [picked, setPicked] = useState<string[]>(connector.entities.map((e) => e.name));
  const [schedule, setSchedule] = useState(DEFAULT_SCHEDULE);
  const [error, setError] = useState<string | null>(null);
  const errorId = useId();
  const ids = useId();
  const m = useMutation({
    mutationFn: () =>
      api.jobsCreateDefaults(
        connection.id,
        connector.entities.map((e) => e.name).filter((n) => picked.includes(n)),
        schedule,
      ),
    onSuccess: onCreated,
  });
  const submit = (e: React.FormEvent) => {
    e.preventDefault();
    if (!picked.length) {
      setError("Choose at least one kind of record, or choose Not now.");
      return;
    }
    setError(null);
    m.mutate();
  };
  const toggle = (n: string) => setPicked((p) => (p.includes(n) ? p.filter((x) => x !== n) : [...p, n]));
  return (
    <form onSubmit={submit} noValidate className="stack">
      <ConnectedNote connector={connector} connection={connection} />
      <fieldset className="entity-list" aria-describedby={error ? errorId : undefined}>
        <legend className="field-label">What do you want to sync from {connector.name}?</legend>
        {connector.entities.map((e) => (
          <label key={e.name} className="entity-option">
            <input type="checkbox" checked={picked.includes(e.name)} onChange={() => toggle(e.name)} data-testid={`${T.wizardEntityPrefix}${e.name}`} />
            <span>
              <span className="provider-name">{entityTitle(e.name)}</span>
              <span className="provider-summary">
                {e.fields.length ? `${e.fields.map((f) => f.replace(/_/g, " ")).join(", ")}. ` : ""}
                {e.incremental ? "After the first sync, only what changed is fetched." : "Everything is fetched each time."}
              </span>
            </span>
          </label>
        ))}
        {error && (
          <span className="field-error" id={errorId} data-testid={`${T.fieldErrorPrefix}entities`}>
            {error}
          </span>
        )}
      </fieldset>
      <div className="field">
        <label className="field-label" htmlFor={`${ids}-schedule`}>How often</label>
        <select id={`${ids}-schedule`} value={schedule} onChange={(e) => setSchedule(e.target.value)} data-testid={T.wizardSchedule}>
          {SCHEDULES.map((s) => (
            <option key={s.value} value={s.value}>
              {s.label}
            </option>
          ))}
        </select>
      </div>
      <InlineError error={m.error} />
      <StepFoot>
        <button className="btn" type="button" onClick={onLater} disabled={m.isPending}>
          Not now
        </button>
        <button className="btn btn-primary" type="submit" disabled={m.isPending} data-testid={T.wizardCreateJobs}>
          {m.isPending ? "Creating…" : picked.length === 1 ? "Create 1 job" : `Create ${picked.length} jobs`}
        </button>
      </StepFoot>
    </form>
  );
}

function DoneStep({ connector, connection, jobs, onClose }: { connector: ConnectorDto; connection: ConnectionDto; jobs: JobDto[]; onClose: () => void }) {
  const when = SCHEDULES.find((s) => s.value === jobs[0]?.schedule)?.when ?? "";
  return (
    <div className="stack" data-testid={T.wizardDone}>
      <div className="banner banner-ok" role="status">
        <div className="banner-title">
          {connection.name === connector.name ? `${connector.name} is connected.` : `${connection.name} is connected to ${connector.name}.`}
        </div>
        <div className="banner-sub">
          {jobs.length === 1 ? "1 job was created." : `${jobs.length} jobs were created.`} {when} The first run reads everything;
          later runs fetch only what changed, where {connector.name} allows it.
        </div>
      </div>
      <ul className="wizard-jobs">
        {jobs.map((j) => (
          <li key={j.id}>
            <Link to={paths.job(j.id)} onClick={onClose} data-testid={`${T.wizardJobPrefix}${j.entity}`}>
              {j.name}
            </Link>
          </li>
        ))}
      </ul>
      <StepFoot>
        <button className="btn btn-primary" type="button" onClick={onClose} data-testid={T.wizardFinish}>
          Done
        </button>
      </StepFoot>
    </div>
  );
}
