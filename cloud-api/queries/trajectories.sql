-- Positions of one match for a frame range, every Nth frame, one track (0: all), each track and
-- frame once (copies not yet merged away are skipped by LIMIT 1 BY), in track then frame order.
-- fields: track, class, frame, x_cm, y_cm
-- example: '0190a1b2-0000-7000-8000-00000000000a' | '0190a1b2-0000-7000-8000-0000000000cc' | 0 | 0 | 0 | 4294967295 | 1 | 100000
SELECT track, class, frame, x_cm, y_cm
FROM detections_by_track
PREWHERE organization_id = ? AND match_id = ? AND (? = 0 OR track = ?)
WHERE frame >= ? AND frame < ? AND frame % ? = 0
ORDER BY track, frame
LIMIT 1 BY track, frame
LIMIT ?
