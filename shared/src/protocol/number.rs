//! Decimal fields as the C server reads them: leading spaces, an optional sign, then
//! digits up to the first non-digit (`strtol`/`atoi` semantics), never failing on garbage.

/// Parses like C's `strtoll`: garbage gives 0, out-of-range values saturate.
/// Returns the value and whether it overflowed.
pub fn parse_i64_prefix(text: &[u8]) -> (i64, bool) {
    let mut rest = text;
    while let [b' ' | b'\t' | b'\n' | b'\r' | b'\x0b' | b'\x0c', tail @ ..] = rest {
        rest = tail;
    }
    let negative = match rest {
        [b'-', tail @ ..] => {
            rest = tail;
            true
        }
        [b'+', tail @ ..] => {
            rest = tail;
            false
        }
        _ => false,
    };
    let mut value: i64 = 0;
    let mut overflow = false;
    for &b in rest.iter().take_while(|b| b.is_ascii_digit()) {
        let digit = i64::from(b - b'0');
        let next = value.checked_mul(10).and_then(|v| {
            if negative {
                v.checked_sub(digit)
            } else {
                v.checked_add(digit)
            }
        });
        match next {
            Some(v) => value = v,
            None => {
                overflow = true;
                value = if negative { i64::MIN } else { i64::MAX };
                break;
            }
        }
    }
    (value, overflow)
}

/// Parses a non-negative 32-bit counter such as a WORK_STATUS numerator: garbage and
/// negative values give 0, values past `u32::MAX` saturate.
pub fn parse_u32_lenient(text: &[u8]) -> u32 {
    let (value, _) = parse_i64_prefix(text);
    u32::try_from(value.max(0)).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strtoll_semantics() {
        assert_eq!(parse_i64_prefix(b"123abc"), (123, false));
        assert_eq!(parse_i64_prefix(b"  -42"), (-42, false));
        assert_eq!(parse_i64_prefix(b"abc"), (0, false));
        assert_eq!(parse_i64_prefix(b""), (0, false));
        assert_eq!(parse_i64_prefix(b"99999999999999999999"), (i64::MAX, true));
        assert_eq!(parse_i64_prefix(b"-99999999999999999999"), (i64::MIN, true));
    }

    #[test]
    fn lenient_u32() {
        assert_eq!(parse_u32_lenient(b"7"), 7);
        assert_eq!(parse_u32_lenient(b"-7"), 0);
        assert_eq!(parse_u32_lenient(b"99999999999"), u32::MAX);
    }
}
