-- Every player of one match as the rig summarised it, one row per player (FINAL: the newest
-- summary only).
-- fields: player, class, team, fragments, frames, distance_m, walking_m, jogging_m, running_m, high_speed_running_m, sprinting_m, high_speed_m, top_speed_mps, sprints, accelerations, decelerations
-- example: '0190a1b2-0000-7000-8000-00000000000a' | '0190a1b2-0000-7000-8000-0000000000cc'
SELECT ?fields
FROM player_summaries FINAL
WHERE organization_id = ? AND match_id = ?
ORDER BY player
