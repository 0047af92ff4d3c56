//! The due-time queue: which message is due next, in O(log n).
//!
//! A binary min-heap of `(due_ms, seq, queue id)` plus a map from queue id to the
//! sequence number of its live entry. Rescheduling pushes a new entry and
//! forgets the old one (lazy deletion: a popped entry whose sequence is not the
//! live one is discarded). No operation scans the queue, so the cost of picking
//! the next due message does not grow with the number of deferred messages
//! (`examples/sched_bench.rs` measures it).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use postern_spool::QueueId;

/// Due times of queued messages.
#[derive(Debug, Default)]
pub struct DueQueue {
    heap: BinaryHeap<Reverse<(u64, u64, QueueId)>>,
    live: HashMap<QueueId, u64>,
    seq: u64,
}

impl DueQueue {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes `id` due at `due_ms`, replacing any earlier schedule. O(log n).
    pub fn schedule(&mut self, id: QueueId, due_ms: u64) {
        self.seq += 1;
        self.live.insert(id, self.seq);
        self.heap.push(Reverse((due_ms, self.seq, id)));
        // Keep stale entries from piling up when messages are rescheduled
        // without being popped (e.g. `retry` of the whole queue).
        if self.heap.len() > 2 * self.live.len() + 1024 {
            self.compact();
        }
    }

    /// Forgets `id` (delivered, deleted, held). O(1); its heap entry is dropped
    /// lazily.
    pub fn cancel(&mut self, id: &QueueId) {
        self.live.remove(id);
    }

    /// Whether `id` is scheduled.
    pub fn contains(&self, id: &QueueId) -> bool {
        self.live.contains_key(id)
    }

    /// The earliest due time, if any. Amortised O(log n) (drops stale tops).
    pub fn next_due(&mut self) -> Option<u64> {
        self.drop_stale_top();
        self.heap.peek().map(|Reverse((due, _, _))| *due)
    }

    /// Removes and returns a message due at or before `now_ms`. Amortised
    /// O(log n).
    pub fn pop_due(&mut self, now_ms: u64) -> Option<QueueId> {
        self.drop_stale_top();
        let Reverse((due, _, _)) = self.heap.peek()?;
        if *due > now_ms {
            return None;
        }
        let Reverse((_, _, id)) = self.heap.pop()?;
        self.live.remove(&id);
        Some(id)
    }

    /// Scheduled messages.
    pub fn len(&self) -> usize {
        self.live.len()
    }

    /// Nothing is scheduled.
    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    fn drop_stale_top(&mut self) {
        while let Some(Reverse((_, seq, id))) = self.heap.peek() {
            if self.live.get(id) == Some(seq) {
                return;
            }
            self.heap.pop();
        }
    }

    fn compact(&mut self) {
        let live = &self.live;
        self.heap
            .retain(|Reverse((_, seq, id))| live.get(id) == Some(seq));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_in_due_order_and_honours_reschedule_and_cancel() {
        let ids: Vec<QueueId> = (0..4).map(|_| QueueId::generate()).collect();
        let mut q = DueQueue::new();
        q.schedule(ids[0], 50);
        q.schedule(ids[1], 10);
        q.schedule(ids[2], 30);
        q.schedule(ids[3], 20);
        q.schedule(ids[1], 40); // rescheduled later
        q.cancel(&ids[3]);
        assert_eq!(q.len(), 3);
        assert_eq!(q.next_due(), Some(30));
        assert_eq!(q.pop_due(29), None);
        assert_eq!(q.pop_due(100), Some(ids[2]));
        assert_eq!(q.pop_due(100), Some(ids[1]));
        assert_eq!(q.pop_due(100), Some(ids[0]));
        assert_eq!(q.pop_due(100), None);
        assert!(q.is_empty());
        assert_eq!(q.next_due(), None);
    }

    #[test]
    fn compaction_bounds_stale_entries() {
        let id = QueueId::generate();
        let mut q = DueQueue::new();
        for i in 0..10_000 {
            q.schedule(id, i);
        }
        assert!(q.heap.len() <= 2 * q.live.len() + 1025);
        assert_eq!(q.pop_due(u64::MAX), Some(id));
    }
}
