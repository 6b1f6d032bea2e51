//! Cross-call queues and call records: the architecture-free half of
//! `call_single` / `call_many` (docs/rules.md, Cross-calls, and Hotplug 4-6).
//!
//! Each CPU owns one [`CallQueue`]. A sender pushes a locked [`CallRecord`]
//! and rings the target's doorbell only when the push reports that the queue
//! went from empty to non-empty. A non-empty queue therefore *is* the
//! "IPI owed" state; there is no other. The target's IPI handler, and its
//! dying flush, call [`CallQueue::take_all`], may inspect the [`Batch`] (the
//! refined offline warning looks at what was taken, not at the queue after
//! taking it), then [`Batch::run`] it.
//!
//! The queue is Linux's llist: producers CAS onto a Treiber stack, the
//! consumer swaps the head for null and reverses what it got into FIFO order.
//! Nothing is ever popped singly, so there is no ABA problem.

use core::marker::PhantomData;
use core::ptr;
use core::sync::atomic::Ordering::{Acquire, Relaxed, Release};

use crate::cpu::CpuId;
use crate::sync::{AtomicPtr, AtomicU32, AtomicU64, UnsafeCell, const_unless_loom, spin_hint};

/// The record is in flight: queued, or taken and not yet released.
const LOCKED: u32 = 1;
/// Its waiter may be halted: whoever releases the record must wake the
/// sender ([`CallRecord::mark_sleeping`]).
const SLEEPING: u32 = 2;

/// [`CallRecord::try_lock`] found the record still in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

/// What a non-waiting ([`CallRecord::new_async`]) record runs. Only `fn`
/// pointers: nobody waits for an async call, so it may not borrow anything.
#[derive(Debug, Clone, Copy)]
pub enum AsyncFn {
    /// Gets its own record, already released: it may re-queue it, or find
    /// what the record is embedded in.
    Record(fn(&'static CallRecord<'static>)),
    /// Gets a fixed argument.
    Arg(fn(usize), usize),
}

#[derive(Clone, Copy)]
enum Run {
    /// SYNC: a waiting caller's closure; `data` is `&F`, `func` is
    /// [`call_closure::<F>`].
    Borrowed { func: unsafe fn(*const ()), data: *const () },
    /// ASYNC.
    Async(AsyncFn),
}

/// One cross-call request (a CSD). It is on at most one queue at a time:
/// only the holder of `LOCKED` may push it, and only the CPU that took it may
/// release it.
///
/// `'a` is how long a waiting record's closure is borrowed; non-waiting
/// records are always `CallRecord<'static>`.
pub struct CallRecord<'a> {
    /// The queue link. Written by the owner before the publishing CAS and by
    /// the consumer between `take_all` and release; never by two at once.
    next: UnsafeCell<*const CallRecord<'static>>,
    flags: AtomicU32,
    /// `sender << 32 | target`, for reports. Atomic because a sender that got
    /// [`Busy`] may read it while the owner rewrites it.
    route: AtomicU64,
    run: Run,
    name: &'static str,
    borrow: PhantomData<&'a ()>,
}

// SAFETY: the link is only touched by whoever owns the record (see `next`),
// handing it over through the LOCKED flag and the queue head's
// Release/Acquire; the call is immutable and is either `fn` pointers with a
// `usize`, or `&F` with `F: Sync`, which may be called from any CPU.
unsafe impl Sync for CallRecord<'_> {}
// SAFETY: as for `Sync`; nothing in a record is tied to the CPU that made it.
unsafe impl Send for CallRecord<'_> {}

/// # Safety
/// `data` is the `&F` stored by [`CallRecord::new_sync`], still borrowed.
unsafe fn call_closure<F: Fn()>(data: *const ()) {
    // SAFETY: per the contract; the borrow lasts while the record is locked,
    // and it is locked while its closure runs.
    unsafe { (*data.cast::<F>())() }
}

const fn route(from: CpuId, to: CpuId) -> u64 {
    (from.index() as u64) << 32 | to.index() as u64
}

fn cpu(bits: u64) -> CpuId {
    CpuId::new(bits as u32 as usize).expect("a route holds CpuIds")
}

impl<'a> CallRecord<'a> {
    /// A record for a call whose sender waits for it (SYNC): on the handler,
    /// `f` runs and only then is the record released, so after
    /// [`wait_released`](Self::wait_released) the sender sees all of `f`'s
    /// writes. It is born locked, ready for [`CallQueue::push`], and is
    /// meant for one call: it stays locked until that call has run.
    pub fn new_sync<F: Fn() + Sync>(f: &'a F, name: &'static str, from: CpuId, to: CpuId) -> Self {
        CallRecord {
            next: UnsafeCell::new(ptr::null()),
            flags: AtomicU32::new(LOCKED),
            route: AtomicU64::new(route(from, to)),
            run: Run::Borrowed { func: call_closure::<F>, data: ptr::from_ref(f).cast() },
            name,
            borrow: PhantomData,
        }
    }

    /// The function's name, for watchdog and offline reports.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The CPU that queued the current (or last) call.
    pub fn sender(&self) -> CpuId {
        // Relaxed: a report, it orders nothing.
        cpu(self.route.load(Relaxed) >> 32)
    }

    /// The CPU the current (or last) call was queued for.
    pub fn target(&self) -> CpuId {
        cpu(self.route.load(Relaxed))
    }

    /// Whether the sender waits: the handler runs it before releasing it.
    pub fn is_sync(&self) -> bool {
        matches!(self.run, Run::Borrowed { .. })
    }

    /// In flight: queued, or taken and not yet released.
    pub fn is_locked(&self) -> bool {
        // Acquire: pairs with the release, so a caller that sees `false`
        // also sees every write a SYNC function made.
        self.flags.load(Acquire) & LOCKED != 0
    }

    /// For a waiter about to halt (interrupts off): marks the record so that
    /// its release wakes the sender, and says whether it is still in flight.
    /// `false`: already released, do not halt. `true`: the release has not
    /// happened, and when it does, its [`Batch::run_waking`] calls the waker
    /// for this record's sender. Mark and release are read-modify-writes of
    /// the same word, so one of the two always sees the other: no wake-up is
    /// lost (`tests/callq_loom.rs`).
    pub fn mark_sleeping(&self) -> bool {
        // Acquire: when it finds the record released, the caller returns
        // and must see the function's writes, as `is_locked` would.
        self.flags.fetch_or(SLEEPING, Acquire) & LOCKED != 0
    }

    /// Awake again while the record may still be in flight: its release
    /// need not wake anyone now (a wake-up sent anyway is harmless).
    pub fn clear_sleeping(&self) {
        self.flags.fetch_and(!SLEEPING, Relaxed);
    }

    /// Spins until the handler releases the record, calling `on_spin` on
    /// every round: that is where the kernel's watchdog measures the wait,
    /// reports the stuck call and resends the doorbell. On return every write
    /// of a SYNC record's function is visible.
    pub fn wait_released(&self, mut on_spin: impl FnMut()) {
        while self.is_locked() {
            spin_hint();
            on_spin();
        }
    }

    /// # Safety
    /// The caller owns the record: locked and either not yet published or
    /// taken off its queue, and not yet released.
    unsafe fn link(&self) -> *const CallRecord<'static> {
        // SAFETY: per the contract nobody writes the link concurrently.
        self.next.with(|next| unsafe { *next })
    }

    /// # Safety
    /// As for [`link`](Self::link).
    unsafe fn set_link(&self, to: *const CallRecord<'static>) {
        // SAFETY: per the contract nobody else reads or writes the link.
        self.next.with_mut(|next| unsafe { *next = to })
    }
}

impl CallRecord<'static> {
    const_unless_loom! {
        /// A caller-owned record for calls nobody waits for (ASYNC): on the
        /// handler it is released first and then `f` runs, so `f` may
        /// re-queue it. Keep it in `'static` storage (a `static`, a per-CPU
        /// area) and queue it with [`CallQueue::push_async`].
        pub fn new_async(f: AsyncFn, name: &'static str) -> Self {
            CallRecord {
                next: UnsafeCell::new(ptr::null()),
                flags: AtomicU32::new(0),
                route: AtomicU64::new(0),
                run: Run::Async(f),
                name,
                borrow: PhantomData,
            }
        }
    }

    /// Claims the record for a call from `from` to `to`: [`Busy`] if it is
    /// still in flight. A SYNC record never becomes free again before its one
    /// call has run. After `Ok` the caller owns the record and must push it:
    /// there is no unlock.
    pub fn try_lock(&self, from: CpuId, to: CpuId) -> Result<(), Busy> {
        // Acquire: pairs with the previous run's release, so that handler's
        // reads of the link and the call happen before our push rewrites the
        // link.
        self.flags.compare_exchange(0, LOCKED, Acquire, Relaxed).map_err(|_| Busy)?;
        self.route.store(route(from, to), Relaxed);
        Ok(())
    }
}

/// One CPU's queue of pending calls.
///
/// Empty means no doorbell is owed. A CPU must come online with an empty
/// queue (docs/rules.md, Hotplug 6; story 2,
/// docs/stories/2-lost-ipis-during-hotplug.md): a leftover entry would be an
/// owed IPI that never comes, and every later sender would skip the doorbell
/// and hang. The dying flush empties it; on the way back up, `take_all()`
/// whatever a buggy sender queued meanwhile, warn if that batch is non-empty
/// and run it, and then `debug_assert!(queue.is_empty())` before setting the
/// CPU online.
pub struct CallQueue {
    /// Most recently pushed record first.
    head: AtomicPtr<CallRecord<'static>>,
}

impl CallQueue {
    const_unless_loom! {
        pub fn new() -> Self {
            CallQueue { head: AtomicPtr::new(ptr::null_mut()) }
        }
    }

    /// Queues `rec`. Returns `true` when the queue was empty: the caller then
    /// owes the target its doorbell IPI, and no other push does.
    ///
    /// # Safety
    /// - `rec` is locked and owned by the caller: a fresh
    ///   [`new_sync`](CallRecord::new_sync) record, or one whose
    ///   [`try_lock`](CallRecord::try_lock) just succeeded; pushed once per
    ///   lock, to one queue.
    /// - `rec` stays alive and unmoved, and whatever its function borrows
    ///   stays valid, until it is released. For a SYNC record that means
    ///   waiting with [`wait_released`](CallRecord::wait_released) before
    ///   it goes out of scope, on every path.
    /// - An ASYNC record is in `'static` storage: the handler still hands it
    ///   to its function after releasing it. ([`push_async`](Self::push_async)
    ///   checks all this by type.)
    pub unsafe fn push(&self, rec: &CallRecord<'_>) -> bool {
        debug_assert!(rec.is_locked(), "pushing a record that is not locked");
        let new = ptr::from_ref(rec).cast::<CallRecord<'static>>().cast_mut();
        let mut head = self.head.load(Relaxed);
        loop {
            // SAFETY: the caller owns `rec` and has not published it yet.
            unsafe { rec.set_link(head) };
            // Release: whoever takes the list must see the link and whatever
            // the caller wrote before queuing.
            match self.head.compare_exchange(head, new, Release, Relaxed) {
                Ok(_) => return head.is_null(),
                Err(now) => head = now,
            }
        }
    }

    /// Claims `rec` for a call from `from` to this queue's CPU `to` and
    /// queues it: `Ok(true)` means the caller owes the doorbell, [`Busy`]
    /// means the previous call on `rec` is still in flight and nothing was
    /// queued. Never blocks.
    pub fn push_async(&self, rec: &'static CallRecord<'static>, from: CpuId, to: CpuId) -> Result<bool, Busy> {
        rec.try_lock(from, to)?;
        // SAFETY: we just locked it; it lives forever and borrows nothing
        // that could end.
        Ok(unsafe { self.push(rec) })
    }

    /// Detaches every queued record, in the order they were queued. The
    /// queue is empty afterwards, so the next push owes a doorbell again.
    pub fn take_all(&self) -> Batch {
        // Acquire: pairs with the Release CAS of every push in the list (each
        // later CAS continues the earlier ones' release sequence).
        let mut lifo = self.head.swap(ptr::null_mut(), Acquire).cast_const();
        let (mut fifo, mut len) = (ptr::null(), 0);
        while !lifo.is_null() {
            // SAFETY: detached records are ours until released, and their
            // pushers finished with them before the CAS we acquired.
            let rec = unsafe { &*lifo };
            // SAFETY: as above.
            lifo = unsafe { rec.link() };
            // SAFETY: as above.
            unsafe { rec.set_link(fifo) };
            fifo = rec;
            len += 1;
        }
        Batch { head: fifo, len }
    }

    /// No call is queued, hence no doorbell is owed. A snapshot: only the
    /// owning CPU, with nobody allowed to send to it, can rely on it staying
    /// so.
    pub fn is_empty(&self) -> bool {
        // Relaxed: a snapshot for assertions and reports; it orders nothing.
        self.head.load(Relaxed).is_null()
    }
}

impl Default for CallQueue {
    fn default() -> Self {
        Self::new()
    }
}

/// Calls taken off a queue, oldest first, owned by the CPU that took them.
/// Look at them (for the offline warning) before running them; a batch is
/// never lost: dropping it runs whatever is left.
#[must_use = "a dropped batch runs at once; call `run` to say so"]
pub struct Batch {
    head: *const CallRecord<'static>,
    len: usize,
}

impl Batch {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.head.is_null()
    }

    /// The records, oldest first, e.g. for their [`name`](CallRecord::name)
    /// and [`sender`](CallRecord::sender) in a warning.
    pub fn iter(&self) -> impl Iterator<Item = &CallRecord<'_>> {
        let mut cur = self.head;
        core::iter::from_fn(move || {
            // SAFETY: the batch owns its records until it runs them, and
            // this borrow of the batch keeps it from running.
            let rec: &CallRecord<'_> = unsafe { cur.as_ref() }?;
            // SAFETY: as above.
            cur = unsafe { rec.link() };
            Some(rec)
        })
    }

    /// Runs the calls in FIFO order: a SYNC record runs, then is released;
    /// an ASYNC one is released, then runs. For callers whose senders never
    /// halt; the kernel's run [`run_waking`](Self::run_waking).
    pub fn run(mut self) {
        self.run_remaining(&mut |_| {});
    }

    /// [`run`](Self::run), calling `wake(sender)` for every SYNC record whose
    /// waiter marked it sleeping, right after its release.
    pub fn run_waking(mut self, mut wake: impl FnMut(CpuId)) {
        self.run_remaining(&mut wake);
    }

    fn run_remaining(&mut self, wake: &mut dyn FnMut(CpuId)) {
        while !self.head.is_null() {
            let this = self.head;
            // SAFETY: the batch owns the record until the release below; its
            // owner may free or re-queue it right after that, so everything
            // needed from it is read first.
            let rec = unsafe { &*this };
            // SAFETY: as above.
            self.head = unsafe { rec.link() };
            self.len -= 1;
            match rec.run {
                Run::Borrowed { func, data } => {
                    let sender = rec.sender();
                    // SAFETY: the record is still locked, so its sender is
                    // still waiting and the closure's borrow still live.
                    unsafe { func(data) };
                    if rec.release() {
                        wake(sender);
                    }
                }
                Run::Async(f) => {
                    let _ = rec.release();
                    match f {
                        // SAFETY: ASYNC records live in 'static storage
                        // (push's contract, push_async's types).
                        AsyncFn::Record(f) => f(unsafe { &*this }),
                        AsyncFn::Arg(f, arg) => f(arg),
                    }
                }
            }
        }
    }
}

/// A dropped batch runs what is left without waking halted senders: their
/// own alarm ends their halt (the kernel's waiters never halt without one).
impl Drop for Batch {
    fn drop(&mut self) {
        self.run_remaining(&mut |_| {});
    }
}

impl CallRecord<'_> {
    /// The last touch of a record by the CPU that ran it. True when its
    /// waiter marked it sleeping: the sender must be woken.
    pub(crate) fn release(&self) -> bool {
        // Release: publishes a SYNC function's writes to the waiter, and
        // orders our reads of the record before the next owner's writes. A
        // swap, not a store: the waiter may set SLEEPING at any moment, and
        // the mark and the release must see each other in one order.
        self.flags.swap(0, Release) & SLEEPING != 0
    }
}
