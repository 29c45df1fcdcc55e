-- The same detections sorted by track first: a player's heatmap or path reads that player's
-- rows only, instead of scanning the whole match (about 30x fewer rows for one of 26 tracks).
-- Filled by a materialized view on every insert; existing rows are copied once (a copy made
-- twice after a crash collapses like any duplicate).

CREATE TABLE IF NOT EXISTS detections_by_track (
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
ORDER BY (organization_id, match_id, track, frame);

CREATE MATERIALIZED VIEW IF NOT EXISTS detections_by_track_feed TO detections_by_track
AS SELECT organization_id, match_id, created_at, frame, track, class, x_cm, y_cm, confidence
FROM detections;

INSERT INTO detections_by_track
SELECT organization_id, match_id, created_at, frame, track, class, x_cm, y_cm, confidence
FROM detections;
