-- requires-server: 19.6
-- The per-track copy expires with the detections (90 days).

ALTER TABLE detections_by_track MODIFY TTL created_at + INTERVAL 90 DAY;
