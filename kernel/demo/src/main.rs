//! The demonstration kernel: boots every CPU, shows what the kernel does
//! (CPUs and APIC ids, cross-calls, a hotplug cycle, stop-machine), then
//! shuts down through send-stop with a summary. `demo.keep_running=1`
//! (`cargo xtask qemu --keep-running`) keeps it running instead.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU32, Ordering};

use bootloader_api::{BootInfo, entry_point};
use kernel::smp::{self, calls, hotplug, stop, stop_machine};
use kernel::{CpuId, CpuSet, boot, params, power, time};

entry_point!(kernel_entry, config = &boot::BOOTLOADER_CONFIG);

fn kernel_entry(boot_info: &'static mut BootInfo) -> ! {
    boot::start(boot_info, demo)
}

fn demo() -> ! {
    if params::get_bool("bench.run", false) {
        // `cargo xtask bench`: the measurements, on the kernel that ships.
        diag::bench::run::run();
    }
    log::info!("== SMP unikernel demonstration ==");
    show_cpus();
    cross_calls();
    hotplug_cycle();
    stop_machine_round();
    if params::get_bool("demo.keep_running", false) {
        log::info!(
            "demo.keep_running=1: the console takes commands on COM1 and the PS/2 keyboard (quit QEMU with Ctrl-A X)"
        );
        diag::shell::run();
    }
    log::info!("shutting down: stopping the other CPUs");
    let report = stop::stop_other_cpus(stop::Reason::Stop);
    stop::print_report(&report);
    log::info!(
        "summary: {} CPUs stopped in {} attempt(s), {} not stopped; {} hotplug operations, {} stop-machines; bye",
        report.stopped.len(),
        report.attempts,
        report.not_stopped.len(),
        hotplug::STATS.ups.load(Ordering::Relaxed) + hotplug::STATS.downs.load(Ordering::Relaxed),
        stop_machine::runs()
    );
    power::exit(if report.not_stopped.is_empty() { power::ExitCode::Success } else { power::ExitCode::Failure })
}

fn show_cpus() {
    let Some(topo) = kernel::arch::x86_64::topology::get() else { return };
    let mode = kernel::arch::x86_64::apic::mode();
    log::info!("{} CPUs present, {mode:?} mode:", topo.present.len());
    for c in topo.cpus.iter().take(16) {
        log::info!(
            "  {} = {} (ACPI uid {}){}",
            c.cpu,
            c.apic_id,
            c.acpi_uid,
            if smp::ONLINE.contains(c.cpu) { ", online" } else { "" }
        );
    }
    if topo.cpus.len() > 16 {
        log::info!("  ... and {} more", topo.cpus.len() - 16);
    }
}

fn cross_calls() {
    let hits = AtomicU32::new(0);
    let start = time::rdtsc();
    let ran = calls::call_all("demo-hello", true, &|| {
        hits.fetch_add(1, Ordering::Relaxed);
    });
    let us = time::ticks_to_us(time::rdtsc() - start);
    log::info!("cross-call to every CPU: ran on {ran:?} ({} calls) in {us} us", hits.load(Ordering::Relaxed));
}

fn hotplug_cycle() {
    let Some(cpu) = smp::ONLINE.snapshot().iter().filter(|c| *c != CpuId::BOOT).last() else {
        log::info!("hotplug: only the boot CPU is online; nothing to take down");
        return;
    };
    let start = time::rdtsc();
    let down = hotplug::cpu_down(cpu);
    let mid = time::rdtsc();
    let up = hotplug::cpu_up(cpu);
    let end = time::rdtsc();
    log::info!(
        "hotplug: {cpu} down {:?} in {} us, up {:?} in {} us; online now {:?}",
        down,
        time::ticks_to_us(mid - start),
        up,
        time::ticks_to_us(end - mid),
        smp::ONLINE.snapshot()
    );
}

fn stop_machine_round() {
    let ran = AtomicU32::new(u32::MAX);
    let start = time::rdtsc();
    let r = stop_machine::stop_machine(&CpuSet::single(CpuId::BOOT), &|cpu| {
        ran.store(cpu.index() as u32, Ordering::Relaxed);
    });
    log::info!(
        "stop-machine over {} CPUs: {:?} in {} us (ran on cpu{})",
        smp::online_count(),
        r,
        time::ticks_to_us(time::rdtsc() - start),
        ran.load(Ordering::Relaxed)
    );
}
