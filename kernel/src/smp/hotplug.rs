//! CPU hotplug (docs/rules.md, Hotplug): `cpu_up` and `cpu_down` walk one ordered
//! table of named steps. Up runs startups in order; down runs teardowns in
//! reverse. Steps marked `Target` run on the CPU itself with interrupts off
//! and must not fail going down; a failing step rolls back what was done,
//! leaving the CPU where it was. Requests are serialised.
//!
//! Going down happens under stop-machine: in RUN the outgoing CPU leaves
//! `online` and runs its dying teardowns, the call-queue flush among them,
//! while every other CPU has interrupts off. After EXIT it takes any late
//! IPI (harmless now), quiesces its APIC and parks until INIT-SIPI.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use smp_core::{CpuId, CpuSet, per_cpu};
use spin::Mutex;

use super::{bringup, calls, stop_machine};
use crate::arch::{cpu, irq, start};
use crate::hooks::{self, Action, Point, points};
use crate::percpu::{self, Activity};
use crate::time::Deadline;

/// Where a step runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runs {
    /// On the CPU doing the hotplug; may fail and be rolled back.
    Controller,
    /// On the CPU coming or going, interrupts off.
    Target,
}

type StepFn = fn(CpuId) -> Result<(), &'static str>;

/// Which step, by identity rather than by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepId {
    CpuPrepare,
    CpuKick,
    ApDescriptorTables,
    ApLocalApic,
    ApCallQueue,
    CpuOnline,
    CpuActive,
}

impl StepId {
    pub const fn name(self) -> &'static str {
        self.up_hook().name()
    }

    /// The test hook before its startup.
    pub const fn up_hook(self) -> Point {
        match self {
            StepId::CpuPrepare => points::CPU_PREPARE,
            StepId::CpuKick => points::CPU_KICK,
            StepId::ApDescriptorTables => points::AP_DESCRIPTOR_TABLES,
            StepId::ApLocalApic => points::AP_LOCAL_APIC,
            StepId::ApCallQueue => points::AP_CALL_QUEUE,
            StepId::CpuOnline => points::CPU_ONLINE,
            StepId::CpuActive => points::CPU_ACTIVE,
        }
    }

    /// The test hook before its teardown.
    pub const fn down_hook(self) -> Point {
        match self {
            StepId::CpuPrepare => points::CPU_PREPARE_DOWN,
            StepId::CpuKick => points::CPU_KICK_DOWN,
            StepId::ApDescriptorTables => points::AP_DESCRIPTOR_TABLES_DOWN,
            StepId::ApLocalApic => points::AP_LOCAL_APIC_DOWN,
            StepId::ApCallQueue => points::AP_CALL_QUEUE_DOWN,
            StepId::CpuOnline => points::CPU_ONLINE_DOWN,
            StepId::CpuActive => points::CPU_ACTIVE_DOWN,
        }
    }
}

/// One hotplug step. Its test hooks are its id's `up_hook` (startup) and
/// `down_hook` (teardown).
pub struct Step {
    pub id: StepId,
    pub runs: Runs,
    pub startup: Option<StepFn>,
    pub teardown: Option<StepFn>,
    /// A `Target` teardown that runs inside stop-machine's RUN state (the
    /// others run after EXIT, as the CPU parks).
    pub dying: bool,
}

/// The steps, in bring-up order. The `Target` run is the order of
/// docs/rules.md, Bring-up 2 (story 4, docs/stories/4-ipi-vectors-before-online.md):
/// descriptor tables with every IPI vector, local APIC, empty call queue,
/// and only then online.
pub static STEPS: [Step; 7] = [
    Step { id: StepId::CpuPrepare, runs: Runs::Controller, startup: Some(prepare), teardown: None, dying: false },
    Step { id: StepId::CpuKick, runs: Runs::Controller, startup: Some(kick), teardown: Some(take_down), dying: false },
    Step {
        id: StepId::ApDescriptorTables,
        runs: Runs::Target,
        startup: Some(start::load_descriptor_tables),
        teardown: None,
        dying: false,
    },
    Step {
        id: StepId::ApLocalApic,
        runs: Runs::Target,
        startup: Some(start::enable_interrupt_controller),
        teardown: Some(start::quiesce_interrupt_controller),
        dying: false,
    },
    Step {
        id: StepId::ApCallQueue,
        runs: Runs::Target,
        startup: Some(calls::prepare_queue),
        teardown: Some(flush_queue),
        dying: true,
    },
    Step {
        id: StepId::CpuOnline,
        runs: Runs::Target,
        startup: Some(bringup::mark_online),
        teardown: Some(mark_offline),
        dying: true,
    },
    Step {
        id: StepId::CpuActive,
        runs: Runs::Controller,
        startup: Some(set_active),
        teardown: Some(clear_active),
        dying: false,
    },
];

/// The `Target` steps, in bring-up order.
pub fn target_steps() -> impl DoubleEndedIterator<Item = &'static Step> {
    STEPS.iter().filter(|s| s.runs == Runs::Target)
}

/// Why a hotplug request did nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HotplugError {
    NotPresent(CpuId),
    AlreadyOnline(CpuId),
    AlreadyOffline(CpuId),
    /// The last online CPU cannot go down.
    LastCpu(CpuId),
    /// The boot CPU runs the kernel's main thread, which has nowhere else to
    /// go (there is no scheduler to move it), so it stays up.
    BootCpu,
    /// A CPU cannot take itself down: it would park in the middle of the request.
    SelfDown(CpuId),
    /// The CPU left `online` and ran its dying steps, but did not report
    /// parked within `hotplug.park_timeout_ms`: it is [`CpuState::Dying`]
    /// until it does, and cannot be brought up before.
    NotParked(CpuId),
    /// `step` failed (rolled back): `why`.
    StepFailed {
        cpu: CpuId,
        step: StepId,
        why: &'static str,
        going_up: bool,
    },
}

static SERIAL: Mutex<()> = Mutex::new(());

/// Holds off every hotplug operation while the guard lives (stop-machine
/// takes it: see there).
pub(super) fn exclude() -> spin::MutexGuard<'static, ()> {
    SERIAL.lock()
}
static LAST_ERROR: Mutex<Option<HotplugError>> = Mutex::new(None);

/// Hotplug counters.
pub struct Stats {
    pub ups: AtomicU64,
    pub downs: AtomicU64,
    pub failures: AtomicU64,
    pub rollbacks: AtomicU64,
}

pub static STATS: Stats = Stats {
    ups: AtomicU64::new(0),
    downs: AtomicU64::new(0),
    failures: AtomicU64::new(0),
    rollbacks: AtomicU64::new(0),
};

/// The last hotplug error, if any.
pub fn last_error() -> Option<HotplugError> {
    *LAST_ERROR.lock()
}

/// A CPU's hotplug state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpuState {
    Online,
    /// Out of `online` after its dying steps, not parked yet: its stack
    /// may still be in use (a waiting call it abandoned is settling).
    Dying,
    Offline,
    NotPresent,
}

pub fn state(cpu: CpuId) -> CpuState {
    if !super::PRESENT.contains(cpu) {
        CpuState::NotPresent
    } else if super::ONLINE.contains(cpu) {
        CpuState::Online
    } else if DOWN_PENDING.of(cpu).load(Ordering::SeqCst) {
        CpuState::Dying
    } else {
        CpuState::Offline
    }
}

/// How long `cpu_down` waits for the CPU to park, and `cpu_up` for a CPU
/// still dying: longer than a parking CPU's settle bound, so that a CPU
/// that settles in time is never called stuck.
fn park_timeout_ms() -> u64 {
    crate::params::get_u64("hotplug.park_timeout_ms", calls::SETTLE_LIMIT_US / 1000 + 1000)
}

fn fail(e: HotplugError) -> HotplugError {
    STATS.failures.fetch_add(1, Ordering::Relaxed);
    *LAST_ERROR.lock() = Some(e);
    log::warn!("hotplug: {e:?}");
    e
}

fn hook(at: Point, cpu: CpuId) -> Result<(), &'static str> {
    match hooks::point(at, cpu) {
        Action::Fail => Err("injected by a test hook"),
        Action::Continue => Ok(()),
    }
}

/// Brings `cpu` online: controller startups in order; `cpu.kick` starts the
/// CPU, which runs the `Target` startups itself. A failure rolls back.
pub fn cpu_up(cpu: CpuId) -> Result<(), HotplugError> {
    let _serial = SERIAL.lock();
    match state(cpu) {
        CpuState::NotPresent => return Err(fail(HotplugError::NotPresent(cpu))),
        CpuState::Online => return Err(fail(HotplugError::AlreadyOnline(cpu))),
        // Its stack is not free until it parks.
        CpuState::Dying if !wait_parked(cpu, park_timeout_ms()) => return Err(fail(HotplugError::NotParked(cpu))),
        CpuState::Dying | CpuState::Offline => {}
    }
    let controller: alloc::vec::Vec<(usize, &Step)> =
        STEPS.iter().enumerate().filter(|(_, s)| s.runs == Runs::Controller).collect();
    for (n, &(_, step)) in controller.iter().enumerate() {
        let r = hook(step.id.up_hook(), cpu).and_then(|()| step.startup.map_or(Ok(()), |f| f(cpu)));
        if let Err(why) = r {
            // Roll back the controller steps already done, newest first.
            for &(_, done) in controller[..n].iter().rev() {
                if let Some(t) = done.teardown
                    && let Err(e) = t(cpu)
                {
                    log::error!("hotplug: rollback of {} on {cpu} failed: {e}", done.id.name());
                }
            }
            STATS.rollbacks.fetch_add(1, Ordering::Relaxed);
            let failed = fail(HotplugError::StepFailed { cpu, step: step.id, why, going_up: true });
            // A rollback that took the CPU down again is done, as a
            // `cpu_down` is, only once the CPU parked.
            if DOWN_PENDING.of(cpu).load(Ordering::SeqCst) && !wait_parked(cpu, park_timeout_ms()) {
                log::error!("hotplug: {cpu}, rolled back, did not report parked within {} ms", park_timeout_ms());
                return Err(fail(HotplugError::NotParked(cpu)));
            }
            return Err(failed);
        }
    }
    STATS.ups.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// Takes `cpu` offline: controller teardowns in reverse; `cpu.kick`'s
/// teardown is the stop-machine in which the CPU runs its dying steps. A
/// failing controller teardown rolls back (the CPU stays online).
pub fn cpu_down(cpu: CpuId) -> Result<(), HotplugError> {
    let _serial = SERIAL.lock();
    if state(cpu) != CpuState::Online {
        return Err(fail(HotplugError::AlreadyOffline(cpu)));
    }
    if cpu == CpuId::BOOT {
        return Err(fail(HotplugError::BootCpu));
    }
    if cpu == percpu::current_cpu() {
        return Err(fail(HotplugError::SelfDown(cpu)));
    }
    if super::online_count() <= 1 {
        return Err(fail(HotplugError::LastCpu(cpu)));
    }
    let controller: alloc::vec::Vec<&Step> = STEPS.iter().filter(|s| s.runs == Runs::Controller).collect();
    for (undone, step) in controller.iter().rev().enumerate() {
        let r = hook(step.id.down_hook(), cpu).and_then(|()| step.teardown.map_or(Ok(()), |f| f(cpu)));
        if let Err(why) = r {
            // Redo what was torn down, oldest first, so the CPU is as it was.
            for redo in controller[controller.len() - undone..].iter() {
                if let Some(s) = redo.startup
                    && let Err(e) = s(cpu)
                {
                    log::error!("hotplug: rollback of {} on {cpu} failed: {e}", redo.id.name());
                }
            }
            STATS.rollbacks.fetch_add(1, Ordering::Relaxed);
            return Err(fail(HotplugError::StepFailed { cpu, step: step.id, why, going_up: false }));
        }
    }
    STATS.downs.fetch_add(1, Ordering::Relaxed);
    // Down is done only once the CPU has parked: until then its stack may
    // still hold records other CPUs point into.
    if !wait_parked(cpu, park_timeout_ms()) {
        log::error!("hotplug: {cpu} left online but did not report parked within {} ms", park_timeout_ms());
        return Err(fail(HotplugError::NotParked(cpu)));
    }
    Ok(())
}

/// The boot-time batch started CPUs through `cpu.kick` directly: run the
/// controller steps that follow it for each.
pub fn finish_boot_bringup(started: &CpuSet) {
    let after_kick =
        STEPS.iter().skip_while(|s| s.id != StepId::CpuKick).skip(1).filter(|s| s.runs == Runs::Controller);
    for step in after_kick {
        for cpu in started.iter() {
            if let Some(Err(e)) = step.startup.map(|f| f(cpu)) {
                log::error!("hotplug: boot-time {} on {cpu} failed: {e}", step.id.name());
            }
        }
    }
}

fn prepare(cpu: CpuId) -> Result<(), &'static str> {
    if super::PRESENT.contains(cpu) { Ok(()) } else { Err("not present") }
}

/// Startup of `cpu.kick`: INIT-SIPI-SIPI and wait for the CPU to finish its
/// `Target` steps.
fn kick(cpu: CpuId) -> Result<(), &'static str> {
    let report = bringup::start(&CpuSet::single(cpu), bringup::Options::from_params(), None);
    match report.errors.first() {
        None => Ok(()),
        Some(e) => Err(e.step),
    }
}

/// Teardown of `cpu.kick`: the stop-machine in which `cpu` runs its dying
/// steps (`cpu_down` then waits for it to park). If the stop-machine is
/// abandoned, nothing ran and the CPU is online as before.
fn take_down(cpu: CpuId) -> Result<(), &'static str> {
    PARKED.of(cpu).store(0, Ordering::SeqCst);
    DOWN_PENDING.of(cpu).store(true, Ordering::SeqCst);
    let run_on = CpuSet::single(cpu);
    let r = stop_machine::stop_machine_hotplug_excluded(&run_on, &|_| run_dying_steps(cpu));
    if r.is_err() {
        DOWN_PENDING.of(cpu).store(false, Ordering::SeqCst);
        return Err("a CPU did not ack stop-machine");
    }
    Ok(())
}

/// In stop-machine's RUN state, on the outgoing CPU: the dying teardowns,
/// newest step first. They must not fail; a failure is reported.
fn run_dying_steps(cpu: CpuId) {
    for step in target_steps().rev().filter(|s| s.dying) {
        if let Some(t) = step.teardown
            && let Err(e) = t(cpu)
        {
            log::error!("hotplug: dying step {} on {cpu} failed: {e}", step.id.name());
        }
    }
    DYING.of(cpu).store(1, Ordering::SeqCst);
}

per_cpu! {
    /// Set while a CPU has run its dying steps and not parked yet.
    static DYING: PerCpu<AtomicU64> = AtomicU64::new(0);
}
per_cpu! {
    static PARKED: PerCpu<AtomicU64> = AtomicU64::new(0);
}
per_cpu! {
    /// Set from the start of a down until the CPU parks (or the down failed
    /// with the CPU still online).
    static DOWN_PENDING: PerCpu<AtomicBool> = AtomicBool::new(false);
}

/// Called by the stop-machine IPI handler after the machine restarted:
/// parks this CPU if it was the one taken down.
pub fn park_if_dying() {
    let me = percpu::current_cpu();
    if DYING.of(me).swap(0, Ordering::SeqCst) == 0 {
        return;
    }
    // A doorbell that arrived while this CPU had interrupts off is taken
    // now: the dying flush emptied the queue, so it finds nothing and stays
    // silent (the refined warning). Test hooks: hold the CPU in this
    // window, or skip it (so a doorbell dies with the APIC, as in story 2,
    // docs/stories/2-lost-ipis-during-hotplug.md).
    // A waiting caller abandoned here left records (and the closures they
    // borrow) on this stack, which the next life reuses: see them released.
    calls::settle_abandoned_wait();
    if hooks::point(points::HOTPLUG_SKIP_OFFLINE_WINDOW, me) == Action::Continue {
        irq::enable();
        let _ = hooks::point(points::HOTPLUG_OFFLINE_WINDOW, me);
        // A pending IPI is taken right after `sti`; this only covers one
        // still in flight. Longer costs every offlining (see README, Performance).
        crate::time::delay_us(50);
        irq::disable();
    }
    for step in target_steps().rev().filter(|s| !s.dying) {
        if let Some(t) = step.teardown
            && let Err(e) = t(me)
        {
            log::error!("hotplug: teardown {} on {me} failed: {e}", step.id.name());
        }
    }
    percpu::current().set_activity(Activity::Parked);
    DOWN_PENDING.of(me).store(false, Ordering::SeqCst);
    PARKED.of(me).store(1, Ordering::SeqCst);
    cpu::halt_forever()
}

fn flush_queue(_cpu: CpuId) -> Result<(), &'static str> {
    calls::dying_flush();
    Ok(())
}

fn mark_offline(cpu: CpuId) -> Result<(), &'static str> {
    super::ONLINE.remove(cpu);
    super::ACTIVE.remove(cpu);
    bringup::note_offline(cpu);
    Ok(())
}

fn set_active(cpu: CpuId) -> Result<(), &'static str> {
    super::ACTIVE.insert(cpu);
    Ok(())
}

fn clear_active(cpu: CpuId) -> Result<(), &'static str> {
    super::ACTIVE.remove(cpu);
    Ok(())
}

/// Waits (bounded) until `cpu` has parked after going down.
pub fn wait_parked(cpu: CpuId, timeout_ms: u64) -> bool {
    let d = Deadline::after_ms(timeout_ms);
    while PARKED.of(cpu).load(Ordering::SeqCst) == 0 {
        if d.expired() {
            return false;
        }
        core::hint::spin_loop();
    }
    true
}
