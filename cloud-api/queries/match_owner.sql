-- The rig that sent a match, or nothing: a match belongs to the device that first sent it, and
-- the ingest refuses another rig's rows or summary for it; the earliest version decides.
-- example: '0190a1b2-0000-7000-8000-00000000000a' | '0190a1b2-0000-7000-8000-0000000000cc'
SELECT device_serial FROM matches WHERE organization_id = ? AND match_id = ? ORDER BY updated_at, device_serial LIMIT 1
