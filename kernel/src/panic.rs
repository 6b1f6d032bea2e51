//! The panic handler: one report (message, location, CPU) even when several
//! CPUs panic at once, then the run ends as a failure.

use core::panic::PanicInfo;
use core::sync::atomic::{AtomicU32, Ordering};

use protocol::ktest::Line;

use crate::{percpu, power};

const NOBODY: u32 = u32::MAX;
/// The CPU that is reporting a panic.
static REPORTER: AtomicU32 = AtomicU32::new(NOBODY);

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    x86_64::instructions::interrupts::disable();
    let cpu = percpu::current_cpu();
    let me = cpu.index() as u32;
    match REPORTER.compare_exchange(NOBODY, me, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => {}
        Err(owner) if owner == me => {
            // A panic while reporting a panic: say so briefly, end the run.
            crate::println_raw!(
                "{}",
                Line::Panic { cpu: cpu.index(), message: format_args!("nested panic: {}", info.message()) }
            );
            power::exit(power::ExitCode::Failure);
        }
        // Another CPU is reporting and stopping everyone: be stopped.
        Err(_) => crate::smp::stop::stop_after_losing_panic_race(),
    }
    let (file, line) = info.location().map_or(("?", 0), |l| (l.file(), l.line()));
    log::error!("PANIC on {cpu}: {} at {file}:{line}", info.message());
    crate::backtrace::print_here();
    let report = crate::smp::stop::stop_other_cpus(crate::smp::stop::Reason::Crash);
    crate::smp::stop::print_report(&report);
    // No heap here: the panic may have come from inside the allocator.
    let records = report.stopped.iter().filter(|c| crate::smp::stop::crash_record(*c).is_some()).count();
    if report.not_stopped.is_empty() {
        crate::println_raw!(
            "{}",
            Line::Panic {
                cpu: cpu.index(),
                message: format_args!(
                    "{} at {file}:{line}; all other CPUs stopped ({}); crash records: {}",
                    info.message(),
                    crate::smp::stop::Attempts(report.attempts),
                    if records == report.stopped.len() { "all" } else { "some missing" }
                )
            }
        );
    } else {
        crate::println_raw!(
            "{}",
            Line::Panic {
                cpu: cpu.index(),
                message: format_args!("{} at {file}:{line}; NOT stopped: {:?}", info.message(), report.not_stopped)
            }
        );
    }
    power::exit(power::ExitCode::Failure)
}
