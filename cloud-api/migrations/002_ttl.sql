-- requires-server: 19.6
-- Detections and their ledger are kept 90 days. TTL arrived in ClickHouse 19.6: on an older
-- server this migration waits (it is applied by the first start on a server that has it).

ALTER TABLE detections MODIFY TTL created_at + INTERVAL 90 DAY;

ALTER TABLE ingested_batches MODIFY TTL ingested_at + INTERVAL 90 DAY;
