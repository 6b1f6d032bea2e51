//! Deliberately broken tests that show what failure looks like. They run
//! only with `cargo xtask test --examples`, which must then exit non-zero.

use crate::ktest;
use crate::ktest::{Failure, Outcome, Test};

pub const TESTS: &[Test] =
    &[ktest!(example_failing_test).example(), ktest!(example_hanging_test).example().fresh_boot().timeout_ms(3_000)];

fn example_failing_test() -> Outcome {
    Err(Failure("this example fails on purpose".into()))
}

fn example_hanging_test() -> Outcome {
    loop {
        core::hint::spin_loop();
    }
}
