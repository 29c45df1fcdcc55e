-- A match of the organisation (its frame rate), or nothing: every match read goes through this.
-- fields: fps
-- example: '0190a1b2-0000-7000-8000-00000000000a' | '0190a1b2-0000-7000-8000-0000000000cc'
SELECT ?fields FROM matches FINAL WHERE organization_id = ? AND match_id = ? LIMIT 1
