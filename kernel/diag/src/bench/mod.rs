//! Timing SMP operations: many samples of one, reduced to a median and a
//! p99, and the floor to compare them with (a shared-memory ping-pong
//! between two CPUs, no IPI). Used by the measurements of `cargo xtask
//! bench` (`run`) and by the console's `bench` command. Times under
//! an emulator are the emulator's, hence the floor from the same boot.

pub mod run;

use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use kernel::CpuId;
use kernel::smp::worker;
use kernel::time;

/// How long one ping-pong round may take before it is given up on (the
/// partner was taken away, say), and how long the partner may take to stop.
const ROUND_TIMEOUT_MS: u64 = 1_000;
const PARTNER_STOP_US: u64 = 1_000_000;

pub fn ns(ticks: u64) -> u64 {
    ticks * 1000 / time::tsc_per_us().max(1)
}

/// Times `f` `n` times, in ns.
pub fn sample(n: usize, mut f: impl FnMut()) -> Vec<u64> {
    (0..n)
        .map(|_| {
            let t = time::rdtsc();
            f();
            ns(time::rdtsc() - t)
        })
        .collect()
}

/// Median and 99th percentile of a set of samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Summary {
    pub median: u64,
    pub p99: u64,
    pub samples: usize,
}

/// `None` for no samples.
pub fn summarize(mut samples: Vec<u64>) -> Option<Summary> {
    if samples.is_empty() {
        return None;
    }
    samples.sort_unstable();
    let n = samples.len();
    Some(Summary { median: samples[n / 2], p99: samples[(n * 99 / 100).min(n - 1)], samples: n })
}

static PINGPONG: AtomicU64 = AtomicU64::new(0);
static PONG_STOP: AtomicBool = AtomicBool::new(false);

/// The partner of the ping-pong: answers every odd value with the next one.
fn pong(_: usize) {
    while !PONG_STOP.load(Ordering::Acquire) {
        let v = PINGPONG.load(Ordering::Acquire);
        if v % 2 == 1 {
            PINGPONG.store(v + 1, Ordering::Release);
        }
        core::hint::spin_loop();
    }
}

/// `n` round trips of a value through `partner` by shared memory alone, in
/// ns each; empty if `partner` could not take the job (offline or busy).
pub fn pingpong(partner: CpuId, n: usize) -> Vec<u64> {
    PONG_STOP.store(false, Ordering::SeqCst);
    PINGPONG.store(0, Ordering::SeqCst);
    if worker::spawn(partner, pong, 0).is_err() {
        return Vec::new();
    }
    let samples = sample(n, || {
        let v = PINGPONG.load(Ordering::Acquire) + 1;
        PINGPONG.store(v, Ordering::Release);
        // `wait_until` reads the clock as seldom as a call's wait does, so
        // the floor does not pay for it where a call does not.
        time::wait_until(ROUND_TIMEOUT_MS * 1000, || PINGPONG.load(Ordering::Acquire) == v + 1);
    });
    PONG_STOP.store(true, Ordering::SeqCst);
    time::wait_until(PARTNER_STOP_US, || worker::is_free(partner));
    samples
}
