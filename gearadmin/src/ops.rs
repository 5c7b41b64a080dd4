//! The operations gearadmin can run and the fixed order it runs them in.
//!
//! The C tool runs its operations in one fixed order whatever the command line says
//! (shared/docs/protocol.md §9.2; we keep it): getpid, create-function, drop-function, show-jobs,
//! show-unique-jobs, cancel-job, server-verbose, server-version, workers, priority-status,
//! status. Our additions, `--shutdown` and `--shutdown-graceful`, come last so that every
//! other answer is in before the server goes away.

use crate::cli::Cli;

/// One admin command to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    /// `getpid`.
    Getpid,
    /// `create function NAME`.
    CreateFunction(Vec<u8>),
    /// `drop function NAME`.
    DropFunction(Vec<u8>),
    /// `show jobs`.
    ShowJobs,
    /// `show unique jobs`.
    ShowUniqueJobs,
    /// `cancel job HANDLE`.
    CancelJob(Vec<u8>),
    /// `verbose`.
    ServerVerbose,
    /// `version`.
    ServerVersion,
    /// `workers`.
    Workers,
    /// `prioritystatus`.
    PriorityStatus,
    /// `status`.
    Status,
    /// `shutdown`.
    Shutdown,
    /// `shutdown graceful`.
    ShutdownGraceful,
}

impl Operation {
    /// The text line sent to the server, without its `\r\n`: exactly what the C tool sends,
    /// arguments included as given (the server's tokenizer decides what they mean).
    pub fn line(&self) -> Vec<u8> {
        let with_arg = |prefix: &[u8], arg: &[u8]| [prefix, arg].concat();
        match self {
            Operation::Getpid => b"getpid".to_vec(),
            Operation::CreateFunction(name) => with_arg(b"create function ", name),
            Operation::DropFunction(name) => with_arg(b"drop function ", name),
            Operation::ShowJobs => b"show jobs".to_vec(),
            Operation::ShowUniqueJobs => b"show unique jobs".to_vec(),
            Operation::CancelJob(handle) => with_arg(b"cancel job ", handle),
            Operation::ServerVerbose => b"verbose".to_vec(),
            Operation::ServerVersion => b"version".to_vec(),
            Operation::Workers => b"workers".to_vec(),
            Operation::PriorityStatus => b"prioritystatus".to_vec(),
            Operation::Status => b"status".to_vec(),
            Operation::Shutdown => b"shutdown".to_vec(),
            Operation::ShutdownGraceful => b"shutdown graceful".to_vec(),
        }
    }

    /// The name used as the JSON key and in error messages (`priority_status`, …).
    pub fn name(&self) -> &'static str {
        match self {
            Operation::Getpid => "getpid",
            Operation::CreateFunction(_) => "create_function",
            Operation::DropFunction(_) => "drop_function",
            Operation::ShowJobs => "show_jobs",
            Operation::ShowUniqueJobs => "show_unique_jobs",
            Operation::CancelJob(_) => "cancel_job",
            Operation::ServerVerbose => "server_verbose",
            Operation::ServerVersion => "server_version",
            Operation::Workers => "workers",
            Operation::PriorityStatus => "priority_status",
            Operation::Status => "status",
            Operation::Shutdown => "shutdown",
            Operation::ShutdownGraceful => "shutdown_graceful",
        }
    }

    /// The command-line option that asked for this operation.
    pub fn option(&self) -> &'static str {
        match self {
            Operation::Getpid => "--getpid",
            Operation::CreateFunction(_) => "--create-function",
            Operation::DropFunction(_) => "--drop-function",
            Operation::ShowJobs => "--show-jobs",
            Operation::ShowUniqueJobs => "--show-unique-jobs",
            Operation::CancelJob(_) => "--cancel-job",
            Operation::ServerVerbose => "--server-verbose",
            Operation::ServerVersion => "--server-version",
            Operation::Workers => "--workers",
            Operation::PriorityStatus => "--priority-status",
            Operation::Status => "--status",
            Operation::Shutdown => "--shutdown",
            Operation::ShutdownGraceful => "--shutdown-graceful",
        }
    }
}

/// The operations `cli` asks for, in execution order.
pub fn plan(cli: &Cli) -> Vec<Operation> {
    let arg =
        |value: &Option<std::ffi::OsString>| value.as_ref().map(|v| v.as_encoded_bytes().to_vec());
    let mut ops = Vec::new();
    if cli.getpid {
        ops.push(Operation::Getpid);
    }
    if let Some(name) = arg(&cli.create_function) {
        ops.push(Operation::CreateFunction(name));
    }
    if let Some(name) = arg(&cli.drop_function) {
        ops.push(Operation::DropFunction(name));
    }
    if cli.show_jobs {
        ops.push(Operation::ShowJobs);
    }
    if cli.show_unique_jobs {
        ops.push(Operation::ShowUniqueJobs);
    }
    if let Some(handle) = arg(&cli.cancel_job) {
        ops.push(Operation::CancelJob(handle));
    }
    if cli.server_verbose {
        ops.push(Operation::ServerVerbose);
    }
    if cli.server_version {
        ops.push(Operation::ServerVersion);
    }
    if cli.workers {
        ops.push(Operation::Workers);
    }
    if cli.priority_status {
        ops.push(Operation::PriorityStatus);
    }
    if cli.status {
        ops.push(Operation::Status);
    }
    if cli.shutdown {
        ops.push(Operation::Shutdown);
    }
    if cli.shutdown_graceful {
        ops.push(Operation::ShutdownGraceful);
    }
    ops
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::cli::{parse, Parsed};

    fn ops(args: &[&str]) -> Vec<Operation> {
        let mut all = vec!["gearadmin"];
        all.extend_from_slice(args);
        match parse(all) {
            Parsed::Run(cli) => plan(&cli),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn order_is_fixed_whatever_the_command_line() {
        use Operation::*;
        assert_eq!(
            ops(&["--status", "--workers", "--getpid", "--server-version"]),
            vec![Getpid, ServerVersion, Workers, Status]
        );
        let all = ops(&[
            "--shutdown-graceful",
            "--shutdown",
            "--status",
            "--priority-status",
            "--workers",
            "--server-version",
            "--server-verbose",
            "--cancel-job",
            "H:x:1",
            "--show-unique-jobs",
            "--show-jobs",
            "--drop-function",
            "d",
            "--create-function",
            "c",
            "--getpid",
        ]);
        assert_eq!(
            all,
            vec![
                Getpid,
                CreateFunction(b"c".to_vec()),
                DropFunction(b"d".to_vec()),
                ShowJobs,
                ShowUniqueJobs,
                CancelJob(b"H:x:1".to_vec()),
                ServerVerbose,
                ServerVersion,
                Workers,
                PriorityStatus,
                Status,
                Shutdown,
                ShutdownGraceful,
            ]
        );
        let lines: Vec<String> = all
            .iter()
            .map(|op| String::from_utf8(op.line()).unwrap())
            .collect();
        assert_eq!(
            lines,
            [
                "getpid",
                "create function c",
                "drop function d",
                "show jobs",
                "show unique jobs",
                "cancel job H:x:1",
                "verbose",
                "version",
                "workers",
                "prioritystatus",
                "status",
                "shutdown",
                "shutdown graceful",
            ]
        );
    }

    #[test]
    fn arguments_are_sent_as_given() {
        assert_eq!(
            ops(&["--create-function", "a b"])[0].line(),
            b"create function a b"
        );
        assert_eq!(ops(&["--cancel-job", ""])[0].line(), b"cancel job ");
    }
}
