-- Frames spent per pitch cell in one match: the tracks in a range (one track: the same bound
-- twice) and, when the flag is 1, only those listed (a player's or a team's fragments), one
-- class (0: all), a frame range. The range narrows the read by the sorting key, which the list
-- alone would not. Copies of a row not yet merged away count once (distinct track and frame, as
-- one 64-bit key: cheaper to hash than a pair). Read from the copy sorted by track, with
-- PREWHERE, so a one-player map reads that player's rows only.
-- fields: gx, gy, frames
-- example: 200 | 200 | '0190a1b2-0000-7000-8000-00000000000a' | '0190a1b2-0000-7000-8000-0000000000cc' | 3 | 17 | 1 | [3, 17] | 0 | 0 | 0 | 4294967295
SELECT toInt32(floor(x_cm / ?)) AS gx, toInt32(floor(y_cm / ?)) AS gy, toUInt64(uniqExact(bitShiftLeft(toUInt64(track), 32) + frame)) AS frames
FROM detections_by_track
PREWHERE organization_id = ? AND match_id = ?
  AND track >= ? AND track <= ? AND (? = 0 OR has(?, track)) AND (? = 0 OR class = ?)
WHERE frame >= ? AND frame < ?
GROUP BY gx, gy
ORDER BY gx, gy
