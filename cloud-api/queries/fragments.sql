-- The tracker's track ids behind one player (0: any) of one team ('': any) of one match.
-- fields: track
-- example: '0190a1b2-0000-7000-8000-00000000000a' | '0190a1b2-0000-7000-8000-0000000000cc' | 0 | 0 | '' | ''
SELECT arrayJoin(fragments) AS track
FROM player_summaries FINAL
WHERE organization_id = ? AND match_id = ? AND (? = 0 OR player = ?) AND (? = '' OR team = ?)
ORDER BY track
