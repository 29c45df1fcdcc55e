-- Records one applied migration.
-- example: 1 | 'tables'
INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, now())
