//! Admin text commands: parsed by the shared admin module, answered from the job state,
//! rendered byte for byte as the C server does.

use bytes::{BufMut, Bytes, BytesMut};
use gearman_shared::admin::{self, reply, AdminCommand, ErrorReply, Parsed, Reply, UniqueJob};

use super::{Exit, Processor};
use crate::acl::AdminRight;
use crate::state::DropOutcome;
use crate::state::{ConnId, Outgoing};
use crate::PROTOCOL_VERSION;

impl Processor {
    /// Answers one admin line from `conn`.
    pub(super) fn admin(&mut self, conn: ConnId, line: &[u8], terminator_len: usize) {
        let command = match admin::parse(line, terminator_len) {
            Parsed::Command(command) => command,
            Parsed::Reply(error) => return self.text(conn, error.to_bytes()),
            Parsed::Close => {
                tracing::info!(conn = conn.0, "admin line with too many tokens, closing");
                self.state.send(conn, Outgoing::Close);
                return;
            }
        };
        let mut out = BytesMut::new();
        let right = required_right(&command);
        if !self.state.admin_allowed(conn, right) {
            let address = self.state.peer_address(conn).unwrap_or_default();
            tracing::warn!(conn = conn.0, peer = %address, ?right, "ACL: admin command refused");
            Reply::error(
                "PERMISSION_DENIED",
                "not allowed by the access control list",
            )
            .render(&mut out);
            return self.text(conn, out.to_vec());
        }
        match command {
            AdminCommand::Status => {
                for f in self.state.function_statuses() {
                    f.render(&mut out);
                }
                out.put_slice(reply::LIST_END);
            }
            AdminCommand::PriorityStatus => {
                for f in self.state.priority_statuses() {
                    f.render(&mut out);
                }
                out.put_slice(reply::LIST_END);
            }
            AdminCommand::Workers => {
                for w in self.state.workers() {
                    w.render(&mut out);
                }
                out.put_slice(reply::LIST_END);
            }
            AdminCommand::ShowJobs => {
                for j in self.state.job_infos() {
                    j.render(&mut out);
                }
                out.put_slice(reply::LIST_END);
            }
            AdminCommand::ShowUniqueJobs => {
                for unique in self.state.unique_keys() {
                    UniqueJob { unique }.render(&mut out);
                }
                out.put_slice(reply::LIST_END);
            }
            AdminCommand::Version => reply::render_value(PROTOCOL_VERSION.as_bytes(), &mut out),
            AdminCommand::Verbose => reply::render_value(self.info.verbose.as_bytes(), &mut out),
            AdminCommand::Getpid => {
                reply::render_value(self.info.pid.to_string().as_bytes(), &mut out)
            }
            AdminCommand::MaxQueue { function, limits } => {
                self.state.set_max_queue(&function, limits);
                out.put_slice(reply::OK);
            }
            AdminCommand::CreateFunction { name } => {
                self.state.create_function(name);
                out.put_slice(reply::OK);
            }
            AdminCommand::DropFunction { name } => {
                let outcomes = self.state.drop_functions(&name);
                if outcomes.is_empty() {
                    ErrorReply::FunctionNotFound.render(&mut out);
                }
                for outcome in outcomes {
                    match outcome {
                        DropOutcome::Dropped => out.put_slice(reply::OK),
                        DropOutcome::Busy => ErrorReply::FunctionBusy.render(&mut out),
                    }
                }
            }
            AdminCommand::CancelJob { handle } => {
                if self.state.cancel_job(conn, &handle) {
                    out.put_slice(reply::OK);
                } else {
                    ErrorReply::UnknownJob.render(&mut out);
                }
            }
            AdminCommand::Shutdown { graceful } => self.shutdown(conn, graceful, &mut out),
            AdminCommand::Stats => self.stats().render(&mut out),
        }
        self.text(conn, out.to_vec());
    }

    fn shutdown(&mut self, conn: ConnId, graceful: bool, out: &mut BytesMut) {
        let address = self.state.peer_address(conn).unwrap_or_default();
        if !self.info.shutdown_access.allows(&address) {
            tracing::warn!(conn = conn.0, peer = %address, "shutdown refused");
            Reply::error(
                "PERMISSION_DENIED",
                "shutdown is not allowed from this address",
            )
            .render(out);
            return;
        }
        tracing::warn!(conn = conn.0, peer = %address, graceful, "shutdown requested");
        out.put_slice(reply::OK);
        if graceful {
            self.begin_graceful_shutdown();
        } else {
            self.exit = Some(Exit::Immediate);
        }
    }

    fn text(&mut self, conn: ConnId, bytes: Vec<u8>) {
        self.state.send(conn, Outgoing::Text(Bytes::from(bytes)));
    }
}

/// The ACL right an admin command needs.
fn required_right(command: &AdminCommand) -> AdminRight {
    match command {
        AdminCommand::Status
        | AdminCommand::PriorityStatus
        | AdminCommand::Workers
        | AdminCommand::ShowJobs
        | AdminCommand::ShowUniqueJobs
        | AdminCommand::Version
        | AdminCommand::Verbose
        | AdminCommand::Getpid
        | AdminCommand::Stats => AdminRight::Read,
        AdminCommand::MaxQueue { .. } => AdminRight::MaxQueue,
        AdminCommand::CreateFunction { .. } => AdminRight::Create,
        AdminCommand::DropFunction { .. } => AdminRight::Drop,
        AdminCommand::CancelJob { .. } => AdminRight::Cancel,
        AdminCommand::Shutdown { .. } => AdminRight::Shutdown,
    }
}
