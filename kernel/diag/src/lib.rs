//! Diagnostics built on the kernel library, kept out of it so the shipped
//! kernel library holds no test or measuring code: the console shell
//! (`shell`), the randomized SMP torture (`torture`) and the in-guest
//! benchmarks (`bench`). The demonstration kernel links them for its
//! console; the test kernel for its stress tests and the bench.
#![no_std]

extern crate alloc;

pub mod bench;
pub mod shell;
pub mod torture;
