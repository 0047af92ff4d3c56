//! The spool's I/O threads: a fixed set of threads (`spool-io-N`) that run the
//! blocking file work of the async callers (begin a message, write its body,
//! fsync, rename), fed by one queue.
//!
//! Why not tokio's blocking pool: a `spawn_blocking` per step grows the pool to
//! as many threads as there are sessions committing at once (each then parks
//! in the group commit), and glibc gives every such thread its own malloc arena
//! that keeps what it freed: the server's resident memory rose with every busy
//! run (`docs/benchmarks.md`, "Issue 8 §7, third step"). A fixed set of threads
//! bounds both, and a task that ends in the group commit hands its completion to
//! the committer instead of parking its thread, so a few threads serve every
//! session.
//!
//! A task must only do disk work: never wait for the network or another task
//! (it would hold a thread every commit may need).

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

/// One unit of blocking spool work.
pub(crate) type Task = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct Queue {
    tasks: VecDeque<Task>,
    /// Threads parked waiting for a task (only then is one signalled).
    idle: usize,
    shutdown: bool,
}

#[derive(Default)]
struct Shared {
    queue: Mutex<Queue>,
    ready: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // Every update is a single push, pop or assignment.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A fixed set of I/O threads and their queue.
pub(crate) struct IoPool {
    shared: Arc<Shared>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl IoPool {
    /// Starts `threads` threads (at least one).
    pub(crate) fn start(threads: usize) -> std::io::Result<Self> {
        let shared = Arc::new(Shared::default());
        let mut handles = Vec::new();
        for n in 0..threads.max(1) {
            let mine = Arc::clone(&shared);
            let spawned = std::thread::Builder::new()
                .name(format!("spool-io-{n}"))
                .spawn(move || run(&mine));
            match spawned {
                Ok(h) => handles.push(h),
                Err(e) => {
                    let pool = Self {
                        shared,
                        threads: Mutex::new(handles),
                    };
                    pool.shutdown(true);
                    return Err(e);
                }
            }
        }
        Ok(Self {
            shared,
            threads: Mutex::new(handles),
        })
    }

    /// Queues `task`; a parked thread is woken only if there is one (a busy
    /// thread takes the task when it is done with its own).
    pub(crate) fn submit(&self, task: Task) {
        let mut q = self.shared.lock();
        q.tasks.push_back(task);
        let wake = q.idle > 0;
        drop(q);
        if wake {
            self.shared.ready.notify_one();
        }
    }

    /// Runs what is queued, then stops the threads; with `join`, waits for
    /// them (except the calling thread, if it is one of them: it ends after
    /// its current task).
    pub(crate) fn shutdown(&self, join: bool) {
        self.shared.lock().shutdown = true;
        self.shared.ready.notify_all();
        if !join {
            return;
        }
        let handles =
            std::mem::take(&mut *self.threads.lock().unwrap_or_else(PoisonError::into_inner));
        let me = std::thread::current().id();
        for h in handles {
            if h.thread().id() != me && h.join().is_err() {
                tracing::error!("spool I/O thread panicked");
            }
        }
    }
}

fn run(shared: &Shared) {
    let mut q = shared.lock();
    loop {
        if let Some(task) = q.tasks.pop_front() {
            drop(q);
            // A panicking task loses its own work (its completion is dropped,
            // the caller sees that), never the thread.
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(task)).is_err() {
                tracing::error!("spool: an I/O task panicked");
            }
            q = shared.lock();
            continue;
        }
        if q.shutdown {
            return;
        }
        q.idle += 1;
        q = shared.ready.wait(q).unwrap_or_else(PoisonError::into_inner);
        q.idle -= 1;
    }
}
