//! `-q libtokyocabinet`: a Tokyo Cabinet database file through a small binding to Debian's
//! `libtokyocabinet` (its abstract-database API, `tcadb.h`), in the C server's record format.
//!
//! * key `<function>-<unique>` (a function name containing `-` or `%` has them
//!   percent-escaped, so no two jobs share a key);
//! * value `<function>\0<unique>\0<priority digit><when>\0<data>`, as the C server writes it,
//!   so each server replays the other's file.
//!
//! The file name picks the kind of database: `.tch` hash, `.tcb` B+ tree (tuning
//! parameters may follow a `#`). Each batch is one Tokyo Cabinet transaction followed by a
//! sync to disk. Replay order is the database's own (hash order or key order), as in the C
//! server. Function names and uniques containing NUL bytes cannot be stored in this format.
#![allow(unsafe_code)]

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::{priority_from_index, QueueStore, StoreError, StoreOp, StoredJob};

const STORE: &str = "libtokyocabinet";

/// `TCADB`, opaque.
#[repr(C)]
struct Tcadb {
    _private: [u8; 0],
}

const ADBOHDB: c_int = 3;
const ADBOBDB: c_int = 4;

#[link(name = "tokyocabinet")]
extern "C" {
    fn tcadbnew() -> *mut Tcadb;
    fn tcadbdel(adb: *mut Tcadb);
    fn tcadbopen(adb: *mut Tcadb, name: *const c_char) -> bool;
    fn tcadbclose(adb: *mut Tcadb) -> bool;
    fn tcadbput(
        adb: *mut Tcadb,
        kbuf: *const c_void,
        ksiz: c_int,
        vbuf: *const c_void,
        vsiz: c_int,
    ) -> bool;
    fn tcadbout(adb: *mut Tcadb, kbuf: *const c_void, ksiz: c_int) -> bool;
    fn tcadbvsiz(adb: *mut Tcadb, kbuf: *const c_void, ksiz: c_int) -> c_int;
    fn tcadbget(adb: *mut Tcadb, kbuf: *const c_void, ksiz: c_int, sp: *mut c_int) -> *mut c_void;
    fn tcadbiterinit(adb: *mut Tcadb) -> bool;
    fn tcadbiternext(adb: *mut Tcadb, sp: *mut c_int) -> *mut c_void;
    fn tcadbsync(adb: *mut Tcadb) -> bool;
    fn tcadboptimize(adb: *mut Tcadb, params: *const c_char) -> bool;
    fn tcadbtranbegin(adb: *mut Tcadb) -> bool;
    fn tcadbtrancommit(adb: *mut Tcadb) -> bool;
    fn tcadbtranabort(adb: *mut Tcadb) -> bool;
    fn tcadbomode(adb: *mut Tcadb) -> c_int;
    fn tcadbreveal(adb: *mut Tcadb) -> *mut c_void;
    fn tchdbecode(hdb: *mut c_void) -> c_int;
    fn tcbdbecode(bdb: *mut c_void) -> c_int;
    fn tcerrmsg(ecode: c_int) -> *const c_char;
    fn tcfree(ptr: *mut c_void);
}

/// `--libtokyocabinet-*`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokyoCabinetConfig {
    /// `--libtokyocabinet-file`, absolute, with any `#tuning` suffix.
    pub file: PathBuf,
    /// `--libtokyocabinet-optimize`.
    pub optimize: bool,
}

impl TokyoCabinetConfig {
    /// Checks the options without opening the file.
    pub fn new(file: Option<&Path>, optimize: bool) -> Result<TokyoCabinetConfig, String> {
        let file = file.ok_or("--libtokyocabinet-file is required")?;
        let text = file
            .to_str()
            .ok_or("--libtokyocabinet-file must be valid UTF-8")?;
        if text.contains('\0') {
            return Err("--libtokyocabinet-file contains a NUL byte".into());
        }
        let path = text.split('#').next().unwrap_or_default();
        let kind = Path::new(path)
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or_default();
        if !matches!(kind, "tch" | "hdb" | "tcb" | "bdb") {
            return Err(format!(
                "--libtokyocabinet-file '{text}' must end in .tch (hash) or .tcb (B+ tree)"
            ));
        }
        let file = std::path::absolute(file).map_err(|e| format!("{text}: {e}"))?;
        Ok(TokyoCabinetConfig { file, optimize })
    }
}

/// An open Tokyo Cabinet database.
pub struct TokyoCabinetStore {
    db: *mut Tcadb,
}

// SAFETY: the handle is owned by this value alone and Tokyo Cabinet does not tie it to the
// thread that opened it; the store is moved to the store thread once and used only there.
unsafe impl Send for TokyoCabinetStore {}

impl TokyoCabinetStore {
    /// Opens (creating if needed) the database, optimizing it first if asked.
    pub fn open(config: &TokyoCabinetConfig) -> Result<TokyoCabinetStore, StoreError> {
        let name = CString::new(config.file.to_string_lossy().into_owned())
            .map_err(|_| StoreError::Config("the file name contains a NUL byte".into()))?;
        // SAFETY: tcadbnew has no preconditions; it returns an owned handle or NULL.
        let db = unsafe { tcadbnew() };
        if db.is_null() {
            return Err(StoreError::backend(STORE, "tcadbnew failed"));
        }
        let store = TokyoCabinetStore { db };
        // SAFETY: `db` is a live handle; `name` is a NUL-terminated string that outlives
        // the call.
        if !unsafe { tcadbopen(store.db, name.as_ptr()) } {
            return Err(store.error(&format!("tcadbopen({})", config.file.display())));
        }
        // SAFETY: `db` is a live, open handle.
        let mode = unsafe { tcadbomode(store.db) };
        if mode != ADBOHDB && mode != ADBOBDB {
            return Err(StoreError::Config(format!(
                "{}: not a hash or B+ tree database",
                config.file.display()
            )));
        }
        // SAFETY: `db` is open; NULL params keep the current tuning.
        if config.optimize && !unsafe { tcadboptimize(store.db, std::ptr::null()) } {
            return Err(store.error("tcadboptimize"));
        }
        Ok(store)
    }

    /// The database's last error as a store error.
    fn error(&self, what: &str) -> StoreError {
        // SAFETY: `db` is a live handle; tcadbreveal returns the concrete database it wraps,
        // which matches the mode checked before each ecode call; tcerrmsg returns a static
        // NUL-terminated string.
        let message = unsafe {
            let inner = tcadbreveal(self.db);
            let code = match tcadbomode(self.db) {
                ADBOHDB if !inner.is_null() => tchdbecode(inner),
                ADBOBDB if !inner.is_null() => tcbdbecode(inner),
                _ => 9999,
            };
            CStr::from_ptr(tcerrmsg(code))
                .to_string_lossy()
                .into_owned()
        };
        StoreError::backend(STORE, format!("{what}: {message}"))
    }

    /// A copy of the value stored under `key`, if any.
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        let mut size: c_int = 0;
        // SAFETY: `db` is open; the key pointer and length describe a live slice; `size` is a
        // valid out-parameter.
        let ptr = unsafe { tcadbget(self.db, key.as_ptr().cast(), len(key), &mut size) };
        take(ptr, size)
    }

    fn put(&self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        // SAFETY: `db` is open; both pointer/length pairs describe live slices.
        let ok = unsafe {
            tcadbput(
                self.db,
                key.as_ptr().cast(),
                len(key),
                value.as_ptr().cast(),
                len(value),
            )
        };
        if ok {
            Ok(())
        } else {
            Err(self.error("tcadbput"))
        }
    }

    fn remove(&self, key: &[u8]) -> Result<(), StoreError> {
        // SAFETY: `db` is open; the pointer/length pair describes a live slice.
        if unsafe { tcadbvsiz(self.db, key.as_ptr().cast(), len(key)) } < 0 {
            return Ok(());
        }
        // SAFETY: as above.
        if unsafe { tcadbout(self.db, key.as_ptr().cast(), len(key)) } {
            Ok(())
        } else {
            Err(self.error("tcadbout"))
        }
    }

    fn apply(&self, ops: &[StoreOp]) -> Result<(), StoreError> {
        for op in ops {
            match op {
                StoreOp::Add(job) => self.put(&key(&job.function, &job.key), &value(job))?,
                StoreOp::Done {
                    key: unique,
                    function,
                } => self.remove(&key(function, unique))?,
            }
        }
        Ok(())
    }
}

impl Drop for TokyoCabinetStore {
    fn drop(&mut self) {
        // SAFETY: `db` came from tcadbnew and is released exactly once, here; closing a
        // handle that failed to open is harmless.
        unsafe {
            tcadbclose(self.db);
            tcadbdel(self.db);
        }
    }
}

/// Takes ownership of a buffer Tokyo Cabinet allocated, copying it out.
fn take(ptr: *mut c_void, size: c_int) -> Option<Vec<u8>> {
    if ptr.is_null() {
        return None;
    }
    let size = usize::try_from(size).unwrap_or(0);
    // SAFETY: Tokyo Cabinet returned `size` readable bytes at `ptr`, allocated with its own
    // allocator; they are copied, then released once with tcfree.
    unsafe {
        let copy = std::slice::from_raw_parts(ptr.cast::<u8>(), size).to_vec();
        tcfree(ptr);
        Some(copy)
    }
}

fn len(bytes: &[u8]) -> c_int {
    c_int::try_from(bytes.len()).unwrap_or(c_int::MAX)
}

/// The record key: `<function>-<unique>`.
fn key(function: &[u8], unique: &[u8]) -> Vec<u8> {
    let mut key = super::redis::escape_function(function);
    key.push(b'-');
    key.extend_from_slice(unique);
    key
}

/// The record value in the C server's format.
fn value(job: &StoredJob) -> Vec<u8> {
    let mut value = Vec::with_capacity(job.function.len() + job.key.len() + job.data.len() + 24);
    value.extend_from_slice(&job.function);
    value.push(0);
    value.extend_from_slice(&job.key);
    value.push(0);
    value.extend_from_slice(format!("{}{}", job.priority.index(), job.when).as_bytes());
    value.push(0);
    value.extend_from_slice(&job.data);
    value
}

/// A record back as a job.
fn parse(record: &[u8]) -> Option<StoredJob> {
    let mut parts = record.splitn(4, |&b| b == 0);
    let function = parts.next()?;
    let unique = parts.next()?;
    let header = std::str::from_utf8(parts.next()?).ok()?;
    let data = parts.next().unwrap_or_default();
    let priority = match header.as_bytes().first()? {
        b'0' => 0,
        b'2' => 2,
        _ => 1,
    };
    let when = header.get(1..).unwrap_or_default();
    if function.is_empty() {
        return None;
    }
    Some(StoredJob {
        key: Bytes::copy_from_slice(unique),
        function: Bytes::copy_from_slice(function),
        priority: priority_from_index(priority)?,
        data: Bytes::copy_from_slice(data),
        when: if when.is_empty() {
            0
        } else {
            when.parse().ok()?
        },
    })
}

impl QueueStore for TokyoCabinetStore {
    fn replay(&mut self) -> Result<Vec<StoredJob>, StoreError> {
        // SAFETY: `db` is open.
        if !unsafe { tcadbiterinit(self.db) } {
            return Err(self.error("tcadbiterinit"));
        }
        let mut keys = Vec::new();
        loop {
            let mut size: c_int = 0;
            // SAFETY: `db` is open with an iterator initialised above; `size` is a valid
            // out-parameter.
            let ptr = unsafe { tcadbiternext(self.db, &mut size) };
            match take(ptr, size) {
                Some(key) => keys.push(key),
                None => break,
            }
        }
        let mut jobs = Vec::with_capacity(keys.len());
        for key in keys {
            let Some(record) = self.get(&key) else {
                continue;
            };
            jobs.push(parse(&record).ok_or_else(|| {
                StoreError::Invalid(format!(
                    "record {:?} is not a job",
                    String::from_utf8_lossy(&key)
                ))
            })?);
        }
        Ok(jobs)
    }

    fn write(&mut self, ops: &[StoreOp]) -> Result<(), StoreError> {
        for op in ops {
            let (unique, function) = match op {
                StoreOp::Add(job) => (&job.key, &job.function),
                StoreOp::Done { key, function } => (key, function),
            };
            if unique.contains(&0) || function.contains(&0) {
                return Err(StoreError::backend(
                    STORE,
                    "a function name or unique with a NUL byte cannot be stored",
                ));
            }
        }
        // SAFETY: `db` is open.
        if !unsafe { tcadbtranbegin(self.db) } {
            return Err(self.error("tcadbtranbegin"));
        }
        if let Err(e) = self.apply(ops) {
            // SAFETY: `db` is open with a transaction begun above.
            unsafe { tcadbtranabort(self.db) };
            return Err(e);
        }
        // SAFETY: `db` is open with a transaction begun above.
        if !unsafe { tcadbtrancommit(self.db) } {
            return Err(self.error("tcadbtrancommit"));
        }
        // SAFETY: `db` is open.
        if !unsafe { tcadbsync(self.db) } {
            return Err(self.error("tcadbsync"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gearman_shared::protocol::Priority;

    fn job(function: &str, unique: &str, data: &[u8], when: i64) -> StoredJob {
        StoredJob {
            key: Bytes::from(unique.to_string()),
            function: Bytes::from(function.to_string()),
            priority: Priority::Low,
            data: Bytes::copy_from_slice(data),
            when,
        }
    }

    #[test]
    fn records_round_trip() {
        let j = job("f", "u", b"a\0b", 1_700_000_000);
        assert_eq!(parse(&value(&j)), Some(j));
        let empty = job("f", "", b"", 0);
        assert_eq!(parse(&value(&empty)), Some(empty));
    }

    #[test]
    fn add_done_replay_in_a_file() {
        let dir = std::env::temp_dir().join(format!("gearmand-tc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("q.tch");
        let _ = std::fs::remove_file(&file);
        let config = TokyoCabinetConfig::new(Some(&file), true).expect("config");
        let mut store = TokyoCabinetStore::open(&config).expect("open");
        store
            .write(&[
                StoreOp::Add(job("f", "a", b"1", 0)),
                StoreOp::Add(job("f-g", "b", b"", 5)),
                StoreOp::Done {
                    key: Bytes::from_static(b"a"),
                    function: Bytes::from_static(b"f"),
                },
                StoreOp::Done {
                    key: Bytes::from_static(b"never"),
                    function: Bytes::from_static(b"f"),
                },
            ])
            .expect("write");
        drop(store);
        let mut store = TokyoCabinetStore::open(&config).expect("reopen");
        assert_eq!(
            store.replay().expect("replay"),
            vec![job("f-g", "b", b"", 5)]
        );
        assert!(TokyoCabinetConfig::new(Some(Path::new("q.db")), true).is_err());
        assert!(TokyoCabinetConfig::new(None, true).is_err());
        let _ = std::fs::remove_dir_all(dir);
    }
}
