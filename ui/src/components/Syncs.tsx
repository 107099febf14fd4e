// All syncs at once: the "paused" banner every page shows, the dashboard's "Run due jobs now"
// and "Pause all syncs", and the question asked before quitting stops runs in progress.
// Whether syncs are paused is the engine's answer (HealthDto), never kept here.
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { api, qk } from "../api/client";
import type { HealthDto } from "../bindings/HealthDto";
import type { QuitRequestDto } from "../bindings/QuitRequestDto";
import { formatTime } from "../format";
import { T } from "../testids";
import { Dialog, InlineError } from "./ui";

function useSetHealth() {
  const qc = useQueryClient();
  return (h: HealthDto) => {
    qc.setQueryData(qk.health, h);
    void qc.invalidateQueries({ queryKey: qk.jobs });
  };
}

/** Shown on every page while all syncs are paused, with the way out. */
export function PausedBanner() {
  const health = useQuery({ queryKey: qk.health, queryFn: api.health });
  const setHealth = useSetHealth();
  const resume = useMutation({ mutationFn: api.syncsResume, onSuccess: setHealth });
  const h = health.data;
  if (!h?.paused_since) return null;
  return (
    <div className="banner banner-warn banner-row paused-banner" role="status" data-testid={T.pausedBanner}>
      <div>
        <strong>All syncs are paused</strong> since {formatTime(h.paused_since)}
        {h.paused_by ? ` (by ${h.paused_by})` : ""}. Scheduled syncs and automatic retries wait until you
        resume; what falls due meanwhile runs once then. Run now still works.
        {resume.isError && <InlineError error={resume.error} />}
      </div>
      <button
        className="btn btn-sm btn-primary"
        data-testid={T.resumeSyncs}
        disabled={resume.isPending}
        onClick={() => resume.mutate()}
      >
        {resume.isPending ? "Resuming…" : "Resume syncs"}
      </button>
    </div>
  );
}

/** The dashboard's buttons for all syncs: run what is due now, pause. */
export function SyncsActions() {
  const health = useQuery({ queryKey: qk.health, queryFn: api.health });
  const qc = useQueryClient();
  const setHealth = useSetHealth();
  const [started, setStarted] = useState<number | null>(null);
  const runDue = useMutation({
    mutationFn: api.syncsRunDue,
    onSuccess: (n) => {
      setStarted(n);
      void qc.invalidateQueries({ queryKey: qk.jobs });
    },
  });
  const pause = useMutation({ mutationFn: api.syncsPause, onSuccess: setHealth });
  const paused = !!health.data?.paused_since;
  return (
    <>
      <span className="muted small" role="status">
        {started !== null && !runDue.isPending && (started === 1 ? "1 job started" : `${started} jobs started`)}
      </span>
      <button
        className="btn"
        data-testid={T.runDue}
        disabled={paused || runDue.isPending}
        title={paused ? "Resume syncs first" : "Start every scheduled job and waiting retry now"}
        onClick={() => {
          setStarted(null);
          runDue.mutate();
        }}
      >
        Run due jobs now
      </button>
      {!paused && (
        <button className="btn" data-testid={T.pauseSyncs} disabled={pause.isPending} onClick={() => pause.mutate()}>
          Pause all syncs
        </button>
      )}
      {(runDue.isError || pause.isError) && <InlineError error={runDue.error ?? pause.error} />}
    </>
  );
}

/** Asked when the admin quits (from the tray) while syncs are running. */
export function QuitDialog({ request, onClose }: { request: QuitRequestDto | null; onClose: () => void }) {
  const quit = useMutation({ mutationFn: api.appQuit });
  const n = request?.runs_in_progress ?? 0;
  return (
    <Dialog
      open={request !== null}
      title="Quit Syncdesk?"
      onClose={onClose}
      footer={
        <div data-testid={T.quitDialog}>
          <button className="btn" data-testid={T.quitCancel} autoFocus onClick={onClose}>
            Keep syncing
          </button>{" "}
          <button className="btn btn-danger" data-testid={T.quitConfirm} disabled={quit.isPending} onClick={() => quit.mutate()}>
            Quit and stop {n === 1 ? "the sync" : "the syncs"}
          </button>
        </div>
      }
    >
      <p>
        {n === 1 ? "A sync is running." : `${n} syncs are running.`} Quitting stops{" "}
        {n === 1 ? "it" : "them"} now: records already saved stay saved, and a stopped sync is
        retried later like any failed sync (once Syncdesk runs again).
      </p>
      <p className="muted small">
        To keep syncing in the background, close the window instead: Syncdesk stays in the tray.
      </p>
      {quit.isError && <InlineError error={quit.error} />}
    </Dialog>
  );
}
