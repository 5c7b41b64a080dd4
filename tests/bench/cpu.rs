//! CPU accounting from `/proc`: a process's user + system time, all threads included.
//!
//! `/proc/<pid>/stat` of a thread-group leader already sums every thread of the process,
//! live or exited, so one read before and one after a scenario gives what its threads
//! used. The same file for `self` measures the load generator.

use std::process::Command;

use anyhow::{bail, Context, Result};

/// Converts the kernel's clock ticks to seconds.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    /// Ticks per second (`getconf CLK_TCK`, 100 on Linux almost always).
    pub ticks_per_sec: u64,
}

impl Clock {
    /// Asks `getconf CLK_TCK`, falling back to 100 with a warning.
    pub fn detect() -> Clock {
        let asked = Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .filter(|out| out.status.success())
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .and_then(|s| s.trim().parse::<u64>().ok())
            .filter(|&t| t > 0);
        match asked {
            Some(ticks_per_sec) => Clock { ticks_per_sec },
            None => {
                eprintln!("warning: `getconf CLK_TCK` failed; assuming 100 ticks per second");
                Clock { ticks_per_sec: 100 }
            }
        }
    }

    /// Seconds of CPU (user + system) used so far by process `pid` (`None` = this process).
    pub fn cpu_seconds(&self, pid: Option<u32>) -> Result<f64> {
        let path = match pid {
            Some(pid) => format!("/proc/{pid}/stat"),
            None => "/proc/self/stat".to_string(),
        };
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        let ticks = parse_stat_cpu_ticks(&text).with_context(|| format!("parsing {path}"))?;
        Ok(ticks as f64 / self.ticks_per_sec as f64)
    }
}

/// utime + stime (fields 14 and 15) of a `/proc/<pid>/stat` line. The command name
/// (field 2) is in parentheses and may hold spaces, so fields are counted after the
/// last `)`.
fn parse_stat_cpu_ticks(stat: &str) -> Result<u64> {
    let Some(close) = stat.rfind(')') else {
        bail!("no ')' after the command name");
    };
    let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    // After ')': index 0 is field 3 (state), so field N is at index N - 3.
    let get = |field: usize| -> Result<u64> {
        let raw = fields
            .get(field - 3)
            .with_context(|| format!("field {field} missing"))?;
        raw.parse::<u64>()
            .with_context(|| format!("field {field} is not a number: {raw:?}"))
    };
    Ok(get(14)? + get(15)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fields_after_the_command_name() {
        let line = "42 (a) b (c) S 1 42 42 0 -1 4194560 100 0 0 0 7 5 0 0 20 0 4 0 1 2 3";
        assert_eq!(parse_stat_cpu_ticks(line).ok(), Some(12));
    }
}
