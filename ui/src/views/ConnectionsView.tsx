import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useRef, useState } from "react";
import { api, qk } from "../api/client";
import { invalidField, invalidReason, toErrorDto } from "../api/errors";
import type { ConnectionDto } from "../bindings/ConnectionDto";
import type { NewConnectionDto } from "../bindings/NewConnectionDto";
import type { ReauthDto } from "../bindings/ReauthDto";
import { Dialog, Empty, ErrorState, InlineError, Loading, PageHeader, StatusBadge } from "../components/ui";
import { formatRelative, formatTime } from "../format";
import { hashQuery, Link, navigate, paths } from "../router";
import { T } from "../testids";
import { ConnectWizard } from "./ConnectWizard";

const AUTH_LABEL: Record<string, string> = {
  oauth2_client_credentials: "OAuth2 client credentials",
  oauth2_refresh_token: "OAuth2 sign-in (authorization code)",
  bearer: "Bearer token",
  api_key: "API key",
  none: "No authentication",
};

const DAY = 86400_000;

/** Token freshness as a short sentence and a tone (a credential freshness warning). */
export function tokenFreshness(c: ConnectionDto, now = Date.now()): { text: string; tone: "ok" | "warn" | "bad" | "muted" } {
  if (c.status === "expired") return { text: "Expired — re-authenticate to resume its jobs", tone: "bad" };
  const refresh = c.refresh_expires_at ? new Date(c.refresh_expires_at).getTime() : null;
  if (refresh !== null && refresh - now < 3 * DAY)
    return { text: `Sign-in expires ${formatRelative(c.refresh_expires_at, now)}; re-authenticate before then`, tone: "warn" };
  if (c.token_expires_at) {
    const t = new Date(c.token_expires_at).getTime();
    return t < now
      ? { text: `Access token expired ${formatRelative(c.token_expires_at, now)}; it refreshes on the next run`, tone: "muted" }
      : { text: `Access token valid, refreshes ${formatRelative(c.token_expires_at, now)}`, tone: "ok" };
  }
  return { text: c.auth_kind === "none" ? "No credentials needed" : "No token issued yet", tone: "muted" };
}

export function ConnectionsView({ focusId }: { focusId?: string }) {
  const q = useQuery({ queryKey: qk.connections, queryFn: api.connectionsList });
  const [adding, setAdding] = useState(false);
  const [custom, setCustom] = useState(false);
  const [reauth, setReauth] = useState<ConnectionDto | null>(null);

  // `#/connections/<id>?reauth=1` (from a diagnosis action, an alert or a notification) opens
  // the re-authenticate dialog for that connection.
  useEffect(() => {
    if (!focusId || !q.data) return;
    const c = q.data.find((x) => x.id === focusId);
    if (c && hashQuery().get("reauth") === "1") setReauth(c);
    document.getElementById(`conn-${focusId}`)?.scrollIntoView?.({ block: "center" });
  }, [focusId, q.data]);

  return (
    <div className="page">
      <PageHeader
        title="Connections"
        sub="Provider accounts. Secrets go straight to your OS keychain and are never shown again."
        actions={
          <button className="btn btn-primary" onClick={() => setAdding(true)}>
            + Add connection
          </button>
        }
      />
      {q.isPending ? (
        <Loading label="Loading connections…" />
      ) : q.isError ? (
        <ErrorState error={q.error} onRetry={() => void q.refetch()} />
      ) : q.data.length === 0 ? (
        <Empty
          title="No connections yet"
          action={
            <>
              <button className="btn btn-primary" onClick={() => navigate(paths.sandbox())}>
                Try it with the sandbox
              </button>
              <button className="btn" onClick={() => setAdding(true)}>
                Add connection
              </button>
            </>
          }
        >
          Connect an accounting, payments, CRM or commerce provider — or practise on the built-in sandbox first.
        </Empty>
      ) : (
        <div className="cards">
          {q.data.map((c) => (
            <ConnectionCard key={c.id} c={c} focused={c.id === focusId} onReauth={() => setReauth(c)} />
          ))}
        </div>
      )}
      <ConnectWizard
        open={adding}
        onClose={() => setAdding(false)}
        onCustom={() => {
          setAdding(false);
          setCustom(true);
        }}
      />
      <NewConnectionDialog open={custom} onClose={() => setCustom(false)} />
      <ReauthDialog
        connection={reauth}
        onClose={() => {
          setReauth(null);
          if (focusId) navigate(paths.connection(focusId));
        }}
      />
    </div>
  );
}

function ConnectionCard({ c, focused, onReauth }: { c: ConnectionDto; focused: boolean; onReauth: () => void }) {
  const fresh = tokenFreshness(c);
  const needsFix = c.status !== "active";
  const qc = useQueryClient();
  const test = useMutation({
    mutationFn: () => api.connectionTest(c.id),
    onSettled: () => {
      void qc.invalidateQueries({ queryKey: qk.connections });
      void qc.invalidateQueries({ queryKey: qk.health });
    },
  });
  return (
    <article
      id={`conn-${c.id}`}
      className={`card conn ${needsFix ? "conn-bad" : ""} ${focused ? "focused" : ""}`}
      data-testid={T.connectionCard}
      data-connection-id={c.id}
      aria-labelledby={`conn-h-${c.id}`}
    >
      <header className="conn-head">
        <div>
          <h2 id={`conn-h-${c.id}`}>{c.name}</h2>
          <div className="muted small">
            {c.provider} · {AUTH_LABEL[c.auth_kind] ?? c.auth_kind}
          </div>
        </div>
        <StatusBadge status={c.status} testId={T.connectionStatus} />
      </header>
      {needsFix && (
        <div className="banner banner-bad">
          <strong>{c.status === "expired" ? "This connection has expired." : "This connection has a problem."}</strong>{" "}
          {sentence(c.status_note ?? "Its credentials were rejected.")} Jobs using it fail until you re-authenticate.
        </div>
      )}
      <dl className="kv">
        <dt>Base URL</dt>
        <dd className="mono">{c.base_url}</dd>
        <dt>Token</dt>
        <dd className={`tone-${fresh.tone}`}>{fresh.text}</dd>
        {/* Only a browser sign-in ends: client credentials get a new token whenever needed,
            whatever a refresh token they were also given says. */}
        {c.auth_kind === "oauth2_refresh_token" && c.refresh_expires_at && (
          <>
            <dt>Sign-in valid until</dt>
            <dd>{formatTime(c.refresh_expires_at)}</dd>
          </>
        )}
        <dt>Last checked</dt>
        <dd>{c.last_checked_at ? formatRelative(c.last_checked_at) : "Never"}</dd>
      </dl>
      <footer className="conn-foot">
        <button className="btn" data-testid={T.connectionTest} onClick={() => test.mutate()} disabled={test.isPending}>
          {test.isPending ? "Testing…" : "Test connection"}
        </button>
        {c.auth_kind !== "none" && (
          <button className={`btn ${needsFix ? "btn-primary" : ""}`} data-testid={T.reauthButton} onClick={onReauth}>
            Re-authenticate
          </button>
        )}
        <span role="status" className="small">
          {test.isSuccess && (test.data.status === "active" ? "It works: the provider accepted the credentials." : sentence(test.data.status_note ?? "It could not be checked."))}
        </span>
      </footer>
      <InlineError error={test.error} />
    </article>
  );
}

type AuthChoice = "client_credentials" | "api_key" | "browser";

function NewConnectionDialog({ open, onClose }: { open: boolean; onClose: () => void }) {
  const qc = useQueryClient();
  const [name, setName] = useState("");
  const [spec, setSpec] = useState("");
  const [baseUrl, setBaseUrl] = useState("");
  const [auth, setAuth] = useState<AuthChoice>("client_credentials");
  const [clientId, setClientId] = useState("");
  const [clientSecret, setClientSecret] = useState("");
  const [apiKey, setApiKey] = useState("");
  const [errors, setErrors] = useState<Record<string, string>>({});
  const reset = () => {
    setName("");
    setSpec("");
    setBaseUrl("");
    setClientId("");
    setClientSecret("");
    setApiKey("");
    setErrors({});
  };
  const m = useMutation({
    mutationFn: (input: NewConnectionDto) => (auth === "browser" ? api.connectionSignIn(input) : api.connectionCreate(input)),
    onSuccess: (c) => {
      void qc.invalidateQueries({ queryKey: qk.connections });
      void qc.invalidateQueries({ queryKey: qk.health });
      reset();
      onClose();
      navigate(paths.connection(c.id));
    },
    onError: (e) => {
      // Secrets never linger in memory longer than the attempt.
      setClientSecret("");
      setApiKey("");
      const err = toErrorDto(e);
      const f = invalidField(err);
      if (f) setErrors({ [f]: invalidReason(err) });
    },
  });
  const submit = (e: React.FormEvent) => {
    e.preventDefault();
    const errs: Record<string, string> = {};
    if (!name.trim()) errs.name = "Give the connection a name.";
    if (!spec.trim()) errs.spec = "Paste the provider's connector spec (TOML or JSON).";
    if (baseUrl.trim() && !/^https?:\/\/\S+$/.test(baseUrl.trim())) errs.base_url = "Use a full URL, e.g. https://api.example.com.";
    if (auth === "client_credentials") {
      if (!clientId.trim()) errs.client_id = "Client ID is required.";
      if (!clientSecret) errs.client_secret = "Client secret is required.";
    } else if (auth === "api_key") {
      if (!apiKey) errs.api_key = "API key is required.";
    } else if (!clientId.trim()) errs.client_id = "Client ID is required: the provider knows Syncdesk by it.";
    setErrors(errs);
    if (Object.keys(errs).length) return;
    const input: NewConnectionDto = { name: name.trim(), spec };
    if (baseUrl.trim()) input.base_url = baseUrl.trim();
    if (auth === "api_key") input.api_key = apiKey;
    else {
      input.client_id = clientId.trim();
      // A browser sign-in works without a secret (PKCE); a confidential client sends one.
      if (clientSecret) input.client_secret = clientSecret;
    }
    m.mutate(input);
  };
  const err = (k: string) =>
    errors[k] ? (
      <span className="field-error" data-testid={`${T.fieldErrorPrefix}${k}`}>
        {errors[k]}
      </span>
    ) : null;
  return (
    <Dialog
      open={open}
      title="Custom connector"
      onClose={() => {
        reset();
        m.reset();
        onClose();
      }}
      footer={
        <>
          <button className="btn" type="button" onClick={onClose}>
            Cancel
          </button>
          {m.isPending && auth === "browser" && (
            <button className="btn" type="button" onClick={() => void api.signInCancel()} data-testid={T.signInCancel}>
              Stop waiting
            </button>
          )}
          <button className="btn btn-primary" type="submit" form="new-conn" disabled={m.isPending}>
            {m.isPending ? (auth === "browser" ? "Waiting for the browser…" : "Connecting…") : auth === "browser" ? "Sign in with browser" : "Connect"}
          </button>
        </>
      }
    >
      <p className="muted small">
        Just exploring? <Link to={paths.sandbox()} onClick={onClose}>Start the sandbox</Link> — it creates its own connection.
      </p>
      <form id="new-conn" onSubmit={submit} noValidate className="stack">
        <label className="field">
          <span className="field-label">Name</span>
          <input value={name} onChange={(e) => setName(e.target.value)} aria-invalid={Boolean(errors.name)} placeholder="Acme Accounting" />
          {err("name")}
        </label>
        <label className="field">
          <span className="field-label">Connector spec</span>
          <textarea
            className="mono"
            rows={4}
            value={spec}
            onChange={(e) => setSpec(e.target.value)}
            aria-invalid={Boolean(errors.spec)}
            placeholder={'provider = "acme"\n# endpoints, pagination, auth… (docs/connectors.md)'}
          />
          {err("spec")}
        </label>
        <label className="field">
          <span className="field-label">Base URL (optional, overrides the spec)</span>
          <input className="mono" value={baseUrl} onChange={(e) => setBaseUrl(e.target.value)} aria-invalid={Boolean(errors.base_url)} />
          {err("base_url")}
        </label>
        <fieldset className="radio-row">
          <legend className="field-label">Authentication</legend>
          <label className="check">
            <input type="radio" name="auth" checked={auth === "client_credentials"} onChange={() => setAuth("client_credentials")} /> Client
            credentials
          </label>
          <label className="check">
            <input type="radio" name="auth" checked={auth === "api_key"} onChange={() => setAuth("api_key")} /> API key
          </label>
          <label className="check">
            <input type="radio" name="auth" checked={auth === "browser"} onChange={() => setAuth("browser")} /> Sign in through the browser
          </label>
        </fieldset>
        {auth !== "api_key" && (
          <div className="grid-2">
            <label className="field">
              <span className="field-label">Client ID</span>
              <input className="mono" autoComplete="off" value={clientId} onChange={(e) => setClientId(e.target.value)} aria-invalid={Boolean(errors.client_id)} />
              {err("client_id")}
            </label>
            <label className="field">
              <span className="field-label">Client secret{auth === "browser" ? " (only if the provider gave one)" : ""}</span>
              <input
                type="password"
                autoComplete="off"
                value={clientSecret}
                onChange={(e) => setClientSecret(e.target.value)}
                aria-invalid={Boolean(errors.client_secret)}
              />
              {err("client_secret")}
            </label>
          </div>
        )}
        {auth === "api_key" && (
          <label className="field">
            <span className="field-label">API key</span>
            <input type="password" autoComplete="off" value={apiKey} onChange={(e) => setApiKey(e.target.value)} aria-invalid={Boolean(errors.api_key)} />
            {err("api_key")}
          </label>
        )}
        {auth === "browser" && (
          <div className="banner banner-info" data-testid={T.signInNote}>
            {m.isPending
              ? "Finish signing in in your browser. Syncdesk is listening on this computer for the provider to send you back."
              : "Your web browser opens the provider's sign-in page. Syncdesk never sees your password: the provider sends back a one-time code, which Syncdesk exchanges for tokens kept in your OS keychain."}
          </div>
        )}
      </form>
      <InlineError error={m.error && !invalidField(toErrorDto(m.error)) ? m.error : null} />
    </Dialog>
  );
}

function ReauthDialog({ connection, onClose }: { connection: ConnectionDto | null; onClose: () => void }) {
  const qc = useQueryClient();
  const [secret, setSecret] = useState("");
  const [error, setError] = useState<string | null>(null);
  const inputRef = useRef<HTMLInputElement>(null);
  const kind = connection?.auth_kind ?? "";
  const m = useMutation({
    mutationFn: (input: ReauthDto) => api.connectionReauth(connection!.id, input),
    onSuccess: () => {
      void qc.invalidateQueries({ queryKey: qk.connections });
      void qc.invalidateQueries({ queryKey: qk.health });
      void qc.invalidateQueries({ queryKey: qk.jobs });
      setSecret("");
      onClose();
    },
    onError: () => setSecret(""),
  });
  const again = useMutation({
    mutationFn: () => api.connectionSignInAgain(connection!.id),
    onSuccess: () => {
      void qc.invalidateQueries({ queryKey: qk.connections });
      void qc.invalidateQueries({ queryKey: qk.health });
      void qc.invalidateQueries({ queryKey: qk.jobs });
      onClose();
    },
  });
  const close = () => {
    if (again.isPending) void api.signInCancel();
    setSecret("");
    setError(null);
    m.reset();
    again.reset();
    onClose();
  };
  const label =
    kind === "oauth2_client_credentials" ? "Client secret" : kind === "oauth2_refresh_token" ? "Refresh token" : kind === "bearer" ? "Token" : "API key";
  const submit = (e: React.FormEvent) => {
    e.preventDefault();
    if (!secret) {
      setError(`${label} is required.`);
      inputRef.current?.focus();
      return;
    }
    setError(null);
    const input: ReauthDto =
      kind === "oauth2_client_credentials" ? { client_secret: secret } : kind === "oauth2_refresh_token" ? { refresh_token: secret } : { api_key: secret };
    m.mutate(input);
  };
  return (
    <Dialog
      open={connection !== null}
      title={connection ? `Re-authenticate ${connection.name}` : "Re-authenticate"}
      onClose={close}
      footer={
        <>
          <button className="btn" type="button" onClick={close}>
            Cancel
          </button>
          <button className="btn btn-primary" type="submit" form="reauth-form" disabled={m.isPending}>
            {m.isPending ? "Checking…" : "Re-authenticate"}
          </button>
        </>
      }
    >
      {connection?.status_note && <p className="banner banner-bad">{connection.status_note}</p>}
      {kind === "oauth2_refresh_token" && (
        <div className="stack">
          <p>Sign in to the provider again in your web browser; the connection keeps its jobs and history.</p>
          <div>
            <button className="btn btn-primary" type="button" onClick={() => again.mutate()} disabled={again.isPending} data-testid={T.signInAgain}>
              {again.isPending ? "Waiting for the browser…" : "Sign in again with browser"}
            </button>
          </div>
          <InlineError error={again.error} />
          <p className="muted small">Or paste a refresh token the provider gave you:</p>
        </div>
      )}
      <form id="reauth-form" onSubmit={submit} noValidate>
        <label className="field">
          <span className="field-label">New {label.toLowerCase()}</span>
          <input
            ref={inputRef}
            type="password"
            autoComplete="off"
            autoFocus
            value={secret}
            onChange={(e) => setSecret(e.target.value)}
            aria-invalid={Boolean(error)}
          />
          {error && (
            <span className="field-error" data-testid={`${T.fieldErrorPrefix}secret`}>
              {error}
            </span>
          )}
          <span className="field-hint">Stored in your OS keychain. Jobs resume on their next run.</span>
        </label>
      </form>
      <InlineError error={m.error} />
    </Dialog>
  );
}

/** A note from the engine as a sentence: it ends with a full stop before the next one starts. */
function sentence(note: string): string {
  const t = note.trim();
  return /[.!?]$/.test(t) ? t : `${t}.`;
}
