//! Unique keys for jobs submitted without `-u`: a time-based (version 1) UUID string per job,
//! the same shape libgearman generates, e.g. `fce7a3a4-eaae-11f1-9d20-02fc00000001`.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::{SystemTime, UNIX_EPOCH};

/// 100 ns intervals between the UUID epoch (1582-10-15) and the Unix epoch.
const UUID_EPOCH_OFFSET: u64 = 0x01B2_1DD2_1381_4000;

/// Generates distinct UUID strings; timestamps never repeat within one generator.
#[derive(Debug)]
pub struct UniqueGen {
    node: [u8; 6],
    clock_seq: u16,
    last: u64,
}

/// 64 random bits from the standard library's randomly keyed hasher (no extra dependency).
fn random_u64() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.finish()
}

impl UniqueGen {
    /// A generator with a random node id (multicast bit set, as RFC 4122 asks for random
    /// nodes) and a random clock sequence.
    pub fn new() -> Self {
        let bits = random_u64().to_be_bytes();
        let mut node = [bits[0], bits[1], bits[2], bits[3], bits[4], bits[5]];
        node[0] |= 0x01;
        UniqueGen {
            node,
            clock_seq: u16::from_be_bytes([bits[6], bits[7]]) & 0x3fff,
            last: 0,
        }
    }

    /// The next unique: 36 characters, lower-case hex.
    pub fn next_unique(&mut self) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| (d.as_nanos() / 100) as u64)
            .unwrap_or(0);
        let mut ts = now.wrapping_add(UUID_EPOCH_OFFSET);
        if ts <= self.last {
            ts = self.last + 1;
        }
        self.last = ts;
        format_v1(ts, self.clock_seq, self.node)
    }
}

impl Default for UniqueGen {
    fn default() -> Self {
        Self::new()
    }
}

fn format_v1(ts: u64, clock_seq: u16, node: [u8; 6]) -> String {
    let time_low = ts & 0xffff_ffff;
    let time_mid = (ts >> 32) & 0xffff;
    let time_hi = ((ts >> 48) & 0x0fff) | 0x1000;
    let seq = (clock_seq & 0x3fff) | 0x8000;
    format!(
        "{time_low:08x}-{time_mid:04x}-{time_hi:04x}-{seq:04x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        node[0], node[1], node[2], node[3], node[4], node[5]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape() {
        let u = UniqueGen::new().next_unique();
        assert_eq!(u.len(), 36, "{u}");
        let groups: Vec<usize> = u.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12], "{u}");
        assert_eq!(&u[14..15], "1", "version 1: {u}");
        assert!(u.bytes().all(|b| b == b'-' || b.is_ascii_hexdigit()), "{u}");
    }

    #[test]
    fn distinct() {
        let mut g = UniqueGen::new();
        let all: std::collections::HashSet<String> = (0..1000).map(|_| g.next_unique()).collect();
        assert_eq!(all.len(), 1000);
        assert_ne!(UniqueGen::new().node, UniqueGen::new().node);
    }

    #[test]
    fn known_value() {
        assert_eq!(
            format_v1(0x01f1_eaae_fce7_a3a4, 0x1d20, [0x02, 0xfc, 0, 0, 0, 1]),
            "fce7a3a4-eaae-11f1-9d20-02fc00000001"
        );
    }
}
