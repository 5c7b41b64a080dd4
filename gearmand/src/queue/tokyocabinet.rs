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
//!
//! The library is loaded at run time (`dlopen` of `libtokyocabinet.so.9`, Debian's
//! `libtokyocabinet9`), not linked: the server then builds and runs with Rust alone, and
//! only `-q libtokyocabinet` needs the library. Every symbol is resolved once, at the first
//! use, into `Api`, which stays loaded for the rest of the process.
#![allow(unsafe_code)]

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use bytes::Bytes;
use libloading::Library;

use super::{priority_from_index, QueueStore, StoreError, StoreOp, StoredJob};

const STORE: &str = "libtokyocabinet";

/// The library's soname in Debian's `libtokyocabinet9`.
const SONAME: &str = "libtokyocabinet.so.9";

/// Debug builds only: a soname to load instead of [`SONAME`], so the tests can see the
/// library missing on a machine that has it. Release builds never read it.
#[cfg(debug_assertions)]
const SONAME_OVERRIDE: &str = "GEARMAND_TEST_TOKYOCABINET_SONAME";

/// `TCADB`, opaque.
#[repr(C)]
struct Tcadb {
    _private: [u8; 0],
}

const ADBOHDB: c_int = 3;
const ADBOBDB: c_int = 4;

/// The library could not be loaded, or lacks a symbol the binding calls.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot load {SONAME}: {reason}; install libtokyocabinet9")]
pub struct LoadError {
    /// What `dlopen` or `dlsym` said.
    reason: String,
}

/// Declares `Api`, one function pointer per symbol, and its resolver, from one list, so a
/// symbol cannot be declared without being resolved.
macro_rules! api {
    ($($name:ident: fn($($arg:ty),*) $(-> $ret:ty)?;)*) => {
        /// The loaded library and every function of it the binding calls.
        struct Api {
            $($name: unsafe extern "C" fn($($arg),*) $(-> $ret)?,)*
            /// Keeps the pointers above valid: never unloaded while the `Api` lives.
            _library: Library,
        }

        impl Api {
            /// Resolves every symbol in `library`; the first missing one is the error.
            fn resolve(library: Library) -> Result<Api, libloading::Error> {
                $(
                    // SAFETY: the pointer type is the symbol's prototype in tcadb.h /
                    // tcutil.h / tchdb.h / tcbdb.h (Tokyo Cabinet 1.4, `bool` is C99 `_Bool`),
                    // and the copied pointer is kept next to `library`, which the struct
                    // owns, so it never outlives the mapping.
                    let $name = unsafe {
                        *library.get::<unsafe extern "C" fn($($arg),*) $(-> $ret)?>(
                            concat!(stringify!($name), "\0").as_bytes(),
                        )?
                    };
                )*
                Ok(Api { $($name,)* _library: library })
            }
        }
    };
}

api! {
    tcadbnew: fn() -> *mut Tcadb;
    tcadbdel: fn(*mut Tcadb);
    tcadbopen: fn(*mut Tcadb, *const c_char) -> bool;
    tcadbclose: fn(*mut Tcadb) -> bool;
    tcadbput: fn(*mut Tcadb, *const c_void, c_int, *const c_void, c_int) -> bool;
    tcadbout: fn(*mut Tcadb, *const c_void, c_int) -> bool;
    tcadbvsiz: fn(*mut Tcadb, *const c_void, c_int) -> c_int;
    tcadbget: fn(*mut Tcadb, *const c_void, c_int, *mut c_int) -> *mut c_void;
    tcadbiterinit: fn(*mut Tcadb) -> bool;
    tcadbiternext: fn(*mut Tcadb, *mut c_int) -> *mut c_void;
    tcadbsync: fn(*mut Tcadb) -> bool;
    tcadboptimize: fn(*mut Tcadb, *const c_char) -> bool;
    tcadbtranbegin: fn(*mut Tcadb) -> bool;
    tcadbtrancommit: fn(*mut Tcadb) -> bool;
    tcadbtranabort: fn(*mut Tcadb) -> bool;
    tcadbomode: fn(*mut Tcadb) -> c_int;
    tcadbreveal: fn(*mut Tcadb) -> *mut c_void;
    tchdbecode: fn(*mut c_void) -> c_int;
    tcbdbecode: fn(*mut c_void) -> c_int;
    tcerrmsg: fn(c_int) -> *const c_char;
    tcfree: fn(*mut c_void);
}

impl Api {
    /// Loads `soname` and resolves every symbol.
    fn load(soname: &str) -> Result<Api, LoadError> {
        let fail = |e: libloading::Error| LoadError {
            reason: e.to_string(),
        };
        // SAFETY: loading runs the library's initialisers; libtokyocabinet's (and those of
        // the zlib/bzip2 it pulls in) only set up their own globals and touch nothing of
        // ours. It is loaded once per process (see `api`), the first time before any
        // thread of ours is started.
        let library = unsafe { Library::new(soname) }.map_err(fail)?;
        Api::resolve(library).map_err(fail)
    }
}

/// The soname to load: [`SONAME`], or in a debug build the test override if set.
fn soname(override_value: Option<String>) -> String {
    #[cfg(debug_assertions)]
    if let Some(name) = override_value.filter(|n| !n.is_empty()) {
        return name;
    }
    #[cfg(not(debug_assertions))]
    let _ = override_value;
    SONAME.to_string()
}

/// The library, loaded on first use and kept for the life of the process (a failure is
/// kept too, so `--check-args` and the start print the same reason).
fn api() -> Result<&'static Api, LoadError> {
    static API: OnceLock<Result<Api, LoadError>> = OnceLock::new();
    API.get_or_init(|| {
        #[cfg(debug_assertions)]
        let override_value = std::env::var(SONAME_OVERRIDE).ok();
        #[cfg(not(debug_assertions))]
        let override_value = None;
        Api::load(&soname(override_value))
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// Loads the library (once) without opening anything: `-q libtokyocabinet` checks this
/// with its options, so a machine without it fails at start and under `--check-args` alike.
pub fn check_library() -> Result<(), LoadError> {
    api().map(|_| ())
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
    /// The library's functions; it stays loaded for the rest of the process, so every
    /// call through them reaches live code.
    api: &'static Api,
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
        let api = api().map_err(|e| StoreError::Config(e.to_string()))?;
        // SAFETY: tcadbnew has no preconditions; it returns an owned handle or NULL.
        let db = unsafe { (api.tcadbnew)() };
        if db.is_null() {
            return Err(StoreError::backend(STORE, "tcadbnew failed"));
        }
        let store = TokyoCabinetStore { api, db };
        // SAFETY: `db` is a live handle; `name` is a NUL-terminated string that outlives
        // the call.
        if !unsafe { (api.tcadbopen)(store.db, name.as_ptr()) } {
            return Err(store.error(&format!("tcadbopen({})", config.file.display())));
        }
        // SAFETY: `db` is a live, open handle.
        let mode = unsafe { (api.tcadbomode)(store.db) };
        if mode != ADBOHDB && mode != ADBOBDB {
            return Err(StoreError::Config(format!(
                "{}: not a hash or B+ tree database",
                config.file.display()
            )));
        }
        // SAFETY: `db` is open; NULL params keep the current tuning.
        if config.optimize && !unsafe { (api.tcadboptimize)(store.db, std::ptr::null()) } {
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
            let inner = (self.api.tcadbreveal)(self.db);
            let code = match (self.api.tcadbomode)(self.db) {
                ADBOHDB if !inner.is_null() => (self.api.tchdbecode)(inner),
                ADBOBDB if !inner.is_null() => (self.api.tcbdbecode)(inner),
                _ => 9999,
            };
            CStr::from_ptr((self.api.tcerrmsg)(code))
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
        let ptr = unsafe { (self.api.tcadbget)(self.db, key.as_ptr().cast(), len(key), &mut size) };
        take(self.api, ptr, size)
    }

    fn put(&self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        // SAFETY: `db` is open; both pointer/length pairs describe live slices.
        let ok = unsafe {
            (self.api.tcadbput)(
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
        if unsafe { (self.api.tcadbvsiz)(self.db, key.as_ptr().cast(), len(key)) } < 0 {
            return Ok(());
        }
        // SAFETY: as above.
        if unsafe { (self.api.tcadbout)(self.db, key.as_ptr().cast(), len(key)) } {
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
            (self.api.tcadbclose)(self.db);
            (self.api.tcadbdel)(self.db);
        }
    }
}

/// Takes ownership of a buffer Tokyo Cabinet allocated, copying it out.
fn take(api: &Api, ptr: *mut c_void, size: c_int) -> Option<Vec<u8>> {
    if ptr.is_null() {
        return None;
    }
    let size = usize::try_from(size).unwrap_or(0);
    // SAFETY: Tokyo Cabinet returned `size` readable bytes at `ptr`, allocated with its own
    // allocator; they are copied, then released once with tcfree.
    unsafe {
        let copy = std::slice::from_raw_parts(ptr.cast::<u8>(), size).to_vec();
        (api.tcfree)(ptr);
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
        if !unsafe { (self.api.tcadbiterinit)(self.db) } {
            return Err(self.error("tcadbiterinit"));
        }
        let mut keys = Vec::new();
        loop {
            let mut size: c_int = 0;
            // SAFETY: `db` is open with an iterator initialised above; `size` is a valid
            // out-parameter.
            let ptr = unsafe { (self.api.tcadbiternext)(self.db, &mut size) };
            match take(self.api, ptr, size) {
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
        if !unsafe { (self.api.tcadbtranbegin)(self.db) } {
            return Err(self.error("tcadbtranbegin"));
        }
        if let Err(e) = self.apply(ops) {
            // SAFETY: `db` is open with a transaction begun above.
            unsafe { (self.api.tcadbtranabort)(self.db) };
            return Err(e);
        }
        // SAFETY: `db` is open with a transaction begun above.
        if !unsafe { (self.api.tcadbtrancommit)(self.db) } {
            return Err(self.error("tcadbtrancommit"));
        }
        // SAFETY: `db` is open.
        if !unsafe { (self.api.tcadbsync)(self.db) } {
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
    fn load_error_names_the_package() {
        let e = LoadError {
            reason: "why".into(),
        };
        assert_eq!(
            e.to_string(),
            "cannot load libtokyocabinet.so.9: why; install libtokyocabinet9"
        );
    }

    #[test]
    fn soname_override_only_in_debug_builds() {
        assert_eq!(soname(None), SONAME);
        assert_eq!(soname(Some(String::new())), SONAME);
        let expected = if cfg!(debug_assertions) {
            "libother.so.1"
        } else {
            SONAME
        };
        assert_eq!(soname(Some("libother.so.1".into())), expected);
    }

    #[test]
    fn load_reports_dlopen_and_dlsym_failures() {
        let missing = Api::load("libdoesnotexist.so.9")
            .err()
            .expect("no such library");
        assert!(missing.reason.contains("libdoesnotexist.so.9"), "{missing}");
        // libc is there but has none of Tokyo Cabinet's symbols: the first one is named.
        let no_symbol = Api::load("libc.so.6")
            .err()
            .expect("libc is not Tokyo Cabinet");
        assert!(
            no_symbol.reason.contains("undefined symbol: tcadbnew"),
            "{no_symbol}"
        );
        assert!(Api::load(SONAME).is_ok(), "libtokyocabinet9 is installed");
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
