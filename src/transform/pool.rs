//! The threads jq runs on, off the async runtime: a small fixed pool of OS
//! threads with a stack sized for jq's recursion (`transform::jq` sets the
//! guard that keeps programs inside it), a bounded queue, and a deadline
//! per job. A caller submits a job and awaits its answer; an answer always
//! comes by the deadline plus [`GRACE`]. A program that spins inside one
//! step of jaq (a tail loop in a native filter) cannot be stopped: at that
//! point the supervisor answers its caller with a timeout, counts the
//! thread as lost (`ferry_jq_stuck_total`) and starts a replacement, up to
//! [`MAX_LOST`] lost threads at once; past that the pool refuses work
//! rather than grow. A lost thread that does finish leaves (or takes its
//! place back when it was not replaced).

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use tokio::sync::oneshot;

/// Threads that run jq at once: the machine has few cores, and ingest must
/// keep some for itself.
pub const THREADS: usize = 2;
/// Each thread's stack. The guard in `jq` stops evaluation [`STACK_MARGIN`]
/// before the end, which leaves room for the native filters that recurse
/// on their own (reading or printing a value of the limited depth).
pub const STACK: usize = 32 << 20;
pub const STACK_MARGIN: usize = 4 << 20;
/// Jobs that may wait for a thread; more is refused (busy), not queued.
pub const MAX_QUEUE: usize = 256;
/// Threads that may be lost in a spinning program before the pool refuses work.
pub const MAX_LOST: usize = 8;
/// How long past its deadline a job may run before its thread counts as lost.
pub const GRACE: Duration = Duration::from_millis(250);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    #[error("jq is busy: {0} programs are waiting; try again shortly")]
    Busy(usize),
    #[error("jq is unavailable: {0} of its threads are stuck in programs that never ended")]
    Exhausted(usize),
    #[error("the program ran past its deadline")]
    Timeout,
    #[error("the program was stopped: its thread is stuck past the deadline")]
    Lost,
}

type Work<T> = Box<dyn FnOnce(Instant) -> T + Send>;
type Reply<T> = Arc<Mutex<Option<oneshot::Sender<Result<T, PoolError>>>>>;

struct Job<T> {
    deadline: Instant,
    work: Work<T>,
    reply: Reply<T>,
}

struct Running<T> {
    worker: u64,
    deadline: Instant,
    reply: Reply<T>,
}

struct State<T> {
    queue: VecDeque<Job<T>>,
    running: Vec<Running<T>>,
    /// Workers serving the queue (lost ones not counted).
    workers: usize,
    /// Lost workers still running their program.
    lost: Vec<(u64, bool)>,
    next_id: u64,
}

struct Inner<T> {
    state: Mutex<State<T>>,
    work: Condvar,
    watch: Condvar,
    stuck: Counter,
    max_lost: usize,
}

/// A pool of jq threads answering `T` (what a job makes of its outputs).
pub struct Pool<T: Send + 'static> {
    inner: Arc<Inner<T>>,
}

impl<T: Send + 'static> Pool<T> {
    /// Starts `threads` workers and the supervisor; past `max_lost` lost
    /// threads at once, no more are started in their place.
    pub fn start(threads: usize, max_lost: usize) -> Pool<T> {
        let inner = Arc::new(Inner {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                running: Vec::new(),
                workers: 0,
                lost: Vec::new(),
                next_id: 0,
            }),
            work: Condvar::new(),
            watch: Condvar::new(),
            stuck: Counter::default(),
            max_lost,
        });
        for _ in 0..threads {
            spawn_worker(&inner);
        }
        let watcher = inner.clone();
        std::thread::Builder::new()
            .name("ferry-jq-watch".into())
            .spawn(move || supervise(&watcher))
            .expect("cannot start the jq supervisor thread");
        Pool { inner }
    }

    /// Threads lost so far (the `ferry_jq_stuck_total` counter).
    pub fn stuck(&self) -> Counter {
        self.inner.stuck.clone()
    }

    /// Workers serving the queue now, and lost threads still running.
    pub fn threads(&self) -> (usize, usize) {
        let s = lock(&self.inner.state);
        (s.workers, s.lost.len())
    }

    /// Jobs running now.
    pub fn running(&self) -> usize {
        lock(&self.inner.state).running.len()
    }

    /// Queues `work`, to start before `timeout` has passed and be given
    /// the deadline; the receiver answers by then (plus [`GRACE`]).
    pub fn submit(
        &self,
        timeout: Duration,
        work: impl FnOnce(Instant) -> T + Send + 'static,
    ) -> Result<oneshot::Receiver<Result<T, PoolError>>, PoolError> {
        let (tx, rx) = oneshot::channel();
        let mut s = lock(&self.inner.state);
        if s.workers == 0 {
            return Err(PoolError::Exhausted(s.lost.len()));
        }
        if s.queue.len() >= MAX_QUEUE {
            return Err(PoolError::Busy(s.queue.len()));
        }
        s.queue.push_back(Job {
            deadline: Instant::now() + timeout,
            work: Box::new(work),
            reply: Arc::new(Mutex::new(Some(tx))),
        });
        drop(s);
        self.inner.work.notify_one();
        self.inner.watch.notify_one();
        Ok(rx)
    }

    /// Runs `work` on the pool and awaits its answer.
    pub async fn run(
        &self,
        timeout: Duration,
        work: impl FnOnce(Instant) -> T + Send + 'static,
    ) -> Result<T, PoolError> {
        let rx = self.submit(timeout, work)?;
        // The sender is dropped unanswered only if a worker died.
        rx.await.unwrap_or(Err(PoolError::Lost))
    }

    /// [`Pool::run`] for code outside the runtime (tests, the CLI).
    pub fn run_blocking(
        &self,
        timeout: Duration,
        work: impl FnOnce(Instant) -> T + Send + 'static,
    ) -> Result<T, PoolError> {
        let rx = self.submit(timeout, work)?;
        rx.blocking_recv().unwrap_or(Err(PoolError::Lost))
    }
}

fn lock<S>(m: &Mutex<S>) -> MutexGuard<'_, S> {
    // A job's panic is caught outside the lock, so poison means nothing here.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn answer<T>(reply: &Reply<T>, value: Result<T, PoolError>) {
    if let Some(tx) = lock(reply).take() {
        let _ = tx.send(value);
    }
}

fn spawn_worker<T: Send + 'static>(inner: &Arc<Inner<T>>) {
    let mut s = lock(&inner.state);
    let id = s.next_id;
    s.next_id += 1;
    s.workers += 1;
    drop(s);
    let mine = inner.clone();
    let started = std::thread::Builder::new()
        .name(format!("ferry-jq-{id}"))
        .stack_size(STACK)
        .spawn(move || {
            super::jq_env::enter_pool_thread(STACK - STACK_MARGIN);
            work(&mine, id);
        });
    if let Err(e) = started {
        tracing::error!(error = %crate::model::Chain(&e), "Cannot start a jq thread.");
        lock(&inner.state).workers -= 1;
    }
}

fn work<T: Send + 'static>(inner: &Inner<T>, id: u64) {
    loop {
        let mut s = lock(&inner.state);
        let job = loop {
            if let Some(job) = s.queue.pop_front() {
                break job;
            }
            s = inner.work.wait(s).unwrap_or_else(|e| e.into_inner());
        };
        if Instant::now() >= job.deadline {
            drop(s);
            answer(&job.reply, Err(PoolError::Timeout));
            continue;
        }
        s.running.push(Running {
            worker: id,
            deadline: job.deadline,
            reply: job.reply.clone(),
        });
        drop(s);
        inner.watch.notify_one();
        let deadline = job.deadline;
        let out = catch_unwind(AssertUnwindSafe(move || (job.work)(deadline)));
        let mut s = lock(&inner.state);
        s.running.retain(|r| r.worker != id);
        if let Some(i) = s.lost.iter().position(|(w, _)| *w == id) {
            // Given up on: its caller had its answer. Leave, or take the
            // place back when no replacement was started for it.
            let (_, replaced) = s.lost.swap_remove(i);
            if replaced {
                return;
            }
            s.workers += 1;
            continue;
        }
        drop(s);
        match out {
            Ok(value) => answer(&job.reply, Ok(value)),
            // The work closure turns every expected failure into a value; a
            // panic here is a jaq bug, answered like a lost thread.
            Err(_) => answer(&job.reply, Err(PoolError::Lost)),
        }
    }
}

/// Answers jobs past their deadline: queued ones with a timeout (when no
/// worker is free to), running ones, past the grace, by giving up their
/// thread and starting another.
fn supervise<T: Send + 'static>(inner: &Arc<Inner<T>>) {
    let mut s = lock(&inner.state);
    loop {
        let now = Instant::now();
        let expired: VecDeque<Job<T>> = {
            let (old, keep) = s.queue.drain(..).partition(|j| j.deadline + GRACE <= now);
            s.queue = keep;
            old
        };
        for job in expired {
            answer(&job.reply, Err(PoolError::Timeout));
        }
        let stuck: Vec<u64> = s
            .running
            .iter()
            .filter(|r| r.deadline + GRACE <= now)
            .map(|r| r.worker)
            .collect();
        let mut given_up = Vec::new();
        for worker in stuck {
            let Some(i) = s.running.iter().position(|r| r.worker == worker) else {
                continue;
            };
            let r = s.running.swap_remove(i);
            inner.stuck.inc();
            s.workers -= 1;
            let replace = s.lost.len() < inner.max_lost;
            s.lost.push((worker, replace));
            given_up.push(r.reply);
            tracing::error!(
                lost = s.lost.len(),
                replaced = replace,
                "A jq program ran past its deadline inside one step; its thread is given up."
            );
            if replace {
                drop(s);
                spawn_worker(inner);
                s = lock(&inner.state);
            }
        }
        // Answered once the replacement counts, so a caller that retries
        // at once finds it.
        for reply in given_up {
            answer(&reply, Err(PoolError::Lost));
        }
        let next = s
            .running
            .iter()
            .map(|r| r.deadline)
            .chain(s.queue.iter().map(|j| j.deadline))
            .min()
            .map(|d| (d + GRACE).saturating_duration_since(Instant::now()));
        s = match next {
            Some(wait) => {
                inner
                    .watch
                    .wait_timeout(s, wait.max(Duration::from_millis(1)))
                    .unwrap_or_else(|e| e.into_inner())
                    .0
            }
            None => inner.watch.wait(s).unwrap_or_else(|e| e.into_inner()),
        };
    }
}

/// The pool every jq program in the process runs on.
pub fn global() -> &'static Pool<super::jq::Answer> {
    static POOL: OnceLock<Pool<super::jq::Answer>> = OnceLock::new();
    POOL.get_or_init(|| Pool::start(THREADS, MAX_LOST))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// A job that holds its thread until the test lets it go: a program
    /// spinning inside one step, as the pool sees it.
    fn hold(
        pool: &Pool<u32>,
        timeout: Duration,
    ) -> (oneshot::Receiver<Result<u32, PoolError>>, mpsc::Sender<()>) {
        let (release, held) = mpsc::channel::<()>();
        let (started, running) = mpsc::channel::<()>();
        let rx = pool
            .submit(timeout, move |_| {
                let _ = started.send(());
                let _ = held.recv();
                7
            })
            .unwrap();
        running.recv().unwrap();
        (rx, release)
    }

    #[tokio::test]
    async fn a_stuck_thread_is_given_up_replaced_and_counted() {
        let pool = Pool::<u32>::start(1, 4);
        let (stuck, release) = hold(&pool, Duration::from_millis(20));
        assert_eq!(stuck.await.unwrap(), Err(PoolError::Lost));
        assert_eq!(pool.stuck().get(), 1);
        assert_eq!(pool.threads(), (1, 1));
        // The replacement serves the next job.
        assert_eq!(pool.run(Duration::from_secs(5), |_| 1).await, Ok(1));
        // The lost thread, once its job ends, leaves: it was replaced.
        release.send(()).unwrap();
        while pool.threads().1 > 0 {
            tokio::task::yield_now().await;
            std::thread::yield_now();
        }
        assert_eq!(pool.threads(), (1, 0));
        assert_eq!(pool.run(Duration::from_secs(5), |_| 2).await, Ok(2));
    }

    #[tokio::test]
    async fn past_its_lost_threads_the_pool_refuses_then_recovers() {
        let pool = Pool::<u32>::start(1, 1);
        let (first, release_first) = hold(&pool, Duration::from_millis(20));
        assert_eq!(first.await.unwrap(), Err(PoolError::Lost));
        let (second, release_second) = hold(&pool, Duration::from_millis(20));
        assert_eq!(second.await.unwrap(), Err(PoolError::Lost));
        assert_eq!(pool.stuck().get(), 2);
        // The second was not replaced: no thread serves the queue.
        assert_eq!(pool.threads(), (0, 2));
        assert!(matches!(
            pool.submit(Duration::from_secs(1), |_| 3),
            Err(PoolError::Exhausted(2))
        ));
        // The unreplaced thread takes its place back when its job ends.
        release_second.send(()).unwrap();
        while pool.threads().0 == 0 {
            tokio::task::yield_now().await;
            std::thread::yield_now();
        }
        assert_eq!(pool.run(Duration::from_secs(5), |_| 4).await, Ok(4));
        drop(release_first);
    }

    #[tokio::test]
    async fn a_job_that_waited_past_its_deadline_is_not_started() {
        let pool = Pool::<u32>::start(1, 4);
        let (busy, release) = hold(&pool, Duration::from_secs(30));
        let late = pool.submit(Duration::ZERO, |_| 5).unwrap();
        release.send(()).unwrap();
        assert_eq!(busy.await.unwrap(), Ok(7));
        assert_eq!(late.await.unwrap(), Err(PoolError::Timeout));
    }

    #[tokio::test]
    async fn the_queue_is_bounded() {
        let pool = Pool::<u32>::start(1, 4);
        let (_busy, release) = hold(&pool, Duration::from_secs(30));
        let queued: Vec<_> = (0..MAX_QUEUE)
            .map(|_| pool.submit(Duration::from_secs(30), |_| 0).unwrap())
            .collect();
        assert!(matches!(
            pool.submit(Duration::from_secs(30), |_| 0),
            Err(PoolError::Busy(MAX_QUEUE))
        ));
        release.send(()).unwrap();
        for rx in queued {
            assert_eq!(rx.await.unwrap(), Ok(0));
        }
    }
}
