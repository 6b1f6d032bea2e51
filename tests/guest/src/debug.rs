//! Debugging aids: backtraces that survive a broken stack, and a panic deep
//! enough for the host to check its symbolized report.

use crate::ktest::{Outcome, Test};
use crate::{kassert, kassert_eq, ktest};
use kernel::backtrace::{self, End};

pub const TESTS: &[Test] = &[
    ktest!(backtrace_walks_the_callers),
    ktest!(backtrace_stops_cleanly_at_a_smashed_frame_chain),
    ktest!(panic_three_calls_deep).expect_panic("three calls deep").expect_backtrace("deep_three,deep_two,deep_one"),
];

#[inline(never)]
fn count_frames() -> usize {
    let mut n = 0;
    backtrace::walk(backtrace::current_rbp(), |_, _| n += 1);
    n
}

#[inline(never)]
fn one_deeper() -> usize {
    core::hint::black_box(count_frames())
}

fn backtrace_walks_the_callers() -> Outcome {
    let here = count_frames();
    let deeper = one_deeper();
    kassert!(here >= 3, "only {here} frames from a test");
    kassert_eq!(deeper, here + 1);
    Ok(())
}

/// A chain whose second frame points into unmapped memory, and one that
/// loops back on itself: both walks end as `Corrupt`, without faulting.
fn backtrace_stops_cleanly_at_a_smashed_frame_chain() -> Outcome {
    let mut frames = [0u64; 4];
    let base = frames.as_mut_ptr() as u64;
    // frame 0: next = frame 2 (higher), return address 0x1234
    frames[0] = base + 16;
    frames[1] = 0x1234;
    // frame 2: next = an unmapped, non-canonical-looking address
    frames[2] = 0x0000_7fff_dead_0000;
    frames[3] = 0x5678;
    // The walk reads the frames through raw pointers the compiler cannot see.
    core::hint::black_box(&mut frames);
    let mut seen = [0u64; 4];
    let end = backtrace::walk(base, |d, ret| seen[d] = ret);
    kassert_eq!(end, End::Corrupt(0x0000_7fff_dead_0000));
    kassert_eq!(&seen[..2], &[0x1234, 0x5678]);
    // A loop: frame points back at itself.
    frames[0] = base;
    core::hint::black_box(&mut frames);
    let end = backtrace::walk(base, |_, _| {});
    kassert_eq!(end, End::Corrupt(base));
    Ok(())
}

#[inline(never)]
fn deep_three() {
    panic!("three calls deep");
}

#[inline(never)]
fn deep_two() {
    deep_three();
    core::hint::black_box(());
}

#[inline(never)]
fn deep_one() {
    deep_two();
    core::hint::black_box(());
}

fn panic_three_calls_deep() -> Outcome {
    deep_one();
    Ok(())
}
