-- Versions applied so far.
SELECT DISTINCT version FROM schema_migrations
