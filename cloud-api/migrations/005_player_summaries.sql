-- Each player's metrics as the rig measured them at the end of a match (cloud-sync's
-- `summary`): distance, speed zones, top speed, sprints, accelerations, team, and the tracker's
-- track ids (fragments) that make up the player. A summary sent again replaces the earlier one:
-- the newest received_ms wins, and reads use FINAL.

CREATE TABLE IF NOT EXISTS player_summaries (
    organization_id UUID,
    match_id UUID,
    player UInt32,
    received_ms UInt64,
    class UInt8,
    team String,
    fragments Array(UInt32),
    frames UInt32,
    distance_m Float64,
    walking_m Float64,
    jogging_m Float64,
    running_m Float64,
    high_speed_running_m Float64,
    sprinting_m Float64,
    high_speed_m Float64,
    top_speed_mps Float64,
    sprints UInt32,
    accelerations UInt32,
    decelerations UInt32
) ENGINE = ReplacingMergeTree(received_ms)
ORDER BY (organization_id, match_id, player);
