//! `postern spool recheck`: the documented way out of a poisoned spool.
//!
//! An fsync failure poisons the running spool: it refuses new mail (`451 4.3.0`
//! at `MAIL`) because the disk's state is unknown (`docs/spool-format.md` §4).
//! After the operator has checked the disk, this asks the running server,
//! through its admin socket, to write and fsync a test file in the spool; if
//! that succeeds the poison is cleared. When the server is not running there is
//! nothing to clear (a start begins unpoisoned, after recovery).
//!
//! Exit status: 0 cleared or not poisoned, 1 the test failed (still poisoned)
//! or the server could not be asked, 2 configuration error.
//!
//! # Security
//! Goes through the admin socket (`0600`): only the server's user can ask.

use std::path::Path;
use std::process::ExitCode;

use postern_admin::RecheckReport;

use crate::cli::SpoolCommand;
use crate::queue_cmd::{ask, from_config, server_refused};

pub(crate) fn run(config: Option<&Path>, cmd: &SpoolCommand) -> ExitCode {
    let SpoolCommand::Recheck = cmd;
    let place = match from_config(config) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let answer = rt.block_on(ask::<serde_json::Value>(
        place.admin.as_ref(),
        "POST",
        "/v1/spool/recheck",
    ));
    match answer {
        Err(code) => code,
        Ok(None) => {
            println!(
                "the server is not running (no answer on its admin socket): nothing to recheck; \
                 a start opens the spool unpoisoned (spool {})",
                place.spool.dir.display()
            );
            ExitCode::SUCCESS
        }
        Ok(Some((status, v))) => match serde_json::from_value::<RecheckReport>(v.clone()) {
            Ok(r) if r.ok => {
                println!("{}", r.text);
                ExitCode::SUCCESS
            }
            Ok(r) => {
                eprintln!("{}", r.text);
                ExitCode::from(1)
            }
            Err(_) => server_refused(status, &v),
        },
    }
}
