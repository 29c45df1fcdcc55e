-- Whether an organisation already stored a batch (the idempotence check of the ingest).
-- example: '0190a1b2-0000-7000-8000-00000000000a' | '00112233445566778899aabbccddeeff'
SELECT count() FROM ingested_batches WHERE organization_id = ? AND batch_id = ?
