//! Execution slots: at most `max_concurrency` executions at once, with at
//! most `max_queue` requests waiting; beyond that requests are shed with 503
//! `overloaded`.
//!
//! Guests run as futures (wasmtime's async API), polled first inside the
//! request's own task, so a short function runs to the end in that first
//! poll on the async worker that took the request: no task spawned, no
//! thread hand-off.
//! A job not finished in its first poll (a guest still running after a
//! whole epoch tick: a long computation, an endless loop; a sleep; or a
//! request whose module must first be read from disk or compiled on a
//! blocking thread) is moved to the *long lane*: a second tokio runtime
//! whose threads run at a lower OS priority (nice [`LONG_LANE_NICE`]),
//! where a guest goes on yielding at every tick. Short
//! requests therefore never queue behind a long guest's time slices on
//! the request workers, and long guests use the CPU that short ones leave
//! (the way an OS scheduler favours interactive work over batch work).

use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Poll;

use tokio::sync::Semaphore;
use tracing::Instrument as _;

/// OS priority (nice) of the long lane's threads: weight 110 against 1024
/// for the request workers, so a long guest gets about a tenth of a core
/// when requests need the CPU, and any CPU left idle.
pub const LONG_LANE_NICE: i32 = 10;

/// The queue is full.
#[derive(Debug, thiserror::Error)]
#[error("the edge is at capacity ({running} running, {waiting} waiting); retry later")]
pub struct Overloaded {
    /// Executions running.
    pub running: usize,
    /// Requests waiting.
    pub waiting: usize,
}

/// Why a job did not produce a value.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// Shed before running.
    #[error(transparent)]
    Overloaded(#[from] Overloaded),
    /// The job panicked (a bug in the host, never a guest behaviour).
    #[error("execution failed: {0}")]
    Panicked(String),
}

/// Bounded execution of jobs.
#[derive(Debug)]
pub struct Executor {
    permits: Arc<Semaphore>,
    max_concurrency: usize,
    max_queue: usize,
    waiting: AtomicUsize,
    long_lane: LongLane,
}

/// The runtime long-running jobs move to; shut down without waiting when
/// dropped (dropping a tokio runtime from async code would panic).
#[derive(Debug)]
struct LongLane(Option<tokio::runtime::Runtime>);

impl LongLane {
    fn start(threads: usize) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("aether-long")
            .on_thread_start(lower_priority)
            .enable_all()
            .build()?;
        Ok(LongLane(Some(runtime)))
    }

    fn handle(&self) -> &tokio::runtime::Handle {
        self.0
            .as_ref()
            .expect("the long lane lives as long as its executor")
            .handle()
    }
}

impl Drop for LongLane {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// Lowers the calling thread's OS priority to [`LONG_LANE_NICE`]. A failure
/// leaves the lane at normal priority (still off the request workers).
fn lower_priority() {
    #[cfg(target_os = "linux")]
    if let Err(e) =
        rustix::process::setpriority_process(Some(rustix::thread::gettid()), LONG_LANE_NICE)
    {
        tracing::warn!(error = %e, "cannot lower the priority of a long-lane thread");
    }
}

struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Executor {
    /// An executor with `max_concurrency` slots and `max_queue` waiters;
    /// starts the long lane's threads (one per core).
    pub fn new(max_concurrency: usize, max_queue: usize) -> std::io::Result<Self> {
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        Ok(Executor {
            permits: Arc::new(Semaphore::new(max_concurrency)),
            max_concurrency,
            max_queue,
            waiting: AtomicUsize::new(0),
            long_lane: LongLane::start(threads)?,
        })
    }

    /// Executions running now.
    pub fn running(&self) -> usize {
        self.max_concurrency - self.permits.available_permits()
    }

    /// Requests waiting for a slot now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Runs `job` once a slot is free: polled first inside the caller's
    /// task (a short function finishes there, with no task spawned and
    /// nothing handed between threads), then, if not finished, as a task
    /// of the long lane, which takes along the request's id and span. On
    /// the long lane a job finishes even if the caller goes away (client
    /// disconnect), and only then frees its slot, so disconnects cannot
    /// exceed the bound. A panicking job (a host bug) is an
    /// [`ExecError::Panicked`].
    pub async fn run<F>(&self, job: F) -> Result<F::Output, ExecError>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        // A task that runs short jobs back to back (a keep-alive connection
        // pipelining requests) may never wait on anything else: count each
        // job against tokio's cooperative budget, so the task yields now and
        // then and the worker's other tasks and timers still run.
        tokio::task::coop::consume_budget().await;
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                let waiting = self.waiting.fetch_add(1, Ordering::Relaxed);
                let _guard = Waiting(&self.waiting);
                if waiting >= self.max_queue {
                    return Err(Overloaded {
                        running: self.running(),
                        waiting,
                    }
                    .into());
                }
                self.permits
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|e| ExecError::Panicked(e.to_string()))?
            }
        };
        let mut job: Pin<Box<F>> = Box::pin(job);
        let first = std::future::poll_fn(|cx| {
            Poll::Ready(std::panic::catch_unwind(AssertUnwindSafe(|| {
                job.as_mut().poll(cx)
            })))
        })
        .await;
        match first {
            Ok(Poll::Ready(value)) => return Ok(value),
            Ok(Poll::Pending) => {}
            Err(panic) => return Err(ExecError::Panicked(panic_message(&*panic))),
        }
        // The long lane's task starts without the request's task-local id
        // and span: carry them (the span exists only with debug logging).
        let span = if tracing::level_enabled!(tracing::Level::DEBUG) {
            tracing::Span::current()
        } else {
            tracing::Span::none()
        };
        let job = async move {
            let _permit = permit;
            job.await
        }
        .instrument(span);
        let handle = match aether_http::request_id::current_id() {
            Some(id) => self
                .long_lane
                .handle()
                .spawn(aether_http::request_id::scope(id, job)),
            None => self.long_lane.handle().spawn(job),
        };
        handle.await.map_err(|e| ExecError::Panicked(e.to_string()))
    }
}

/// The message of a caught panic.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panicked".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::oneshot;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sheds_load_beyond_the_queue() {
        let exec = Arc::new(Executor::new(1, 1).unwrap());
        let (release, gate) = oneshot::channel::<()>();
        // Occupies the only slot until released.
        let busy = {
            let exec = exec.clone();
            tokio::spawn(async move { exec.run(async move { gate.await.unwrap() }).await })
        };
        while exec.running() == 0 {
            tokio::task::yield_now().await;
        }
        // One may wait...
        let queued = {
            let exec = exec.clone();
            tokio::spawn(async move { exec.run(async { 7 }).await })
        };
        while exec.waiting() == 0 {
            tokio::task::yield_now().await;
        }
        // ...the next is shed at once.
        assert!(matches!(
            exec.run(async { 0 }).await,
            Err(ExecError::Overloaded(_))
        ));
        release.send(()).unwrap();
        busy.await.unwrap().unwrap();
        assert_eq!(queued.await.unwrap().unwrap(), 7);
        assert_eq!(exec.waiting(), 0);
    }

    #[test]
    fn a_task_running_short_jobs_back_to_back_lets_timers_and_other_tasks_run() {
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let exec = Arc::new(Executor::new(4, 4).unwrap());
            let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let ran = runtime.block_on(async {
                let busy = tokio::spawn({
                    let (exec, stop) = (exec.clone(), stop.clone());
                    async move {
                        let mut ran = 0u64;
                        while !stop.load(Ordering::Relaxed) {
                            exec.run(async {}).await.unwrap();
                            ran += 1;
                        }
                        ran
                    }
                });
                // Needs the timer, on the one thread the busy task runs on.
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                stop.store(true, Ordering::Relaxed);
                busy.await.unwrap()
            });
            let _ = done.send(ran);
        });
        let ran = finished
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("the timer fired while the busy task ran jobs");
        assert!(ran > 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_job_that_finishes_in_its_first_poll_stays_on_the_request_worker() {
        let exec = Executor::new(4, 4).unwrap();
        let thread = exec
            .run(async { std::thread::current().name().map(str::to_owned) })
            .await
            .unwrap();
        assert_ne!(thread.as_deref(), Some("aether-long"));
    }

    #[cfg(target_os = "linux")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_job_still_running_after_its_first_poll_moves_to_the_low_priority_lane() {
        let exec = Executor::new(4, 4).unwrap();
        let (thread, nice) = exec
            .run(async {
                tokio::task::yield_now().await;
                let nice =
                    rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap();
                (std::thread::current().name().map(str::to_owned), nice)
            })
            .await
            .unwrap();
        assert_eq!(thread.as_deref(), Some("aether-long"));
        assert_eq!(
            nice, LONG_LANE_NICE,
            "long-lane threads run at lower priority"
        );
        assert_eq!(exec.running(), 0, "the slot is free again");
    }
}
