//! Address ranges (`ADDR[/BITS]`), as the ACL's `[addr:…]` sections and
//! `--allow-shutdown-from` name them.

use std::net::IpAddr;

/// An address and how many leading bits of it a peer must share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetRange {
    net: IpAddr,
    bits: u8,
}

impl NetRange {
    /// The range of `net`'s first `bits` bits (at most the address's length).
    pub fn new(net: IpAddr, bits: u8) -> NetRange {
        NetRange { net, bits }
    }

    /// Parses `ADDR[/BITS]`; without `/BITS`, the one address. The error says which part is
    /// wrong.
    pub fn parse(text: &str) -> Result<NetRange, String> {
        let (ip, bits) = text
            .split_once('/')
            .map_or((text, None), |(a, b)| (a, Some(b)));
        let net: IpAddr = ip.parse().map_err(|_| format!("bad address {ip:?}"))?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let bits = match bits {
            Some(b) => b
                .parse::<u8>()
                .ok()
                .filter(|&b| b <= max)
                .ok_or(format!("bad prefix {b:?}"))?,
            None => max,
        };
        Ok(NetRange { net, bits })
    }

    /// Whether `peer` is in the range. An IPv4-mapped IPv6 peer counts as its IPv4 address.
    pub fn contains(&self, peer: IpAddr) -> bool {
        fn masked(bytes: &[u8], bits: u8) -> Vec<u8> {
            bytes
                .iter()
                .enumerate()
                .map(|(i, &b)| {
                    let keep = (i32::from(bits) - 8 * i as i32).clamp(0, 8) as u32;
                    if keep == 0 {
                        0
                    } else {
                        b & (0xffu8 << (8 - keep))
                    }
                })
                .collect()
        }
        let bits = self.bits;
        match (canonical(peer), self.net) {
            (IpAddr::V4(p), IpAddr::V4(n)) => {
                masked(&p.octets(), bits) == masked(&n.octets(), bits)
            }
            (IpAddr::V6(p), IpAddr::V6(n)) => {
                masked(&p.octets(), bits) == masked(&n.octets(), bits)
            }
            _ => false,
        }
    }
}

/// An IPv4-mapped IPv6 address as its IPv4 address; others as they are.
fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_contains() {
        let range = NetRange::parse("10.1.0.0/16").expect("valid range");
        assert!(range.contains("10.1.2.3".parse().expect("address")));
        assert!(range.contains("::ffff:10.1.2.3".parse().expect("address")));
        assert!(!range.contains("10.2.0.1".parse().expect("address")));
        let one = NetRange::parse("::1").expect("valid address");
        assert!(one.contains("::1".parse().expect("address")));
        assert!(!one.contains("127.0.0.1".parse().expect("address")));
        assert_eq!(
            NetRange::parse("10.0.0.0/33"),
            Err("bad prefix \"33\"".to_string())
        );
        assert_eq!(
            NetRange::parse("bogus"),
            Err("bad address \"bogus\"".to_string())
        );
    }
}
