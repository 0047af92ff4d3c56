//! `postern spool status` and `postern spool recheck`: the spool's health, and
//! the documented way out of a poisoned spool.
//!
//! `status` asks the running server (`GET /v1/status`) and prints the free
//! space against `[spool] min_free`, the poisoned state if any, and the queue's
//! counts; exit 1 while new mail is refused (poisoned, or below the floor), 0
//! otherwise, 2 on a configuration error or when the server is not running.
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

use postern_admin::health::human_bytes;
use postern_admin::{QueueStatus, RecheckReport};

use crate::cli::SpoolCommand;
use crate::queue_cmd::{ask, from_config, server_refused};

pub(crate) fn run(config: Option<&Path>, cmd: &SpoolCommand) -> ExitCode {
    let recheck = matches!(cmd, SpoolCommand::Recheck);
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
    if !recheck {
        return rt.block_on(status(&place));
    }
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

async fn status(place: &crate::queue_cmd::Place) -> ExitCode {
    let (code, v) = match ask::<serde_json::Value>(place.admin.as_ref(), "GET", "/v1/status").await
    {
        Err(code) => return code,
        Ok(None) => {
            eprintln!(
                "the server is not running (no answer on its admin socket); spool {}",
                place.spool.dir.display()
            );
            return ExitCode::from(2);
        }
        Ok(Some(x)) => x,
    };
    let Ok(st) = serde_json::from_value::<QueueStatus>(v.clone()) else {
        return server_refused(code, &v);
    };
    println!("spool:    {}", place.spool.dir.display());
    let mut refusing = false;
    if let Some(h) = &st.spool {
        let free = h
            .free_bytes
            .map_or_else(|| "unknown".to_owned(), human_bytes);
        let floor = if h.min_free == 0 {
            "off".to_owned()
        } else {
            human_bytes(h.min_free)
        };
        println!("free:     {free} (floor [spool] min_free: {floor})");
        let warnings = h.warnings();
        refusing = !warnings.is_empty();
        if refusing {
            for w in warnings {
                println!("state:    {w}");
            }
        } else {
            println!("state:    accepting mail");
        }
    }
    println!(
        "queue:    {} message(s): {} pending, {} deferred, {} in flight, {} held recipient(s); \
         {} connection(s)",
        st.messages, st.pending, st.deferred, st.in_flight, st.held, st.connections
    );
    if st.unloadable > 0 {
        println!(
            "          {} queued message(s) cannot be read (see `postern queue list`)",
            st.unloadable
        );
    }
    if refusing {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
