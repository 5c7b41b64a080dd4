//! Line handling for `-n` / `-N`: reading stdin one line at a time and trimming lines.
//!
//! The C tool reads lines with an 8 KiB `fgets` buffer (longer lines are split) and `-N`
//! drops the last byte of each line even when it is not a newline. Here a line is whatever
//! ends at `\n` (or at end of input) and `-N` removes only a trailing `\n`.

use std::io::{self, BufRead};

/// How data is cut into pieces: the whole stream, or one piece per line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineMode {
    /// One piece: everything, newlines included.
    Whole,
    /// One piece per line; `strip` (`-N`) removes the trailing newline.
    PerLine {
        /// Remove the line's trailing `\n`.
        strip: bool,
    },
}

impl LineMode {
    /// The mode selected by `-n` / `-N` (`-N` wins when both are given, as in the C tool).
    pub fn from_flags(per_line: bool, strip: bool) -> Self {
        match (per_line, strip) {
            (_, true) => LineMode::PerLine { strip: true },
            (true, false) => LineMode::PerLine { strip: false },
            (false, false) => LineMode::Whole,
        }
    }

    /// Whether pieces are lines.
    pub fn per_line(self) -> bool {
        matches!(self, LineMode::PerLine { .. })
    }

    /// A line as it should be sent: without its `\n` under `-N`, unchanged otherwise.
    pub fn trim(self, line: &[u8]) -> &[u8] {
        match self {
            LineMode::PerLine { strip: true } => line.strip_suffix(b"\n").unwrap_or(line),
            _ => line,
        }
    }
}

/// Reads the next line, `\n` included; `None` at end of input. The last line may lack `\n`.
pub fn read_line<R: BufRead + ?Sized>(reader: &mut R) -> io::Result<Option<Vec<u8>>> {
    let mut line = Vec::new();
    match reader.read_until(b'\n', &mut line)? {
        0 => Ok(None),
        _ => Ok(Some(line)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn all_lines(input: &[u8]) -> Vec<Vec<u8>> {
        let mut reader = Cursor::new(input.to_vec());
        let mut lines = Vec::new();
        while let Ok(Some(line)) = read_line(&mut reader) {
            lines.push(line);
        }
        lines
    }

    #[test]
    fn splits_keeping_newlines() {
        assert_eq!(all_lines(b"a\nb\n"), [b"a\n".to_vec(), b"b\n".to_vec()]);
        assert_eq!(
            all_lines(b"a\n\nb"),
            [b"a\n".to_vec(), b"\n".to_vec(), b"b".to_vec()]
        );
        assert!(all_lines(b"").is_empty());
    }

    #[test]
    fn long_lines_are_not_split() {
        let long = vec![b'x'; 20_000];
        assert_eq!(all_lines(&long), [long]);
    }

    #[test]
    fn strip_removes_only_a_newline() {
        let n = LineMode::from_flags(true, false);
        let big_n = LineMode::from_flags(false, true);
        assert_eq!(n.trim(b"l1\n"), b"l1\n");
        assert_eq!(big_n.trim(b"l1\n"), b"l1");
        // The C tool would send "l" here.
        assert_eq!(big_n.trim(b"l2"), b"l2");
        assert_eq!(big_n.trim(b"\n"), b"");
        assert_eq!(big_n.trim(b"a\r\n"), b"a\r");
        assert_eq!(LineMode::Whole.trim(b"x\n"), b"x\n");
    }

    #[test]
    fn flags() {
        assert_eq!(LineMode::from_flags(false, false), LineMode::Whole);
        assert_eq!(
            LineMode::from_flags(true, true),
            LineMode::PerLine { strip: true }
        );
        assert!(LineMode::from_flags(true, false).per_line());
        assert!(!LineMode::Whole.per_line());
    }
}
