//! Access control (`--acl FILE`): who may register which functions, submit to which
//! functions, and run which admin commands.
//!
//! The file is a list of sections, each naming who it applies to, with the grants that
//! follow it:
//!
//! ```text
//! # comment
//! [cert:worker-1.example.com]   # a TLS client certificate's CN or SAN
//! can_do = resize, thumb_*      # functions it may register (CAN_DO, CAN_DO_TIMEOUT)
//!
//! [addr:10.0.0.0/8]             # a peer address or CIDR range (without TLS identity too)
//! submit = *                    # functions it may submit jobs to
//! admin = read, cancel          # admin commands: read cancel drop maxqueue create shutdown all
//!
//! [any]                         # every connection
//! admin = read
//! ```
//!
//! With an ACL in force, whatever no matching section grants is denied. A connection gets
//! the union of every section that matches it. Patterns are exact names or `*` wildcards.
//! Other requests (grabbing, results of jobs it runs, status, echo) need no grant.

use std::net::IpAddr;
use std::path::Path;

use crate::net_range::NetRange;

/// Admin command families.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminRight {
    /// status, prioritystatus, workers, show jobs, show unique jobs, version, verbose, getpid, stats.
    Read,
    /// cancel job.
    Cancel,
    /// drop function.
    Drop,
    /// maxqueue.
    MaxQueue,
    /// create function.
    Create,
    /// shutdown, shutdown graceful.
    Shutdown,
}

impl AdminRight {
    const ALL: [AdminRight; 6] = [
        AdminRight::Read,
        AdminRight::Cancel,
        AdminRight::Drop,
        AdminRight::MaxQueue,
        AdminRight::Create,
        AdminRight::Shutdown,
    ];

    fn parse(word: &str) -> Option<&'static [AdminRight]> {
        Some(match word {
            "read" => &[AdminRight::Read],
            "cancel" => &[AdminRight::Cancel],
            "drop" => &[AdminRight::Drop],
            "maxqueue" => &[AdminRight::MaxQueue],
            "create" => &[AdminRight::Create],
            "shutdown" => &[AdminRight::Shutdown],
            "all" => &AdminRight::ALL,
            _ => return None,
        })
    }
}

/// Who a section applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Subject {
    Any,
    Cert(String),
    Network(NetRange),
}

/// A function-name pattern: `*` matches any run of bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern(Vec<u8>);

impl Pattern {
    /// Whether `name` matches.
    pub fn matches(&self, name: &[u8]) -> bool {
        glob(&self.0, name)
    }
}

/// Whether `name` matches `pattern`, in time linear in `name.len() + pattern.len()`.
///
/// The pattern is split at its stars into literal pieces: the first must be a prefix, the
/// last a suffix, and each one between must occur, in order, after the previous one. Taking
/// the leftmost occurrence of each middle piece is always right (it leaves the most room for
/// the rest), so nothing is ever retried: a hostile name cannot make the processing thread
/// backtrack, whatever the number of stars.
fn glob(pattern: &[u8], name: &[u8]) -> bool {
    let mut pieces = pattern.split(|&b| b == b'*');
    // `split` always yields at least one piece.
    let head = pieces.next().unwrap_or_default();
    let Some(tail) = pieces.next_back() else {
        return pattern == name; // no star at all
    };
    if name.len() < head.len() + tail.len() || !name.starts_with(head) || !name.ends_with(tail) {
        return false;
    }
    let mut rest = &name[head.len()..name.len() - tail.len()];
    for piece in pieces.filter(|p| !p.is_empty()) {
        match memchr::memmem::find(rest, piece) {
            Some(at) => rest = &rest[at + piece.len()..],
            None => return false,
        }
    }
    true
}

/// What one connection may do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    can_do: Vec<Pattern>,
    submit: Vec<Pattern>,
    admin: Vec<AdminRight>,
}

impl Grants {
    /// Everything: what connections get when no ACL is in force.
    pub fn everything() -> Grants {
        let all = || vec![Pattern(b"*".to_vec())];
        Grants {
            can_do: all(),
            submit: all(),
            admin: AdminRight::ALL.to_vec(),
        }
    }

    /// May register `function`.
    pub fn can_do(&self, function: &[u8]) -> bool {
        self.can_do.iter().any(|p| p.matches(function))
    }

    /// May submit to `function`.
    pub fn submit(&self, function: &[u8]) -> bool {
        self.submit.iter().any(|p| p.matches(function))
    }

    /// May run admin commands of this family.
    pub fn admin(&self, right: AdminRight) -> bool {
        self.admin.contains(&right)
    }

    fn add(&mut self, other: &Grants) {
        self.can_do.extend(other.can_do.iter().cloned());
        self.submit.extend(other.submit.iter().cloned());
        for right in &other.admin {
            if !self.admin.contains(right) {
                self.admin.push(*right);
            }
        }
    }
}

/// A parsed ACL file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Acl {
    sections: Vec<(Subject, Grants)>,
}

/// A problem in an ACL file, with its line number.
#[derive(Debug, thiserror::Error)]
pub enum AclError {
    /// The file cannot be read. (The I/O error is part of the message, not a `source`,
    /// so that `{:#}` chains do not print it twice.)
    #[error("cannot read ACL file {path}: {error}")]
    Read { path: String, error: std::io::Error },
    /// A line is wrong.
    #[error("ACL line {line}: {message}")]
    Syntax { line: usize, message: String },
}

impl Acl {
    /// Reads and parses an ACL file.
    pub fn load(path: &Path) -> Result<Acl, AclError> {
        let text = std::fs::read_to_string(path).map_err(|error| AclError::Read {
            path: path.display().to_string(),
            error,
        })?;
        Acl::parse(&text)
    }

    /// Parses ACL text.
    pub fn parse(text: &str) -> Result<Acl, AclError> {
        let mut sections: Vec<(Subject, Grants)> = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let error = |message: String| AclError::Syntax { line, message };
            let content = raw.split('#').next().unwrap_or_default().trim();
            if content.is_empty() {
                continue;
            }
            if let Some(header) = content.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
                sections.push((
                    parse_subject(header.trim()).map_err(error)?,
                    Grants::default(),
                ));
                continue;
            }
            let Some((key, value)) = content.split_once('=') else {
                return Err(error(format!(
                    "expected `key = value` or `[section]`, got {content:?}"
                )));
            };
            let Some((_, grants)) = sections.last_mut() else {
                return Err(error("a grant before any [section]".into()));
            };
            let items = value.split(',').map(str::trim).filter(|i| !i.is_empty());
            match key.trim() {
                "can_do" => grants
                    .can_do
                    .extend(items.map(|i| Pattern(i.as_bytes().to_vec()))),
                "submit" => grants
                    .submit
                    .extend(items.map(|i| Pattern(i.as_bytes().to_vec()))),
                "admin" => {
                    for item in items {
                        let rights = AdminRight::parse(item)
                            .ok_or_else(|| error(format!("unknown admin right {item:?}")))?;
                        for right in rights {
                            if !grants.admin.contains(right) {
                                grants.admin.push(*right);
                            }
                        }
                    }
                }
                other => {
                    return Err(error(format!(
                        "unknown key {other:?} (can_do, submit, admin)"
                    )))
                }
            }
        }
        Ok(Acl { sections })
    }

    /// The union of the grants of every section matching this connection.
    pub fn grants_for(&self, address: &str, identity: Option<&str>) -> Grants {
        let address = address.parse::<IpAddr>().ok();
        let mut grants = Grants::default();
        for (subject, section) in &self.sections {
            let applies = match subject {
                Subject::Any => true,
                Subject::Cert(name) => identity == Some(name.as_str()),
                Subject::Network(range) => address.is_some_and(|a| range.contains(a)),
            };
            if applies {
                grants.add(section);
            }
        }
        grants
    }
}

fn parse_subject(header: &str) -> Result<Subject, String> {
    if header == "any" {
        return Ok(Subject::Any);
    }
    if let Some(name) = header.strip_prefix("cert:") {
        return Ok(Subject::Cert(name.trim().to_string()));
    }
    if let Some(addr) = header.strip_prefix("addr:") {
        return NetRange::parse(addr.trim()).map(Subject::Network);
    }
    Err(format!(
        "unknown section [{header}] (use [any], [cert:NAME] or [addr:IP[/BITS]])"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "
        # workers
        [cert:worker-1]
        can_do = resize, thumb_*
        [addr:10.0.0.0/8]
        submit = *
        admin = read, cancel
        [any]
        admin = read
    ";

    #[test]
    fn grants_are_the_union_of_matching_sections() {
        let acl = Acl::parse(SAMPLE).expect("valid");
        let worker = acl.grants_for("192.168.1.1", Some("worker-1"));
        assert!(worker.can_do(b"resize") && worker.can_do(b"thumb_small"));
        assert!(!worker.can_do(b"other") && !worker.submit(b"resize"));
        assert!(worker.admin(AdminRight::Read) && !worker.admin(AdminRight::Cancel));
        let inside = acl.grants_for("10.1.2.3", None);
        assert!(inside.submit(b"anything") && inside.admin(AdminRight::Cancel));
        assert!(!inside.admin(AdminRight::Shutdown) && !inside.can_do(b"resize"));
        let mapped = acl.grants_for("::ffff:10.0.0.1", None);
        assert!(mapped.submit(b"x"));
    }

    #[test]
    fn glob_patterns() {
        let p = |s: &str| Pattern(s.as_bytes().to_vec());
        assert!(p("*").matches(b""));
        assert!(p("a*c").matches(b"abbbc") && !p("a*c").matches(b"abd"));
        assert!(p("*_x").matches(b"y_x") && p("a*").matches(b"a"));
        assert!(p("a*a").matches(b"aa") && !p("a*a").matches(b"a"));
        assert!(p("a*b*c").matches(b"a_b_b_c") && !p("a*b*c").matches(b"a_c_b"));
        assert!(p("**").matches(b"") && p("*x*").matches(b"x") && !p("*x*").matches(b"y"));
        assert!(p("exact").matches(b"exact") && !p("exact").matches(b"exact2"));
    }

    /// Agrees with the obvious recursive definition on every pattern and name over a
    /// small alphabet.
    #[test]
    fn glob_agrees_with_the_recursive_definition() {
        fn reference(p: &[u8], n: &[u8]) -> bool {
            match p.split_first() {
                None => n.is_empty(),
                Some((b'*', rest)) => (0..=n.len()).any(|i| reference(rest, &n[i..])),
                Some((c, rest)) => n.first() == Some(c) && reference(rest, &n[1..]),
            }
        }
        fn words(alphabet: &[u8], max: usize) -> Vec<Vec<u8>> {
            let mut all = vec![Vec::new()];
            let mut last = vec![Vec::new()];
            for _ in 0..max {
                last = last
                    .iter()
                    .flat_map(|w: &Vec<u8>| {
                        alphabet.iter().map(move |&c| [w.as_slice(), &[c]].concat())
                    })
                    .collect();
                all.extend(last.iter().cloned());
            }
            all
        }
        for pattern in words(b"ab*", 5) {
            for name in words(b"ab", 6) {
                assert_eq!(
                    glob(&pattern, &name),
                    reference(&pattern, &name),
                    "{:?} against {:?}",
                    String::from_utf8_lossy(&pattern),
                    String::from_utf8_lossy(&name)
                );
            }
        }
    }

    /// The pattern that once kept the processing thread busy for minutes.
    #[test]
    fn many_stars_against_a_long_name_is_fast() {
        let pattern = Pattern(b"a*a*a*a*a*a*a*a*a*b".to_vec());
        let name = vec![b'a'; 65_536];
        let started = std::time::Instant::now();
        assert!(!pattern.matches(&name));
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn errors_name_the_line() {
        let bad = Acl::parse("[any]\nadmin = everything\n").expect_err("bad right");
        assert!(bad.to_string().contains("line 2"));
        assert!(Acl::parse("submit = x\n").is_err());
        assert!(Acl::parse("[who]\n").is_err());
        assert!(Acl::parse("[addr:1.2.3.4/40]\n").is_err());
    }
}
