//! Fan-out (docs/rules.md#fan-out-1): a set call rings its targets with the
//! fewest interrupt commands. One broadcast while every present CPU is
//! online; a multicast, one command per x2APIC cluster (or one for the
//! xAPIC flat CPUs, plus one per other CPU), while any is not; and a CPU
//! that was not online when a broadcast went out finds nothing stale when
//! it comes back.

use alloc::format;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering};

use crate::ktest::{Failure, Outcome, Test};
use crate::{kassert, kassert_eq, ktest};
use kernel::arch::ipi;
use kernel::arch::x86_64::{apic, topology};
use kernel::hooks::{self, Mode, points};
use kernel::smp::{self, calls, fanout, hotplug, ping, worker};
use kernel::{CpuId, CpuSet, percpu};

pub const TESTS: &[Test] = &[
    // Halting idle CPUs: every target owes its doorbell (polling ones would not).
    ktest!(a_call_to_every_other_cpu_is_one_broadcast).min_cpus(2).params("idle=halt"),
    ktest!(with_a_cpu_offline_a_call_to_all_is_a_multicast).min_cpus(3).params("idle=halt"),
    ktest!(a_cpu_back_after_a_broadcast_it_could_not_take_finds_nothing_stale).min_cpus(3).params("idle=halt"),
    ktest!(a_multicast_from_every_cpu_reaches_every_target).min_cpus(3).params("idle=halt;csd.timeout_ms=2000"),
];

fn err(e: impl core::fmt::Debug) -> Failure {
    Failure(format!("{e:?}"))
}

/// What a `call_all` from this CPU cost: (commands written, broadcasts).
fn cost_of_call_all() -> (u64, u64) {
    let me = percpu::current_cpu();
    let (writes, broadcasts) = (ipi::icr_writes(me), fanout::broadcasts(me));
    calls::call_all("fanout", false, &|| {});
    (ipi::icr_writes(me) - writes, fanout::broadcasts(me) - broadcasts)
}

fn a_call_to_every_other_cpu_is_one_broadcast() -> Outcome {
    kassert_eq!(smp::ONLINE.snapshot(), smp::PRESENT.snapshot());
    kassert_eq!(cost_of_call_all(), (1, 1));
    Ok(())
}

/// The commands a multicast to `targets` takes, from the APIC ids alone:
/// x2APIC, one per cluster (APIC id bits 31:4); xAPIC, one for the CPUs
/// numbered below 8 (the flat model's bits) plus one per other CPU. A CPU
/// whose APIC gives it no logical id (Bochs 2.7's x2APIC APs) is one more.
fn multicast_commands(targets: &CpuSet) -> u64 {
    let physical = targets.iter().filter(|c| !apic::has_logical_id(*c)).count() as u64;
    let mut logical = CpuSet::EMPTY;
    for cpu in targets.iter().filter(|c| apic::has_logical_id(*c)) {
        logical.insert(cpu);
    }
    physical + logical_commands(&logical)
}

fn logical_commands(targets: &CpuSet) -> u64 {
    let ids: Vec<(CpuId, u32)> = targets.iter().filter_map(|c| topology::apic_id(c).map(|id| (c, id.0))).collect();
    match apic::mode() {
        apic::Mode::X2Apic => {
            let mut clusters: Vec<u32> = ids.iter().map(|(_, id)| id >> 4).collect();
            clusters.sort_unstable();
            clusters.dedup();
            clusters.len() as u64
        }
        apic::Mode::XApic => {
            let flat = ids.iter().any(|(c, _)| c.index() < 8);
            u64::from(flat) + ids.iter().filter(|(c, _)| c.index() >= 8).count() as u64
        }
    }
}

fn last_ap() -> Result<CpuId, Failure> {
    smp::ONLINE.snapshot().iter().filter(|c| *c != CpuId::BOOT).last().ok_or(Failure("no AP online".into()))
}

fn with_a_cpu_offline_a_call_to_all_is_a_multicast() -> Outcome {
    let x = last_ap()?;
    hotplug::cpu_down(x).map_err(err)?;
    let mut targets = smp::ONLINE.snapshot();
    targets.remove(percpu::current_cpu());
    let cost = cost_of_call_all();
    hotplug::cpu_up(x).map_err(err)?;
    kassert_eq!(cost, (multicast_commands(&targets), 0));
    Ok(())
}

fn a_cpu_back_after_a_broadcast_it_could_not_take_finds_nothing_stale() -> Outcome {
    let x = last_ap()?;
    hotplug::cpu_down(x).map_err(err)?;
    let (rung, ran) = (&calls::counters(x).doorbells_received, &calls::counters(x).calls_run);
    let before = (rung.load(Ordering::SeqCst), ran.load(Ordering::SeqCst));
    // The bug the rule prevents: a broadcast while `x` is parked.
    hooks::arm(points::FANOUT_FORCE_BROADCAST, Some(percpu::current_cpu()), Mode::Fail);
    let cost = cost_of_call_all();
    hooks::release(points::FANOUT_FORCE_BROADCAST);
    kassert_eq!(cost, (1, 1));
    hotplug::cpu_up(x).map_err(err)?;
    // A doorbell left pending from the broadcast would be taken as soon as
    // `x` turned interrupts on; give it time to show, without calling `x`.
    kassert!(ping::ping(x, 2_000_000), "{x} does not answer a ping");
    kernel::time::delay_us(10_000);
    let after = (rung.load(Ordering::SeqCst), ran.load(Ordering::SeqCst));
    kassert_eq!(after, before);
    Ok(())
}

static MULTICAST_OK: AtomicU32 = AtomicU32::new(0);

/// On the CPU it runs on: a set call to every other online CPU but one, so
/// that it is a multicast, never the broadcast.
fn multicast_from_here(skip: usize) {
    let me = percpu::current_cpu();
    let mut targets = smp::ONLINE.snapshot();
    targets.remove(me);
    targets.remove(CpuId::new(skip).expect("cpu"));
    let reports = calls::counters(me).watchdog_reports.load(Ordering::SeqCst);
    let ran = AtomicU32::new(0);
    let reached = calls::call_many(&targets, "multicast", false, &|| {
        ran.fetch_add(1, Ordering::SeqCst);
    });
    let quiet = calls::counters(me).watchdog_reports.load(Ordering::SeqCst) == reports;
    if reached == targets && ran.load(Ordering::SeqCst) as usize == targets.len() && quiet {
        MULTICAST_OK.fetch_add(1, Ordering::SeqCst);
    }
}

/// Every CPU's multicast reaches every CPU it names, the boot CPU included,
/// without the watchdog having to ring again: a lost doorbell would leave
/// the call to wait for the watchdog.
fn a_multicast_from_every_cpu_reaches_every_target() -> Outcome {
    let online = smp::ONLINE.snapshot();
    for sender in online.iter() {
        // Leave out some CPU other than the sender and the boot CPU.
        let skip = online.iter().find(|c| *c != sender && *c != CpuId::BOOT).ok_or(Failure("needs 3 CPUs".into()))?;
        MULTICAST_OK.store(0, Ordering::SeqCst);
        if sender == percpu::current_cpu() {
            multicast_from_here(skip.index());
        } else {
            worker::spawn(sender, multicast_from_here, skip.index()).map_err(err)?;
            kassert!(
                kernel::time::wait_until(5_000_000, || worker::is_free(sender)),
                "{sender}'s multicast never returned"
            );
        }
        kassert!(
            MULTICAST_OK.load(Ordering::SeqCst) == 1,
            "the multicast from {sender} missed a target or needed the watchdog"
        );
    }
    Ok(())
}
