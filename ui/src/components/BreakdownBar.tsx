import type { CountsDto } from "../bindings/CountsDto";
import { T } from "../testids";

const SEGMENTS = [
  { key: "created", label: "Created", testId: T.breakdownCreated },
  { key: "updated", label: "Updated", testId: T.breakdownUpdated },
  { key: "skipped", label: "Skipped", testId: T.breakdownSkipped },
  { key: "failed", label: "Failed", testId: T.breakdownFailed },
] as const;

/**
 * created green, updated blue, skipped grey, failed red. Segment widths are shares of
 * `processed`; every count is also written out in the legend (colour is never the only cue).
 */
export function BreakdownBar({ counts, compact = false }: { counts: CountsDto; compact?: boolean }) {
  const total = counts.created + counts.updated + counts.skipped + counts.failed;
  const label = SEGMENTS.map((s) => `${counts[s.key].toLocaleString()} ${s.label.toLowerCase()}`).join(", ");
  return (
    <div className={`breakdown ${compact ? "breakdown-compact" : ""}`} data-testid={compact ? undefined : T.breakdown}>
      <div className="breakdown-bar" role="img" aria-label={`${counts.processed.toLocaleString()} processed: ${label}`}>
        {total === 0 ? (
          <div className="seg seg-empty" style={{ width: "100%" }} />
        ) : (
          SEGMENTS.filter((s) => counts[s.key] > 0).map((s) => (
            <div
              key={s.key}
              className={`seg seg-${s.key}`}
              style={{ width: `${Number(((counts[s.key] / total) * 100).toFixed(3))}%` }}
              title={`${s.label}: ${counts[s.key].toLocaleString()}`}
            />
          ))
        )}
      </div>
      {!compact && (
        <ul className="breakdown-legend">
          <li className="legend-processed">
            <span className="legend-count">{counts.processed.toLocaleString()}</span> processed
          </li>
          {SEGMENTS.map((s) => (
            <li key={s.key} data-testid={s.testId} data-count={counts[s.key]} className={`legend-${s.key}`}>
              <span className={`swatch seg-${s.key}`} aria-hidden="true" />
              <span className="legend-count">{counts[s.key].toLocaleString()}</span> {s.label.toLowerCase()}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
