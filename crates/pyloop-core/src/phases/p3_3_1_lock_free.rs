//! Phase 3.3.1 — lock-free push (ours, past the seed).
//!
//! **What changed since 3.2.1.** The queue. 3.2.1 kept 3.1.5's deque behind
//! one mutex, which every producer took for every push; here producers take no
//! lock at all. The queue is a linked list of fixed blocks of [`SLOTS`] slots.
//! A producer claims the next slot with one compare-and-swap on the *tail
//! index*, writes its callback into it and marks it written. The one consumer
//! reads slots in order with plain loads (no read-modify-write per callback),
//! and a batch stops at the first slot that is claimed but not yet written,
//! at the batch limit, or at the tail it saw when it began (what is pushed
//! meanwhile waits for the next turn, as in asyncio). A drained block goes to
//! a one-block spare, from which the producer that fills the next block takes
//! it, so a steady state allocates nothing. 3.2.1's idle wait is kept — the
//! consumer sleeps in `epoll_wait`, woken by an eventfd, behind a `sleeping`
//! flag — but the decision to sleep is no longer made under a lock: it is a
//! Dekker-style handshake made of read-modify-writes (`prepare_to_sleep`).
//! `close_io` waits for wake-ups under way before it closes the eventfd.
//! Each producer's callbacks run in the order it pushed them (its claims are
//! successive positions).
//!
//! **Why.** With 10 producers on 2 cores a mutex queue falls into lock convoys
//! whenever a producer is preempted holding the lock: every other producer
//! then waits a whole time slice. Nothing here can be held: a producer that is
//! preempted between its claim and its write delays only the consumer, and
//! only for the callbacks behind its slot. This is what the seed's title,
//! "lock-free extraction", promised and its code never did.
//!
//! **What it costs.** Memory follows the queue's length: a block per [`SLOTS`]
//! queued callbacks (a queue filled faster than it drains allocates a block
//! per 31 pushes; only a steady state lives off the spare). A producer that
//! is preempted between claiming a slot and writing it holds up every later
//! callback until it runs again (the consumer yields to it rather than sleep,
//! since nobody would wake it). The producer that claims a block's last slot
//! installs the next block; others that arrive meanwhile wait for it, so a
//! push is not wait-free (it needs nothing that a caller could hold, though:
//! `try_push` never reports contention). There is no lock, so no lock hold
//! to count: the counters show 0 ns, and the number of pushes is read from
//! the tail index rather than counted per push, which would put a contended
//! atomic back on the path this phase clears.

use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::ptr;
use std::sync::atomic::{AtomicBool as StdAtomicBool, AtomicU64 as StdAtomicU64};
use std::time::{Duration, Instant};

use crate::poller::{IoEvent, Poller};
use crate::sync::Ordering::{AcqRel, Acquire, Relaxed, Release};
use crate::sync::{spin_hint, yield_now, Arc, AtomicBool, AtomicPtr, AtomicUsize, UnsafeCell};
use crate::{Closed, Phase, ReadyQueue, Stats, TryPushError};

// ANCHOR: block
/// Callbacks per block: 31 (with the sentinel position, 32 positions a
/// block). A block of boxed closures is then 752 bytes, within the blocks
/// glibc keeps in a per-thread cache (up to 1,032); with 63 slots the
/// single-thread push measured about half as fast (`core_spread`,
/// against crossbeam in the same rounds). Under loom, 2, so that a
/// model with a handful of pushes fills blocks, installs new ones and
/// recycles drained ones.
pub const SLOTS: usize = if cfg!(loom) { 2 } else { 31 };

/// Positions per block: its slots, then its *sentinel*, the position the tail
/// index holds while the block is full and its successor is being installed.
const LAP: usize = SLOTS + 1;

/// One callback's place in a block.
struct Slot<T> {
    /// The callback, once `written`; moved out by the consumer.
    value: UnsafeCell<MaybeUninit<T>>,
    /// Set (Release) by the producer that claimed the slot, after writing
    /// `value`; read (Acquire) by the consumer before it moves `value` out;
    /// cleared by the consumer when the block is recycled.
    written: AtomicBool,
}

/// A fixed array of slots and the link to the next block.
struct Block<T> {
    /// The next block: null until the producer that claims this block's last
    /// slot installs it, which it does *before* writing that slot. So a
    /// consumer that has read the last slot always finds it set.
    next: AtomicPtr<Block<T>>,
    slots: [Slot<T>; SLOTS],
}
// ANCHOR_END: block

impl<T> Block<T> {
    /// A new, empty block on the heap.
    fn boxed() -> Box<Self> {
        Box::new(Block {
            next: AtomicPtr::new(ptr::null_mut()),
            slots: std::array::from_fn(|_| Slot {
                value: UnsafeCell::new(MaybeUninit::uninit()),
                written: AtomicBool::new(false),
            }),
        })
    }
}

/// Aligns its contents to 128 bytes (two cache lines, as the adjacent-line
/// prefetcher pulls them in pairs), so that what producers hammer and what
/// the consumer writes never share a line.
#[repr(align(128))]
struct CachePadded<T>(T);

impl<T> std::ops::Deref for CachePadded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

// ANCHOR: tail
/// The tail index's bit 0: set once by `close`; no claim succeeds after it.
const CLOSED: usize = 1;
/// One position in the tail index (bit 0 is [`CLOSED`]).
const STEP: usize = 2;

/// The producers' end of the queue.
struct Tail<T> {
    /// `position * STEP | CLOSED`. Positions number the slots of every block
    /// there ever was, [`LAP`] per block: the n-th block holds positions
    /// `n * LAP` to `n * LAP + SLOTS - 1`, and `n * LAP + SLOTS` is its
    /// sentinel. Changed only by read-modify-writes (a claim, the step past a
    /// sentinel, `close`), and only upwards, so a producer that read it long
    /// ago cannot claim with a stale value: its compare-and-swap fails.
    index: AtomicUsize,
    /// The block holding `index`'s position (while `index` is at a sentinel:
    /// the full block, until the next one is installed).
    block: AtomicPtr<Block<T>>,
}
// ANCHOR_END: tail

/// The consumer's end of the queue. Only the holder of the queue's one
/// [`LockFreeConsumer`] reads or writes it.
struct Head<T> {
    /// The block holding `position`.
    block: *mut Block<T>,
    /// The position of the next slot to read; never a sentinel.
    position: usize,
}

/// The number of pushes a tail index says were accepted: every position
/// claimed, less the sentinels.
fn accepted(index: usize) -> u64 {
    let position = index / STEP;
    (position / LAP * SLOTS + (position % LAP).min(SLOTS)) as u64
}

/// `wakers`' bit 0: set by `close_io`; no eventfd write starts after it.
const IO_CLOSED: usize = 1;
/// One thread between deciding to write the eventfd and having written it.
const WAKER: usize = 2;

/// A source of queue ids, so that a consumer can be matched to its queue.
static NEXT_QUEUE_ID: StdAtomicU64 = StdAtomicU64::new(1);

/// Phase 3.3.1: producers claim slots with a compare-and-swap; no lock; the
/// idle loop sleeps in epoll as in 3.2.1.
pub struct LockFreeQueue<T> {
    /// Hammered by every push; shared with the counters, which read the
    /// number of pushes from it.
    tail: Arc<CachePadded<Tail<T>>>,
    /// The consumer's read position (see [`Head`]).
    head: CachePadded<UnsafeCell<Head<T>>>,
    /// Set by the consumer just before it sleeps in the poller, cleared by
    /// whoever wakes it and by the consumer when it wakes. A producer reads it
    /// after every push. Every write to it is a swap, never a store: see
    /// `prepare_to_sleep`.
    sleeping: CachePadded<AtomicBool>,
    /// A `wake()` not yet seen by a `wait`.
    woken: AtomicBool,
    /// `WAKER` times the threads part of the way through an eventfd write, and
    /// [`IO_CLOSED`]: `close_io` waits for the count to reach zero.
    wakers: AtomicUsize,
    /// A drained block kept for the next installation, or null.
    spare: AtomicPtr<Block<T>>,
    poller: Poller,
    batch_limit: usize,
    stats: Stats,
    /// This queue's id, which its consumer carries.
    id: u64,
    /// Set by `consumer()`: there is one.
    consumer_taken: StdAtomicBool,
    /// Loom only: a fault put in on purpose, to show that the models find it.
    #[cfg(loom)]
    sabotage: Sabotage,
    _owns: PhantomData<T>,
}

// safety: the queue hands each `T` from the producer that pushed it to the
// consumer, so it is `Send` and `Sync` when `T` is `Send`. The raw pointers in
// `head` and in the blocks are owned by the queue. `head` is only touched by
// the holder of the queue's one consumer (checked in `consumer()` and by the
// id each method that takes it compares), through `&mut` for every write.
unsafe impl<T: Send> Send for LockFreeQueue<T> {}
// safety: see `Send` above; shared access from producers goes only through
// atomics and through slots each claimed by exactly one producer.
unsafe impl<T: Send> Sync for LockFreeQueue<T> {}

/// The consumer's state in phase 3.3.1: which queue it reads, and the I/O
/// readiness found by the last wait. The read position itself lives in the
/// queue, so that dropping the queue can free what is left in it.
#[derive(Debug)]
pub struct LockFreeConsumer {
    queue: u64,
    events: Vec<IoEvent>,
}

/// What the consumer found when it announced it was about to sleep.
#[derive(Debug, PartialEq, Eq)]
enum Look {
    /// A callback is ready, the queue is closed, or a wake was pending.
    Ready,
    /// A producer has claimed the next slot and not written it yet. It will not
    /// necessarily see `sleeping`, so the consumer must not sleep.
    InFlight,
    /// Nothing; `sleeping` is set, and whoever gives the consumer a reason to
    /// return from now on will see it and write the eventfd.
    Idle,
}

/// Loom only: faults that the loom models must find (`tests/broken.rs`).
#[cfg(loom)]
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sabotage {
    /// The real thing.
    None,
    /// The consumer re-checks the tail with a plain load instead of a
    /// read-modify-write before it sleeps.
    PlainTailLoad,
    /// `close_io` closes the poller without waiting for wakers.
    CloseIoWithoutWaiting,
}

/// Spins, then yields, between retries.
struct Retry(u32);

impl Retry {
    /// Spins 2, 4, … 64 times from one call to the next (once under loom,
    /// where each spin is a yield).
    fn spin(&mut self) {
        let spins = if cfg!(loom) { 1 } else { 2u32 << self.0.min(5) };
        for _ in 0..spins {
            spin_hint();
        }
        self.0 += 1;
    }

    /// As `spin`, then yields the processor once spinning has got long: the
    /// thread being waited for may need this one's core.
    fn snooze(&mut self) {
        if self.0 < 6 {
            self.spin();
        } else {
            yield_now();
        }
    }
}

/// Counts a batch in the stats when it ends, also when a callback panics.
struct BatchTally<'a> {
    stats: &'a Stats,
    ran: usize,
}

impl Drop for BatchTally<'_> {
    fn drop(&mut self) {
        if self.ran > 0 {
            // No lock, so nothing held and nothing waited for.
            self.stats
                .record_batch(self.ran, Duration::ZERO, Duration::ZERO);
        }
    }
}

impl<T: Send + 'static> LockFreeQueue<T> {
    fn build(batch_limit: usize, poller: Poller) -> Self {
        let first = Box::into_raw(Block::boxed());
        let tail = Arc::new(CachePadded(Tail {
            index: AtomicUsize::new(0),
            block: AtomicPtr::new(first),
        }));
        let counted = Arc::clone(&tail);
        LockFreeQueue {
            tail,
            head: CachePadded(UnsafeCell::new(Head {
                block: first,
                position: 0,
            })),
            sleeping: CachePadded(AtomicBool::new(false)),
            woken: AtomicBool::new(false),
            wakers: AtomicUsize::new(0),
            spare: AtomicPtr::new(ptr::null_mut()),
            poller,
            batch_limit,
            stats: Stats::with_push_source(move || accepted(counted.index.load(Relaxed))),
            id: NEXT_QUEUE_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            consumer_taken: StdAtomicBool::new(false),
            #[cfg(loom)]
            sabotage: Sabotage::None,
            _owns: PhantomData,
        }
    }

    /// Loom only: a queue with `sabotage` built in.
    #[cfg(loom)]
    #[doc(hidden)]
    pub fn sabotaged(batch_limit: usize, sabotage: Sabotage) -> Self {
        let mut queue = Self::build(batch_limit, Poller::new().expect("loom's poller"));
        queue.sabotage = sabotage;
        queue
    }

    /// Panics unless `consumer` is this queue's.
    fn check(&self, consumer: &LockFreeConsumer) {
        assert_eq!(
            consumer.queue, self.id,
            "a phase 3.3.1 consumer was used with another queue"
        );
    }

    // ANCHOR: blocks
    /// A clean block for the next installation: the spare, or a new one.
    fn take_block(&self) -> Box<Block<T>> {
        let spare = self.spare.swap(ptr::null_mut(), Acquire);
        if spare.is_null() {
            Block::boxed()
        } else {
            // safety: a non-null spare is a clean block that `keep_block`
            // gave up; the swap made it ours alone.
            unsafe { Box::from_raw(spare) }
        }
    }

    /// Keeps a clean block as the spare (freeing the one there, if any).
    /// A swap, never a compare-and-swap on the pointer, so a block that leaves
    /// and comes back cannot fool anyone (no ABA).
    fn keep_block(&self, block: Box<Block<T>>) {
        let old = self.spare.swap(Box::into_raw(block), AcqRel);
        if !old.is_null() {
            // safety: as in `take_block`, the swap made `old` ours alone.
            drop(unsafe { Box::from_raw(old) });
        }
    }
    // ANCHOR_END: blocks

    // ANCHOR: push
    /// Claims the next slot, writes `item` into it, then wakes a sleeping
    /// consumer. Fails only if the queue is closed.
    fn push_item(&self, item: T) -> Result<(), Closed<T>> {
        let tail = &**self.tail;
        let mut next_block: Option<Box<Block<T>>> = None;
        let mut retry = Retry(0);
        let pushed = loop {
            let index = tail.index.load(Acquire);
            if index & CLOSED != 0 {
                break Err(Closed(item));
            }
            let offset = index / STEP % LAP;
            if offset == SLOTS {
                // Full; the producer that took the last slot is installing
                // the next block.
                retry.snooze();
                continue;
            }
            let last = offset + 1 == SLOTS;
            if last && next_block.is_none() {
                // Get it before claiming, so that the others wait for two
                // stores rather than for an allocation.
                next_block = Some(self.take_block());
            }
            let block = tail.block.load(Acquire);
            if tail
                .index
                .compare_exchange(index, index + STEP, AcqRel, Relaxed)
                .is_err()
            {
                retry.spin();
                continue;
            }
            // safety: the claim succeeded, so `block` holds our slot. It is
            // not an older block: the installer stored this one before moving
            // the index past the sentinel, and our Acquire load of the index
            // saw that move. It is not a newer one: the producer that will
            // install the next block claims after us, so our claim (Release)
            // happens before its claim (Acquire) and before its store, which
            // our earlier load therefore cannot see. The block stays allocated
            // until the consumer has read every one of its slots, ours included.
            let block = unsafe { &*block };
            if last {
                let next = Box::into_raw(next_block.take().expect("taken above"));
                block.next.store(next, Release);
                tail.block.store(next, Release);
                // From the sentinel to the next block's first slot; an add,
                // not a store, to keep a CLOSED bit set meanwhile.
                tail.index.fetch_add(STEP, Release);
            }
            let slot = &block.slots[offset];
            // safety: the claim makes this slot ours alone until we set
            // `written`; nobody reads `value` before that.
            slot.value.with_mut(|value| {
                unsafe { (*value).write(item) };
            });
            slot.written.store(true, Release);
            break Ok(());
        };
        if let Some(block) = next_block {
            self.keep_block(block);
        }
        if pushed.is_ok() {
            self.wake_sleeper();
        }
        pushed
    }
    // ANCHOR_END: push

    // ANCHOR: take_next
    /// Moves the next callback out of its slot, or returns `None` if it is at
    /// position `end` or its slot is not written yet (empty, or claimed by a
    /// producer still writing).
    ///
    /// # Safety
    /// Only the holder of the queue's consumer may call it.
    unsafe fn take_next(&self, end: usize) -> Option<T> {
        self.head.with_mut(|head| {
            // safety: the caller is the consumer, the only one to touch `head`.
            let head = unsafe { &mut *head };
            if head.position >= end {
                return None;
            }
            let offset = head.position % LAP;
            // safety: `head.block` is live: blocks are recycled only here,
            // once the head has left them.
            let block = unsafe { &*head.block };
            let slot = &block.slots[offset];
            if !slot.written.load(Acquire) {
                return None;
            }
            // safety: `written` (Acquire) says the producer's write of
            // `value` happened before; moving it out is the consumer's alone,
            // and the position moves on so it is never read twice.
            let item = slot
                .value
                .with(|value| unsafe { (*value).assume_init_read() });
            if offset + 1 == SLOTS {
                // The last slot was written after the next block was linked.
                let next = block.next.load(Acquire);
                let drained = std::mem::replace(&mut head.block, next);
                head.position += 2;
                // safety: every slot of `drained` has been read, and no
                // producer touches a block after writing its slot.
                unsafe { self.recycle(drained) };
            } else {
                head.position += 1;
            }
            Some(item)
        })
    }

    /// Cleans a drained block and keeps it as the spare.
    ///
    /// # Safety
    /// `block` must be a block whose every slot the consumer has read.
    unsafe fn recycle(&self, block: *mut Block<T>) {
        // safety: the caller guarantees nobody else uses the block any more.
        let block = unsafe { Box::from_raw(block) };
        for slot in &block.slots {
            slot.written.store(false, Relaxed);
        }
        block.next.store(ptr::null_mut(), Relaxed);
        self.keep_block(block);
    }
    // ANCHOR_END: take_next

    /// True if the consumer's next slot is written.
    fn next_is_written(&self) -> bool {
        self.head.with(|head| {
            // safety: called by the consumer (through `&`/`&mut` of its
            // state), so `head` is not being written; its block is live.
            let head = unsafe { &*head };
            let block = unsafe { &*head.block };
            block.slots[head.position % LAP].written.load(Acquire)
        })
    }

    /// The consumer's read position.
    fn head_position(&self) -> usize {
        // safety: as in `next_is_written`.
        self.head.with(|head| unsafe { (*head).position })
    }

    // ANCHOR: prepare_to_sleep
    /// The consumer's last look before it sleeps. It sets `sleeping`, then
    /// reads the tail index and `woken` with read-modify-writes.
    ///
    /// Why a read-modify-write and not a load: a producer claims with a
    /// compare-and-swap on the same index, then reads `sleeping`. The tail
    /// index has one modification order. If the producer's claim comes
    /// before the consumer's read-modify-write in it, the consumer sees the
    /// claim. If it comes after, it read the consumer's value (or one of a
    /// later claim, which continues the release sequence), so it synchronizes
    /// with it, and `sleeping = true`, stored before, is visible to the
    /// producer's later load. Either way one of them sees the other. With a
    /// plain load here, both could read stale values (each thread's store
    /// still in its store buffer) and the consumer would sleep beside a
    /// callback. `close` (a read-modify-write on the index) and `wake` (one on
    /// `woken`) meet the consumer the same way.
    ///
    /// `sleeping` itself is written only by swaps. Plain stores by the
    /// consumer would be correct too (a producer's swap that read one of its
    /// values must come before its next store, since a read-modify-write reads
    /// the last value before it), but loom does not apply that rule and
    /// reported a lost wake-up that cannot happen. With swaps, each write
    /// reads the one before it, which loom follows; the push path is the same.
    fn prepare_to_sleep(&self) -> Look {
        self.sleeping.swap(true, Relaxed);
        let index = self.tail_before_sleep();
        let woken = self.woken.swap(false, AcqRel);
        let claimed = index / STEP > self.head_position();
        if index & CLOSED == 0 && !woken && !claimed {
            return Look::Idle;
        }
        self.sleeping.swap(false, Relaxed);
        if index & CLOSED != 0 || woken || self.next_is_written() {
            Look::Ready
        } else {
            Look::InFlight
        }
    }
    // ANCHOR_END: prepare_to_sleep

    /// `prepare_to_sleep`'s read of the tail index: a read-modify-write that
    /// changes nothing. (Under loom, a queue built with
    /// [`Sabotage::PlainTailLoad`] reads it with a plain load instead.)
    fn tail_before_sleep(&self) -> usize {
        #[cfg(loom)]
        if self.sabotage == Sabotage::PlainTailLoad {
            return self.tail.index.load(Acquire);
        }
        self.tail.index.fetch_add(0, AcqRel)
    }

    // ANCHOR: wake_sleeper
    /// Writes the eventfd if the consumer is asleep (or about to be). Called
    /// after a push (its claim was a read-modify-write on the tail index),
    /// `close` (likewise) and `wake` (one on `woken`): see `prepare_to_sleep`.
    /// Of several threads that find it asleep, the one whose swap clears the
    /// flag writes; the others need not.
    fn wake_sleeper(&self) {
        if self.sleeping.load(Relaxed) && self.sleeping.swap(false, AcqRel) {
            self.signal();
        }
    }

    /// Writes the eventfd, unless `close_io` has begun; counted in `wakers`
    /// meanwhile, so that `close_io` can wait until nobody holds the
    /// descriptor's number.
    fn signal(&self) {
        let state = self.wakers.fetch_add(WAKER, Acquire);
        if state & IO_CLOSED == 0 {
            self.poller.wake();
        }
        self.wakers.fetch_sub(WAKER, Release);
    }
    // ANCHOR_END: wake_sleeper
}

// ANCHOR: impl
impl<T: Send + 'static> ReadyQueue<T> for LockFreeQueue<T> {
    const PHASE: Phase = Phase::LockFree;
    type Consumer = LockFreeConsumer;

    fn try_with_batch_limit(batch_limit: usize) -> std::io::Result<Self> {
        if batch_limit == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the batch limit must be at least 1",
            ));
        }
        Ok(Self::build(batch_limit, Poller::new()?))
    }

    /// The queue's one consumer; panics if called twice.
    fn consumer(&self) -> LockFreeConsumer {
        assert!(
            !self
                .consumer_taken
                .swap(true, std::sync::atomic::Ordering::Relaxed),
            "a phase 3.3.1 queue has one consumer: consumer() was called twice"
        );
        LockFreeConsumer {
            queue: self.id,
            events: Vec::new(),
        }
    }

    fn push(&self, item: T) -> Result<(), Closed<T>> {
        self.push_item(item)
    }

    /// The same as `push`: nothing here waits for a thread that could need
    /// what the caller holds, so it never reports `Contended`. (A push that
    /// finds a block full waits for the producer installing the next one, which
    /// has two stores left to make and needs nothing else.)
    fn try_push(&self, item: T) -> Result<(), TryPushError<T>> {
        self.push_item(item)
            .map_err(|Closed(item)| TryPushError::Closed(item))
    }

    // ANCHOR: run_batch
    fn run_batch<F: FnMut(T)>(&self, consumer: &mut LockFreeConsumer, mut run: F) -> usize {
        self.check(consumer);
        // Callbacks pushed while this batch runs wait for the next one, as in
        // asyncio, where a turn runs only what was ready when it began.
        let end = self.tail.index.load(Acquire) / STEP;
        let mut tally = BatchTally {
            stats: &self.stats,
            ran: 0,
        };
        while tally.ran < self.batch_limit {
            // safety: `consumer` is this queue's one consumer, borrowed mutably.
            let Some(item) = (unsafe { self.take_next(end) }) else {
                break;
            };
            tally.ran += 1;
            run(item);
        }
        tally.ran
    }
    // ANCHOR_END: run_batch

    // ANCHOR: wait
    fn wait(&self, consumer: &mut LockFreeConsumer, timeout: Option<Duration>) {
        self.check(consumer);
        let deadline = timeout.map(|t| Instant::now() + t);
        let left = || deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let mut retry = Retry(0);
        let mut slept = false;
        loop {
            // The common case, a callback ready, costs one load. (A closed
            // queue or a pending wake is found by `prepare_to_sleep`.)
            if self.next_is_written() {
                break;
            }
            match self.prepare_to_sleep() {
                Look::Ready => break,
                Look::InFlight => {
                    // The producer of the next slot was preempted between its
                    // claim and its write, and will not wake us: let it run.
                    if left() == Some(Duration::ZERO) {
                        return;
                    }
                    retry.snooze();
                    continue;
                }
                Look::Idle => {}
            }
            if !slept {
                self.stats.record_idle_wait();
            }
            let result = self.poller.wait(&mut consumer.events, left());
            slept = true;
            self.sleeping.swap(false, Relaxed);
            // An error is a signal (EINTR: back to Python, whose handler may
            // raise) or the poller closed by `close_io` (nothing to wait on).
            if result.is_err() || !consumer.events.is_empty() || left() == Some(Duration::ZERO) {
                return;
            }
            // Woken: look again. (A wake meant for an earlier sleep can end
            // this one for nothing; the loop then sleeps again.)
        }
        if !slept {
            // There is work: still collect I/O readiness, without blocking.
            let _ = self.poller.wait(&mut consumer.events, Some(Duration::ZERO));
        }
    }
    // ANCHOR_END: wait

    fn wake(&self) {
        self.woken.swap(true, AcqRel);
        self.wake_sleeper();
    }

    fn try_wake(&self) -> bool {
        self.wake();
        true
    }

    fn close(&self) {
        self.tail.index.fetch_or(CLOSED, AcqRel);
        self.wake_sleeper();
    }

    fn is_closed(&self) -> bool {
        self.tail.index.load(Acquire) & CLOSED != 0
    }

    fn has_pending(&self, consumer: &LockFreeConsumer) -> bool {
        self.check(consumer);
        self.next_is_written()
    }

    fn stats(&self) -> &Stats {
        &self.stats
    }

    fn poller(&self) -> Option<&Poller> {
        Some(&self.poller)
    }

    fn take_io_events(&self, consumer: &mut LockFreeConsumer, out: &mut Vec<IoEvent>) {
        if out.is_empty() {
            // Trade buffers: the caller's empty one keeps its capacity for the
            // next wait, so steady I/O allocates nothing.
            std::mem::swap(out, &mut consumer.events);
        } else {
            out.append(&mut consumer.events);
        }
    }

    // ANCHOR: close_io
    /// Stops new eventfd writes, waits for those under way, then closes the
    /// poller: a descriptor number closed while a producer was about to write
    /// to it could by then be another file's.
    fn close_io(&self) {
        self.wakers.fetch_or(IO_CLOSED, AcqRel);
        let mut retry = Retry(0);
        // In a forked child the count can hold a parent's waker that the
        // child does not have (only the forking thread is copied).
        while self.wakers.load(Acquire) & !IO_CLOSED != 0 && !self.poller.inherited() {
            #[cfg(loom)]
            if self.sabotage == Sabotage::CloseIoWithoutWaiting {
                break;
            }
            retry.snooze();
        }
        self.poller.close();
    }
    // ANCHOR_END: close_io
}
// ANCHOR_END: impl

// ANCHOR: drop
impl<T> Drop for LockFreeQueue<T> {
    /// Drops the callbacks never run and frees every block. With `&mut self`
    /// no producer is part of the way through a push, so every claimed slot
    /// is written.
    fn drop(&mut self) {
        let (mut block, mut offset) = self.head.with(|head| {
            // safety: `&mut self`: nobody else can be using the head.
            let head = unsafe { &*head };
            (head.block, head.position % LAP)
        });
        while !block.is_null() {
            // safety: the blocks from the head on are live and ours; the
            // written slots past the head hold callbacks nobody took.
            let owned = unsafe { Box::from_raw(block) };
            for slot in &owned.slots[offset..] {
                if slot.written.load(Relaxed) {
                    slot.value
                        .with_mut(|value| unsafe { (*value).assume_init_drop() });
                }
            }
            block = owned.next.load(Relaxed);
            offset = 0;
        }
        let spare = self.spare.swap(ptr::null_mut(), Relaxed);
        if !spare.is_null() {
            // safety: the spare is a clean block nobody else holds.
            drop(unsafe { Box::from_raw(spare) });
        }
    }
}
// ANCHOR_END: drop

/// What the checks stamped for every phase (`tests/phases.rs`) cannot see:
/// memory, the one-consumer rule, the push count read from the index.
#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// Callbacks never run are dropped with the queue, in every block (the
    /// head's, partly read; full ones; the tail's, partly written), and the
    /// recycled spare is freed (valgrind's memcheck sees a leak otherwise).
    #[test]
    fn drop_frees_unread_callbacks_and_blocks() {
        let alive = Arc::new(());
        let queue = LockFreeQueue::<Arc<()>>::with_batch_limit(10);
        let mut consumer = queue.consumer();
        for _ in 0..(3 * SLOTS + 5) {
            queue.push(Arc::clone(&alive)).unwrap();
        }
        // Read past the first block, so that it goes to the spare.
        let mut ran = 0;
        while ran < SLOTS + 3 {
            ran += queue.run_batch(&mut consumer, drop);
        }
        assert_eq!(Arc::strong_count(&alive), 1 + 3 * SLOTS + 5 - ran);
        drop(queue);
        assert_eq!(Arc::strong_count(&alive), 1);
    }

    /// `pushes` is exact across block boundaries (sentinels are not pushes)
    /// and counts no refused push.
    #[test]
    fn pushes_are_read_from_the_tail_index() {
        let queue = LockFreeQueue::<u32>::new();
        for n in 0..(2 * SLOTS as u32 + 3) {
            assert_eq!(queue.stats().snapshot().pushes, u64::from(n));
            queue.push(n).unwrap();
        }
        queue.close();
        assert!(queue.push(0).is_err());
        assert_eq!(queue.stats().snapshot().pushes, 2 * SLOTS as u64 + 3);
        assert_eq!(accepted(0), 0);
        assert_eq!(accepted(SLOTS * STEP), SLOTS as u64, "at the sentinel");
        assert_eq!(accepted((LAP * STEP) | CLOSED), SLOTS as u64);
    }

    /// As 3.2.1's `close_io_in_a_forked_child_does_not_wait_for_the_parents_writer`:
    /// a waker counted when the process forked is not the child's to wait for.
    #[test]
    fn close_io_in_a_forked_child_does_not_wait_for_the_parents_waker() {
        let queue = LockFreeQueue::<u32>::new();
        queue.wakers.fetch_add(WAKER, Acquire);
        let limit = std::time::Duration::from_secs(20);
        assert!(crate::poller::finishes_in_a_forked_child(
            || queue.close_io(),
            limit
        ));
        queue.wakers.fetch_sub(WAKER, Release);
        queue.close_io();
    }

    #[test]
    #[should_panic(expected = "one consumer")]
    fn a_second_consumer_is_refused() {
        let queue = LockFreeQueue::<u32>::new();
        let _first = queue.consumer();
        let _second = queue.consumer();
    }

    #[test]
    #[should_panic(expected = "another queue")]
    fn a_consumer_of_another_queue_is_refused() {
        let (a, b) = (LockFreeQueue::<u32>::new(), LockFreeQueue::<u32>::new());
        let mut of_a = a.consumer();
        b.push(1).unwrap();
        b.run_batch(&mut of_a, drop);
    }

    #[test]
    fn a_zero_batch_limit_is_an_error() {
        let err = LockFreeQueue::<u32>::try_with_batch_limit(0)
            .err()
            .expect("refused");
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    }
}
