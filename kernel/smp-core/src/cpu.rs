//! CPU identities and CPU masks.
//!
//! A [`CpuId`] is a dense logical index (0..N, the boot CPU is 0); an
//! [`ApicId`] is the hardware id from the MADT (sparse, may exceed 255 under
//! x2APIC). They are separate types so one can never be passed for the other.

use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};

/// The most CPUs the kernel manages: the width of a [`CpuSet`] and the
/// ceiling of a [`CpuId`]. 4096 is what QEMU's q35 models and covers
/// today's largest servers. Per-CPU storage is not this big: it is sized at
/// boot for the CPUs the firmware lists (`percpu`).
pub const MAX_CPUS: usize = 4096;

const WORDS: usize = MAX_CPUS.div_ceil(64);

/// Dense logical CPU index, `0..MAX_CPUS`. The boot CPU is `CpuId(0)`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CpuId(u32);

impl CpuId {
    pub const BOOT: CpuId = CpuId(0);

    /// `None` when `index` is not below [`MAX_CPUS`].
    pub const fn new(index: usize) -> Option<CpuId> {
        if index < MAX_CPUS { Some(CpuId(index as u32)) } else { None }
    }

    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Debug for CpuId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cpu{}", self.0)
    }
}

impl fmt::Display for CpuId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cpu{}", self.0)
    }
}

/// Hardware local APIC id: 8 bits in xAPIC mode, 32 bits in x2APIC mode.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApicId(pub u32);

impl ApicId {
    /// Whether an xAPIC (8-bit destination) can address this id.
    pub const fn fits_xapic(self) -> bool {
        self.0 < 0xFF
    }
}

impl fmt::Debug for ApicId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "apic#{}", self.0)
    }
}

impl fmt::Display for ApicId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "apic#{}", self.0)
    }
}

/// A plain (non-atomic) set of CPUs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct CpuSet([u64; WORDS]);

impl Default for CpuSet {
    fn default() -> CpuSet {
        CpuSet::EMPTY
    }
}

impl CpuSet {
    pub const EMPTY: CpuSet = CpuSet([0; WORDS]);

    pub fn single(cpu: CpuId) -> CpuSet {
        let mut s = CpuSet::EMPTY;
        s.insert(cpu);
        s
    }

    /// The CPUs `0..n`.
    pub fn first_n(n: usize) -> CpuSet {
        let mut s = CpuSet::EMPTY;
        for i in 0..n.min(MAX_CPUS) {
            s.insert(CpuId(i as u32));
        }
        s
    }

    pub fn insert(&mut self, cpu: CpuId) {
        self.0[cpu.index() / 64] |= 1 << (cpu.index() % 64);
    }

    pub fn remove(&mut self, cpu: CpuId) {
        self.0[cpu.index() / 64] &= !(1 << (cpu.index() % 64));
    }

    pub fn contains(&self, cpu: CpuId) -> bool {
        self.0[cpu.index() / 64] & (1 << (cpu.index() % 64)) != 0
    }

    pub fn len(&self) -> usize {
        self.0.iter().map(|w| w.count_ones() as usize).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|&w| w == 0)
    }

    pub fn intersection(&self, other: &CpuSet) -> CpuSet {
        let mut out = *self;
        for (a, b) in out.0.iter_mut().zip(other.0.iter()) {
            *a &= *b;
        }
        out
    }

    pub fn union(&self, other: &CpuSet) -> CpuSet {
        let mut out = *self;
        for (a, b) in out.0.iter_mut().zip(other.0.iter()) {
            *a |= *b;
        }
        out
    }

    pub fn difference(&self, other: &CpuSet) -> CpuSet {
        let mut out = *self;
        for (a, b) in out.0.iter_mut().zip(other.0.iter()) {
            *a &= !*b;
        }
        out
    }

    /// The members in ascending order. Visits words, not bits: a set of a
    /// few CPUs out of 4096 costs 64 word reads, not 4096 tests.
    pub fn iter(&self) -> impl Iterator<Item = CpuId> + '_ {
        self.0.iter().enumerate().flat_map(|(w, &word)| {
            let mut rest = word;
            core::iter::from_fn(move || {
                if rest == 0 {
                    return None;
                }
                let bit = rest.trailing_zeros();
                rest &= rest - 1;
                Some(CpuId((w * 64) as u32 + bit))
            })
        })
    }
}

impl fmt::Debug for CpuSet {
    /// Prints ranges, as Linux's `%*pbl`: `{0-3,6}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        let mut first = true;
        let mut i = 0;
        while i < MAX_CPUS {
            if !self.contains(CpuId(i as u32)) {
                i += 1;
                continue;
            }
            let start = i;
            while i + 1 < MAX_CPUS && self.contains(CpuId(i as u32 + 1)) {
                i += 1;
            }
            if !first {
                f.write_str(",")?;
            }
            first = false;
            if start == i {
                write!(f, "{start}")?
            } else {
                write!(f, "{start}-{i}")?
            }
            i += 1;
        }
        f.write_str("}")
    }
}

/// A set of CPUs that CPUs update concurrently (the `online` mask and the
/// like). Single-bit updates are atomic; a snapshot is not a consistent cut
/// across words unless the writers are serialised, which hotplug guarantees.
pub struct AtomicCpuSet([AtomicU64; WORDS]);

impl AtomicCpuSet {
    #[allow(clippy::declare_interior_mutable_const)]
    const ZERO: AtomicU64 = AtomicU64::new(0);

    pub const fn new() -> AtomicCpuSet {
        AtomicCpuSet([Self::ZERO; WORDS])
    }

    pub fn insert(&self, cpu: CpuId) {
        self.0[cpu.index() / 64].fetch_or(1 << (cpu.index() % 64), Ordering::SeqCst);
    }

    pub fn remove(&self, cpu: CpuId) {
        self.0[cpu.index() / 64].fetch_and(!(1 << (cpu.index() % 64)), Ordering::SeqCst);
    }

    pub fn contains(&self, cpu: CpuId) -> bool {
        self.0[cpu.index() / 64].load(Ordering::SeqCst) & (1 << (cpu.index() % 64)) != 0
    }

    pub fn snapshot(&self) -> CpuSet {
        let mut out = CpuSet::EMPTY;
        for (o, w) in out.0.iter_mut().zip(self.0.iter()) {
            *o = w.load(Ordering::SeqCst);
        }
        out
    }

    pub fn len(&self) -> usize {
        self.snapshot().len()
    }

    pub fn is_empty(&self) -> bool {
        self.snapshot().is_empty()
    }
}

impl Default for AtomicCpuSet {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_operations() {
        let mut a = CpuSet::first_n(4);
        a.insert(CpuId::new(70).unwrap());
        assert_eq!(a.len(), 5);
        let b = CpuSet::single(CpuId::new(2).unwrap());
        assert_eq!(a.difference(&b).len(), 4);
        assert_eq!(a.intersection(&b), b);
        assert_eq!(format!("{a:?}"), "{0-3,70}");
        assert_eq!(a.iter().map(CpuId::index).collect::<Vec<_>>(), [0, 1, 2, 3, 70]);
    }

    #[test]
    fn ids_are_bounded() {
        assert!(CpuId::new(MAX_CPUS).is_none());
        assert!(ApicId(254).fits_xapic());
        assert!(!ApicId(255).fits_xapic());
    }

    #[test]
    fn atomic_set_tracks_members() {
        let s = AtomicCpuSet::new();
        s.insert(CpuId::new(300).unwrap());
        s.insert(CpuId::BOOT);
        s.remove(CpuId::BOOT);
        assert!(s.contains(CpuId::new(300).unwrap()));
        assert_eq!(s.len(), 1);
    }
}
