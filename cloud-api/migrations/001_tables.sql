-- Devices, matches, detections and the ledger of ingested batches.
-- One schema for Debian's ClickHouse 18.16 and current releases: no TTL, DateTime64,
-- LowCardinality or CODEC here (002 adds TTL where the server has it).

CREATE TABLE IF NOT EXISTS devices (
    serial String,
    organization_id UUID,
    public_key String,
    enrolled_at DateTime,
    revoked UInt8
) ENGINE = ReplacingMergeTree(enrolled_at)
ORDER BY serial;

CREATE TABLE IF NOT EXISTS matches (
    organization_id UUID,
    match_id UUID,
    device_serial String,
    started_at DateTime,
    started_ms Int64,
    fps Float64,
    updated_at DateTime
) ENGINE = ReplacingMergeTree(updated_at)
PARTITION BY toYYYYMM(started_at)
ORDER BY (organization_id, match_id);

-- One row per track and frame. The sorting key is also the identity of a row, so a batch
-- stored twice collapses back to one copy (ReplacingMergeTree; read with FINAL).
CREATE TABLE IF NOT EXISTS detections (
    organization_id UUID,
    match_id UUID,
    created_at DateTime,
    frame UInt32,
    track UInt32,
    class UInt8,
    x_cm Int32,
    y_cm Int32,
    confidence UInt8
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(created_at)
ORDER BY (organization_id, match_id, frame, track);

CREATE TABLE IF NOT EXISTS ingested_batches (
    organization_id UUID,
    batch_id String,
    device_serial String,
    match_id UUID,
    first_row UInt64,
    last_row UInt64,
    row_count UInt32,
    ingested_at DateTime
) ENGINE = ReplacingMergeTree(ingested_at)
ORDER BY (organization_id, batch_id);
