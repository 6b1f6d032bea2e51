//! Generic SMP: CPU masks, bring-up, cross-calls, stopping. Hardware
//! access goes through the façade of `crate::arch`, never past it.

pub mod bringup;
pub mod calls;
pub mod doorbell;
pub mod fanout;
pub mod hotplug;
pub mod idle;
pub mod ping;
pub mod stop;
pub mod stop_machine;
pub mod worker;

use crossbeam_utils::CachePadded;
use smp_core::{AtomicCpuSet, CpuId};

use crate::arch::{irq, platform};

/// CPUs the firmware reports as usable now or later.
pub static POSSIBLE: AtomicCpuSet = AtomicCpuSet::new();
/// CPUs physically there.
pub static PRESENT: AtomicCpuSet = AtomicCpuSet::new();
/// CPUs that may receive cross-calls. Every sender reads it, so it keeps a
/// cache line to itself: a neighbour written often would make each read a
/// transfer.
pub static ONLINE: CachePadded<AtomicCpuSet> = CachePadded::new(AtomicCpuSet::new());
/// CPUs that may be given new work.
pub static ACTIVE: AtomicCpuSet = AtomicCpuSet::new();

/// The boot CPU's SMP setup: discovery, its own APIC, the trampoline, then
/// (unless `smp.boot_aps=0`) every other present CPU.
pub fn init_boot_cpu() {
    let found = platform::init_boot_cpu();
    // Before any other CPU's slot is used: every per-CPU store gets a slot
    // for each CPU the firmware lists.
    smp_core::percpu::size_all(found.possible.iter().last().map_or(1, |c| c.index() + 1));
    for c in found.possible.iter() {
        POSSIBLE.insert(c);
    }
    for c in found.present.iter() {
        PRESENT.insert(c);
    }
    calls::prepare_queue(CpuId::BOOT).expect("boot CPU call queue");
    ONLINE.insert(CpuId::BOOT);
    ACTIVE.insert(CpuId::BOOT);
    irq::enable();
    log::info!(
        "{} CPUs possible, {} present; {} mode; boot CPU is {}",
        found.possible.len(),
        found.present.len(),
        found.controller,
        found.boot_cpu
    );
    if let Err(e) = bringup::init() {
        log::error!("cannot prepare AP start-up ({e}); running on the boot CPU alone");
        return;
    }
    if crate::params::get_bool("smp.boot_aps", true) {
        let opts = bringup::Options::from_params();
        let report = bringup::start(&PRESENT.snapshot(), opts, None);
        hotplug::finish_boot_bringup(&report.started);
        for e in &report.errors {
            log::error!("{e}");
        }
        log::info!(
            "brought up {} of {} APs in {}.{:03} ms ({}, {} delays); {} CPUs online",
            report.started.len(),
            PRESENT.len() - 1,
            report.elapsed_us / 1000,
            report.elapsed_us % 1000,
            if opts.parallel { "parallel" } else { "one by one" },
            if opts.delays.after_init_us == 0 { "fast" } else { "MP-spec" },
            ONLINE.len()
        );
    }
}

pub fn online_count() -> usize {
    ONLINE.len()
}
