//! The man page `gearadmin(1)`, rendered from the clap definition plus a few fixed sections.
//!
//! The committed copy is `man/gearadmin.1`; a unit test checks it is up to date and rewrites
//! it when `UPDATE_MAN=1` is set.

use std::io;

use gearman_shared::cli;

use crate::cli::command;

/// Sections clap does not know about, in roff.
const EXTRA_SECTIONS: &str = r#".SH "EXIT STATUS"
.TP
\fB0\fR
Every operation succeeded, or \fB\-\-help\fR was given.
.TP
\fB1\fR
A usage error (the message and the options text are printed on standard output, as
by the C tool), no operation given, the server could not be reached, the connection
failed, or the server answered an operation with \fBERR\fR (printed on standard error as
\fBError:\fR followed by the rest of the line). The remaining operations still run
after an \fBERR\fR reply.
.SH "JSON OUTPUT"
With \fB\-\-json\fR, one JSON object is printed once every operation has run. It has a
key per operation that succeeded, in execution order: \fBgetpid\fR (a number),
\fBcreate_function\fR, \fBdrop_function\fR, \fBcancel_job\fR, \fBshutdown\fR and
\fBshutdown_graceful\fR (the string "OK"), \fBserver_verbose\fR and
\fBserver_version\fR (strings), \fBshow_unique_jobs\fR (an array of strings), and
arrays of objects for the listings:
.TP
\fBstatus\fR
function, total, running, workers
.TP
\fBpriority_status\fR
function, high, normal, low, workers
.TP
\fBworkers\fR
fd, address, client_id, functions (an array of strings)
.TP
\fBshow_jobs\fR
handle, retries, ignore and queued (booleans)
.PP
The key \fBerrors\fR is always present: an array of objects with \fBoperation\fR (the
key of the failed operation) and \fBerror\fR (the server's reply after \fBERR\fR).
Names that are not valid UTF\-8 are converted lossily.
.SH "TLS"
With \fB\-S\fR the connection is TLS 1.2 or 1.3 (rustls) and the server's certificate
must chain to the CA of \fB\-\-ssl\-ca\-file\fR and name the host given with
\fB\-\-host\fR (or \fB\-\-ssl\-server\-name\fR). The CA file is required: there is
no built\-in trust store and no way to skip the check. \fB\-\-ssl\-certificate\fR
with \fB\-\-ssl\-key\fR present a client certificate, for a gearmand that requires
one. The \fB\-\-ssl\-*\fR options need \fB\-S\fR. A missing CA file or an unreadable
file is reported on one line before connecting, a refused handshake on one line as a
connection error. With TLS 1.3 a server refuses a missing or untrusted client
certificate after the handshake: that shows as the first operation's error (e.g.
\fBError: \-\-status: received fatal alert: CertificateRequired\fR).
.SH "ENVIRONMENT"
Read only with \fB\-S\fR, for the files not given on the command line, as by
libgearman:
.TP
\fBGEARMAND_CA_CERTIFICATE\fR
the CA file (\fB\-\-ssl\-ca\-file\fR);
.TP
\fBGEARMAN_CLIENT_PEM\fR
the client certificate (\fB\-\-ssl\-certificate\fR);
.TP
\fBGEARMAN_CLIENT_KEY\fR
its private key (\fB\-\-ssl\-key\fR).
.SH "DIFFERENCES FROM THE C GEARADMIN"
An \fBERR\fR reply makes the exit status 1 (the C tool exits 0). A connection failure
is reported on one line. \fB\-\-shutdown\fR, \fB\-\-shutdown\-graceful\fR and
\fB\-\-json\fR are new; the \fBshutdown\fR commands exist only in this server, the C
gearmand 1.1.20 answers them with \fBERR UNKNOWN_COMMAND\fR. \fB\-S\fR verifies the
server's certificate against a CA file that must be given (\fB\-\-ssl\-ca\-file\fR or
\fBGEARMAND_CA_CERTIFICATE\fR); \fB\-\-ssl\-ca\-file\fR, \fB\-\-ssl\-certificate\fR,
\fB\-\-ssl\-key\fR and \fB\-\-ssl\-server\-name\fR are new (1.1.20 has only
\fB\-S\fR and the variables). Every connection and read is bounded by a time\-out.
.SH "SEE ALSO"
\fBgearmand\fR(8), \fBgearman\fR(1)
"#;

/// Renders the man page `gearadmin.1`.
pub fn man_page() -> io::Result<Vec<u8>> {
    cli::man_page(command(), "1", EXTRA_SECTIONS)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// `man/gearadmin.1` must match the clap definition; `UPDATE_MAN=1` rewrites it.
    #[test]
    fn man_page_is_up_to_date() {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../man/gearadmin.1");
        let rendered = man_page().expect("render the man page");
        cli::assert_man_page_fresh(&path, &rendered, "gearadmin");
    }

    #[test]
    fn man_page_documents_every_option() {
        let page = String::from_utf8(man_page().unwrap()).unwrap();
        for long in [
            "help",
            "host",
            "port",
            "server\\-version",
            "server\\-verbose",
            "create\\-function",
            "cancel\\-job",
            "drop\\-function",
            "show\\-unique\\-jobs",
            "show\\-jobs",
            "getpid",
            "status",
            "priority\\-status",
            "workers",
            "ssl",
            "ssl\\-ca\\-file",
            "ssl\\-certificate",
            "ssl\\-key",
            "ssl\\-server\\-name",
            "shutdown",
            "shutdown\\-graceful",
            "json",
        ] {
            assert!(page.contains(&format!("\\-\\-{long}")), "--{long} missing");
        }
        assert!(!page.contains("IGNORED"), "hidden positional shown");
    }
}
