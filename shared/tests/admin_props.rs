//! Property tests of the admin text protocol: the server's line parser and the tools' reply
//! parsers (the stable, bounded counterpart of `shared/fuzz`'s `admin_command` and
//! `admin_reply` targets; the properties themselves are in `props/mod.rs`).
//!
//! Each property runs 2,000 cases (`PROPTEST_CASES` overrides).

mod props;

use bytes::Bytes;
use gearman_shared::admin::{
    parse, AdminCommand, FunctionPriorityStatus, FunctionStats, FunctionStatus, JobInfo, Parsed,
    Reply, ReplyShape, ServerStats, StatsReport, WorkerInfo,
};
use proptest::prelude::*;

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn rendered(render: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut out = Vec::new();
    render(&mut out);
    out
}

/// Bytes without any of `excluded`.
fn bytes_without(excluded: &'static [u8], max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        any::<u8>().prop_filter("excluded byte", |b| !excluded.contains(b)),
        0..max,
    )
}

/// A name or handle `AdminCommand::to_line` can carry: no space, NUL or newline.
fn plain(max: usize) -> impl Strategy<Value = Bytes> {
    bytes_without(b" \0\n", max).prop_map(Bytes::from)
}

fn command() -> impl Strategy<Value = AdminCommand> {
    prop_oneof![
        Just(AdminCommand::Status),
        Just(AdminCommand::PriorityStatus),
        Just(AdminCommand::Workers),
        Just(AdminCommand::ShowJobs),
        Just(AdminCommand::ShowUniqueJobs),
        Just(AdminCommand::Version),
        Just(AdminCommand::Verbose),
        Just(AdminCommand::Getpid),
        Just(AdminCommand::Stats),
        any::<bool>().prop_map(|graceful| AdminCommand::Shutdown { graceful }),
        plain(12).prop_map(|name| AdminCommand::CreateFunction { name }),
        plain(12).prop_map(|name| AdminCommand::DropFunction { name }),
        plain(12).prop_map(|handle| AdminCommand::CancelJob { handle }),
        (
            plain(12).prop_filter("maxqueue needs a name", |f| !f.is_empty()),
            [
                0..=i32::MAX.unsigned_abs(),
                0..=i32::MAX.unsigned_abs(),
                0..=i32::MAX.unsigned_abs()
            ]
        )
            .prop_map(|(function, limits)| AdminCommand::MaxQueue { function, limits }),
    ]
}

/// Lines built from the command words, numbers and odd tokens, with irregular spacing.
fn admin_line() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        3 => prop::sample::select(vec![
            "status", "prioritystatus", "workers", "show", "jobs", "unique", "cancel", "job",
            "create", "function", "drop", "maxqueue", "getpid", "version", "verbose",
            "shutdown", "graceful", "stats", "STATUS", "Show", "0", "-5", "2147483648",
            "4294967301", "12abc", "99999999999999999999",
        ])
        .prop_map(|w| w.as_bytes().to_vec()),
        1 => bytes_without(b" \n", 6),
    ];
    (0usize..3, prop::collection::vec((token, 1usize..3), 0..8)).prop_map(|(lead, tokens)| {
        let mut line = vec![b' '; lead];
        for (i, (token, spaces)) in tokens.iter().enumerate() {
            if i > 0 {
                line.extend(std::iter::repeat_n(b' ', *spaces));
            }
            line.extend_from_slice(token);
        }
        if let Some((_, spaces)) = tokens.last() {
            if *spaces > 1 {
                line.push(b' ');
            }
        }
        line
    })
}

/// Text that looks like server output: reply words, separators and digits.
fn reply_text() -> impl Strategy<Value = Vec<u8>> {
    let fragment = prop::sample::select(vec![
        "OK",
        "ERR",
        " ",
        "\t",
        "\r",
        "\n",
        "\r\n",
        ".",
        ".\n",
        "0",
        "7",
        "-",
        ":",
        " :",
        "x",
        "\0",
        "server",
        "function",
        "=",
        "jobs",
        "oldest_queued_ms",
        "\u{e9}",
        "\u{ff}",
    ]);
    prop::collection::vec(fragment, 0..24).prop_map(|parts| parts.concat().into_bytes())
}

fn name_without_newline() -> impl Strategy<Value = Bytes> {
    bytes_without(b"\n", 12).prop_map(Bytes::from)
}

fn one_line_reply() -> impl Strategy<Value = Reply> {
    let word = "[!-~]{0,10}"; // printable ASCII without space
    prop_oneof![
        Just(Reply::Ok),
        "[^\n]{0,16}"
            .prop_filter("a value cannot end in CR", |v| !v.ends_with('\r'))
            .prop_map(Reply::Value),
        (word, "[^\n]{0,16}").prop_map(|(code, text)| Reply::Error { code, text }),
    ]
}

fn listing() -> impl Strategy<Value = Reply> {
    prop::collection::vec(bytes_without(b"\n", 16), 0..6)
        .prop_filter("a listing line is never the terminator", |lines| {
            !lines.iter().any(|l| l == b".")
        })
        .prop_filter("a first line like ERR…\\r reads as an error", |lines| {
            !lines
                .first()
                .is_some_and(|l| l.starts_with(b"ERR") && l.ends_with(b"\r"))
        })
        .prop_map(Reply::List)
}

fn stats_report() -> impl Strategy<Value = StatsReport> {
    let server = prop::array::uniform8(any::<u64>()).prop_map(|v| ServerStats {
        uptime_seconds: v[0],
        connections: v[1],
        workers: v[2],
        clients: v[3],
        admins: v[4],
        bytes_in: v[5],
        bytes_out: v[6],
        jobs: v[7],
    });
    let function = (
        bytes_without(b"\t\n", 12),
        prop::array::uniform12(any::<u64>()),
        prop::option::of(any::<u64>()),
    )
        .prop_map(|(name, v, oldest_queued_ms)| FunctionStats {
            name: Bytes::from(name),
            submitted: v[0],
            completed: v[1],
            failed: v[2],
            exceptions: v[3],
            retried: v[4],
            timed_out: v[5],
            cancelled: v[6],
            queued_high: v[7],
            queued_normal: v[8],
            queued_low: v[9],
            running: v[10],
            workers: v[11],
            oldest_queued_ms,
        });
    (server, prop::collection::vec(function, 0..4))
        .prop_map(|(server, functions)| StatsReport { server, functions })
}

proptest! {
    #![proptest_config(config())]

    /// Every command's canonical line parses back to it.
    #[test]
    fn commands_round_trip(command in command(), crlf in any::<bool>()) {
        props::check_command(&command);
        // With a bare \n only `create function` changes (the C server's quirk).
        let parsed = parse(&command.to_line(), if crlf { 2 } else { 1 });
        if !matches!(command, AdminCommand::CreateFunction { .. }) {
            prop_assert_eq!(parsed, Parsed::Command(command));
        }
    }

    /// Lines of command words with irregular spacing: the parser closes exactly on more than
    /// five tokens, and its commands and error lines are consistent.
    #[test]
    fn command_like_lines(line in admin_line(), crlf in any::<bool>()) {
        props::check_admin_line(&line, if crlf { 2 } else { 1 });
    }

    /// Arbitrary bytes as an admin line.
    #[test]
    fn arbitrary_admin_lines(data in prop::collection::vec(any::<u8>(), 0..64)) {
        props::check_admin_input(&data);
    }

    /// One-line replies render to bytes that parse back, in every shape that allows them.
    #[test]
    fn one_line_replies_round_trip(reply in one_line_reply()) {
        let wire = reply.to_bytes();
        for shape in [ReplyShape::Line, ReplyShape::Lines] {
            prop_assert_eq!(Reply::parse(&wire, shape), Ok(Some((reply.clone(), wire.len()))));
        }
        props::check_reply(&wire, ReplyShape::Line);
    }

    /// Listings render to bytes that parse back, and nothing short of the `.` completes them.
    #[test]
    fn listings_round_trip(reply in listing(), tail in reply_text()) {
        let mut wire = reply.to_bytes();
        let used = wire.len();
        prop_assert_eq!(Reply::parse(&wire, ReplyShape::Listing), Ok(Some((reply.clone(), used))));
        // Whatever follows belongs to the next reply.
        wire.extend_from_slice(&tail);
        prop_assert_eq!(Reply::parse(&wire, ReplyShape::Listing), Ok(Some((reply, used))));
        props::check_reply(&wire, ReplyShape::Listing);
    }

    /// Server-like output through every reply and line parser.
    #[test]
    fn reply_like_text(selector in any::<u8>(), text in reply_text()) {
        let mut data = vec![selector];
        data.extend(text);
        props::check_reply_input(&data);
    }

    /// Typed listing lines render to lines that parse back to them.
    #[test]
    fn listing_lines_round_trip(
        name in name_without_newline(),
        counts in prop::array::uniform4(any::<u64>()),
        fd in any::<i64>(),
        address in "[0-9a-f:.]{0,24}",
        client_id in bytes_without(b" \0\n", 12),
        functions in prop::collection::vec(bytes_without(b" \n", 8), 0..4),
        retries in any::<u32>(),
        flags in (any::<bool>(), any::<bool>()),
    ) {
        let status = FunctionStatus {
            name: name.clone(),
            total: counts[0],
            running: counts[1],
            workers: counts[2],
        };
        let wire = rendered(|o| status.render(o));
        prop_assert_eq!(FunctionStatus::parse(&wire), Ok(status));
        props::check_listing_line(&wire);

        let priority = FunctionPriorityStatus {
            name: name.clone(),
            high: counts[0],
            normal: counts[1],
            low: counts[2],
            workers: counts[3],
        };
        let wire = rendered(|o| priority.render(o));
        prop_assert_eq!(FunctionPriorityStatus::parse(&wire), Ok(priority));
        props::check_listing_line(&wire);

        let worker = WorkerInfo {
            fd,
            address,
            client_id: Bytes::from(client_id),
            functions: functions.into_iter().map(Bytes::from).collect(),
        };
        let wire = rendered(|o| worker.render(o));
        prop_assert_eq!(WorkerInfo::parse(&wire), Ok(worker));
        props::check_listing_line(&wire);

        if !name.contains(&0) {
            let job = JobInfo { handle: name, retries, ignore: flags.0, queued: flags.1 };
            let wire = rendered(|o| job.render(o));
            prop_assert_eq!(JobInfo::parse(&wire), Ok(job));
            props::check_listing_line(&wire);
        }
    }

    /// A `stats` listing parses back to the report it was rendered from.
    #[test]
    fn stats_round_trip(report in stats_report()) {
        let wire = rendered(|o| report.render(o));
        let (reply, used) = Reply::parse(&wire, ReplyShape::Listing)
            .expect("a stats listing parses")
            .expect("a stats listing is complete");
        prop_assert_eq!(used, wire.len());
        let Reply::List(lines) = reply else {
            panic!("stats is a listing");
        };
        prop_assert_eq!(StatsReport::parse(&lines), Ok(report));
        props::check_stats(&lines);
    }
}
