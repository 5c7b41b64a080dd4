//! `-q libmemcached`: jobs as memcached items plus an index item that lets replay find them.
//!
//! memcached cannot list its keys, so besides one item per job this store keeps a log of
//! changes in the item `<prefix>index`:
//! * a job is the item `<prefix><function>-<unique>` (the C server's key; a function name
//!   containing `-` or `%` has them percent-escaped, and a key memcached would refuse —
//!   longer than 250 bytes, or with spaces or control bytes — becomes `<prefix>#<hash>`),
//!   holding the workload with the priority in the item flags, as the C server stores it;
//! * the index is a text log, one line per change, `+<function hex> <unique hex> <when>` or
//!   `-<function hex> <unique hex>`, extended with memcached's atomic `append` once per batch;
//!   that append is the batch's commit point. A batch whose lines exceed [`INLINE_MAX`] is
//!   first written as a chunk item `<prefix>index.<n>` and the append adds only `@<chunk key>`.
//!   Replay folds the log (following `@` lines), reads the items back and rewrites the index
//!   compactly, as chunks of at most [`CHUNK_MAX`] referred to by the head item; so does a
//!   batch once the head has grown past [`COMPACT_AT`]. No item of the index grows past about
//!   [`CHUNK_MAX`], whatever the number of queued jobs.
//!
//! Limits memcached imposes: nothing survives a memcached restart; memcached may evict items
//! (a job whose item was evicted is skipped at replay with a warning; an evicted index chunk
//! forgets its jobs, an evicted head the whole queue); an item holds at most 1 MB by default
//! (`-I`), which bounds a job's workload.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use bytes::Bytes;

use super::{priority_from_index, QueueStore, StoreError, StoreOp, StoredJob};

const STORE: &str = "libmemcached";
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// Once this many bytes were appended to the index since it was last rewritten, the next
/// batch rewrites it from the jobs that are still queued.
pub const COMPACT_AT: usize = 256 * 1024;
/// A batch whose index lines are longer than this goes to a chunk item of its own.
pub const INLINE_MAX: usize = 64 * 1024;
/// The largest chunk item compaction writes (memcached's default item limit is 1 MB).
pub const CHUNK_MAX: usize = 512 * 1024;
/// Job items read per `get` at replay.
const GET_BATCH: usize = 100;
/// Commands sent before their replies are read.
const PIPELINE: usize = 200;
/// memcached's longest key.
const MAX_KEY: usize = 250;
const DEFAULT_PORT: u16 = 11211;

/// `--libmemcached-*`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemcachedConfig {
    /// `host:port` of each server.
    pub servers: Vec<(String, u16)>,
    /// `--libmemcached-prefix`.
    pub prefix: String,
}

impl MemcachedConfig {
    /// Parses `HOST[:PORT],...` (libmemcached's list syntax; `--SERVER=` prefixes and
    /// `:WEIGHT` suffixes are accepted and weights ignored).
    pub fn new(servers: Option<&str>, prefix: &str) -> Result<MemcachedConfig, String> {
        let list = servers.unwrap_or_default();
        let mut parsed = Vec::new();
        for item in list
            .split([',', ' '])
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let item = item.strip_prefix("--SERVER=").unwrap_or(item);
            let (host, port) = match item.rsplit_once(':') {
                // host:port:weight
                Some((left, _)) if left.contains(':') && !item.starts_with('[') => {
                    let (host, port) = left.rsplit_once(':').unwrap_or((left, ""));
                    (host, Some(port))
                }
                Some((host, port)) if !host.ends_with(']') || port.parse::<u16>().is_ok() => {
                    (host, Some(port))
                }
                _ => (item, None),
            };
            let port = match port {
                Some(p) => p
                    .parse::<u16>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| format!("--libmemcached-servers: bad port in '{item}'"))?,
                None => DEFAULT_PORT,
            };
            let host = host.trim_start_matches('[').trim_end_matches(']');
            if host.is_empty() {
                return Err(format!("--libmemcached-servers: no host in '{item}'"));
            }
            parsed.push((host.to_string(), port));
        }
        if parsed.is_empty() {
            return Err("--libmemcached-servers is required (HOST[:PORT],...)".into());
        }
        if prefix.is_empty() || prefix.len() > 64 || !prefix.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(format!(
                "--libmemcached-prefix '{prefix}' must be 1 to 64 printable characters"
            ));
        }
        Ok(MemcachedConfig {
            servers: parsed,
            prefix: prefix.to_string(),
        })
    }
}

/// One memcached server and its connection.
struct Server {
    addr: String,
    conn: Option<BufReader<TcpStream>>,
}

/// A reply line that is not what a command expects.
fn unexpected(addr: &str, line: &str) -> StoreError {
    StoreError::backend(STORE, format!("{addr}: {}", line.trim_end()))
}

impl Server {
    fn connection(&mut self) -> Result<&mut BufReader<TcpStream>, StoreError> {
        if self.conn.is_none() {
            let io = |e: std::io::Error| StoreError::backend(STORE, format!("{}: {e}", self.addr));
            let addrs: Vec<_> = self.addr.to_socket_addrs().map_err(io)?.collect();
            let mut last = None;
            for addr in addrs {
                match TcpStream::connect_timeout(&addr, IO_TIMEOUT) {
                    Ok(stream) => {
                        stream.set_read_timeout(Some(IO_TIMEOUT)).map_err(io)?;
                        stream.set_write_timeout(Some(IO_TIMEOUT)).map_err(io)?;
                        let _ = stream.set_nodelay(true);
                        self.conn = Some(BufReader::new(stream));
                        break;
                    }
                    Err(e) => last = Some(e),
                }
            }
            if self.conn.is_none() {
                return Err(io(last.unwrap_or_else(|| {
                    std::io::Error::other("the name has no address")
                })));
            }
        }
        self.conn
            .as_mut()
            .ok_or_else(|| StoreError::backend(STORE, "not connected"))
    }

    /// Sends `request`, then lets `read` parse the reply; any failure drops the connection.
    fn call<T>(
        &mut self,
        request: &[u8],
        read: impl FnOnce(&mut BufReader<TcpStream>, &str) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let addr = self.addr.clone();
        let result = self.connection().and_then(|conn| {
            conn.get_mut()
                .write_all(request)
                .map_err(|e| StoreError::backend(STORE, format!("{addr}: {e}")))?;
            read(conn, &addr)
        });
        if result.is_err() {
            self.conn = None;
        }
        result
    }

    /// `set`, `add`, `append` or `cas`: true when STORED, false when NOT_STORED/EXISTS.
    fn store(
        &mut self,
        verb: &str,
        key: &str,
        flags: u32,
        data: &[u8],
        cas: Option<u64>,
    ) -> Result<bool, StoreError> {
        let mut request = format!("{verb} {key} {flags} 0 {}", data.len());
        if let Some(cas) = cas {
            let _ = write!(request, " {cas}");
        }
        request.push_str("\r\n");
        let mut request = request.into_bytes();
        request.extend_from_slice(data);
        request.extend_from_slice(b"\r\n");
        self.call(&request, |conn, addr| {
            let line = read_line(conn, addr)?;
            match line.trim_end() {
                "STORED" => Ok(true),
                "NOT_STORED" | "EXISTS" | "NOT_FOUND" => Ok(false),
                _ => Err(unexpected(addr, &line)),
            }
        })
    }

    /// `set` of many items, pipelined [`PIPELINE`] at a time; every one must be STORED.
    fn set_many(&mut self, items: &[(String, u32, &[u8])]) -> Result<(), StoreError> {
        for chunk in items.chunks(PIPELINE) {
            let mut request = Vec::new();
            for (key, flags, data) in chunk {
                request.extend_from_slice(
                    format!("set {key} {flags} 0 {}\r\n", data.len()).as_bytes(),
                );
                request.extend_from_slice(data);
                request.extend_from_slice(b"\r\n");
            }
            self.call(&request, |conn, addr| {
                for (key, _, _) in chunk {
                    let line = read_line(conn, addr)?;
                    if line.trim_end() != "STORED" {
                        return Err(unexpected(addr, &format!("{key}: {line}")));
                    }
                }
                Ok(())
            })?;
        }
        Ok(())
    }

    /// `delete` of many keys, pipelined; keys already gone are fine.
    fn delete_many(&mut self, keys: &[String]) -> Result<(), StoreError> {
        for chunk in keys.chunks(PIPELINE) {
            let request: String = chunk.iter().map(|k| format!("delete {k}\r\n")).collect();
            self.call(request.as_bytes(), |conn, addr| {
                for _ in chunk {
                    let line = read_line(conn, addr)?;
                    if !matches!(line.trim_end(), "DELETED" | "NOT_FOUND") {
                        return Err(unexpected(addr, &line));
                    }
                }
                Ok(())
            })?;
        }
        Ok(())
    }

    fn delete(&mut self, key: &str) -> Result<(), StoreError> {
        self.call(format!("delete {key}\r\n").as_bytes(), |conn, addr| {
            let line = read_line(conn, addr)?;
            match line.trim_end() {
                "DELETED" | "NOT_FOUND" => Ok(()),
                _ => Err(unexpected(addr, &line)),
            }
        })
    }

    /// `get` of several keys: key → item.
    fn get_many(&mut self, keys: &[&str]) -> Result<HashMap<String, Item>, StoreError> {
        let mut items = HashMap::new();
        if keys.is_empty() {
            return Ok(items);
        }
        let request = format!("get {}\r\n", keys.join(" "));
        self.call(request.as_bytes(), |conn, addr| loop {
            let line = read_line(conn, addr)?;
            let fields: Vec<&str> = line.split_whitespace().collect();
            match fields.as_slice() {
                ["END"] => return Ok(items),
                ["VALUE", key, flags, len, ..] => {
                    let parse = |s: &str| s.parse::<u64>().map_err(|_| unexpected(addr, &line));
                    let flags = parse(flags)? as u32;
                    let len = parse(len)? as usize;
                    let mut data = vec![0; len + 2];
                    conn.read_exact(&mut data)
                        .map_err(|e| StoreError::backend(STORE, format!("{addr}: {e}")))?;
                    data.truncate(len);
                    items.insert(key.to_string(), Item { flags, data });
                }
                _ => return Err(unexpected(addr, &line)),
            }
        })
    }
}

/// One item read back.
struct Item {
    flags: u32,
    data: Vec<u8>,
}

fn read_line(conn: &mut BufReader<TcpStream>, addr: &str) -> Result<String, StoreError> {
    let mut line = String::new();
    match conn.read_line(&mut line) {
        Ok(0) => Err(StoreError::backend(
            STORE,
            format!("{addr}: connection closed"),
        )),
        Ok(_) => Ok(line),
        Err(e) => Err(StoreError::backend(STORE, format!("{addr}: {e}"))),
    }
}

/// FNV-1a, 64 bits: picks the server of a key (stable across runs and platforms).
fn fnv64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// FNV-1a, 128 bits: names jobs whose key memcached would refuse.
fn fnv128(bytes: &[u8]) -> u128 {
    bytes
        .iter()
        .fold(0x6c62_272e_07bb_0142_62b8_2175_6295_c58d, |h, &b| {
            (h ^ u128::from(b)).wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013b)
        })
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(2 * bytes.len()), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() & 1 == 1 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A queued job as the index knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    order: u64,
    when: i64,
}

/// A memcached-backed queue (not durable: see the module documentation).
pub struct MemcachedStore {
    servers: Vec<Server>,
    prefix: String,
    /// (function, unique) → entry, for rewriting the index.
    live: HashMap<(Bytes, Bytes), Entry>,
    next_order: u64,
    /// Bytes appended to the index since it was last rewritten.
    appended: usize,
    /// Chunk items the index refers to (deleted once a rewrite no longer needs them).
    chunks: Vec<String>,
    /// The number in the last chunk key: microseconds since 1970, increasing.
    last_chunk: u64,
}

impl MemcachedStore {
    /// Checks that every server answers.
    pub fn open(config: &MemcachedConfig) -> Result<MemcachedStore, StoreError> {
        let mut store = MemcachedStore {
            servers: config
                .servers
                .iter()
                .map(|(host, port)| Server {
                    addr: if host.contains(':') {
                        format!("[{host}]:{port}")
                    } else {
                        format!("{host}:{port}")
                    },
                    conn: None,
                })
                .collect(),
            prefix: config.prefix.clone(),
            live: HashMap::new(),
            next_order: 0,
            appended: 0,
            chunks: Vec::new(),
            last_chunk: 0,
        };
        for server in &mut store.servers {
            server.call(b"version\r\n", |conn, addr| {
                let line = read_line(conn, addr)?;
                if line.starts_with("VERSION ") {
                    Ok(())
                } else {
                    Err(unexpected(addr, &line))
                }
            })?;
        }
        Ok(store)
    }

    fn index_key(&self) -> String {
        format!("{}index", self.prefix)
    }

    /// The item key of a job.
    fn item_key(&self, function: &[u8], unique: &[u8]) -> String {
        let mut key = self.prefix.as_bytes().to_vec();
        key.extend_from_slice(&super::redis::escape_function(function));
        key.push(b'-');
        key.extend_from_slice(unique);
        match String::from_utf8(key) {
            Ok(key) if key.len() <= MAX_KEY && key.bytes().all(|b| b.is_ascii_graphic()) => key,
            _ => {
                let mut both = function.to_vec();
                both.push(0);
                both.extend_from_slice(unique);
                format!("{}#{:032x}", self.prefix, fnv128(&both))
            }
        }
    }

    fn server_index(&self, key: &str) -> usize {
        let n = self.servers.len() as u64;
        (fnv64(key.as_bytes()) % n.max(1)) as usize
    }

    fn server(&mut self, key: &str) -> &mut Server {
        let i = self.server_index(key);
        &mut self.servers[i]
    }

    /// Appends `records` to the index, creating it if needed.
    fn append_index(&mut self, records: &[u8]) -> Result<(), StoreError> {
        let key = self.index_key();
        let server = self.server(&key);
        for _ in 0..3 {
            if server.store("append", &key, 0, records, None)? {
                return Ok(());
            }
            if server.store("add", &key, 0, records, None)? {
                return Ok(());
            }
        }
        Err(StoreError::backend(STORE, "the index item keeps changing"))
    }

    /// The index as it should be: one `+` line per queued job, oldest first.
    fn compact_index(&self) -> Vec<String> {
        let mut live: Vec<_> = self.live.iter().collect();
        live.sort_by_key(|(_, entry)| entry.order);
        live.into_iter()
            .map(|((function, unique), entry)| {
                format!("+{} {} {}\n", hex(function), hex(unique), entry.when)
            })
            .collect()
    }

    /// Stores `lines` as a new chunk item; returns its key.
    fn write_chunk(&mut self, lines: &[u8]) -> Result<String, StoreError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        self.last_chunk = now.max(self.last_chunk + 1);
        let key = format!("{}index.{:x}", self.prefix, self.last_chunk);
        if !self.server(&key).store("set", &key, 0, lines, None)? {
            return Err(StoreError::backend(STORE, format!("{key} was not stored")));
        }
        Ok(key)
    }

    /// Rewrites the index from `live`: inline when small, else as chunks the head refers to.
    fn rewrite_index(&mut self) -> Result<(), StoreError> {
        let lines = self.compact_index();
        let total: usize = lines.iter().map(String::len).sum();
        let mut head = String::new();
        let mut chunks = Vec::new();
        if total <= INLINE_MAX {
            head = lines.concat();
        } else {
            let mut chunk = String::new();
            for line in lines {
                if chunk.len() + line.len() > CHUNK_MAX && !chunk.is_empty() {
                    chunks.push(self.write_chunk(chunk.as_bytes())?);
                    chunk.clear();
                }
                chunk.push_str(&line);
            }
            if !chunk.is_empty() {
                chunks.push(self.write_chunk(chunk.as_bytes())?);
            }
            for key in &chunks {
                let _ = writeln!(head, "@{key}");
            }
        }
        let key = self.index_key();
        self.server(&key)
            .store("set", &key, 0, head.as_bytes(), None)?;
        self.appended = 0;
        // The old chunks are garbage now.
        for old in std::mem::replace(&mut self.chunks, chunks) {
            if let Err(e) = self.server(&old).delete(&old) {
                tracing::warn!(error = %e, "libmemcached: an old index chunk stays");
            }
        }
        Ok(())
    }

    /// Applies index lines (following `@chunk` references) to `live`.
    fn fold(&mut self, data: &[u8], nested: bool) -> Result<(), StoreError> {
        for line in data.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let text = String::from_utf8_lossy(line);
            if let (Some(chunk), false) = (text.strip_prefix('@'), nested) {
                let chunk = chunk.to_string();
                match self.server(&chunk).get_many(&[&chunk])?.remove(&chunk) {
                    Some(item) => self.fold(&item.data, true)?,
                    None => tracing::warn!(
                        %chunk,
                        "libmemcached: an index chunk is gone (evicted or flushed): \
                         its jobs are lost"
                    ),
                }
                self.chunks.push(chunk);
                continue;
            }
            let mut fields = text.get(1..).unwrap_or_default().split(' ');
            let parsed = (|| {
                let function = Bytes::from(unhex(fields.next()?)?);
                let unique = Bytes::from(unhex(fields.next()?)?);
                Some((function, unique, fields.next()))
            })();
            let Some((function, unique, when)) = parsed else {
                tracing::warn!(line = %text, "libmemcached: unreadable index line ignored");
                continue;
            };
            match line[0] {
                b'+' => {
                    let when = when.and_then(|w| w.parse().ok()).unwrap_or(0);
                    self.next_order += 1;
                    let order = self.next_order;
                    self.live.insert((function, unique), Entry { order, when });
                }
                b'-' => {
                    self.live.remove(&(function, unique));
                }
                _ => tracing::warn!(line = %text, "libmemcached: unreadable index line ignored"),
            }
        }
        Ok(())
    }
}

impl QueueStore for MemcachedStore {
    fn replay(&mut self) -> Result<Vec<StoredJob>, StoreError> {
        let index_key = self.index_key();
        let index = self
            .server(&index_key)
            .get_many(&[&index_key])?
            .remove(&index_key);
        let Some(index) = index else {
            tracing::info!("libmemcached: no index item, the queue is empty");
            return Ok(Vec::new());
        };
        self.live.clear();
        self.chunks.clear();
        self.fold(&index.data, false)?;
        let mut queued: Vec<_> = self
            .live
            .iter()
            .map(|(k, e)| (k.clone(), e.clone()))
            .collect();
        queued.sort_by_key(|(_, entry)| entry.order);
        let mut jobs = Vec::with_capacity(queued.len());
        for batch in queued.chunks(GET_BATCH) {
            // One `get` per server for the whole batch.
            let keys: Vec<String> = batch
                .iter()
                .map(|((function, unique), _)| self.item_key(function, unique))
                .collect();
            let mut found = HashMap::new();
            for server in 0..self.servers.len() {
                let mine: Vec<&str> = keys
                    .iter()
                    .filter(|k| self.server_index(k) == server)
                    .map(String::as_str)
                    .collect();
                found.extend(self.servers[server].get_many(&mine)?);
            }
            for (((function, unique), entry), key) in batch.iter().zip(keys) {
                match found.remove(&key) {
                    Some(item) => jobs.push(StoredJob {
                        key: unique.clone(),
                        function: function.clone(),
                        priority: priority_from_index(i64::from(item.flags)).ok_or_else(|| {
                            StoreError::Invalid(format!("{key}: priority flags {}", item.flags))
                        })?,
                        data: Bytes::from(item.data),
                        when: entry.when,
                    }),
                    None => {
                        tracing::warn!(
                            %key,
                            "libmemcached: a queued job's item is gone (evicted or flushed); \
                             skipped"
                        );
                        self.live.remove(&(function.clone(), unique.clone()));
                    }
                }
            }
        }
        self.rewrite_index()?;
        Ok(jobs)
    }

    fn write(&mut self, ops: &[StoreOp]) -> Result<(), StoreError> {
        // 1. The new jobs' items, pipelined per server; nothing refers to them until the
        // index says so.
        let mut sets: Vec<Vec<(String, u32, &[u8])>> = vec![Vec::new(); self.servers.len()];
        for op in ops {
            if let StoreOp::Add(job) = op {
                let key = self.item_key(&job.function, &job.key);
                let flags = job.priority.index() as u32;
                sets[self.server_index(&key)].push((key, flags, &job.data[..]));
            }
        }
        for (server, items) in sets.iter().enumerate() {
            if !items.is_empty() {
                self.servers[server].set_many(items)?;
            }
        }
        // 2. One append: the commit point of the whole batch.
        let mut records = String::new();
        for op in ops {
            match op {
                StoreOp::Add(job) => {
                    let _ = writeln!(
                        records,
                        "+{} {} {}",
                        hex(&job.function),
                        hex(&job.key),
                        job.when
                    );
                }
                StoreOp::Done { key, function } => {
                    let _ = writeln!(records, "-{} {}", hex(function), hex(key));
                }
            }
        }
        if records.len() > INLINE_MAX {
            let chunk = self.write_chunk(records.as_bytes())?;
            let reference = format!("@{chunk}\n");
            self.append_index(reference.as_bytes())?;
            self.appended += reference.len();
            self.chunks.push(chunk);
        } else {
            self.append_index(records.as_bytes())?;
            self.appended += records.len();
        }
        // 3. Bookkeeping, and the finished jobs' items (best effort: the index already
        // forgot them).
        let mut deletes: Vec<Vec<String>> = vec![Vec::new(); self.servers.len()];
        for op in ops {
            match op {
                StoreOp::Add(job) => {
                    self.next_order += 1;
                    let entry = Entry {
                        order: self.next_order,
                        when: job.when,
                    };
                    self.live
                        .insert((job.function.clone(), job.key.clone()), entry);
                }
                StoreOp::Done { key, function } => {
                    self.live.remove(&(function.clone(), key.clone()));
                }
            }
        }
        for op in ops {
            // A job done and added again in the same batch keeps its (new) item.
            if let StoreOp::Done { key, function } = op {
                if !self.live.contains_key(&(function.clone(), key.clone())) {
                    let item = self.item_key(function, key);
                    deletes[self.server_index(&item)].push(item);
                }
            }
        }
        for (server, keys) in deletes.iter().enumerate() {
            if keys.is_empty() {
                continue;
            }
            if let Err(e) = self.servers[server].delete_many(keys) {
                tracing::warn!(error = %e, "libmemcached: finished jobs' items stay");
            }
        }
        if self.appended > COMPACT_AT {
            if let Err(e) = self.rewrite_index() {
                tracing::warn!(error = %e, "libmemcached: the index was not compacted");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_lists() {
        let c = MemcachedConfig::new(Some("127.0.0.1:21211, mc2,--SERVER=h3:5:2"), "gear_")
            .expect("valid list");
        assert_eq!(
            c.servers,
            vec![
                ("127.0.0.1".into(), 21211),
                ("mc2".into(), 11211),
                ("h3".into(), 5)
            ]
        );
        assert!(MemcachedConfig::new(None, "gear_").is_err());
        assert!(MemcachedConfig::new(Some(""), "gear_").is_err());
        assert!(MemcachedConfig::new(Some("h:0"), "gear_").is_err());
        assert!(MemcachedConfig::new(Some("h:x"), "gear_").is_err());
        assert!(MemcachedConfig::new(Some("h"), "a b").is_err());
    }

    #[test]
    fn keys_memcached_accepts() {
        let config = MemcachedConfig::new(Some("h"), "gear_").expect("config");
        let store = MemcachedStore {
            servers: Vec::new(),
            prefix: config.prefix,
            live: HashMap::new(),
            next_order: 0,
            appended: 0,
            chunks: Vec::new(),
            last_chunk: 0,
        };
        assert_eq!(store.item_key(b"fn", b"u1"), "gear_fn-u1");
        let spaced = store.item_key(b"f n", b"u");
        assert!(spaced.starts_with("gear_#") && spaced.len() < MAX_KEY);
        assert_ne!(store.item_key(b"a-b", b"c"), store.item_key(b"a", b"b-c"));
        assert_eq!(unhex(&hex(b"\x00\xffab")), Some(b"\x00\xffab".to_vec()));
    }
}
