//! The kernel's foundations: serial, exceptions, stacks, heap, memory.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use crate::ktest::{Outcome, Test};
use crate::{kassert, kassert_eq, ktest};
use kernel::arch::x86_64::exceptions;
use kernel::mem::{vmem, wx};
use smp_core::rate::{self, Source};

pub const TESTS: &[Test] = &[
    ktest!(serial_and_log_lines),
    ktest!(log_lines_reach_the_framebuffer),
    ktest!(boot_parameters_reach_the_kernel).params("ktest.probe=hello world"),
    ktest!(the_tsc_rate_was_measured_and_its_windows_agree),
    ktest!(a_distorted_pit_is_not_believed).params("time.test_skew_pit=10"),
    ktest!(breakpoint_is_handled_and_resumes),
    ktest!(heap_allocates_and_frees),
    ktest!(no_writable_executable_mappings),
    ktest!(boot_stack_has_a_guard_page),
    ktest!(stack_overflow_hits_the_guard_page).expect_fault("stack overflow: CR2 is in a stack guard page"),
    ktest!(double_fault_handler_runs_on_its_ist_stack).expect_fault("handler on IST stack: yes"),
    ktest!(panic_is_reported_and_fails_the_run).expect_panic("deliberate panic for the harness"),
    ktest!(panic_while_another_cpu_holds_the_console).min_cpus(2).expect_panic("the console was held by another CPU"),
];

fn serial_and_log_lines() -> Outcome {
    log::info!("a log line from a test");
    kernel::println_raw!("a raw line with unicode: λ → ✓");
    kassert!(kernel::time::tsc_per_us() > 0, "the TSC was not calibrated");
    Ok(())
}

/// On a machine that is not overcommitted at boot (one CPU runs then), the
/// PIT's windows are believed, and the choice says so.
fn the_tsc_rate_was_measured_and_its_windows_agree() -> Outcome {
    let c = kernel::time::calibration().ok_or(crate::ktest::Failure("not calibrated".into()))?;
    kassert_eq!(c.choice.source, Source::Measured);
    kassert!(c.windows.iter().all(Option::is_some), "a PIT window never ran out: {:?}", c.windows);
    kassert!(rate::PLAUSIBLE_MHZ.contains(&kernel::time::tsc_per_us()), "{} MHz", kernel::time::tsc_per_us());
    Ok(())
}

/// Each window reads ten times slower than the one before, as on an
/// emulator with far more vCPUs than host cores: the measurement is
/// rejected after its rounds, and the rate comes from CPUID or the
/// fallback, never from the windows.
fn a_distorted_pit_is_not_believed() -> Outcome {
    let c = kernel::time::calibration().ok_or(crate::ktest::Failure("not calibrated".into()))?;
    kassert!(c.choice.source != Source::Measured, "believed {:?}", c.windows);
    kassert_eq!(c.rounds, 3);
    let expected =
        if c.cpuid_mhz.is_some_and(|m| rate::PLAUSIBLE_MHZ.contains(&m)) { Source::Cpuid } else { Source::Fallback };
    kassert_eq!(c.choice.source, expected);
    kassert!(rate::PLAUSIBLE_MHZ.contains(&kernel::time::tsc_per_us()), "{} MHz", kernel::time::tsc_per_us());
    Ok(())
}

fn boot_parameters_reach_the_kernel() -> Outcome {
    kassert_eq!(kernel::params::get("ktest.probe"), Some("hello world"));
    Ok(())
}

fn breakpoint_is_handled_and_resumes() -> Outcome {
    let before = exceptions::breakpoints_handled();
    x86_64::instructions::interrupts::int3();
    // Reaching this line at all is the "resumed" half.
    kassert_eq!(exceptions::breakpoints_handled(), before + 1);
    Ok(())
}

fn heap_allocates_and_frees() -> Outcome {
    let (used_before, _) = kernel::mem::heap::usage();
    {
        let v: Vec<u64> = (0..100_000).collect();
        kassert_eq!(v.iter().sum::<u64>(), 100_000 * 99_999 / 2);
        let mut m = BTreeMap::new();
        for i in 0..1000u32 {
            m.insert(i, Box::new([i; 16]));
        }
        kassert_eq!(m[&999][15], 999);
        let big = alloc::vec![0xA5u8; 4 << 20];
        kassert!(big.iter().all(|&b| b == 0xA5));
    }
    let (used_after, _) = kernel::mem::heap::usage();
    kassert_eq!(used_after, used_before);
    Ok(())
}

fn no_writable_executable_mappings() -> Outcome {
    let bad = wx::audit();
    kassert!(bad.is_empty(), "{} W+X mappings, first at {:#x} ({} bytes)", bad.len(), bad[0].virt, bad[0].size);
    Ok(())
}

fn boot_stack_has_a_guard_page() -> Outcome {
    let stack = kernel::boot::boot_stack().ok_or(crate::ktest::Failure("no boot stack".into()))?;
    let here = x86_64::VirtAddr::from_ptr(&stack);
    kassert!(stack.contains(here), "the test does not run on the boot stack");
    kassert!(vmem::is_mapped(stack.bottom));
    kassert!(!vmem::is_mapped(stack.guard_page()), "guard page is mapped");
    kassert!(vmem::is_guard_page(stack.guard_page()));
    Ok(())
}

#[allow(unconditional_recursion)]
fn recurse(depth: u64) -> u64 {
    let pad = core::hint::black_box([depth; 64]);
    recurse(depth + 1) + pad[0]
}

fn stack_overflow_hits_the_guard_page() -> Outcome {
    recurse(0);
    Ok(())
}

fn double_fault_handler_runs_on_its_ist_stack() -> Outcome {
    recurse(0);
    Ok(())
}

fn panic_is_reported_and_fails_the_run() -> Outcome {
    panic!("deliberate panic for the harness");
}

fn log_from_there(_: usize) {
    log::info!("this line holds the console");
}

/// Another CPU is held inside the console's locked section (test hook);
/// this CPU panics: its report must still come out (the lock is broken
/// after a bounded wait) and the run must end.
fn panic_while_another_cpu_holds_the_console() -> Outcome {
    use kernel::hooks::{self, Mode};
    let me = kernel::percpu::current_cpu();
    let other =
        kernel::smp::ONLINE.snapshot().iter().find(|c| *c != me).ok_or(crate::ktest::Failure("no other CPU".into()))?;
    hooks::arm(hooks::points::CONSOLE_LOCKED, Some(other), Mode::Pause);
    kernel::smp::calls::call_single_nowait(other, log_from_there, 0)
        .map_err(|e| crate::ktest::Failure(alloc::format!("{e:?}")))?;
    kassert!(hooks::wait_reached(hooks::points::CONSOLE_LOCKED, 5_000), "the other CPU never took the console");
    panic!("the console was held by another CPU");
}

/// A log line shows on the framebuffer: the text row it went to has lit
/// pixels, the row below (kept blank for the next line) has none.
fn log_lines_reach_the_framebuffer() -> Outcome {
    use kernel::fbcon;
    let Some((_, _, line_h)) = fbcon::cursor() else {
        return Err(crate::ktest::Failure("no framebuffer (the loader gave none)".into()));
    };
    log::info!("framebuffer probe: HHHHHHHHHHHHHHHH");
    let (row, rows, _) = fbcon::cursor().expect("still there");
    let rows_lit = |r: usize| {
        let (x0, y0) = fbcon::row_origin(r);
        (0..line_h).any(|dy| (0..400).any(|dx| fbcon::pixel_lit(x0 + dx, y0 + dy) == Some(true)))
    };
    let written = (row + rows - 1) % rows;
    kassert!(rows_lit(written), "the row just written (row {written}) has no lit pixel");
    kassert!(!rows_lit(row), "the row after the newest line (row {row}) is not blank");
    Ok(())
}
