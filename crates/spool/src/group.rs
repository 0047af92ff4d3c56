//! Group commit: one thread makes `msg/` durable for every commit that renamed
//! into it before the fsync started (`docs/spool-format.md` §3).
//!
//! A committing thread takes a ticket *after* its rename returned, and either
//! sleeps until `synced >= ticket` ([`Group::wait_durable`]) or leaves a
//! completion that the committer runs once the ticket is durable
//! ([`Group::when_durable`]: one direct hand-off per caller, no thread parked per
//! commit and no `notify_all` waking every waiter). The committer reads
//! `target = requested` *before* it starts `fsync(msg/)`, so every ticket up to
//! `target` belongs to a rename that happened before the fsync began.
//!
//! A ticket is *urgent* (a commit: a client waits for its `250`) or *lazy* (a
//! removal: nobody waits, only "durable soon" is needed). Lazy tickets alone
//! start an fsync only after `lazy_window`; an urgent ticket arriving meanwhile
//! takes them along, so under load removals ride on the commits' fsyncs
//! (`docs/spool-format.md` §3). Failures are sticky: the first fsync error poisons the
//! spool (fsyncgate), the tickets of the failed batch get that error, and every
//! later ticket gets `Poisoned`. While poisoned, the committer repeats the error
//! in the log once per minute (`SpoolSettings::poison_reminder`); [`Group::clear_poison`] (after the operator's
//! `postern spool recheck` proved a write and fsync work again) ends it.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use crate::error::{SpoolError, SpoolOp, StoredIoError};
use crate::fs::SpoolFs;

#[derive(Debug)]
struct BatchFailure {
    /// Last ticket of the batch whose fsync failed.
    end: u64,
    path: PathBuf,
    error: StoredIoError,
}

/// Why and since when the spool is poisoned (for `postern queue list` and the
/// status output).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoisonInfo {
    /// The operation whose fsync failed.
    pub op: SpoolOp,
    /// The file or directory concerned.
    pub path: PathBuf,
    /// The error, as the operating system reported it.
    pub error: String,
    /// When it happened.
    pub since: SystemTime,
}

/// What the committer runs when a ticket's fsync is done (or failed).
pub(crate) type Completion = Box<dyn FnOnce(Result<(), SpoolError>) + Send>;

/// Work the committer does itself before its next fsync (a removal's rename or
/// unlink), which then takes its ticket with [`Group::when_durable`].
pub(crate) type Step = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct State {
    /// Tickets handed out so far (the last ticket number).
    requested: u64,
    /// The last urgent ticket (a commit someone waits for).
    urgent: u64,
    /// Completions of tickets not yet durable, in ticket order.
    completions: VecDeque<(u64, Completion)>,
    /// Steps for the committer to run before its next fsync.
    steps: Vec<Step>,
    /// Threads parked in `wait_durable` (the committer skips `notify_all`
    /// when there are none).
    waiters: usize,
    /// The committer is parked waiting for work (only then is it signalled).
    idle: bool,
    /// Every ticket up to this one is durable.
    synced: u64,
    /// The directory fsync that failed, if one did.
    failure: Option<BatchFailure>,
    poisoned: bool,
    poison: Option<PoisonInfo>,
    shutdown: bool,
    /// Directory fsyncs performed by the committer.
    dir_syncs: u64,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("requested", &self.requested)
            .field("synced", &self.synced)
            .field("completions", &self.completions.len())
            .field("poisoned", &self.poisoned)
            .finish_non_exhaustive()
    }
}

impl State {
    /// After a failure: every completion still waiting, each with its answer
    /// (the failed batch's error up to its last ticket, `Poisoned` after it).
    fn fail_all(&mut self) -> Vec<(Completion, SpoolError)> {
        let failure = self.failure.as_ref();
        self.completions
            .drain(..)
            .map(|(ticket, done)| {
                let err = match failure.filter(|f| ticket <= f.end) {
                    Some(f) => {
                        SpoolError::io(SpoolOp::SyncDir, f.path.clone(), f.error.to_io_error())
                    }
                    None => SpoolError::Poisoned,
                };
                (done, err)
            })
            .collect()
    }
}

/// Runs completions outside the group's lock.
fn run_failed(failed: Vec<(Completion, SpoolError)>) {
    for (done, err) in failed {
        complete(done, Err(err));
    }
}

/// Runs one completion; a panic in it is logged, not allowed to kill the
/// committer (which would poison the spool).
fn complete(done: Completion, result: Result<(), SpoolError>) {
    let run = std::panic::AssertUnwindSafe(move || done(result));
    if std::panic::catch_unwind(run).is_err() {
        tracing::error!("spool: a commit completion panicked");
    }
}

/// Shared between the spool, the committing threads and the committer thread.
#[derive(Debug)]
pub(crate) struct Group {
    state: Mutex<State>,
    /// How long lazy tickets alone wait for an urgent one to share an fsync
    /// with (`SpoolSettings::removal_window`).
    lazy_window: Duration,
    /// Signals the committer: work arrived, or shutdown.
    work: Condvar,
    /// Signals waiters: `synced` moved, or the spool was poisoned.
    done: Condvar,
    poisoned: AtomicBool,
    /// How often the log repeats that the spool is poisoned
    /// (`SpoolSettings::poison_reminder`).
    reminder: Duration,
}

impl Group {
    pub(crate) fn new(reminder: Duration, lazy_window: Duration) -> Self {
        Self {
            state: Mutex::default(),
            lazy_window,
            work: Condvar::new(),
            done: Condvar::new(),
            poisoned: AtomicBool::new(false),
            reminder,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent even if a holder panicked: every update is a
        // single assignment.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Fast check, no lock.
    pub(crate) fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::SeqCst)
    }

    /// Poison the spool after a failed fsync. Logged once, at error level.
    pub(crate) fn poison(&self, op: SpoolOp, path: &std::path::Path, err: &std::io::Error) {
        let mut st = self.lock();
        self.mark_poisoned(&mut st, op, path, err);
        let failed = st.fail_all();
        drop(st);
        self.done.notify_all();
        self.work.notify_all();
        run_failed(failed);
    }

    fn mark_poisoned(
        &self,
        st: &mut State,
        op: SpoolOp,
        path: &std::path::Path,
        err: &std::io::Error,
    ) {
        if !st.poisoned {
            st.poisoned = true;
            st.poison = Some(PoisonInfo {
                op,
                path: path.to_path_buf(),
                error: err.to_string(),
                since: SystemTime::now(),
            });
            self.poisoned.store(true, Ordering::SeqCst);
            tracing::error!(
                %op,
                path = %path.display(),
                error = %err,
                "spool poisoned: fsync failed, the state of the disk is unknown; \
                 refusing new messages until `postern spool recheck` or a restart"
            );
        }
    }

    /// Why the spool is poisoned, if it is.
    pub(crate) fn poison_info(&self) -> Option<PoisonInfo> {
        self.lock().poison.clone()
    }

    /// End the poisoned state: the caller proved that a write and fsync work
    /// again. Tickets of the failed batch already got their error; tickets
    /// taken from now on are served by the committer again.
    pub(crate) fn clear_poison(&self) -> Option<PoisonInfo> {
        let mut st = self.lock();
        let was = st.poison.take();
        st.poisoned = false;
        st.failure = None;
        // Every earlier ticket was answered (with an error); start clean.
        st.synced = st.requested;
        self.poisoned.store(false, Ordering::SeqCst);
        drop(st);
        self.work.notify_all();
        was
    }

    /// Wait until `msg/` has been fsynced after the caller's rename (or unlink).
    pub(crate) fn wait_durable(&self) -> Result<(), SpoolError> {
        let mut st = self.lock();
        if st.poisoned {
            return Err(SpoolError::Poisoned);
        }
        st.requested += 1;
        let ticket = st.requested;
        st.urgent = ticket;
        if st.idle {
            self.work.notify_one();
        }
        st.waiters += 1;
        let result = loop {
            if ticket <= st.synced {
                break Ok(());
            }
            if let Some(f) = st.failure.as_ref().filter(|f| ticket <= f.end) {
                break Err(SpoolError::io(
                    SpoolOp::SyncDir,
                    f.path.clone(),
                    f.error.to_io_error(),
                ));
            }
            if st.poisoned {
                break Err(SpoolError::Poisoned);
            }
            st = self.done.wait(st).unwrap_or_else(PoisonError::into_inner);
        };
        st.waiters -= 1;
        result
    }

    /// Like [`Group::wait_durable`] without waiting: `done` runs on the
    /// committer thread once `msg/` has been fsynced after the caller's rename
    /// (or unlink), or with the error if that fsync failed or the spool is
    /// poisoned (then at once, on the caller's thread). `done` must be short
    /// and must not block: it holds up every later completion. `urgent`:
    /// somebody waits (a commit); otherwise the ticket may wait up to the lazy
    /// window for an urgent one to share the fsync with.
    pub(crate) fn when_durable(&self, urgent: bool, done: Completion) {
        let mut st = self.lock();
        if st.poisoned {
            drop(st);
            complete(done, Err(SpoolError::Poisoned));
            return;
        }
        st.requested += 1;
        let ticket = st.requested;
        if urgent {
            st.urgent = ticket;
        }
        st.completions.push_back((ticket, done));
        if st.idle {
            self.work.notify_one();
        }
    }

    /// Hands `step` to the committer, which runs it before its next fsync
    /// (lazily: like a lazy ticket, after up to the lazy window unless an
    /// urgent ticket comes first), also while poisoned and at shutdown. The
    /// step must be short (a rename, an unlink) and must not block.
    pub(crate) fn run_step(&self, step: Step) {
        let mut st = self.lock();
        st.steps.push(step);
        if st.idle {
            self.work.notify_one();
        }
    }

    /// Waits up to the lazy window for an urgent ticket (or shutdown, or
    /// poison).
    fn lazy_wait<'a>(&'a self, mut st: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        if self.lazy_window.is_zero() {
            return st;
        }
        let until = std::time::Instant::now() + self.lazy_window;
        st.idle = true;
        while st.urgent <= st.synced && !st.shutdown && !st.poisoned {
            let left = until.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                break;
            }
            st = self
                .work
                .wait_timeout(st, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        st.idle = false;
        st
    }

    /// Directory fsyncs done by the committer so far.
    pub(crate) fn dir_syncs(&self) -> u64 {
        self.lock().dir_syncs
    }

    pub(crate) fn shutdown(&self) {
        self.lock().shutdown = true;
        self.work.notify_all();
    }

    /// The committer thread's loop.
    pub(crate) fn run_committer(
        &self,
        fs: &Arc<dyn SpoolFs>,
        dir: &std::path::Path,
        window: Duration,
    ) {
        /// If the committer dies, nobody would ever wake the waiters: poison the
        /// spool instead, so commits fail (`451`) rather than hang.
        struct OnPanic<'a>(&'a Group, &'a std::path::Path);
        impl Drop for OnPanic<'_> {
            fn drop(&mut self) {
                if std::thread::panicking() {
                    let err = std::io::Error::other("spool committer thread panicked");
                    self.0.poison(SpoolOp::SyncDir, self.1, &err);
                }
            }
        }
        let _guard = OnPanic(self, dir);

        let mut st = self.lock();
        // The lazy window was waited out for the work now pending.
        let mut waited = false;
        loop {
            let pending = (st.requested > st.synced && !st.poisoned) || !st.steps.is_empty();
            if !pending {
                if st.shutdown {
                    return;
                }
                st.idle = true;
                if st.poisoned {
                    let (next, timeout) = self
                        .work
                        .wait_timeout(st, self.reminder)
                        .unwrap_or_else(PoisonError::into_inner);
                    st = next;
                    if timeout.timed_out()
                        && let Some(p) = st.poison.as_ref()
                    {
                        let minutes = p.since.elapsed().unwrap_or_default().as_secs() / 60;
                        tracing::error!(
                            op = %p.op,
                            path = %p.path.display(),
                            error = %p.error,
                            minutes,
                            "spool still poisoned: refusing new messages; check the disk, \
                             then run `postern spool recheck` (or restart)"
                        );
                    }
                } else {
                    st = self.work.wait(st).unwrap_or_else(PoisonError::into_inner);
                }
                st.idle = false;
                continue;
            }
            if !waited && st.urgent <= st.synced && !st.shutdown && !st.poisoned {
                // Only lazy work: give a commit the chance to share the fsync.
                st = self.lazy_wait(st);
                waited = true;
                continue;
            }
            if !st.steps.is_empty() {
                let steps = std::mem::take(&mut st.steps);
                drop(st);
                for step in steps {
                    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(step)).is_err() {
                        tracing::error!("spool: a committer step panicked");
                    }
                }
                st = self.lock();
                continue;
            }
            waited = false;
            if !window.is_zero() {
                drop(st);
                std::thread::sleep(window);
                st = self.lock();
            }
            let target = st.requested;
            drop(st);
            let result = fs.sync_dir(dir);
            st = self.lock();
            st.dir_syncs += 1;
            let mut done = Vec::new();
            let mut failed = Vec::new();
            match result {
                Ok(()) => {
                    st.synced = st.synced.max(target);
                    while st.completions.front().is_some_and(|(t, _)| *t <= target) {
                        if let Some((_, c)) = st.completions.pop_front() {
                            done.push(c);
                        }
                    }
                }
                Err(err) => {
                    st.failure = Some(BatchFailure {
                        end: target,
                        path: dir.to_path_buf(),
                        error: StoredIoError::new(&err),
                    });
                    self.mark_poisoned(&mut st, SpoolOp::SyncDir, dir, &err);
                    failed = st.fail_all();
                }
            }
            if st.waiters > 0 {
                self.done.notify_all();
            }
            if done.is_empty() && failed.is_empty() {
                continue;
            }
            drop(st);
            for c in done {
                complete(c, Ok(()));
            }
            run_failed(failed);
            st = self.lock();
        }
    }
}
