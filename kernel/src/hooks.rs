//! Test hooks: named points in kernel code where a test can make a CPU pause
//! (to hold it at a racy moment) or make a step fail. Built only with the
//! `test-hooks` feature (the in-guest test kernel); in the demonstration
//! kernel `point` is an inline constant and every hook vanishes.
//!
//! Every point is a constant of [`points`], used by the kernel code at that
//! point and by the tests that arm it, so a misspelt or removed point is a
//! compile error, never a hook that silently never fires.

/// A point in kernel code where a test can act. Only [`points`] makes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Point(&'static str);

impl Point {
    pub const fn name(self) -> &'static str {
        self.0
    }
}

impl core::fmt::Display for Point {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.0)
    }
}

/// Every hook point: where it is, and what arming it does there.
pub mod points {
    use super::Point;

    /// `arch/x86_64/topology.rs`: Fail hands the MADT parser a table whose
    /// first entry claims length 0.
    pub const ACPI_CORRUPT_MADT: Point = Point("acpi.corrupt-madt");
    /// `arch/x86_64/apic/startup.rs`, between a start IPI and its ESR check.
    pub const APIC_START_SENT: Point = Point("apic.start.sent");
    /// `console.rs`, with the console lock held.
    pub const CONSOLE_LOCKED: Point = Point("console.locked");
    /// `smp/bringup.rs`: Fail skips a CPU's STARTUP IPIs (it never answers).
    pub const BRINGUP_NO_SIPI: Point = Point("bringup.no-sipi");
    /// `smp/bringup.rs`, the controller's last look before it gives up on
    /// a CPU: a late AP may come online here.
    pub const BRINGUP_BEFORE_TIMEOUT: Point = Point("bringup.before-timeout");
    /// `smp/bringup.rs`, an AP's first Rust code, before it has an IDT.
    pub const AP_ENTRY: Point = Point("ap.entry");
    /// `smp/bringup.rs`, an AP after INIT-SIPI-SIPI, just before `cpu.online`.
    pub const AP_BEFORE_ONLINE: Point = Point("ap.before-online");
    /// `smp/bringup.rs`, an AP the instant it is online, interrupts off.
    pub const CPU_ONLINE_ENTERED: Point = Point("cpu.online.entered");
    /// `smp/calls.rs`: Fail lets a CPU go online with a non-empty queue.
    pub const CALLS_SKIP_QUEUE_CHECK: Point = Point("calls.skip-queue-check");
    /// `smp/calls.rs`: Fail makes a sender's online check pass regardless.
    pub const CALLS_SKIP_ONLINE_CHECK: Point = Point("calls.skip-online-check");
    /// `smp/calls.rs`: Fail skips the dying CPU's queue flush.
    pub const CALLS_SKIP_DYING_FLUSH: Point = Point("calls.skip-dying-flush");
    /// `smp/fanout.rs`: Fail makes a fan-out broadcast to every CPU but the
    /// sender even when some present CPU is not online.
    pub const FANOUT_FORCE_BROADCAST: Point = Point("fanout.force-broadcast");
    /// `smp/calls.rs`, a call's waiter that marked its record sleeping and
    /// is about to halt, interrupts off: the release may come here.
    pub const CALLS_WAITER_BEFORE_HALT: Point = Point("calls.waiter-before-halt");
    /// `smp/doorbell.rs`, an idle CPU about to stop polling.
    pub const IDLE_STOP_POLLING: Point = Point("idle.stop-polling");
    /// `smp/hotplug.rs`: Fail skips a parking CPU's offline window.
    pub const HOTPLUG_SKIP_OFFLINE_WINDOW: Point = Point("hotplug.skip-offline-window");
    /// `smp/hotplug.rs`, a parking CPU in its offline window, interrupts on.
    pub const HOTPLUG_OFFLINE_WINDOW: Point = Point("hotplug.offline-window");
    /// `smp/stop.rs`, the stopper once it has won, before its first attempt.
    pub const STOP_WON: Point = Point("stop.won");
    /// `smp/stop.rs`: Fail makes a CPU that is told to stop wedge instead.
    pub const STOP_DEAF: Point = Point("stop.deaf");
    /// `smp/stop_machine.rs`, a CPU taking the STOP_MACHINE IPI.
    pub const STOP_MACHINE_IPI_ENTRY: Point = Point("stop_machine.ipi-entry");
    /// `smp/stop_machine.rs`, a CPU in PREPARE with interrupts on.
    pub const STOP_MACHINE_PREPARE: Point = Point("stop_machine.prepare");
    /// `smp/stop_machine.rs`, a CPU in DISABLE_IRQ, interrupts still on.
    pub const STOP_MACHINE_DISABLE_IRQ: Point = Point("stop_machine.disable-irq");
    /// `smp/stop_machine.rs`, a waiter about to halt until the next state.
    pub const STOP_MACHINE_BEFORE_HALT: Point = Point("stop_machine.before-halt");
    /// `smp/stop_machine.rs`, the controller about to abort a stuck run.
    pub const STOP_MACHINE_BEFORE_ABORT: Point = Point("stop_machine.before-abort");

    /// The hotplug steps' points (`smp/hotplug.rs`, `StepId`): Fail fails
    /// the step's startup, or (`_DOWN`) its teardown.
    pub const CPU_PREPARE: Point = Point("cpu.prepare");
    pub const CPU_PREPARE_DOWN: Point = Point("cpu.prepare.down");
    pub const CPU_KICK: Point = Point("cpu.kick");
    pub const CPU_KICK_DOWN: Point = Point("cpu.kick.down");
    pub const AP_DESCRIPTOR_TABLES: Point = Point("ap.descriptor-tables");
    pub const AP_DESCRIPTOR_TABLES_DOWN: Point = Point("ap.descriptor-tables.down");
    pub const AP_LOCAL_APIC: Point = Point("ap.local-apic");
    pub const AP_LOCAL_APIC_DOWN: Point = Point("ap.local-apic.down");
    pub const AP_CALL_QUEUE: Point = Point("ap.call-queue");
    pub const AP_CALL_QUEUE_DOWN: Point = Point("ap.call-queue.down");
    pub const CPU_ONLINE: Point = Point("cpu.online");
    pub const CPU_ONLINE_DOWN: Point = Point("cpu.online.down");
    pub const CPU_ACTIVE: Point = Point("cpu.active");
    pub const CPU_ACTIVE_DOWN: Point = Point("cpu.active.down");
}

/// What the code at a hook point must do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Carry on as if there were no hook.
    Continue,
    /// Make this step fail (the caller reports and rolls back).
    Fail,
}

#[cfg(not(feature = "test-hooks"))]
#[inline(always)]
pub fn point(_at: Point, _cpu: smp_core::CpuId) -> Action {
    Action::Continue
}

#[cfg(feature = "test-hooks")]
pub use armed::*;

#[cfg(feature = "test-hooks")]
mod armed {
    use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

    use spin::Mutex;

    use super::{Action, Point};
    use crate::time::Deadline;
    use smp_core::CpuId;

    /// A CPU held at a pause point gives up after this long, so a test that
    /// forgets to release never hangs the machine silently.
    const PAUSE_LIMIT_MS: u64 = 20_000;
    const SLOTS: usize = 16;

    /// What a test arms a hook with.
    #[derive(Clone, Copy, Debug)]
    pub enum Mode {
        /// Fail the step, every time it is reached.
        Fail,
        /// Fail the step the first time only.
        FailOnce,
        /// Hold the CPU there until [`release`].
        Pause,
        /// Run this function there (once, on the first CPU to arrive), then
        /// carry on: lets a test act at the exact racy moment.
        Call(fn()),
    }

    #[derive(Clone, Copy)]
    struct Slot {
        at: Point,
        cpu: Option<CpuId>,
        mode: Mode,
    }

    static SLOTS_TABLE: Mutex<[Option<Slot>; SLOTS]> = Mutex::new([None; SLOTS]);
    static RELEASED: [AtomicBool; SLOTS] = [const { AtomicBool::new(false) }; SLOTS];
    static REACHED: [AtomicU32; SLOTS] = [const { AtomicU32::new(0) }; SLOTS];
    /// Whether any slot is armed: lets `point` skip the table's lock, so a
    /// hook on a hot path (the polling idle loop) costs the bench kernel,
    /// which is the test kernel, one load while no test arms anything.
    static ANY_ARMED: AtomicBool = AtomicBool::new(false);

    /// Runs `f` on the table, then records whether anything is armed.
    fn with_table<R>(f: impl FnOnce(&mut [Option<Slot>; SLOTS]) -> R) -> R {
        x86_64::instructions::interrupts::without_interrupts(|| {
            let mut table = SLOTS_TABLE.lock();
            let result = f(&mut table);
            ANY_ARMED.store(table.iter().any(Option::is_some), Ordering::SeqCst);
            result
        })
    }

    /// Arms hook `at` (for `cpu` only, or any CPU). Re-arming replaces.
    pub fn arm(at: Point, cpu: Option<CpuId>, mode: Mode) {
        with_table(|t| {
            let idx = t
                .iter()
                .position(|s| s.is_some_and(|s| s.at == at))
                .or_else(|| t.iter().position(Option::is_none))
                .expect("too many hooks armed at once");
            RELEASED[idx].store(false, Ordering::SeqCst);
            REACHED[idx].store(0, Ordering::SeqCst);
            t[idx] = Some(Slot { at, cpu, mode });
        });
    }

    /// Lets every CPU paused at `at` go on, and disarms it.
    pub fn release(at: Point) {
        with_table(|t| {
            if let Some(i) = t.iter().position(|s| s.is_some_and(|s| s.at == at)) {
                RELEASED[i].store(true, Ordering::SeqCst);
                t[i] = None;
            }
        });
    }

    /// Disarms everything (between tests).
    pub fn reset() {
        with_table(|t| {
            for (i, s) in t.iter_mut().enumerate() {
                RELEASED[i].store(true, Ordering::SeqCst);
                *s = None;
            }
        });
    }

    /// How many times an armed hook `at` was reached since it was armed.
    pub fn reached(at: Point) -> u32 {
        with_table(|t| t.iter().position(|s| s.is_some_and(|s| s.at == at)))
            .map_or(0, |i| REACHED[i].load(Ordering::SeqCst))
    }

    /// Waits (bounded) until some CPU reached `at`.
    pub fn wait_reached(at: Point, timeout_ms: u64) -> bool {
        crate::time::wait_until(timeout_ms * 1000, || reached(at) > 0)
    }

    /// The hook itself, called by kernel code at point `at`.
    pub fn point(at: Point, cpu: CpuId) -> Action {
        if !ANY_ARMED.load(Ordering::SeqCst) {
            return Action::Continue;
        }
        let hit = with_table(|t| {
            let i = t.iter().position(|s| s.is_some_and(|s| s.at == at && s.cpu.is_none_or(|c| c == cpu)))?;
            let slot = t[i]?;
            REACHED[i].fetch_add(1, Ordering::SeqCst);
            if matches!(slot.mode, Mode::FailOnce | Mode::Call(_)) {
                t[i] = None;
            }
            Some((i, slot.mode))
        });
        match hit {
            None => Action::Continue,
            Some((_, Mode::Fail | Mode::FailOnce)) => Action::Fail,
            Some((_, Mode::Call(f))) => {
                f();
                Action::Continue
            }
            Some((i, Mode::Pause)) => {
                let d = Deadline::after_ms(PAUSE_LIMIT_MS);
                while !RELEASED[i].load(Ordering::SeqCst) {
                    if d.expired() {
                        log::warn!("hook {}: held {cpu} for {PAUSE_LIMIT_MS} ms without release; going on", at.name());
                        break;
                    }
                    core::hint::spin_loop();
                }
                Action::Continue
            }
        }
    }
}
