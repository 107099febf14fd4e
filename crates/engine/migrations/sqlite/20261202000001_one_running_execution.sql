-- At most one running execution per job, enforced by the store (issue 13, D1): two starts of
-- one job at the same moment, from any process, make one run. Rows left running by more
-- than one owner before this index existed are all but the newest ended as interrupted, the
-- same way crash recovery ends them.
UPDATE executions
SET status = 'failed', failure_kind = 'interrupted',
    note = 'Interrupted: another run of this job was started at the same time',
    finished_at = COALESCE(started_at, created_at), owner = NULL, lease_until = NULL
WHERE status = 'running'
  AND seq < (SELECT MAX(r.seq) FROM executions r WHERE r.job_id = executions.job_id AND r.status = 'running');

CREATE UNIQUE INDEX executions_one_running ON executions (job_id) WHERE status = 'running';
