//! Execution slots: at most `max_concurrency` executions at once, with at
//! most `max_queue` requests waiting; beyond that requests are shed with 503
//! `overloaded`. An execution is its own tokio task: guests run as futures
//! on the async workers (wasmtime's async API; a guest yields at every
//! epoch tick), so a short function costs no thread hand-off.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Semaphore;

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
    #[error("execution thread failed: {0}")]
    Panicked(String),
}

/// Bounded execution of jobs.
#[derive(Debug)]
pub struct Executor {
    permits: Arc<Semaphore>,
    max_concurrency: usize,
    max_queue: usize,
    waiting: AtomicUsize,
}

struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Executor {
    /// An executor with `max_concurrency` slots and `max_queue` waiters.
    pub fn new(max_concurrency: usize, max_queue: usize) -> Self {
        Executor {
            permits: Arc::new(Semaphore::new(max_concurrency)),
            max_concurrency,
            max_queue,
            waiting: AtomicUsize::new(0),
        }
    }

    /// Executions running now.
    pub fn running(&self) -> usize {
        self.max_concurrency - self.permits.available_permits()
    }

    /// Requests waiting for a slot now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Runs `job` as its own task once a slot is free. If the caller goes
    /// away (client disconnect) the job still finishes and only then frees
    /// its slot, so disconnects cannot exceed the bound.
    pub async fn run<F>(&self, job: F) -> Result<F::Output, ExecError>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
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
        tokio::spawn(async move {
            let _permit = permit;
            job.await
        })
        .await
        .map_err(|e| ExecError::Panicked(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::oneshot;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sheds_load_beyond_the_queue() {
        let exec = Arc::new(Executor::new(1, 1));
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
}
