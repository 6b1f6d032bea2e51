//! One value per CPU, indexed by the logical CPU id: the one per-CPU storage
//! type, for every piece of state the kernel keeps per CPU.
//!
//! Callers reach a slot only through [`PerCpu::of`] and [`PerCpu::iter`]
//! (and the kernel's `this()`, for the running CPU), never by index, so the
//! storage behind them can change without touching them. Today it is an
//! array of [`MAX_CPUS`] slots; sizing it at boot from the firmware's CPU
//! count is a change inside this type alone.
//!
//! Slots that many CPUs write, or that a hot path reads while another CPU
//! writes its neighbour, hold a `crossbeam_utils::CachePadded` value.

use crate::cpu::{CpuId, MAX_CPUS};

/// One `T` per CPU.
pub struct PerCpu<T> {
    slots: [T; MAX_CPUS],
}

impl<T> PerCpu<T> {
    /// Storage whose every slot starts as given (`[const { ... }; MAX_CPUS]`).
    pub const fn new(slots: [T; MAX_CPUS]) -> PerCpu<T> {
        PerCpu { slots }
    }

    /// `cpu`'s slot.
    #[inline]
    pub fn of(&self, cpu: CpuId) -> &T {
        &self.slots[cpu.index()]
    }

    /// Every CPU's slot, in CPU order.
    pub fn iter(&self) -> impl Iterator<Item = (CpuId, &T)> {
        self.slots.iter().enumerate().map(|(i, slot)| (CpuId::new(i).expect("a slot per CPU id"), slot))
    }
}

impl<T: core::fmt::Debug> core::fmt::Debug for PerCpu<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PerCpu").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use core::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[test]
    fn every_cpu_has_its_own_slot() {
        static COUNTS: PerCpu<AtomicU32> = PerCpu::new([const { AtomicU32::new(0) }; MAX_CPUS]);
        let last = CpuId::new(MAX_CPUS - 1).unwrap();
        COUNTS.of(last).fetch_add(1, Ordering::Relaxed);
        COUNTS.of(CpuId::BOOT).fetch_add(2, Ordering::Relaxed);
        let seen: Vec<(usize, u32)> =
            COUNTS.iter().map(|(c, n)| (c.index(), n.load(Ordering::Relaxed))).filter(|(_, n)| *n > 0).collect();
        assert_eq!(seen, [(0, 2), (MAX_CPUS - 1, 1)]);
        assert_eq!(COUNTS.iter().count(), MAX_CPUS);
    }
}
