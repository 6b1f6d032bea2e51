//! What the console shows: the CPU table and the kernel's counters.

use alloc::format;
use alloc::string::String;
use core::fmt::Write;
use core::sync::atomic::Ordering;

use kernel::percpu;
use kernel::smp::{self, calls, hotplug, stop_machine};

pub fn cpus() -> String {
    let mut out = String::new();
    let Some(topo) = kernel::arch::x86_64::topology::get() else { return "no CPU table".into() };
    for c in &topo.cpus {
        let _ = writeln!(
            out,
            "{:>6} {:>10} {:?} {:?}",
            format!("{}", c.cpu),
            format!("{}", c.apic_id),
            hotplug::state(c.cpu),
            percpu::of(c.cpu).activity()
        );
    }
    out
}

pub fn counters() -> String {
    let mut out = String::new();
    for cpu in smp::PRESENT.snapshot().iter() {
        let c = calls::counters(cpu);
        let _ = writeln!(
            out,
            "{cpu}: doorbells sent {} received {} skipped {} (owed) {} (polling), calls run {}, watchdog reports {}",
            c.doorbells_sent.load(Ordering::Relaxed),
            c.doorbells_received.load(Ordering::Relaxed),
            c.doorbells_skipped.load(Ordering::Relaxed),
            c.doorbells_polled.load(Ordering::Relaxed),
            c.calls_run.load(Ordering::Relaxed),
            c.watchdog_reports.load(Ordering::Relaxed),
        );
    }
    let (spurious, unexpected) = kernel::arch::x86_64::interrupts::stray_counts();
    let _ = writeln!(
        out,
        "interrupts: {spurious} spurious, {unexpected} unexpected; {} unclaimed NMIs",
        kernel::arch::x86_64::nmi::unclaimed()
    );
    let s = &hotplug::STATS;
    let _ = write!(
        out,
        "hotplug: {} up, {} down, {} failed, {} rolled back; {} stop-machines",
        s.ups.load(Ordering::Relaxed),
        s.downs.load(Ordering::Relaxed),
        s.failures.load(Ordering::Relaxed),
        s.rollbacks.load(Ordering::Relaxed),
        stop_machine::runs()
    );
    out
}
