-- One match's positions for export, each track and frame once, in frame then track order, with
-- the player each track belongs to (0 before the rig's summary arrives) and seconds since the
-- match start. Read as CSVWithNames, or as rows the service writes to Parquet.
-- example: 25 | '0190a1b2-0000-7000-8000-00000000000a' | '0190a1b2-0000-7000-8000-0000000000cc' | '0190a1b2-0000-7000-8000-00000000000a' | '0190a1b2-0000-7000-8000-0000000000cc'
SELECT frame, round(frame / ?, 3) AS time_s, track, player, class, x_cm / 100 AS x_m, y_cm / 100 AS y_m, round(confidence / 255, 3) AS confidence
FROM (
    SELECT frame, track, class, x_cm, y_cm, confidence
    FROM detections FINAL
    WHERE organization_id = ? AND match_id = ?
) AS d
ANY LEFT JOIN (
    SELECT arrayJoin(fragments) AS track, player
    FROM player_summaries FINAL
    WHERE organization_id = ? AND match_id = ?
) AS p USING track
ORDER BY frame, track
