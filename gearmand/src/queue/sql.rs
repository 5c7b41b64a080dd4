//! What the SQL server stores (`-q libpq`, `-q libdrizzle`/`MySQL`) share: the C server's
//! columns, name checks, and running sqlx futures on the store thread with a time limit.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;

use super::{priority_from_index, StoreError, StoreOp, StoredJob};

/// How long connecting to a database server may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one batch (or the replay) may take before the connection is given up.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(60);

/// Checks a table name given on the command line. The C server pastes it into its SQL
/// unquoted, so only plain identifiers (optionally `schema.table`) are accepted: they mean
/// the same table to both servers, and nothing can be injected.
pub fn check_table(option: &str, name: &str) -> Result<(), String> {
    let plain = |part: &str| {
        let mut chars = part.chars();
        matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
            && part.len() <= 63
    };
    let ok = match name.split_once('.') {
        Some((schema, table)) => plain(schema) && plain(table),
        None => plain(name),
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{option} '{name}' is not a plain table name (letters, digits, '_', '$', \
             optionally schema.table)"
        ))
    }
}

/// Bytes that go into a text column: they must be UTF-8 without NUL.
pub fn text<'a>(store: &'static str, what: &str, bytes: &'a [u8]) -> Result<&'a str, StoreError> {
    match std::str::from_utf8(bytes) {
        Ok(s) if !s.contains('\0') => Ok(s),
        _ => Err(StoreError::backend(
            store,
            format!(
                "the {what} {:?} is not UTF-8 text; this store keeps it in a text column",
                String::from_utf8_lossy(bytes)
            ),
        )),
    }
}

/// `when` for the C server's 32-bit `when_to_run` column.
pub fn when_column(store: &'static str, when: i64) -> Result<i32, StoreError> {
    i32::try_from(when).map_err(|_| {
        StoreError::backend(
            store,
            format!("run time {when} does not fit the INTEGER when_to_run column"),
        )
    })
}

/// A stored row back as a job; NULL columns read as empty (data, unique), NORMAL or 0.
pub fn job_from_row(
    key: Option<Vec<u8>>,
    function: Option<Vec<u8>>,
    priority: Option<i64>,
    data: Option<Vec<u8>>,
    when: Option<i64>,
) -> Result<StoredJob, StoreError> {
    let function = function
        .filter(|f| !f.is_empty())
        .ok_or_else(|| StoreError::Invalid("a row has no function_name".into()))?;
    let priority = match priority {
        Some(n) => {
            priority_from_index(n).ok_or_else(|| StoreError::Invalid(format!("priority {n}")))?
        }
        None => gearman_shared::protocol::Priority::Normal,
    };
    Ok(StoredJob {
        key: Bytes::from(key.unwrap_or_default()),
        function: Bytes::from(function),
        priority,
        data: Bytes::from(data.unwrap_or_default()),
        when: when.unwrap_or(0),
    })
}

/// Consecutive operations of one kind that one multi-row statement can apply.
#[derive(Debug, PartialEq, Eq)]
pub enum Run<'a> {
    /// Adds of distinct (function, key) pairs.
    Adds(Vec<&'a StoredJob>),
    /// Dones, as (key, function).
    Dones(Vec<(&'a Bytes, &'a Bytes)>),
}

/// Splits a batch into runs that keep its order: a run of adds ends before a pair it already
/// holds (a job added, done and added again in one batch), after `max_rows` rows, or before
/// its workloads pass `max_bytes`.
pub fn runs(ops: &[StoreOp], max_rows: usize, max_bytes: usize) -> Vec<Run<'_>> {
    let mut out = Vec::new();
    let mut adds: Vec<&StoredJob> = Vec::new();
    let mut keys = std::collections::HashSet::new();
    let mut bytes = 0;
    let mut dones: Vec<(&Bytes, &Bytes)> = Vec::new();
    for op in ops {
        match op {
            StoreOp::Add(job) => {
                if !dones.is_empty() {
                    out.push(Run::Dones(std::mem::take(&mut dones)));
                }
                let pair = (&job.function, &job.key);
                if !adds.is_empty()
                    && (keys.contains(&pair)
                        || adds.len() >= max_rows
                        || bytes + job.data.len() > max_bytes)
                {
                    out.push(Run::Adds(std::mem::take(&mut adds)));
                    keys.clear();
                    bytes = 0;
                }
                keys.insert(pair);
                bytes += job.data.len();
                adds.push(job);
            }
            StoreOp::Done { key, function } => {
                if !adds.is_empty() {
                    out.push(Run::Adds(std::mem::take(&mut adds)));
                    keys.clear();
                    bytes = 0;
                }
                if dones.len() >= max_rows {
                    out.push(Run::Dones(std::mem::take(&mut dones)));
                }
                dones.push((key, function));
            }
        }
    }
    if !adds.is_empty() {
        out.push(Run::Adds(adds));
    }
    if !dones.is_empty() {
        out.push(Run::Dones(dones));
    }
    out
}

/// Runs `future` to completion on this (store) thread, giving up after `limit`.
pub fn run<T, E: std::fmt::Display>(
    store: &'static str,
    limit: Duration,
    future: impl Future<Output = Result<T, E>>,
) -> Result<T, StoreError> {
    match async_std::task::block_on(async_std::future::timeout(limit, future)) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(StoreError::backend(store, e)),
        Err(_) => Err(StoreError::backend(
            store,
            format!("no answer from the database server within {limit:?}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names() {
        assert!(check_table("--t", "queue").is_ok());
        assert!(check_table("--t", "gearman.queue_2").is_ok());
        assert!(check_table("--t", "").is_err());
        assert!(check_table("--t", "q; DROP TABLE x").is_err());
        assert!(check_table("--t", "1queue").is_err());
        assert!(check_table("--t", "a.b.c").is_err());
    }

    #[test]
    fn runs_keep_order_and_split_repeated_jobs() {
        let job = |key: &'static str, data: &'static str| StoredJob {
            key: Bytes::from_static(key.as_bytes()),
            function: Bytes::from_static(b"f"),
            priority: gearman_shared::protocol::Priority::Normal,
            data: Bytes::from_static(data.as_bytes()),
            when: 0,
        };
        let done = |key: &'static str| StoreOp::Done {
            key: Bytes::from_static(key.as_bytes()),
            function: Bytes::from_static(b"f"),
        };
        let ops = vec![
            StoreOp::Add(job("a", "1")),
            StoreOp::Add(job("b", "22")),
            StoreOp::Add(job("a", "3")),
            done("a"),
            done("b"),
            StoreOp::Add(job("c", "4444")),
            StoreOp::Add(job("d", "5")),
        ];
        let sizes: Vec<(bool, usize)> = runs(&ops, 10, 1000)
            .iter()
            .map(|r| match r {
                Run::Adds(a) => (true, a.len()),
                Run::Dones(d) => (false, d.len()),
            })
            .collect();
        assert_eq!(sizes, vec![(true, 2), (true, 1), (false, 2), (true, 2)]);
        // Row and byte limits.
        assert_eq!(runs(&ops[..2], 1, 1000).len(), 2);
        assert_eq!(runs(&ops[5..], 10, 4).len(), 2);
        assert!(runs(&[], 10, 10).is_empty());
    }

    #[test]
    fn text_columns_refuse_binary_names() {
        assert_eq!(text("s", "function", b"f").ok(), Some("f"));
        assert!(text("s", "function", b"\xff").is_err());
        assert!(text("s", "function", b"a\0b").is_err());
    }
}
