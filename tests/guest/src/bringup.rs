//! SMP bring-up (docs/rules.md, Bring-up; story 4,
//! docs/stories/4-ipi-vectors-before-online.md): every present CPU online,
//! every online CPU answering IPIs from the instant it is online, failures
//! reported and contained.

use alloc::format;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering};

use crate::ktest::{Failure, Outcome, Test};
use crate::{kassert, kassert_eq, ktest};
use kernel::arch::x86_64::apic;
use kernel::hooks::{self, Mode};
use kernel::smp::hotplug::StepId;
use kernel::smp::{self, bringup, calls, ping};
use kernel::{CpuId, CpuSet};

/// A ping's answer may take a while under TCG on two overcommitted cores.
const PING_TIMEOUT_US: u64 = 2_000_000;

pub const TESTS: &[Test] = &[
    ktest!(every_present_cpu_is_online),
    ktest!(expected_cpu_count_is_online),
    ktest!(apic_mode_is_the_one_the_machine_offers),
    ktest!(every_online_cpu_answers_an_ipi).min_cpus(2),
    // Every AP spins at one hook, interrupts off, for the whole bring-up;
    // at 1024 vCPUs on 2 host cores the spinning APs starve the rest past
    // the hook's 20 s bound (seen in `q35-bios-smp1024-x2apic`).
    ktest!(watcher_pings_each_cpu_the_instant_it_is_online).params("smp.boot_aps=0").min_cpus(2).max_cpus(512),
    ktest!(a_failing_setup_step_leaves_only_that_cpu_offline).params("smp.boot_aps=0").min_cpus(4).timeout_ms(60_000),
    ktest!(one_by_one_bring_up_works).params("smp.boot_aps=0;smp.parallel=0;smp.fast_start=1"),
    ktest!(malformed_madt_falls_back_to_one_cpu),
];

fn every_present_cpu_is_online() -> Outcome {
    let present = smp::PRESENT.snapshot();
    let online = smp::ONLINE.snapshot();
    kassert_eq!(online, present);
    kassert!(online.contains(CpuId::BOOT));
    Ok(())
}

/// The host passes `-smp`'s CPU count as `smp.expect_cpus`: a discovery
/// that counted disabled MADT entries, or a CPU that silently failed, shows
/// here.
fn expected_cpu_count_is_online() -> Outcome {
    let Some(expected) = kernel::params::get("smp.expect_cpus") else {
        return Err(Failure("the runner did not pass smp.expect_cpus".into()));
    };
    let expected: usize = expected.parse().map_err(|_| Failure(format!("bad smp.expect_cpus={expected}")))?;
    kassert_eq!(smp::online_count(), expected);
    kassert_eq!(smp::PRESENT.len(), expected);
    Ok(())
}

/// CPUID.01H:ECX bit 21: the CPU offers x2APIC (SDM vol. 2A, CPUID).
const CPUID_1_ECX_X2APIC: u32 = 1 << 21;

/// Every online CPU runs its local APIC in x2APIC mode exactly when the CPU
/// offers it, and that is the mode the runner says the machine's CPU model
/// has (`smp.expect_apic`, set by the matrix): a kernel stuck in xAPIC mode
/// passes everything else on small machines and fails only past 255 CPUs.
fn apic_mode_is_the_one_the_machine_offers() -> Outcome {
    let offered = core::arch::x86_64::__cpuid(1).ecx & CPUID_1_ECX_X2APIC != 0;
    let name = |x2: bool| if x2 { "x2apic" } else { "xapic" };
    kassert_eq!(name(apic::mode() == apic::Mode::X2Apic), name(offered));
    if let Some(expected) = kernel::params::get("smp.expect_apic") {
        // The runner's CPU model must be the one the CPU reports.
        kassert_eq!(name(offered), expected);
    }
    let agree = AtomicUsize::new(0);
    calls::call_all("apic-mode", true, &|| {
        if apic::x2apic_enabled_this_cpu() == offered {
            agree.fetch_add(1, Ordering::SeqCst);
        }
    });
    // CPUs whose IA32_APIC_BASE.EXTD says the right mode.
    kassert_eq!(agree.load(Ordering::SeqCst), smp::online_count());
    Ok(())
}

fn ping_all(cpus: &CpuSet) -> Outcome {
    let silent: Vec<CpuId> = cpus.iter().filter(|c| !ping::ping(*c, PING_TIMEOUT_US)).collect();
    kassert!(silent.is_empty(), "CPUs that did not answer a ping: {silent:?}");
    Ok(())
}

fn every_online_cpu_answers_an_ipi() -> Outcome {
    let others = smp::ONLINE.snapshot().difference(&CpuSet::single(CpuId::BOOT));
    ping_all(&others)
}

/// Story 4 (docs/stories/4-ipi-vectors-before-online.md), head on: the boot CPU starts the APs in parallel, and each AP
/// is held at the instant it enters `online` (inside the online step,
/// before any later step and before it enables interrupts). The boot CPU,
/// seeing it online, checks there that it can take an IPI (IDT, APIC, empty
/// queue): a step list that put `online` before any of those fails here,
/// whatever the timing. Released, every CPU must answer a ping.
fn watcher_pings_each_cpu_the_instant_it_is_online() -> Outcome {
    let present = smp::PRESENT.snapshot();
    let mut unready = Vec::new();
    let mut watched = 0;
    hooks::arm(hooks::points::CPU_ONLINE_ENTERED, None, Mode::Pause);
    let mut watch = |cpu: CpuId| {
        watched += 1;
        if let Err(why) = bringup::ipi_ready(cpu) {
            unready.push((cpu, why));
        }
    };
    let report = bringup::start(&present, bringup::Options::from_params(), Some(&mut watch));
    let held = hooks::reached(hooks::points::CPU_ONLINE_ENTERED);
    hooks::release(hooks::points::CPU_ONLINE_ENTERED);
    kassert!(report.errors.is_empty(), "bring-up errors: {:?}", report.errors);
    kassert!(held as usize == present.len() - 1, "{held} APs were held as they went online, not {}", present.len() - 1);
    kassert!(unready.is_empty(), "CPUs online before they could take an IPI: {unready:?}");
    kassert_eq!(watched, present.len() - 1);
    ping_all(&present.difference(&CpuSet::single(CpuId::BOOT)))?;
    kassert_eq!(smp::ONLINE.snapshot(), present);
    Ok(())
}

/// Each setup step in turn fails on a CPU of its own (test hook): that CPU
/// stays offline with the step named, the CPUs already online keep
/// answering; without the hook the same CPU then starts normally.
fn a_failing_setup_step_leaves_only_that_cpu_offline() -> Outcome {
    let present = smp::PRESENT.snapshot();
    let aps: Vec<CpuId> = present.iter().filter(|c| *c != CpuId::BOOT).collect();
    let steps: Vec<StepId> = bringup::ap_steps().collect();
    kassert!(aps.len() >= steps.len(), "needs {} APs, has {}", steps.len(), aps.len());
    for (&step, &victim) in steps.iter().zip(aps.iter()) {
        let online_before = smp::ONLINE.snapshot();
        hooks::arm(step.up_hook(), Some(victim), Mode::Fail);
        let report = bringup::start(&CpuSet::single(victim), bringup::Options::from_params(), None);
        hooks::release(step.up_hook());
        kassert_eq!(report.errors.len(), 1);
        let e = report.errors[0];
        kassert!(e.cpu == victim && e.step == step.name(), "expected {victim} to fail at {step:?}, got: {e}");
        kassert!(!smp::ONLINE.contains(victim), "{victim} is online after failing {step:?}");
        kassert_eq!(smp::ONLINE.snapshot(), online_before);
        ping_all(&online_before.difference(&CpuSet::single(CpuId::BOOT)))?;
        let retry = bringup::start(&CpuSet::single(victim), bringup::Options::from_params(), None);
        kassert!(retry.errors.is_empty(), "{victim} did not start after the hook was removed: {:?}", retry.errors);
        kassert!(ping::ping(victim, PING_TIMEOUT_US), "{victim} does not answer after its retry");
    }
    let rest = bringup::start(&present, bringup::Options::from_params(), None);
    kassert!(rest.errors.is_empty(), "bring-up errors: {:?}", rest.errors);
    kassert_eq!(smp::ONLINE.snapshot(), present);
    Ok(())
}

fn one_by_one_bring_up_works() -> Outcome {
    let present = smp::PRESENT.snapshot();
    let report = bringup::start(&present, bringup::Options::from_params(), None);
    kassert!(report.errors.is_empty(), "bring-up errors: {:?}", report.errors);
    kassert_eq!(smp::ONLINE.snapshot(), present);
    kernel::println_raw!("one-by-one bring-up of {} APs took {} us", present.len() - 1, report.elapsed_us);
    let others = present.difference(&CpuSet::single(CpuId::BOOT));
    ping_all(&others)
}

/// A MADT whose first entry claims length 0 (test hook on the bytes handed
/// to the parser): discovery reports it and falls back to one CPU.
fn malformed_madt_falls_back_to_one_cpu() -> Outcome {
    hooks::arm(hooks::points::ACPI_CORRUPT_MADT, None, Mode::Fail);
    let (topo, _) = kernel::arch::x86_64::topology::read_from_firmware(kernel::arch::x86_64::apic::current_apic_id());
    hooks::release(hooks::points::ACPI_CORRUPT_MADT);
    kassert_eq!(topo.cpus.len(), 1);
    kassert!(topo.present.contains(CpuId::BOOT));
    Ok(())
}
