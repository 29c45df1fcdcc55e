-- The server's version (decides which migrations apply).
SELECT version()
