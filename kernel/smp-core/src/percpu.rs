//! One value per CPU, indexed by the logical CPU id: the one per-CPU storage
//! type, for every piece of state the kernel keeps per CPU.
//!
//! Storage is sized at boot from the firmware's CPU count, not by a
//! compile-time ceiling: the boot CPU's slot lives in the static itself
//! (it is used before the heap and the CPU list exist), and the other CPUs'
//! slots are one heap slice that [`size_all`] allocates once, after the
//! firmware's CPU list is read and before the first other CPU starts. Every
//! `PerCpu` is declared through [`per_cpu!`], which also enters it in a
//! link-time registry, so `size_all` reaches every one of them and no slot is
//! ever allocated later (a first touch in a panic or an NMI must not call the
//! allocator, which the interrupted code may hold).
//!
//! Callers reach a slot only through [`PerCpu::of`] and [`PerCpu::iter`]
//! (and the kernel's `this()`, for the running CPU), never by index.
//!
//! Slots that many CPUs write, or that a hot path reads while another CPU
//! writes its neighbour, hold a `crossbeam_utils::CachePadded` value.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};

use crate::cpu::{CpuId, MAX_CPUS};

#[doc(hidden)]
pub use linkme;

/// Every `PerCpu` in the program, entered by [`per_cpu!`].
#[doc(hidden)]
#[linkme::distributed_slice]
pub static REGISTRY: [&'static dyn Sizable] = [..];

/// The CPU count [`size_all`] sized the storage for (1 before it ran).
static POSSIBLE: AtomicUsize = AtomicUsize::new(1);

/// One `T` per CPU. Declare with [`per_cpu!`].
pub struct PerCpu<T: 'static> {
    boot: T,
    init: fn(CpuId) -> T,
    /// The slots of CPUs `1..`, a leaked boxed slice; null until sized.
    others: AtomicPtr<T>,
    others_len: AtomicUsize,
    sizing: AtomicBool,
}

/// Storage that [`size_all`] can size, whatever its slot type.
#[doc(hidden)]
pub trait Sizable: Sync {
    fn size_for(&self, possible: usize);
}

impl<T: Sync> Sizable for PerCpu<T> {
    fn size_for(&self, possible: usize) {
        if self.sizing.swap(true, Ordering::AcqRel) {
            return;
        }
        let slots: Vec<T> = (1..possible).map(|i| (self.init)(CpuId::new(i).expect("sized within MAX_CPUS"))).collect();
        let slots = Box::leak(slots.into_boxed_slice());
        self.others_len.store(slots.len(), Ordering::Relaxed);
        self.others.store(slots.as_mut_ptr(), Ordering::Release);
    }
}

impl<T> PerCpu<T> {
    /// Storage whose boot slot is `boot` and whose other slots will be
    /// `init(cpu)`. Use [`per_cpu!`], which registers it for [`size_all`].
    #[doc(hidden)]
    pub const fn new(boot: T, init: fn(CpuId) -> T) -> PerCpu<T> {
        PerCpu {
            boot,
            init,
            others: AtomicPtr::new(core::ptr::null_mut()),
            others_len: AtomicUsize::new(0),
            sizing: AtomicBool::new(false),
        }
    }

    fn others(&self) -> &[T] {
        let ptr = self.others.load(Ordering::Acquire);
        if ptr.is_null() {
            return &[];
        }
        // SAFETY: `size_for` published `ptr` (Release, read Acquire above)
        // after storing the length, from a leaked boxed slice that is never
        // freed or written through a unique reference again.
        unsafe { core::slice::from_raw_parts(ptr, self.others_len.load(Ordering::Relaxed)) }
    }

    /// `cpu`'s slot. Panics for a CPU beyond the count the storage was sized
    /// for: no such CPU id is ever handed out.
    #[inline]
    pub fn of(&self, cpu: CpuId) -> &T {
        match cpu.index().checked_sub(1) {
            None => &self.boot,
            Some(i) => self
                .others()
                .get(i)
                .unwrap_or_else(|| panic!("{cpu} has no per-CPU slot: storage is sized for {} CPUs", possible())),
        }
    }

    /// Every CPU's slot, in CPU order (only the boot CPU's before sizing).
    pub fn iter(&self) -> impl Iterator<Item = (CpuId, &T)> {
        core::iter::once(&self.boot)
            .chain(self.others())
            .enumerate()
            .map(|(i, slot)| (CpuId::new(i).expect("a slot per CPU id"), slot))
    }
}

impl<T: core::fmt::Debug> core::fmt::Debug for PerCpu<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PerCpu").finish_non_exhaustive()
    }
}

/// Sizes every `PerCpu` for CPUs `0..possible`. The kernel calls it once,
/// from the boot CPU, after reading the firmware's CPU list and before any
/// other CPU runs; storage already sized keeps its slots.
pub fn size_all(possible: usize) {
    assert!((1..=MAX_CPUS).contains(&possible), "{possible} CPUs: per-CPU storage holds 1..={MAX_CPUS}");
    POSSIBLE.store(possible, Ordering::Relaxed);
    for storage in REGISTRY {
        storage.size_for(possible);
    }
}

/// How many CPUs the per-CPU storage holds: the highest possible CPU id
/// plus one, once [`size_all`] ran.
pub fn possible() -> usize {
    POSSIBLE.load(Ordering::Relaxed)
}

/// Declares per-CPU storage, `static NAME: PerCpu<T> = init;`, where `init`
/// is a const expression for each slot, or `|cpu| init` when a slot needs
/// its CPU's id. The storage is registered for [`size_all`].
#[macro_export]
macro_rules! per_cpu {
    ($(#[$meta:meta])* $vis:vis static $name:ident: PerCpu<$t:ty> = |$cpu:ident| $init:expr;) => {
        $(#[$meta])*
        $vis static $name: $crate::PerCpu<$t> = {
            const fn init($cpu: $crate::CpuId) -> $t {
                $init
            }
            $crate::PerCpu::new(init($crate::CpuId::BOOT), init)
        };
        const _: () = {
            #[$crate::percpu::linkme::distributed_slice($crate::percpu::REGISTRY)]
            #[linkme(crate = $crate::percpu::linkme)]
            static ENTRY: &'static dyn $crate::percpu::Sizable = &$name;
        };
    };
    ($(#[$meta:meta])* $vis:vis static $name:ident: PerCpu<$t:ty> = $init:expr;) => {
        $crate::per_cpu! { $(#[$meta])* $vis static $name: PerCpu<$t> = |_cpu| $init; }
    };
}

#[cfg(test)]
mod tests {
    use core::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    per_cpu! {
        static COUNTS: PerCpu<AtomicU32> = AtomicU32::new(0);
    }
    per_cpu! {
        static IDS: PerCpu<usize> = |cpu| cpu.index() * 10;
    }

    #[test]
    fn every_cpu_has_its_own_slot_once_sized() {
        // Before sizing only the boot CPU's slot exists.
        assert_eq!(COUNTS.iter().count(), 1);
        size_all(5);
        assert_eq!(possible(), 5);
        let last = CpuId::new(4).unwrap();
        COUNTS.of(last).fetch_add(1, Ordering::Relaxed);
        COUNTS.of(CpuId::BOOT).fetch_add(2, Ordering::Relaxed);
        let seen: Vec<(usize, u32)> =
            COUNTS.iter().map(|(c, n)| (c.index(), n.load(Ordering::Relaxed))).filter(|(_, n)| *n > 0).collect();
        assert_eq!(seen, [(0, 2), (4, 1)]);
        assert_eq!(COUNTS.iter().count(), 5);
        // Each slot was made for its own CPU.
        assert_eq!(IDS.iter().map(|(_, v)| *v).collect::<Vec<_>>(), [0, 10, 20, 30, 40]);
        // Sizing again keeps the slots (and what they hold).
        size_all(5);
        assert_eq!(COUNTS.of(last).load(Ordering::Relaxed), 1);
        // A CPU beyond the count has no slot: a clear panic, not a stray write.
        let beyond = std::panic::catch_unwind(|| COUNTS.of(CpuId::new(5).unwrap()).load(Ordering::Relaxed));
        assert!(beyond.is_err());
    }
}
