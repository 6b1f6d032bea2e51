//! Time: the TSC, calibrated against the PIT at boot, and bounded waits.
//!
//! Absolute times under TCG are emulated; they serve timeouts and reports,
//! never test verdicts.

use core::sync::atomic::{AtomicU64, Ordering};

static TSC_PER_US: AtomicU64 = AtomicU64::new(0);
static BOOT_TSC: AtomicU64 = AtomicU64::new(0);

/// The timestamp counter.
pub fn rdtsc() -> u64 {
    crate::arch::cpu::timestamp()
}

/// Measures the TSC rate against 10 ms of PIT channel 2. Boot CPU, once.
pub fn calibrate() {
    BOOT_TSC.store(rdtsc(), Ordering::Relaxed);
    let per_us = crate::arch::cpu::measure_timestamp_per_us(10_000);
    TSC_PER_US.store(per_us.max(1), Ordering::Relaxed);
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
        let start = rdtsc();
        // Before calibration assume a slow 1 GHz TSC, so waits only get longer.
        let rate = match tsc_per_us() {
            0 => 1000,
            r => r,
        };
        Deadline { start, end: start.saturating_add(us.saturating_mul(rate)) }
    }

    pub fn after_ms(ms: u64) -> Deadline {
        Deadline::after_us(ms.saturating_mul(1000))
    }

    pub fn expired(&self) -> bool {
        rdtsc() >= self.end
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
