//! The SQL the service runs besides the migrations, one file per query in
//! `cloud-api/queries/`, so that `scripts/check-clickhouse-sql.py` runs the very same text on a
//! current ClickHouse engine (chdb) while the tests run it on Debian's 18.16 server.
//!
//! `?` marks a value the client binds (the `clickhouse` crate escapes it); `?fields` stands for
//! the columns of the row type. A file's `-- example:` line gives values for the check script.

/// One query file.
#[derive(Debug, Clone, Copy)]
pub struct Query(&'static str);

impl Query {
    /// The statement without its comments.
    pub fn sql(self) -> String {
        crate::schema::statements(self.0).join(";\n")
    }
}

/// The server's version.
pub const SERVER_VERSION: Query = Query(include_str!("../queries/server_version.sql"));
/// Creates the migrations ledger.
pub const MIGRATIONS_TABLE: Query = Query(include_str!("../queries/migrations_table.sql"));
/// Versions applied.
pub const MIGRATIONS_APPLIED: Query = Query(include_str!("../queries/migrations_applied.sql"));
/// Records a migration.
pub const MIGRATION_RECORD: Query = Query(include_str!("../queries/migration_record.sql"));
/// A device's newest record.
pub const DEVICE: Query = Query(include_str!("../queries/device.sql"));
/// Whether a batch is stored.
pub const BATCH_STORED: Query = Query(include_str!("../queries/batch_stored.sql"));
/// A match of an organisation.
pub const MATCH_OF_ORG: Query = Query(include_str!("../queries/match_of_org.sql"));
/// The device that sent a match.
pub const MATCH_OWNER: Query = Query(include_str!("../queries/match_owner.sql"));
/// The organisation's matches.
pub const MATCHES: Query = Query(include_str!("../queries/matches.sql"));
/// Frames per pitch cell.
pub const HEATMAP: Query = Query(include_str!("../queries/heatmap.sql"));
/// Positions of a match.
pub const TRAJECTORIES: Query = Query(include_str!("../queries/trajectories.sql"));
/// Every player of a match as the rig summarised it.
pub const PLAYER_SUMMARIES: Query = Query(include_str!("../queries/player_summaries.sql"));
/// The tracker's track ids behind a player or a team.
pub const FRAGMENTS: Query = Query(include_str!("../queries/fragments.sql"));
/// A match's positions for export.
pub const EXPORT: Query = Query(include_str!("../queries/export.sql"));
