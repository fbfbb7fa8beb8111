-- Re-push jobs of the API (POST /api/v2/repush/...): what each job re-sends,
-- how far it got, and every record it sent, so that a job resumed after a
-- restart sends nothing twice and its proof knows where each record went.
CREATE TABLE IF NOT EXISTS lakehouse_repush_jobs (
    id               TEXT PRIMARY KEY,
    -- 'transaction' (one record) or 'dataset' (a dataset's history)
    kind             TEXT NOT NULL,
    -- the lake dataset read, which is also the topic the records go back to
    dataset          TEXT NOT NULL,
    transaction_id   TEXT,
    since            DATE,
    until            DATE,
    -- records per second at most
    rate             INTEGER NOT NULL,
    -- running, done or failed
    state            TEXT NOT NULL,
    total            BIGINT NOT NULL,
    skipped          BIGINT NOT NULL DEFAULT 0,
    -- per Kafka partition, the last offset of the history the job covers
    bounds           JSONB NOT NULL,
    -- every record up to this position is sent and recorded
    cursor_partition INTEGER,
    cursor_offset    BIGINT,
    -- the topic's high watermarks before the batch in flight: where to look
    -- for records the broker holds but the job did not record (a crash)
    scan_from        JSONB NOT NULL DEFAULT '{}',
    created_by       TEXT,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at      TIMESTAMPTZ,
    error            TEXT,
    -- how many times a server picked the job up again after a restart
    resumed          INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS lakehouse_repush_jobs_state_idx ON lakehouse_repush_jobs (state);

CREATE TABLE IF NOT EXISTS lakehouse_repush_records (
    job_id           TEXT NOT NULL REFERENCES lakehouse_repush_jobs (id) ON DELETE CASCADE,
    source_partition INTEGER NOT NULL,
    source_offset    BIGINT NOT NULL,
    transaction_id   TEXT,
    partition        INTEGER NOT NULL,
    "offset"         BIGINT NOT NULL,
    sent_at          TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (job_id, source_partition, source_offset)
);
