//! Group commit without a task of its own: a caller that finds nobody
//! writing becomes the writer and stores everything queued (its own job and
//! those that arrived meanwhile) in one go; the others wait their turn and
//! find their result ready. The domain spawns nothing, so this needs no
//! runtime, and a batch written costs one transaction however many jobs it
//! carries.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_channel::oneshot;
use futures_util::future::{Either, select};
use futures_util::lock::Mutex as AsyncMutex;

/// Waits the given time (the caller's runtime provides it: the domain has
/// none of its own).
pub type Pause = Arc<dyn Fn(Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

pub(crate) struct GroupCommit<J, O> {
    queue: Mutex<Vec<(J, oneshot::Sender<O>)>>,
    /// Held by the caller writing a batch: one batch at a time.
    writer: AsyncMutex<()>,
    max_batch: usize,
    /// How long a writer waits for company before taking the queue, and
    /// how it waits; see [`GroupCommit::with_linger`].
    linger: Option<(Duration, Pause)>,
    /// Jobs in the last batch written.
    last_batch: AtomicUsize,
}

impl<J, O> GroupCommit<J, O> {
    pub(crate) fn new(max_batch: usize) -> Self {
        Self {
            queue: Mutex::default(),
            writer: AsyncMutex::new(()),
            max_batch: max_batch.max(1),
            linger: None,
            last_batch: AtomicUsize::new(0),
        }
    }

    /// Lets a writer wait up to `wait` for more jobs before writing, but
    /// only while jobs come in company (the last batch held more than one)
    /// and the queue is not full: under load the CPU is what runs out, and
    /// a batch of many costs far less per job than many batches of one,
    /// while a job that comes alone is written at once.
    pub(crate) fn with_linger(mut self, wait: Duration, pause: Pause) -> Self {
        self.linger = (!wait.is_zero()).then_some((wait, pause));
        self
    }

    fn queued(&self) -> usize {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// Queues `job` and returns its result once a batch holding it is
    /// written, by this caller or another. `write` gets the jobs in the
    /// order they came and answers one result each, in that order.
    ///
    /// `None` when the caller that took the job away to write it was
    /// dropped before answering (its client left): the job may or may not
    /// have been written, so the caller must find out (or write it again
    /// where that is safe).
    pub(crate) async fn submit<F, Fut>(&self, job: J, write: F) -> Option<O>
    where
        F: Fn(Vec<J>) -> Fut,
        Fut: Future<Output = Vec<O>>,
    {
        let (ack, mut result) = oneshot::channel();
        self.queue.lock().unwrap_or_else(PoisonError::into_inner).push((job, ack));
        loop {
            // The result, as soon as another writer sends it, or the turn to
            // write, whichever comes first: a caller whose job is written
            // never waits for the lock (which, contended, may go to later
            // callers again and again).
            let turn = self.writer.lock();
            let _writing = match select(&mut result, turn).await {
                Either::Left((out, _)) => return out.ok(),
                Either::Right((guard, _)) => guard,
            };
            match result.try_recv() {
                Ok(Some(out)) => return Some(out),
                Ok(None) => {}
                Err(oneshot::Canceled) => return None,
            }
            if let Some((wait, pause)) = &self.linger
                && self.last_batch.load(Ordering::Relaxed) > 1
                && self.queued() < self.max_batch
            {
                pause(*wait).await;
            }
            // Not answered and not taken: this job is still queued, so the
            // batch holds at least it.
            let batch: Vec<_> = {
                let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
                let n = queue.len().min(self.max_batch);
                queue.drain(..n).collect()
            };
            self.last_batch.store(batch.len(), Ordering::Relaxed);
            let (jobs, acks): (Vec<J>, Vec<_>) = batch.into_iter().unzip();
            let outs = write(jobs).await;
            // A job without a result (a short answer) sees its sender
            // dropped: `None` to its caller, never a wrong result.
            for (ack, out) in acks.into_iter().zip(outs) {
                let _ = ack.send(out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn concurrent_jobs_share_batches_and_each_gets_its_own_result() {
        let group = Arc::new(GroupCommit::<u32, u32>::new(8));
        let batches = Arc::new(AtomicUsize::new(0));
        let write = |jobs: Vec<u32>| {
            let batches = batches.clone();
            async move {
                batches.fetch_add(1, Ordering::SeqCst);
                tokio::task::yield_now().await;
                jobs.into_iter().map(|j| j * 10).collect::<Vec<_>>()
            }
        };
        let results = futures_util::future::join_all((0..20u32).map(|j| group.submit(j, write))).await;
        assert_eq!(results, (0..20u32).map(|j| Some(j * 10)).collect::<Vec<_>>());
        let n = batches.load(Ordering::SeqCst);
        assert!((3..20).contains(&n), "20 jobs, at most 8 per batch, grouped: {n} batches");
    }

    // On tokio's paused clock: time moves only when every task waits, so
    // the arrivals, writes and pauses happen in the same order however
    // loaded the machine is (with real time this failed now and then).
    #[tokio::test(start_paused = true)]
    async fn a_writer_lingers_for_company_only_when_jobs_come_together() {
        let pauses = Arc::new(AtomicUsize::new(0));
        let pause: Pause = {
            let pauses = pauses.clone();
            Arc::new(move |d| {
                pauses.fetch_add(1, Ordering::SeqCst);
                Box::pin(tokio::time::sleep(d))
            })
        };
        let group = Arc::new(GroupCommit::<u32, u32>::new(64).with_linger(Duration::from_millis(5), pause));
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let write = {
            let sizes = sizes.clone();
            move |jobs: Vec<u32>| {
                let sizes = sizes.clone();
                async move {
                    sizes.lock().unwrap().push(jobs.len());
                    // A write takes a while: jobs arriving meanwhile queue.
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    jobs
                }
            }
        };
        // Alone, one after the other: never a pause.
        for j in 0..3 {
            assert_eq!(group.submit(j, write.clone()).await, Some(j));
        }
        assert_eq!(pauses.load(Ordering::SeqCst), 0);
        // Together, arriving over 6 ms: the first is written at once (the
        // last batch held one), those queued meanwhile go next; from then on
        // the writer lingers, and later arrivals join the batch instead of
        // making their own.
        let together = (0..12u32).map(|j| {
            let group = group.clone();
            let write = write.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(u64::from(j / 2))).await;
                group.submit(j, write).await
            })
        });
        for t in together.collect::<Vec<_>>() {
            assert!(t.await.unwrap().is_some());
        }
        let sizes = sizes.lock().unwrap()[3..].to_vec();
        assert_eq!(sizes.iter().sum::<usize>(), 12, "{sizes:?}");
        assert!(pauses.load(Ordering::SeqCst) > 0, "{sizes:?}");
        assert!(sizes.len() <= 3, "twelve jobs over 6 ms in at most three batches: {sizes:?}");
    }

    #[tokio::test]
    async fn a_job_left_unanswered_gets_none() {
        let group = GroupCommit::<u32, u32>::new(8);
        let short = |_jobs: Vec<u32>| async { Vec::new() };
        assert_eq!(group.submit(1, short).await, None);
    }

    #[tokio::test]
    async fn a_writer_dropped_midway_leaves_its_batch_to_find_out() {
        let group = Arc::new(GroupCommit::<u32, u32>::new(8));
        let (gate_tx, gate_rx) = futures_channel::oneshot::channel::<()>();
        let gate = Arc::new(futures_util::lock::Mutex::new(Some(gate_rx)));
        // The first writer blocks inside its write until dropped.
        let blocking = {
            let gate = gate.clone();
            move |jobs: Vec<u32>| {
                let gate = gate.clone();
                async move {
                    if let Some(rx) = gate.lock().await.take() {
                        let _ = rx.await;
                    }
                    jobs
                }
            }
        };
        let first = tokio::spawn({
            let group = group.clone();
            let blocking = blocking.clone();
            async move { group.submit(1, blocking).await }
        });
        tokio::task::yield_now().await;
        let second = tokio::spawn({
            let group = group.clone();
            async move { group.submit(2, blocking).await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        first.abort();
        let _ = first.await;
        drop(gate_tx);
        // The second job was either still queued (written by its own
        // caller: Some) or taken by the aborted writer (None); never lost
        // without a word, never stuck.
        let second = tokio::time::timeout(std::time::Duration::from_secs(5), second).await.unwrap().unwrap();
        assert!(matches!(second, Some(2) | None), "{second:?}");
    }
}
