//! `-q libpq` (also `-q Postgres`, as 1.1.20 names it): the C server's table in PostgreSQL,
//! one transaction per batch.
//!
//! The table, created when missing, is the one the C server creates:
//! `CREATE TABLE queue (unique_key VARCHAR(64), function_name VARCHAR(255), priority INTEGER,
//! data BYTEA, when_to_run INTEGER, UNIQUE (unique_key, function_name))`, so either server
//! replays what the other stored. A lost connection is re-opened at the next batch.

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgConnection, PgSslMode};
use sqlx::{Connection, Row};

use super::sql::{self, Run, CONNECT_TIMEOUT, OPERATION_TIMEOUT};
use super::{QueueStore, StoreError, StoreOp, StoredJob};

const STORE: &str = "libpq";

/// `--libpq-*`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresConfig {
    /// `--libpq-conninfo`: libpq `keyword=value` pairs or a `postgres://` URI.
    pub conninfo: String,
    /// `--libpq-table`.
    pub table: String,
}

impl PostgresConfig {
    /// Checks the options without connecting (also what `--check-args` checks).
    pub fn new(conninfo: &str, table: &str) -> Result<PostgresConfig, String> {
        sql::check_table("--libpq-table", table)?;
        connect_options(conninfo).map_err(|e| format!("--libpq-conninfo: {e}"))?;
        Ok(PostgresConfig {
            conninfo: conninfo.to_string(),
            table: table.to_string(),
        })
    }
}

/// Where and how to connect, from a libpq connection string.
fn connect_options(conninfo: &str) -> Result<(PgConnectOptions, std::time::Duration), String> {
    let trimmed = conninfo.trim();
    if trimmed.starts_with("postgres://") || trimmed.starts_with("postgresql://") {
        let options = PgConnectOptions::from_str(trimmed).map_err(|e| e.to_string())?;
        return Ok((options.ssl_mode(PgSslMode::Disable), CONNECT_TIMEOUT));
    }
    let mut options = PgConnectOptions::new().ssl_mode(PgSslMode::Disable);
    let mut timeout = CONNECT_TIMEOUT;
    for (key, value) in parse_conninfo(conninfo)? {
        options = match key.as_str() {
            "host" | "hostaddr" => {
                if value.contains(',') {
                    return Err(format!(
                        "several hosts in {key} are not supported: '{value}'"
                    ));
                }
                options.host(&value)
            }
            "port" => options.port(
                value
                    .parse()
                    .map_err(|_| format!("invalid port number: \"{value}\""))?,
            ),
            "user" => options.username(&value),
            "password" => options.password(&value),
            "dbname" => options.database(&value),
            "application_name" | "fallback_application_name" => options.application_name(&value),
            "connect_timeout" => {
                let secs: u64 = value
                    .parse()
                    .map_err(|_| format!("invalid connect_timeout: \"{value}\""))?;
                if secs > 0 {
                    timeout = std::time::Duration::from_secs(secs.max(2));
                }
                options
            }
            "sslmode" => match value.as_str() {
                "disable" | "allow" | "prefer" => options,
                _ => {
                    return Err(format!(
                        "sslmode={value} needs TLS, which this build does not have"
                    ))
                }
            },
            _ => return Err(format!("invalid connection option \"{key}\"")),
        };
    }
    Ok((options, timeout))
}

/// Splits libpq's `keyword = value` syntax; values may be single-quoted, `\` escapes.
fn parse_conninfo(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(pairs);
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            return Err(format!(
                "missing \"=\" after \"{key}\" in connection info string"
            ));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    Some('\\') => value.extend(chars.next()),
                    Some('\'') => break,
                    Some(c) => value.push(c),
                    None => return Err("unterminated quoted string in connection info".into()),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    value.extend(chars.next());
                } else {
                    value.push(c);
                }
            }
        }
        pairs.push((key, value));
    }
}

/// A PostgreSQL-backed queue.
pub struct PostgresStore {
    options: PgConnectOptions,
    connect_timeout: std::time::Duration,
    table: String,
    conn: Option<PgConnection>,
}

impl PostgresStore {
    /// Connects and creates the table if it is missing.
    pub fn open(config: &PostgresConfig) -> Result<PostgresStore, StoreError> {
        let (options, connect_timeout) = connect_options(&config.conninfo)
            .map_err(|e| StoreError::Config(format!("--libpq-conninfo: {e}")))?;
        let mut store = PostgresStore {
            options,
            connect_timeout,
            table: config.table.clone(),
            conn: None,
        };
        store.with_connection(|conn, table| {
            sql::run(STORE, OPERATION_TIMEOUT, async {
                sqlx::raw_sql(&format!(
                    "CREATE TABLE IF NOT EXISTS {table} (unique_key VARCHAR(64), \
                     function_name VARCHAR(255), priority INTEGER, data BYTEA, \
                     when_to_run INTEGER, UNIQUE (unique_key, function_name))"
                ))
                .execute(&mut *conn)
                .await?;
                // Tables written before epoch support lack when_to_run.
                let probe = format!("SELECT when_to_run FROM {table} LIMIT 0");
                if sqlx::raw_sql(&probe).execute(&mut *conn).await.is_err() {
                    sqlx::raw_sql(&format!(
                        "ALTER TABLE {table} ADD COLUMN when_to_run INTEGER"
                    ))
                    .execute(&mut *conn)
                    .await?;
                }
                Ok::<_, sqlx::Error>(())
            })
        })?;
        Ok(store)
    }

    /// The open connection, or a new one.
    fn connection(&mut self) -> Result<&mut PgConnection, StoreError> {
        if self.conn.is_none() {
            let conn = sql::run(
                STORE,
                self.connect_timeout,
                PgConnection::connect_with(&self.options),
            )?;
            self.conn = Some(conn);
        }
        self.conn
            .as_mut()
            .ok_or_else(|| StoreError::backend(STORE, "not connected"))
    }

    /// Runs `f` on the connection; any failure drops the connection so the next call
    /// starts on a fresh one (the server may have restarted).
    fn with_connection<T>(
        &mut self,
        f: impl FnOnce(&mut PgConnection, &str) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let reconnect = self.conn.is_none();
        let table = self.table.clone();
        let result = self.connection().and_then(|conn| f(conn, &table));
        match &result {
            Err(_) => self.conn = None,
            Ok(_) if reconnect => tracing::info!("libpq connection restored"),
            Ok(_) => {}
        }
        result
    }
}

impl QueueStore for PostgresStore {
    fn replay(&mut self) -> Result<Vec<StoredJob>, StoreError> {
        let rows = self.with_connection(|conn, table| {
            let query = format!(
                "SELECT unique_key, function_name, priority, data, \
                 when_to_run::BIGINT AS when_to_run FROM {table}"
            );
            sql::run(
                STORE,
                OPERATION_TIMEOUT,
                sqlx::query(&query).fetch_all(&mut *conn),
            )
        })?;
        rows.iter()
            .map(|row| {
                let text = |i: usize| -> Result<Option<Vec<u8>>, StoreError> {
                    Ok(row
                        .try_get::<Option<String>, _>(i)
                        .map_err(|e| StoreError::Invalid(e.to_string()))?
                        .map(String::into_bytes))
                };
                sql::job_from_row(
                    text(0)?,
                    text(1)?,
                    row.try_get::<Option<i32>, _>(2)
                        .map_err(|e| StoreError::Invalid(e.to_string()))?
                        .map(i64::from),
                    row.try_get::<Option<Vec<u8>>, _>(3)
                        .map_err(|e| StoreError::Invalid(e.to_string()))?,
                    row.try_get::<Option<i64>, _>(4)
                        .map_err(|e| StoreError::Invalid(e.to_string()))?,
                )
            })
            .collect()
    }

    fn write(&mut self, ops: &[StoreOp]) -> Result<(), StoreError> {
        // Check every value first: a batch is all or nothing.
        for op in ops {
            let (key, function) = match op {
                StoreOp::Add(job) => {
                    sql::when_column(STORE, job.when)?;
                    (&job.key, &job.function)
                }
                StoreOp::Done { key, function } => (key, function),
            };
            sql::text(STORE, "unique", key)?;
            sql::text(STORE, "function name", function)?;
        }
        // Multi-row statements: one round trip per run of adds or dones, not per job.
        let runs: Vec<Statement> = sql::runs(ops, MAX_ROWS, MAX_BYTES)
            .into_iter()
            .map(|run| match run {
                Run::Adds(jobs) => Statement::Adds {
                    priorities: jobs.iter().map(|j| j.priority.index() as i32).collect(),
                    keys: jobs.iter().map(|j| text_of(&j.key)).collect(),
                    functions: jobs.iter().map(|j| text_of(&j.function)).collect(),
                    datas: jobs.iter().map(|j| j.data.to_vec()).collect(),
                    whens: jobs
                        .iter()
                        .map(|j| i32::try_from(j.when).unwrap_or(i32::MAX))
                        .collect(),
                },
                Run::Dones(pairs) => Statement::Dones {
                    keys: pairs.iter().map(|(k, _)| text_of(k)).collect(),
                    functions: pairs.iter().map(|(_, f)| text_of(f)).collect(),
                },
            })
            .collect();
        self.with_connection(|conn, table| {
            let add = format!(
                "INSERT INTO {table} (priority, unique_key, function_name, data, when_to_run) \
                 SELECT * FROM UNNEST($1::INTEGER[], $2::VARCHAR[], $3::VARCHAR[], \
                 $4::BYTEA[], $5::INTEGER[]) \
                 ON CONFLICT (unique_key, function_name) DO UPDATE \
                 SET priority = EXCLUDED.priority, data = EXCLUDED.data, \
                 when_to_run = EXCLUDED.when_to_run"
            );
            let done = format!(
                "DELETE FROM {table} WHERE (unique_key, function_name) IN \
                 (SELECT * FROM UNNEST($1::VARCHAR[], $2::VARCHAR[]))"
            );
            sql::run(STORE, OPERATION_TIMEOUT, async {
                let mut tx = conn.begin().await?;
                for statement in runs {
                    match statement {
                        Statement::Adds {
                            priorities,
                            keys,
                            functions,
                            datas,
                            whens,
                        } => {
                            sqlx::query(&add)
                                .bind(priorities)
                                .bind(keys)
                                .bind(functions)
                                .bind(datas)
                                .bind(whens)
                                .execute(&mut *tx)
                                .await?;
                        }
                        Statement::Dones { keys, functions } => {
                            sqlx::query(&done)
                                .bind(keys)
                                .bind(functions)
                                .execute(&mut *tx)
                                .await?;
                        }
                    }
                }
                tx.commit().await
            })
        })
    }
}

/// Most rows per multi-row statement, and most workload bytes in one.
const MAX_ROWS: usize = 1000;
const MAX_BYTES: usize = 16 << 20;

/// One multi-row statement's parameters (arrays for `UNNEST`).
enum Statement {
    Adds {
        priorities: Vec<i32>,
        keys: Vec<String>,
        functions: Vec<String>,
        datas: Vec<Vec<u8>>,
        whens: Vec<i32>,
    },
    Dones {
        keys: Vec<String>,
        functions: Vec<String>,
    },
}

/// Bytes already checked by [`sql::text`].
fn text_of(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conninfo_syntax() {
        let pairs = parse_conninfo("host=127.0.0.1  port = 5432 password='a b\\'c' dbname=x")
            .expect("valid conninfo");
        assert_eq!(
            pairs,
            vec![
                ("host".into(), "127.0.0.1".into()),
                ("port".into(), "5432".into()),
                ("password".into(), "a b'c".into()),
                ("dbname".into(), "x".into()),
            ]
        );
        assert!(parse_conninfo("host").is_err());
        assert!(parse_conninfo("password='open").is_err());
        assert!(connect_options("hots=x").is_err());
        assert!(connect_options("port=abc").is_err());
        assert!(connect_options("sslmode=require").is_err());
        assert!(connect_options("").is_ok());
        assert!(connect_options("postgres://u:p@127.0.0.1:5/db").is_ok());
        assert!(PostgresConfig::new("", "bad name").is_err());
    }
}
