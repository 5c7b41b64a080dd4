//! A thread's timers: a heap of deadlines whose earliest one is the event loop's
//! epoll_wait timeout, so a sleep or a timeout on a server thread costs no other thread
//! anything (async-io's timers cost an eventfd write and a wake-up of its own thread).
//!
//! A timer is a slot holding the waker of the task waiting on it; the heap holds
//! `(deadline, slot, generation)` entries. A cancelled timer (its future dropped) frees
//! its slot at once and leaves its heap entry behind, recognised by its generation when
//! it comes up; when stale entries outnumber live ones the heap is rebuilt, so it stays
//! bounded however many timeouts are set and cancelled.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::task::Waker;
use std::time::Instant;

use slab::Slab;

/// A live timer's slot.
struct Slot {
    generation: u64,
    waker: Option<Waker>,
}

/// The timers of one event loop.
#[derive(Default)]
pub(super) struct Timers {
    heap: BinaryHeap<Reverse<(Instant, usize, u64)>>,
    slots: Slab<Slot>,
    generation: u64,
}

/// A registered timer, to update or cancel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Key {
    slot: usize,
    generation: u64,
}

impl Timers {
    /// Registers a timer due at `deadline`, waking `waker` then.
    pub(super) fn insert(&mut self, deadline: Instant, waker: Waker) -> Key {
        self.generation += 1;
        let generation = self.generation;
        let slot = self.slots.insert(Slot {
            generation,
            waker: Some(waker),
        });
        self.heap.push(Reverse((deadline, slot, generation)));
        Key { slot, generation }
    }

    /// Replaces the waker of a live timer (the task polling it may have moved).
    pub(super) fn set_waker(&mut self, key: Key, waker: &Waker) {
        if let Some(slot) = self.live(key) {
            match &slot.waker {
                Some(old) if old.will_wake(waker) => {}
                _ => slot.waker = Some(waker.clone()),
            }
        }
    }

    /// Forgets a timer (its future was dropped or finished).
    pub(super) fn remove(&mut self, key: Key) {
        if self.live(key).is_some() {
            self.slots.remove(key.slot);
        }
        // Rebuild when stale entries dominate, so cancelled timeouts cannot pile up.
        if self.heap.len() > 64 && self.heap.len() > 2 * self.slots.len() {
            let slots = &self.slots;
            self.heap
                .retain(|Reverse((_, slot, generation))| is_live(slots, *slot, *generation));
        }
    }

    /// The earliest deadline of a live timer.
    pub(super) fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(Reverse((deadline, slot, generation))) = self.heap.peek().copied() {
            if is_live(&self.slots, slot, generation) {
                return Some(deadline);
            }
            self.heap.pop();
        }
        None
    }

    /// Takes the wakers of every timer due at `now`; their slots stay until the futures
    /// see their deadlines passed and remove them.
    pub(super) fn expire(&mut self, now: Instant, due: &mut Vec<Waker>) {
        while let Some(Reverse((deadline, slot, generation))) = self.heap.peek().copied() {
            if deadline > now {
                break;
            }
            self.heap.pop();
            if let Some(waker) = self
                .slots
                .get_mut(slot)
                .filter(|s| s.generation == generation)
                .and_then(|s| s.waker.take())
            {
                due.push(waker);
            }
        }
    }

    fn live(&mut self, key: Key) -> Option<&mut Slot> {
        self.slots
            .get_mut(key.slot)
            .filter(|s| s.generation == key.generation)
    }

    #[cfg(test)]
    fn heap_len(&self) -> usize {
        self.heap.len()
    }
}

fn is_live(slots: &Slab<Slot>, slot: usize, generation: u64) -> bool {
    slots.get(slot).is_some_and(|s| s.generation == generation)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::Wake;
    use std::time::Duration;

    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn counter() -> (Arc<Count>, Waker) {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        (Arc::clone(&count), Waker::from(count))
    }

    #[test]
    fn timers_fire_in_deadline_order_and_cancelled_ones_never() {
        let start = Instant::now();
        let at = |ms| start + Duration::from_millis(ms);
        let mut timers = Timers::default();
        let (late, late_waker) = counter();
        let (early, early_waker) = counter();
        let (gone, gone_waker) = counter();
        timers.insert(at(30), late_waker);
        timers.insert(at(10), early_waker);
        let cancelled = timers.insert(at(5), gone_waker);
        timers.remove(cancelled);
        assert_eq!(timers.next_deadline(), Some(at(10)));
        let mut due = Vec::new();
        timers.expire(at(20), &mut due);
        due.drain(..).for_each(Waker::wake);
        assert_eq!(early.0.load(Ordering::SeqCst), 1);
        assert_eq!(late.0.load(Ordering::SeqCst), 0);
        assert_eq!(timers.next_deadline(), Some(at(30)));
        timers.expire(at(30), &mut due);
        due.drain(..).for_each(Waker::wake);
        assert_eq!(late.0.load(Ordering::SeqCst), 1);
        assert_eq!(gone.0.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_reused_slot_is_not_woken_by_its_predecessor_entry() {
        let start = Instant::now();
        let mut timers = Timers::default();
        let (first, first_waker) = counter();
        let old = timers.insert(start, first_waker);
        timers.remove(old);
        let (second, second_waker) = counter();
        // Same slot, later deadline.
        timers.insert(start + Duration::from_secs(60), second_waker);
        let mut due = Vec::new();
        timers.expire(start + Duration::from_millis(1), &mut due);
        assert!(due.is_empty());
        assert_eq!(
            first.0.load(Ordering::SeqCst) + second.0.load(Ordering::SeqCst),
            0
        );
    }

    #[test]
    fn cancelled_timeouts_do_not_pile_up() {
        let start = Instant::now();
        let mut timers = Timers::default();
        let (_, waker) = counter();
        for i in 0..100_000u64 {
            let key = timers.insert(start + Duration::from_secs(10 + i), waker.clone());
            timers.remove(key);
        }
        assert!(timers.heap_len() <= 130, "{}", timers.heap_len());
    }
}
