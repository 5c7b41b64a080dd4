//! `-q libsqlite3`: the C server's table layout, written in WAL mode with
//! `synchronous=FULL`, one transaction per batch (group commit).

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use rusqlite::{params, Connection};

use super::{priority_from_index, QueueStore, StoreError, StoreOp, StoredJob};

/// The C server's busy timeout.
const BUSY_TIMEOUT: Duration = Duration::from_millis(6000);

/// A SQLite-backed queue.
pub struct SqliteStore {
    db: Connection,
    table: String,
}

impl SqliteStore {
    /// Opens (creating if needed) the database and its table.
    pub fn open(path: &Path, table: &str) -> Result<SqliteStore, StoreError> {
        if table.is_empty() || table.contains('\0') {
            return Err(StoreError::Config(format!("invalid table name {table:?}")));
        }
        let db = Connection::open(path)?;
        db.busy_timeout(BUSY_TIMEOUT)?;
        // WAL + FULL: a commit returns only once its WAL frames are on disk, so every
        // acknowledged job survives a crash or power loss; readers never block the writer.
        let mode: String = db.query_row("PRAGMA journal_mode=WAL", [], |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(%mode, "sqlite refused WAL mode");
        }
        db.execute_batch("PRAGMA synchronous=FULL")?;
        let table = quote_identifier(table);
        db.execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS {table} ( unique_key TEXT, function_name TEXT, \
             priority INTEGER, data BLOB, when_to_run INTEGER, \
             PRIMARY KEY (unique_key, function_name))"
        ))?;
        // Tables written by gearmand before epoch support lack when_to_run.
        if db
            .prepare(&format!("SELECT when_to_run FROM {table} LIMIT 0"))
            .is_err()
        {
            db.execute_batch(&format!(
                "ALTER TABLE {table} ADD COLUMN when_to_run INTEGER"
            ))?;
        }
        Ok(SqliteStore { db, table })
    }
}

fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Binds bytes as TEXT of their exact length, as the C server does.
struct Text<'a>(&'a [u8]);

impl rusqlite::ToSql for Text<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(ValueRef::Text(self.0)))
    }
}

fn bytes_of(value: Value, column: &str) -> Result<Bytes, StoreError> {
    match value {
        Value::Text(s) => Ok(Bytes::from(s)),
        Value::Blob(b) => Ok(Bytes::from(b)),
        // The C server stores an empty payload as NULL.
        Value::Null => Ok(Bytes::new()),
        other => Err(StoreError::Invalid(format!("{column} is {other:?}"))),
    }
}

impl QueueStore for SqliteStore {
    fn replay(&mut self) -> Result<Vec<StoredJob>, StoreError> {
        let sql = format!(
            "SELECT unique_key, function_name, priority, data, when_to_run FROM {} ORDER BY rowid",
            self.table
        );
        let mut statement = self.db.prepare(&sql)?;
        let rows = statement.query_map([], |row| {
            Ok((
                row.get::<_, Value>(0)?,
                row.get::<_, Value>(1)?,
                row.get::<_, Value>(2)?,
                row.get::<_, Value>(3)?,
                row.get::<_, Value>(4)?,
            ))
        })?;
        let mut jobs = Vec::new();
        for row in rows {
            let (key, function, priority, data, when) = row?;
            let priority = match priority {
                Value::Integer(n) => priority_from_index(n),
                _ => None,
            }
            .ok_or_else(|| StoreError::Invalid(format!("priority {priority:?}")))?;
            let when = match when {
                Value::Integer(n) => n,
                Value::Null => 0,
                other => return Err(StoreError::Invalid(format!("when_to_run is {other:?}"))),
            };
            jobs.push(StoredJob {
                key: bytes_of(key, "unique_key")?,
                function: bytes_of(function, "function_name")?,
                priority,
                data: bytes_of(data, "data")?,
                when,
            });
        }
        Ok(jobs)
    }

    fn write(&mut self, ops: &[StoreOp]) -> Result<(), StoreError> {
        let tx = self.db.transaction()?;
        {
            let mut add = tx.prepare_cached(&format!(
                "INSERT OR REPLACE INTO {} (priority, unique_key, function_name, data, when_to_run) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                self.table
            ))?;
            let mut done = tx.prepare_cached(&format!(
                "DELETE FROM {} WHERE unique_key = ?1 AND function_name = ?2",
                self.table
            ))?;
            for op in ops {
                match op {
                    StoreOp::Add(job) => {
                        add.execute(params![
                            job.priority.index() as i64,
                            Text(&job.key),
                            Text(&job.function),
                            &job.data[..],
                            job.when
                        ])?;
                    }
                    StoreOp::Done { key, function } => {
                        done.execute(params![Text(key), Text(function)])?;
                    }
                }
            }
        }
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gearman_shared::protocol::Priority;

    fn job(key: &str, data: &str) -> StoredJob {
        StoredJob {
            key: Bytes::from(key.to_string()),
            function: Bytes::from_static(b"f"),
            priority: Priority::Low,
            data: Bytes::from(data.to_string()),
            when: 0,
        }
    }

    #[test]
    fn add_done_replay() {
        let dir = std::env::temp_dir().join(format!("gearmand-sqlite-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("q.db");
        let _ = std::fs::remove_file(&path);
        let mut store = SqliteStore::open(&path, "gearman_queue").expect("open");
        store
            .write(&[
                StoreOp::Add(job("a", "1")),
                StoreOp::Add(job("b", "")),
                StoreOp::Add(job("c", "3")),
                StoreOp::Done {
                    key: Bytes::from_static(b"a"),
                    function: Bytes::from_static(b"f"),
                },
            ])
            .expect("write");
        drop(store);
        let mut store = SqliteStore::open(&path, "gearman_queue").expect("reopen");
        assert_eq!(
            store.replay().expect("replay"),
            vec![job("b", ""), job("c", "3")]
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
