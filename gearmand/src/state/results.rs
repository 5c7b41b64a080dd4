//! What workers report (WORK_*), forwarded to the attached clients, and the status
//! requests of clients.

use bytes::Bytes;
use gearman_shared::protocol::{parse_u32_lenient, ErrorCode, Response};

use super::{submit, JobId, JobState, State, MAX_KEY_LEN};
use super::{ConnId, Outgoing};

impl State {
    /// The job `handle` if `conn` is running it.
    pub(super) fn running_job(&self, conn: ConnId, handle: &[u8]) -> Option<JobId> {
        let id = self.job_by_handle(handle)?;
        let job = self.jobs.get(&id)?;
        (job.state == JobState::Running(conn)).then_some(id)
    }

    pub(super) fn job_not_found(&mut self, conn: ConnId, text: &'static str) {
        self.reply(conn, Response::error(ErrorCode::JobNotFound, text));
    }

    /// Sends `make(handle)` to every client attached to the job.
    pub(super) fn forward(&mut self, id: JobId, make: impl Fn(Bytes) -> Response) {
        let Some(job) = self.jobs.get(&id) else {
            return;
        };
        let handle = self.handle_of(id);
        for &client in &job.clients {
            self.out
                .emit(client, Outgoing::Packet(make(handle.clone())));
        }
    }

    pub(super) fn work_status(
        &mut self,
        conn: ConnId,
        handle: Bytes,
        numerator: Bytes,
        denominator: Bytes,
    ) {
        let Some(id) = self.running_job(conn, &handle) else {
            self.job_not_found(conn, "Job given in work result not found");
            return;
        };
        if let Some(job) = self.jobs.get_mut(&id) {
            job.set_status(
                parse_u32_lenient(&numerator),
                parse_u32_lenient(&denominator),
            );
        }
        self.forward(id, |handle| Response::WorkStatus {
            handle,
            numerator: numerator.clone(),
            denominator: denominator.clone(),
        });
    }

    pub(super) fn work_fail(&mut self, conn: ConnId, handle: Bytes) {
        if handle.len() >= MAX_KEY_LEN {
            self.reply(
                conn,
                Response::error(
                    ErrorCode::ArgumentTooLarge,
                    "Error occurred due to GEARMAND_JOB_HANDLE_SIZE being too small from snprintf",
                ),
            );
            return;
        }
        let Some(id) = self.running_job(conn, &handle) else {
            self.job_not_found(conn, "Job given in work result not found");
            return;
        };
        self.forward(id, |handle| Response::WorkFail { handle });
        self.count_job(id, |c| c.failed += 1);
        self.remove_job(id);
    }

    /// WORK_EXCEPTION reaches clients that asked for exceptions; the others get a plain
    /// WORK_FAIL (without the C server's trailing NUL, which hangs libgearman clients).
    pub(super) fn work_exception(&mut self, conn: ConnId, handle: Bytes, data: Bytes) {
        let Some(id) = self.running_job(conn, &handle) else {
            self.job_not_found(
                conn,
                "An exception was received for a job that does not exist",
            );
            return;
        };
        if let Some(job) = self.jobs.get(&id) {
            for &client in &job.clients {
                let wants = self.peers.get(&client).is_some_and(|p| p.exceptions);
                let response = if wants {
                    Response::WorkException {
                        handle: submit::handle_for(&self.config.handle_prefix, job.id),
                        data: data.clone(),
                    }
                } else {
                    Response::WorkFail {
                        handle: submit::handle_for(&self.config.handle_prefix, job.id),
                    }
                };
                self.out.emit(client, Outgoing::Packet(response));
            }
        }
        self.count_job(id, |c| c.exceptions += 1);
        self.remove_job(id);
    }

    pub(super) fn get_status(&mut self, conn: ConnId, handle: Bytes) {
        let job = self
            .job_by_handle(&handle)
            .and_then(|id| self.jobs.get(&id));
        let response = match job {
            Some(job) => Response::Status {
                handle,
                known: true,
                running: job.is_running(),
                numerator: job.status().0,
                denominator: job.status().1,
            },
            None => Response::Status {
                handle,
                known: false,
                running: false,
                numerator: 0,
                denominator: 0,
            },
        };
        self.reply(conn, response);
    }

    /// Looks a job up by its unique alone, whatever its function, as the C server does.
    pub(super) fn get_status_unique(&mut self, conn: ConnId, unique: Bytes) {
        let job = if unique.is_empty() || unique.len() >= MAX_KEY_LEN {
            None
        } else {
            self.uniques
                .jobs()
                .filter_map(|id| self.jobs.get(&id))
                .find(|job| job.unique() == unique)
        };
        let response = match job {
            Some(job) => Response::StatusUnique {
                unique,
                known: true,
                running: job.is_running(),
                numerator: job.status().0,
                denominator: job.status().1,
                clients: u32::try_from(job.clients.len()).unwrap_or(u32::MAX),
            },
            None => Response::StatusUnique {
                unique,
                known: false,
                running: false,
                numerator: 0,
                denominator: 0,
                clients: 0,
            },
        };
        self.reply(conn, response);
    }
}
