//! `-q libdrizzle` and `-q MySQL` (one module, two sets of option names): the C server's
//! table in MySQL or MariaDB, one transaction per batch.
//!
//! The table, created when missing, has the C server's columns:
//! `CREATE TABLE gearman_queue (unique_key VARCHAR(64), function_name VARCHAR(255),
//! priority INT, data LONGBLOB, when_to_run INT, UNIQUE KEY (unique_key, function_name))`.
//! The key columns are created with a binary collation (`utf8mb4_bin`) because uniques and
//! function names are case-sensitive; a table the C server created uses the server's default
//! (case-insensitive) collation and still works. A lost connection is re-opened at the next
//! batch.

use std::path::PathBuf;

use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlSslMode};
use sqlx::{Connection, Row};

use super::sql::{self, Run, CONNECT_TIMEOUT, OPERATION_TIMEOUT};
use super::{QueueStore, StoreError, StoreOp, StoredJob};

const STORE: &str = "MySQL";

/// `--libdrizzle-*` / `--mysql-*`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MysqlConfig {
    /// Server host name or address (TCP); `localhost` means the local socket if one exists.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// `--libdrizzle-uds`: a Unix socket, used instead of host and port.
    pub socket: Option<PathBuf>,
    /// Account.
    pub user: String,
    /// Its password.
    pub password: String,
    /// Database.
    pub db: String,
    /// Table.
    pub table: String,
}

impl MysqlConfig {
    /// Checks the options without connecting (also what `--check-args` checks).
    pub fn validate(self) -> Result<MysqlConfig, String> {
        sql::check_table("--libdrizzle-table/--mysql-table", &self.table)?;
        if self.db.is_empty() {
            return Err("a database is required (--libdrizzle-db or --mysql-db)".into());
        }
        if self.host.is_empty() && self.socket.is_none() {
            return Err("--libdrizzle-host/--mysql-host is empty".into());
        }
        if self.port == 0 {
            return Err("--libdrizzle-port/--mysql-port must not be 0".into());
        }
        Ok(self)
    }

    fn connect_options(&self) -> MySqlConnectOptions {
        let options = MySqlConnectOptions::new()
            .username(&self.user)
            .database(&self.db)
            .charset("utf8mb4")
            .ssl_mode(MySqlSslMode::Disabled);
        let options = if self.password.is_empty() {
            options
        } else {
            options.password(&self.password)
        };
        match self.socket.clone().or_else(|| self.local_socket()) {
            Some(socket) => options.socket(socket),
            None => options.host(&self.host).port(self.port),
        }
    }

    /// As in libmysqlclient, the host `localhost` means the server's Unix socket
    /// (`$MYSQL_UNIX_PORT` or the usual places) when there is one.
    fn local_socket(&self) -> Option<PathBuf> {
        if self.host != "localhost" {
            return None;
        }
        std::env::var_os("MYSQL_UNIX_PORT")
            .map(PathBuf::from)
            .into_iter()
            .chain(LOCAL_SOCKETS.iter().map(PathBuf::from))
            .find(|path| path.exists())
    }
}

/// Where MySQL and MariaDB put their socket (Debian, then the compiled-in default).
const LOCAL_SOCKETS: [&str; 3] = [
    "/run/mysqld/mysqld.sock",
    "/var/run/mysqld/mysqld.sock",
    "/tmp/mysql.sock",
];

/// A MySQL/MariaDB-backed queue.
pub struct MysqlStore {
    options: MySqlConnectOptions,
    table: String,
    conn: Option<MySqlConnection>,
}

impl MysqlStore {
    /// Connects and creates the table if it is missing.
    pub fn open(config: &MysqlConfig) -> Result<MysqlStore, StoreError> {
        let mut store = MysqlStore {
            options: config.connect_options(),
            table: config.table.clone(),
            conn: None,
        };
        store.with_connection(|conn, table| {
            sql::run(STORE, OPERATION_TIMEOUT, async {
                sqlx::raw_sql(&format!(
                    "CREATE TABLE IF NOT EXISTS {table} (\
                     unique_key VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin, \
                     function_name VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin, \
                     priority INT, data LONGBLOB, when_to_run INT, \
                     UNIQUE KEY unique_key (unique_key, function_name))"
                ))
                .execute(&mut *conn)
                .await?;
                let probe = format!("SELECT when_to_run FROM {table} LIMIT 0");
                if sqlx::raw_sql(&probe).execute(&mut *conn).await.is_err() {
                    sqlx::raw_sql(&format!("ALTER TABLE {table} ADD COLUMN when_to_run INT"))
                        .execute(&mut *conn)
                        .await?;
                }
                Ok::<_, sqlx::Error>(())
            })
        })?;
        Ok(store)
    }

    /// Runs `f` on the connection (opening one if needed); any failure drops the
    /// connection so the next call starts on a fresh one.
    fn with_connection<T>(
        &mut self,
        f: impl FnOnce(&mut MySqlConnection, &str) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let reconnect = self.conn.is_none();
        if reconnect {
            let conn = sql::run(
                STORE,
                CONNECT_TIMEOUT,
                MySqlConnection::connect_with(&self.options),
            )?;
            self.conn = Some(conn);
        }
        let result = match self.conn.as_mut() {
            Some(conn) => f(conn, &self.table),
            None => Err(StoreError::backend(STORE, "not connected")),
        };
        match &result {
            Err(_) => self.conn = None,
            Ok(_) if reconnect => tracing::info!("MySQL connection opened"),
            Ok(_) => {}
        }
        result
    }
}

impl QueueStore for MysqlStore {
    fn replay(&mut self) -> Result<Vec<StoredJob>, StoreError> {
        let rows = self.with_connection(|conn, table| {
            let query = format!(
                "SELECT CAST(unique_key AS BINARY), CAST(function_name AS BINARY), \
                 CAST(priority AS SIGNED), data, CAST(when_to_run AS SIGNED) FROM {table}"
            );
            sql::run(
                STORE,
                OPERATION_TIMEOUT,
                sqlx::query(&query).fetch_all(&mut *conn),
            )
        })?;
        let invalid = |e: sqlx::Error| StoreError::Invalid(e.to_string());
        rows.iter()
            .map(|row| {
                sql::job_from_row(
                    row.try_get::<Option<Vec<u8>>, _>(0).map_err(invalid)?,
                    row.try_get::<Option<Vec<u8>>, _>(1).map_err(invalid)?,
                    row.try_get::<Option<i64>, _>(2).map_err(invalid)?,
                    row.try_get::<Option<Vec<u8>>, _>(3).map_err(invalid)?,
                    row.try_get::<Option<i64>, _>(4).map_err(invalid)?,
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
        let runs = sql::runs(ops, MAX_ROWS, MAX_BYTES);
        self.with_connection(|conn, table| {
            sql::run(STORE, OPERATION_TIMEOUT, async {
                let mut tx = conn.begin().await?;
                // Multi-row statements: one round trip per run of adds or dones.
                for run in &runs {
                    match run {
                        Run::Adds(jobs) => {
                            let rows = vec!["(?, ?, ?, ?, ?)"; jobs.len()].join(", ");
                            let add = format!(
                                "INSERT INTO {table} (priority, unique_key, function_name, data, \
                                 when_to_run) VALUES {rows} ON DUPLICATE KEY UPDATE \
                                 priority = VALUES(priority), data = VALUES(data), \
                                 when_to_run = VALUES(when_to_run)"
                            );
                            let mut query = sqlx::query(&add);
                            for job in jobs {
                                query = query
                                    .bind(job.priority.index() as i32)
                                    .bind(text_of(&job.key))
                                    .bind(text_of(&job.function))
                                    .bind(&job.data[..])
                                    .bind(i32::try_from(job.when).unwrap_or(i32::MAX));
                            }
                            query.execute(&mut *tx).await?;
                        }
                        Run::Dones(pairs) => {
                            let rows = vec!["(?, ?)"; pairs.len()].join(", ");
                            let done = format!(
                                "DELETE FROM {table} WHERE (unique_key, function_name) IN ({rows})"
                            );
                            let mut query = sqlx::query(&done);
                            for (key, function) in pairs {
                                query = query.bind(text_of(key)).bind(text_of(function));
                            }
                            query.execute(&mut *tx).await?;
                        }
                    }
                }
                tx.commit().await
            })
        })
    }
}

/// Most rows per multi-row statement, and most workload bytes in one (MariaDB's default
/// `max_allowed_packet` is 16 MB).
const MAX_ROWS: usize = 500;
const MAX_BYTES: usize = 4 << 20;

/// Bytes already checked by [`sql::text`].
fn text_of(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap_or_default()
}
