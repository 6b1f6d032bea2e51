//! Time: the TSC, calibrated against the PIT at boot, and bounded waits.
//!
//! Absolute times under TCG are emulated; they serve timeouts and reports,
//! never test verdicts.

use core::sync::atomic::{AtomicU64, Ordering};

use smp_core::rate::{self, Choice, Source};

static TSC_PER_US: AtomicU64 = AtomicU64::new(0);
static BOOT_TSC: AtomicU64 = AtomicU64::new(0);

/// The timestamp counter.
pub fn rdtsc() -> u64 {
    crate::arch::cpu::timestamp()
}

/// Timed windows per round of calibration, and rounds before giving up on
/// the measurement.
const WINDOWS: usize = 3;
const ROUNDS: usize = 3;
const WINDOW_US: u64 = 10_000;

/// How the timestamp rate was chosen, for the boot log and the tests.
#[derive(Clone, Copy, Debug)]
pub struct Calibration {
    pub choice: Choice,
    /// The last round's windows, MHz (`None`: the PIT never ran out).
    pub windows: [Option<u64>; WINDOWS],
    pub cpuid_mhz: Option<u64>,
    pub rounds: usize,
}

static CALIBRATION: spin::Once<Calibration> = spin::Once::new();

/// Measures the timestamp rate against the PIT, cross-checked against
/// itself and the CPU's word (`smp_core::rate`), and says what it used.
/// Boot CPU, once.
pub fn calibrate() {
    BOOT_TSC.store(rdtsc(), Ordering::Relaxed);
    let cpuid_mhz = crate::arch::cpu::timestamp_mhz_from_cpuid();
    let mut windows = [None; WINDOWS];
    let mut rounds = 0;
    let choice = loop {
        rounds += 1;
        for w in &mut windows {
            *w = crate::arch::cpu::measure_timestamp_mhz(WINDOW_US).map(distorted_for_a_test);
        }
        let choice = rate::choose(&windows, cpuid_mhz);
        if choice.source == Source::Measured || rounds == ROUNDS {
            break choice;
        }
    };
    TSC_PER_US.store(choice.mhz, Ordering::Relaxed);
    let c = CALIBRATION.call_once(|| Calibration { choice, windows, cpuid_mhz, rounds });
    match c.choice.source {
        Source::Measured if c.choice.cpuid_disagrees => log::warn!(
            "TSC: {} MHz measured, but CPUID says {:?} MHz; using the measurement ({:?})",
            c.choice.mhz,
            c.cpuid_mhz,
            c.windows
        ),
        Source::Measured => log::info!("TSC: {} MHz measured against the PIT ({:?})", c.choice.mhz, c.windows),
        Source::Cpuid => log::warn!(
            "TSC: the PIT windows are not believable after {rounds} rounds ({:?}); using CPUID's {} MHz",
            c.windows,
            c.choice.mhz
        ),
        Source::Fallback => log::error!(
            "TSC: neither the PIT ({:?}, {rounds} rounds) nor CPUID gives a believable rate; assuming {} MHz, \
             so every timeout is approximate",
            c.windows,
            c.choice.mhz
        ),
    }
}

/// Test kernel only: `time.test_skew_pit=N` makes each timed window read
/// slower than the one before, by another factor of N, as windows do on an
/// emulator with far more vCPUs than host cores.
fn distorted_for_a_test(mhz: u64) -> u64 {
    #[cfg(feature = "test-hooks")]
    {
        static WINDOW: AtomicU64 = AtomicU64::new(0);
        let n = crate::params::get_u64("time.test_skew_pit", 1).max(1);
        mhz / n.pow(WINDOW.fetch_add(1, Ordering::Relaxed) as u32 % 3)
    }
    #[cfg(not(feature = "test-hooks"))]
    mhz
}

/// How the rate was chosen (`None` before [`calibrate`]).
pub fn calibration() -> Option<&'static Calibration> {
    CALIBRATION.get()
}

/// TSC ticks per microsecond (0 before calibration).
pub fn tsc_per_us() -> u64 {
    TSC_PER_US.load(Ordering::Relaxed)
}

/// Microseconds since [`calibrate`] (0 before).
pub fn uptime_us() -> u64 {
    match tsc_per_us() {
        0 => 0,
        r => rdtsc().saturating_sub(BOOT_TSC.load(Ordering::Relaxed)) / r,
    }
}

pub fn ticks_to_us(ticks: u64) -> u64 {
    ticks / tsc_per_us().max(1)
}

/// A point in time after which a bounded wait gives up.
#[derive(Clone, Copy, Debug)]
pub struct Deadline {
    start: u64,
    end: u64,
}

impl Deadline {
    pub fn after_us(us: u64) -> Deadline {
        Deadline { start: rdtsc(), end: 0 }.from_start_us(us)
    }

    pub fn after_ms(ms: u64) -> Deadline {
        Deadline::after_us(ms.saturating_mul(1000))
    }

    pub fn expired(&self) -> bool {
        rdtsc() >= self.end
    }

    /// The timestamp it expires at (what an alarm is set to).
    pub fn timestamp(&self) -> u64 {
        self.end
    }

    /// The deadline `us` microseconds after this one started.
    pub fn from_start_us(&self, us: u64) -> Deadline {
        // Before calibration assume a slow 1 GHz TSC, so waits only get longer.
        let rate = match tsc_per_us() {
            0 => 1000,
            r => r,
        };
        Deadline { start: self.start, end: self.start.saturating_add(us.saturating_mul(rate)) }
    }

    pub fn elapsed_us(&self) -> u64 {
        ticks_to_us(rdtsc().saturating_sub(self.start))
    }
}

/// Spins for `us` microseconds.
pub fn delay_us(us: u64) {
    let d = Deadline::after_us(us);
    while !d.expired() {
        core::hint::spin_loop();
    }
}

/// How many spins of a latency-sensitive wait pass between two looks at the
/// clock. A TSC read costs more than a look at memory under TCG (README,
/// Performance) and would slow the waiter's noticing; a timeout measured in
/// milliseconds loses nothing by looking less often.
pub const SPINS_PER_CLOCK_READ: u32 = 64;

/// Spins until `done()` holds or `us` microseconds pass (looking at the
/// clock every [`SPINS_PER_CLOCK_READ`] spins); true if it held.
pub fn wait_until(us: u64, mut done: impl FnMut() -> bool) -> bool {
    let d = Deadline::after_us(us);
    let mut spins = 0u32;
    loop {
        if done() {
            return true;
        }
        spins = spins.wrapping_add(1);
        if spins.is_multiple_of(SPINS_PER_CLOCK_READ) && d.expired() {
            return done();
        }
        core::hint::spin_loop();
    }
}
