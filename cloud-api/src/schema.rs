//! The ClickHouse schema as numbered migrations, applied at start-up.
//!
//! Each migration is a file in `cloud-api/migrations/` (statements separated by `;` at the end
//! of a line). A first line `-- requires-server: X.Y` holds a migration back on an older server
//! (TTL needs 19.6; Debian ships 18.16): it is not recorded, so the first start on a server that
//! has the feature applies it. Every statement is idempotent (`IF NOT EXISTS`, `MODIFY`), so
//! several instances starting at once do no harm. A database migrated by a newer build is
//! refused, never touched.

use clickhouse::Client;

/// The migrations of this build: version, name, SQL.
pub const MIGRATIONS: [(u32, &str, &str); 5] = [
    (1, "tables", include_str!("../migrations/001_tables.sql")),
    (2, "ttl", include_str!("../migrations/002_ttl.sql")),
    (
        3,
        "by_track",
        include_str!("../migrations/003_by_track.sql"),
    ),
    (
        4,
        "by_track_ttl",
        include_str!("../migrations/004_by_track_ttl.sql"),
    ),
    (
        5,
        "player_summaries",
        include_str!("../migrations/005_player_summaries.sql"),
    ),
];

/// Errors of the schema.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SchemaError {
    /// ClickHouse refused or could not be reached.
    #[error("ClickHouse: {context}: {source}")]
    ClickHouse {
        /// What was being done.
        context: String,
        /// The cause.
        source: clickhouse::error::Error,
    },
    /// The database is ahead of this build.
    #[error(
        "database schema version {found} is newer than this build's ({known}); upgrade cloud-api — nothing was changed"
    )]
    Newer {
        /// In the database.
        found: u32,
        /// In this build.
        known: u32,
    },
}

/// The statements of a migration file.
pub fn statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in sql.lines() {
        if line.trim_start().starts_with("--") {
            continue;
        }
        current.push_str(line);
        current.push('\n');
        if line.trim_end().ends_with(';') {
            let s = current.trim().trim_end_matches(';').trim().to_string();
            if !s.is_empty() {
                out.push(s);
            }
            current.clear();
        }
    }
    let s = current.trim().to_string();
    if !s.is_empty() {
        out.push(s);
    }
    out
}

/// The server version a migration needs, if any.
pub fn required_server(sql: &str) -> Option<(u32, u32)> {
    let line = sql.lines().next()?.trim();
    let v = line.strip_prefix("-- requires-server:")?.trim();
    let (a, b) = v.split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// Parses `SELECT version()` output ("18.16.1", "25.3.2.39").
pub fn parse_server_version(v: &str) -> Option<(u32, u32)> {
    let mut it = v.trim().split('.');
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

fn ch(context: &str) -> impl FnOnce(clickhouse::error::Error) -> SchemaError + '_ {
    move |source| SchemaError::ClickHouse {
        context: context.to_string(),
        source,
    }
}

/// What [`migrate`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    /// Server version text.
    pub server: String,
    /// Versions applied now.
    pub applied: Vec<u32>,
    /// Versions waiting for a newer server.
    pub waiting: Vec<u32>,
}

/// Creates `database` if needed and brings it to this build's schema. `client` must not have a
/// database set (the database may not exist yet).
pub async fn migrate(client: &Client, database: &str) -> Result<MigrationReport, SchemaError> {
    let server: String = client
        .query(&crate::queries::SERVER_VERSION.sql())
        .fetch_one()
        .await
        .map_err(ch("asking the server version"))?;
    let version = parse_server_version(&server).unwrap_or((0, 0));
    client
        .query(&format!("CREATE DATABASE IF NOT EXISTS {database}"))
        .execute()
        .await
        .map_err(ch("creating the database"))?;
    let db = client.clone().with_database(database);
    db.query(&crate::queries::MIGRATIONS_TABLE.sql())
        .execute()
        .await
        .map_err(ch("creating schema_migrations"))?;
    let done: Vec<u32> = db
        .query(&crate::queries::MIGRATIONS_APPLIED.sql())
        .fetch_all()
        .await
        .map_err(ch("reading schema_migrations"))?;
    let known = MIGRATIONS.iter().map(|m| m.0).max().unwrap_or(0);
    if let Some(&found) = done.iter().max()
        && found > known
    {
        return Err(SchemaError::Newer { found, known });
    }
    let mut report = MigrationReport {
        server: server.clone(),
        applied: Vec::new(),
        waiting: Vec::new(),
    };
    for (v, name, sql) in MIGRATIONS {
        if done.contains(&v) {
            continue;
        }
        if let Some(need) = required_server(sql)
            && version < need
        {
            tracing::info!(
                migration = v,
                name,
                server = %server,
                "schema migration waits for ClickHouse {}.{} or newer",
                need.0,
                need.1
            );
            report.waiting.push(v);
            continue;
        }
        for stmt in statements(sql) {
            db.query(&stmt)
                .execute()
                .await
                .map_err(ch(&format!("migration {v:03} {name}")))?;
        }
        db.query(&crate::queries::MIGRATION_RECORD.sql())
            .bind(v)
            .bind(name)
            .execute()
            .await
            .map_err(ch("recording a migration"))?;
        tracing::info!(migration = v, name, "schema migration applied");
        report.applied.push(v);
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migration_files_split_and_declare_their_server() {
        let s = statements(MIGRATIONS[0].2);
        assert_eq!(s.len(), 4);
        assert!(
            s.iter()
                .all(|q| q.starts_with("CREATE TABLE IF NOT EXISTS"))
        );
        assert_eq!(required_server(MIGRATIONS[0].2), None);
        assert_eq!(required_server(MIGRATIONS[1].2), Some((19, 6)));
        assert_eq!(statements(MIGRATIONS[1].2).len(), 2);
        assert_eq!(parse_server_version("18.16.1"), Some((18, 16)));
        assert!(parse_server_version("25.3.2.39") > Some((19, 6)));
    }
}
