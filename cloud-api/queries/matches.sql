-- The organisation's matches, newest first, with their frames and tracks.
-- fields: match_id, device_serial, started_ms, fps, frames, tracks
-- example: '0190a1b2-0000-7000-8000-00000000000a' | '0190a1b2-0000-7000-8000-00000000000a'
SELECT toString(id) AS match_id, device_serial, started_ms, fps, frames, tracks
FROM (SELECT match_id AS id, device_serial, started_ms, fps FROM matches FINAL WHERE organization_id = ?) AS m
ANY LEFT JOIN (
    SELECT match_id AS id, toUInt64(max(frame) + 1) AS frames, toUInt64(uniqExact(track)) AS tracks
    FROM detections WHERE organization_id = ? GROUP BY match_id
) AS d USING id
ORDER BY started_ms DESC
LIMIT 1000
