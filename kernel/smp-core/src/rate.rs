//! Choosing the timestamp counter's rate from witnesses that may disagree:
//! windows timed against a known clock (the PIT), and the rate the CPU
//! itself reports (CPUID leaves 0x15/0x16), when it does.
//!
//! An emulator with far more vCPUs than host cores distorts the timed
//! windows (1024 vCPUs on 2 cores once measured 18 MHz for a ~2600 MHz
//! TSC), and a wrong rate makes every bounded wait in the kernel 100 times
//! too short or too long. So a measurement is believed only if it is
//! plausible and its windows agree with each other; otherwise the CPU's own
//! word, otherwise a fallback, and the choice always says which it made.
//!
//! "Plausible" must include emulators: Bochs's TSC runs at its instruction
//! rate, 10 MHz by default, and steadily so. A slow rate alone is therefore
//! no sign of distortion; windows that disagree are.

use core::ops::RangeInclusive;

/// Rates (MHz) a timestamp counter can have, emulators' included.
pub const PLAUSIBLE_MHZ: RangeInclusive<u64> = 1..=10_000;
/// How far apart (percent of the smallest) a measurement's windows, or a
/// measurement and the CPU's word, may be and still agree.
pub const AGREE_PERCENT: u64 = 25;
/// The rate used when nothing can be believed: wrong, but within a small
/// factor of every x86 CPU of the last fifteen years.
pub const FALLBACK_MHZ: u64 = 2_000;

/// Where the chosen rate came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The timed windows: plausible, and agreeing with each other.
    Measured,
    /// The CPU's own word, the windows not being believable.
    Cpuid,
    /// Nothing believable: [`FALLBACK_MHZ`].
    Fallback,
}

/// The rate chosen, and how.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Choice {
    pub mhz: u64,
    pub source: Source,
    /// Measured, but the CPU's word (also plausible) differs by more than
    /// [`AGREE_PERCENT`]: worth a warning, though the measurement wins.
    pub cpuid_disagrees: bool,
}

fn agree(a: u64, b: u64) -> bool {
    let (lo, hi) = (a.min(b), a.max(b));
    lo > 0 && (hi - lo) * 100 <= lo * AGREE_PERCENT
}

/// Chooses from `windows` (MHz per timed window; `None` for a window whose
/// clock never ran out) and `cpuid_mhz`.
pub fn choose(windows: &[Option<u64>], cpuid_mhz: Option<u64>) -> Choice {
    let cpuid = cpuid_mhz.filter(|m| PLAUSIBLE_MHZ.contains(m));
    let mut seen = [0u64; 16];
    let mut n = 0;
    for w in windows.iter().flatten().filter(|m| PLAUSIBLE_MHZ.contains(m)) {
        if n < seen.len() {
            seen[n] = *w;
            n += 1;
        }
    }
    let seen = &mut seen[..n];
    seen.sort_unstable();
    // Believed: every window plausible, and all agreeing.
    let measured = (n > 0 && n == windows.len() && agree(seen[0], seen[n - 1])).then(|| seen[n / 2]);
    match (measured, cpuid) {
        (Some(mhz), c) => Choice { mhz, source: Source::Measured, cpuid_disagrees: c.is_some_and(|c| !agree(mhz, c)) },
        (None, Some(mhz)) => Choice { mhz, source: Source::Cpuid, cpuid_disagrees: false },
        (None, None) => Choice { mhz: FALLBACK_MHZ, source: Source::Fallback, cpuid_disagrees: false },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agreeing_plausible_windows_are_believed() {
        let c = choose(&[Some(2590), Some(2601), Some(2593)], None);
        assert_eq!(c, Choice { mhz: 2593, source: Source::Measured, cpuid_disagrees: false });
    }

    #[test]
    fn the_distorted_windows_of_an_overcommitted_emulator_are_not() {
        // Many vCPUs on few host cores: each window distorted differently.
        assert_eq!(choose(&[Some(18), Some(240), Some(2600)], Some(2600)).source, Source::Cpuid);
        assert_eq!(choose(&[Some(18), Some(240), Some(2600)], None).source, Source::Fallback);
        assert_eq!(choose(&[Some(18), Some(240), Some(2600)], None).mhz, FALLBACK_MHZ);
        // Steady but far from what the CPU says: measured, with a warning.
        assert!(choose(&[Some(18), Some(17), Some(19)], Some(2600)).cpuid_disagrees);
    }

    #[test]
    fn an_emulators_slow_but_steady_clock_is_believed() {
        // Bochs: the TSC runs at its instruction rate, 10 MHz by default.
        assert_eq!(choose(&[Some(10), Some(10), Some(10)], None).source, Source::Measured);
        assert_eq!(choose(&[Some(0), Some(0), Some(0)], None).source, Source::Fallback);
    }

    #[test]
    fn windows_that_disagree_with_each_other_are_not_believed() {
        assert_eq!(choose(&[Some(2600), Some(900), Some(2600)], Some(2600)).source, Source::Cpuid);
        assert_eq!(choose(&[Some(2600), Some(3200)], None).source, Source::Measured);
        assert_eq!(choose(&[Some(2600), Some(3300)], None).source, Source::Fallback);
    }

    #[test]
    fn a_clock_that_never_ran_out_is_no_witness() {
        assert_eq!(choose(&[Some(2600), None, Some(2600)], None).source, Source::Fallback);
        assert_eq!(choose(&[], Some(3000)), Choice { mhz: 3000, source: Source::Cpuid, cpuid_disagrees: false });
    }

    #[test]
    fn the_measurement_wins_over_a_disagreeing_cpu_but_says_so() {
        let c = choose(&[Some(2600), Some(2610), Some(2605)], Some(1800));
        assert_eq!((c.mhz, c.source, c.cpuid_disagrees), (2605, Source::Measured, true));
        // An implausible CPUID value is no witness at all.
        assert!(!choose(&[Some(2600)], Some(50_000)).cpuid_disagrees);
    }
}
