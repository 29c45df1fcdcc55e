-- The newest record of an enrolled device.
-- fields: serial, organization_id, public_key, enrolled_at, revoked
-- example: 'PV-0001'
SELECT ?fields FROM devices FINAL WHERE serial = ? LIMIT 1
