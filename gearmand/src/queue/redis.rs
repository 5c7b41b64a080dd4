//! `-q redis`: one Redis hash per job, written with MULTI/EXEC (one transaction per batch).
//!
//! Layout (compatible with the C server 1.1.20's redis module, which reads `data` and
//! `priority` and finds its keys by the prefix):
//! * key `<prefix>-<function>-<unique>`; a function name that contains `-` or `%` is written
//!   with those two bytes percent-escaped (`%2D`, `%25`), so no two jobs share a key;
//! * fields `data`, `priority` (0 high, 1 normal, 2 low), `when` (epoch seconds, 0 = now),
//!   `seq` (replay order), and the exact `function` and `unique` bytes.
//!
//! Replay walks the prefix with `SCAN` (never `KEYS`, which would stall a shared Redis).
//! After a connection error the next batch reconnects, so a restarted Redis is picked up.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use redis::{Client, Connection, ConnectionAddr, ConnectionInfo, RedisConnectionInfo, Value};

use super::{priority_from_index, QueueStore, StoreError, StoreOp, StoredJob};

const STORE: &str = "redis";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// Keys asked for per SCAN step, and jobs read per pipeline during replay.
const SCAN_COUNT: usize = 1000;

/// `--redis-*`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// `--redis-server`.
    pub host: String,
    /// `--redis-port`.
    pub port: u16,
    /// `--redis-password`.
    pub password: Option<String>,
    /// `--redis-prefix`.
    pub prefix: String,
}

impl RedisConfig {
    /// Checks the options without connecting.
    pub fn new(
        host: &str,
        port: u16,
        password: Option<&str>,
        prefix: &str,
    ) -> Result<RedisConfig, String> {
        if host.is_empty() {
            return Err("--redis-server is empty".into());
        }
        if port == 0 {
            return Err("--redis-port must not be 0".into());
        }
        if prefix.is_empty() {
            return Err("--redis-prefix must not be empty".into());
        }
        Ok(RedisConfig {
            host: host.to_string(),
            port,
            password: password.filter(|p| !p.is_empty()).map(str::to_string),
            prefix: prefix.to_string(),
        })
    }
}

/// A Redis-backed queue.
pub struct RedisStore {
    client: Client,
    prefix: Vec<u8>,
    conn: Option<Connection>,
    last_seq: u64,
}

impl RedisStore {
    /// Connects (and authenticates); warns when Redis itself does not keep writes durably.
    pub fn open(config: &RedisConfig) -> Result<RedisStore, StoreError> {
        let info = ConnectionInfo {
            addr: ConnectionAddr::Tcp(config.host.clone(), config.port),
            redis: RedisConnectionInfo {
                password: config.password.clone(),
                ..RedisConnectionInfo::default()
            },
        };
        let client = Client::open(info).map_err(|e| StoreError::backend(STORE, e))?;
        let mut store = RedisStore {
            client,
            prefix: config.prefix.as_bytes().to_vec(),
            conn: None,
            last_seq: 0,
        };
        let appendonly: Result<Vec<String>, _> = store.with_connection(|conn| {
            redis::cmd("CONFIG")
                .arg("GET")
                .arg("appendonly")
                .query(conn)
                .map_err(|e| StoreError::backend(STORE, e))
        });
        match appendonly.as_deref() {
            Ok([_, value]) if value == "yes" => {}
            Ok(_) => tracing::warn!(
                "redis runs without appendonly: jobs acknowledged since its last snapshot are \
                 lost if Redis stops abnormally"
            ),
            // CONFIG may be renamed or forbidden; the connection itself works.
            Err(_) => store.with_connection(|conn| {
                redis::cmd("PING")
                    .query::<String>(conn)
                    .map(drop)
                    .map_err(|e| StoreError::backend(STORE, e))
            })?,
        }
        Ok(store)
    }

    /// Runs `f` on the connection (opening one if needed); a failure drops the connection
    /// so the next call reconnects.
    fn with_connection<T>(
        &mut self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let reconnect = self.conn.is_none();
        if reconnect {
            let conn = self
                .client
                .get_connection_with_timeout(CONNECT_TIMEOUT)
                .map_err(|e| StoreError::backend(STORE, e))?;
            conn.set_read_timeout(Some(IO_TIMEOUT))
                .and_then(|()| conn.set_write_timeout(Some(IO_TIMEOUT)))
                .map_err(|e| StoreError::backend(STORE, e))?;
            self.conn = Some(conn);
        }
        let result = match self.conn.as_mut() {
            Some(conn) => f(conn),
            None => Err(StoreError::backend(STORE, "not connected")),
        };
        match &result {
            Err(_) => self.conn = None,
            Ok(_) if reconnect => tracing::info!("redis connection opened"),
            Ok(_) => {}
        }
        result
    }

    fn key(&self, function: &[u8], unique: &[u8]) -> Vec<u8> {
        let mut key = self.prefix.clone();
        key.push(b'-');
        key.extend_from_slice(&escape_function(function));
        key.push(b'-');
        key.extend_from_slice(unique);
        key
    }

    /// Increasing numbers that also order jobs across restarts: microseconds since 1970.
    fn next_seq(&mut self) -> u64 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        self.last_seq = now.max(self.last_seq + 1);
        self.last_seq
    }

    /// The SCAN pattern for this prefix's job keys.
    fn pattern(&self) -> Vec<u8> {
        let mut pattern = Vec::with_capacity(self.prefix.len() + 2);
        for &byte in &self.prefix {
            if matches!(byte, b'*' | b'?' | b'[' | b']' | b'\\') {
                pattern.push(b'\\');
            }
            pattern.push(byte);
        }
        pattern.extend_from_slice(b"-*");
        pattern
    }

    /// A job from a key and its fields; `None` for keys that are not jobs.
    fn job_of(&self, key: &[u8], fields: Vec<(Vec<u8>, Vec<u8>)>) -> Option<(u64, StoredJob)> {
        let mut data = None;
        let (mut function, mut unique) = (None, None);
        let (mut priority, mut when, mut seq) = (1i64, 0i64, 0u64);
        for (name, value) in fields {
            let number = || std::str::from_utf8(&value).ok()?.trim().parse::<i64>().ok();
            match name.as_slice() {
                b"data" => data = Some(value),
                b"function" => function = Some(value),
                b"unique" => unique = Some(value),
                b"priority" => priority = number().unwrap_or(1),
                b"when" => when = number().unwrap_or(0),
                b"seq" => seq = number().unwrap_or(0).max(0) as u64,
                _ => {}
            }
        }
        // Every job has its data (maybe empty); a hash without is someone else's.
        let data = data?;
        // Jobs the C server wrote carry only data and priority: the key names the rest.
        let (function, unique) = match (function, unique) {
            (Some(f), Some(u)) => (f, u),
            _ => {
                let rest = key.get(self.prefix.len() + 1..)?;
                let dash = rest.iter().position(|&b| b == b'-')?;
                (rest[..dash].to_vec(), rest[dash + 1..].to_vec())
            }
        };
        if function.is_empty() {
            return None;
        }
        Some((
            seq,
            StoredJob {
                key: Bytes::from(unique),
                function: Bytes::from(function),
                priority: priority_from_index(priority)?,
                data: Bytes::from(data),
                when,
            },
        ))
    }
}

/// A function name as it appears in keys: `-` and `%` percent-escaped when present.
pub fn escape_function(function: &[u8]) -> Vec<u8> {
    if !function.iter().any(|&b| b == b'-' || b == b'%') {
        return function.to_vec();
    }
    let mut out = Vec::with_capacity(function.len() + 8);
    for &byte in function {
        match byte {
            b'-' => out.extend_from_slice(b"%2D"),
            b'%' => out.extend_from_slice(b"%25"),
            _ => out.push(byte),
        }
    }
    out
}

fn pairs(value: Value) -> Vec<(Vec<u8>, Vec<u8>)> {
    let bytes = |v: Value| match v {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.into_bytes()),
        _ => None,
    };
    match value {
        Value::Array(items) => {
            let mut out = Vec::new();
            let mut items = items.into_iter();
            while let (Some(k), Some(v)) = (items.next(), items.next()) {
                if let (Some(k), Some(v)) = (bytes(k), bytes(v)) {
                    out.push((k, v));
                }
            }
            out
        }
        Value::Map(entries) => entries
            .into_iter()
            .filter_map(|(k, v)| Some((bytes(k)?, bytes(v)?)))
            .collect(),
        _ => Vec::new(),
    }
}

impl QueueStore for RedisStore {
    fn replay(&mut self) -> Result<Vec<StoredJob>, StoreError> {
        let pattern = self.pattern();
        let keys = self.with_connection(|conn| {
            let mut keys: Vec<Vec<u8>> = Vec::new();
            let mut cursor: u64 = 0;
            loop {
                let (next, batch): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(SCAN_COUNT)
                    .query(conn)
                    .map_err(|e| StoreError::backend(STORE, e))?;
                keys.extend(batch);
                if next == 0 {
                    break;
                }
                cursor = next;
            }
            keys.sort();
            keys.dedup();
            Ok(keys)
        })?;
        let mut jobs = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(SCAN_COUNT) {
            // One pipeline per chunk; a key under the prefix that is not a hash (someone
            // else's) answers WRONGTYPE and is skipped.
            let values = self.with_connection(|conn| {
                let mut pipe = redis::pipe();
                for key in chunk {
                    pipe.cmd("HGETALL").arg(key);
                }
                let values = redis::ConnectionLike::req_packed_commands(
                    conn,
                    &pipe.get_packed_pipeline(),
                    0,
                    chunk.len(),
                )
                .map_err(|e| StoreError::backend(STORE, e))?;
                if values.len() != chunk.len() {
                    return Err(StoreError::backend(
                        STORE,
                        format!("{} replies to {} HGETALLs", values.len(), chunk.len()),
                    ));
                }
                Ok(values)
            })?;
            for (key, value) in chunk.iter().zip(values) {
                if let Value::ServerError(e) = &value {
                    tracing::warn!(
                        key = %String::from_utf8_lossy(key),
                        error = ?e,
                        "redis key under the queue prefix is not a hash; ignored"
                    );
                    continue;
                }
                let fields = pairs(value);
                if fields.is_empty() {
                    // Deleted since SCAN saw it.
                    continue;
                }
                match self.job_of(key, fields) {
                    Some(job) => jobs.push(job),
                    None => tracing::warn!(
                        key = %String::from_utf8_lossy(key),
                        "redis key under the queue prefix is not a job; ignored"
                    ),
                }
            }
        }
        jobs.sort_by_key(|(seq, _)| *seq);
        Ok(jobs.into_iter().map(|(_, job)| job).collect())
    }

    fn write(&mut self, ops: &[StoreOp]) -> Result<(), StoreError> {
        let mut pipe = redis::pipe();
        pipe.atomic();
        for op in ops {
            match op {
                StoreOp::Add(job) => {
                    let seq = self.next_seq();
                    pipe.cmd("HSET")
                        .arg(self.key(&job.function, &job.key))
                        .arg("data")
                        .arg(&job.data[..])
                        .arg("priority")
                        .arg(job.priority.index())
                        .arg("when")
                        .arg(job.when)
                        .arg("seq")
                        .arg(seq)
                        .arg("function")
                        .arg(&job.function[..])
                        .arg("unique")
                        .arg(&job.key[..])
                        .ignore();
                }
                StoreOp::Done { key, function } => {
                    pipe.cmd("DEL").arg(self.key(function, key)).ignore();
                }
            }
        }
        self.with_connection(|conn| {
            pipe.query::<()>(conn)
                .map_err(|e| StoreError::backend(STORE, e))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_names_with_dashes_get_distinct_keys() {
        assert_eq!(escape_function(b"resize"), b"resize");
        assert_eq!(escape_function(b"a-b"), b"a%2Db");
        assert_eq!(escape_function(b"a%b"), b"a%25b");
        assert_ne!(escape_function(b"a-b"), escape_function(b"a%2Db"));
    }
}
