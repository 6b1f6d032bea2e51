//! The torture's fault injector (`torture.faults=1`, `cargo xtask torture
//! --faults`): every other hotplug operation gets one fault, the kinds in
//! turn, so that a short run injects every kind. Each fault makes its
//! operation fail (or, for a CPU held in its offline window, end before the
//! CPU parked); the torture then checks that the machine is where the
//! answer says, and the run's books must balance as without faults.

use core::sync::atomic::{AtomicBool, Ordering};

use diag::torture::Faults;
use kernel::hooks::{self, Mode, Point, points};
use kernel::smp::{self, calls, hotplug};
use kernel::{CpuId, percpu};

/// Timeouts short enough that a held CPU crosses them at once: stop-machine
/// gives up after 200 ms, bring-up after 300 ms, `cpu_down` stops waiting
/// for the park after 300 ms.
pub const PARAMS: &str = "stress.ms=8000;torture.hotplug_ms=20;torture.faults=1;\
                          stop_machine.timeout_ms=200;smp.ap_timeout_ms=300;hotplug.park_timeout_ms=300";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    StepFailsGoingUp,
    HeldPastBringUpTimeout,
    NoAnswerToSipi,
    StepFailsGoingDown,
    HeldInDisableIrq,
    HeldBeforeParking,
    AnotherCpuStalls,
}

impl Fault {
    fn name(self) -> &'static str {
        match self {
            Fault::StepFailsGoingUp => "step fails going up",
            Fault::HeldPastBringUpTimeout => "AP held past the bring-up timeout",
            Fault::NoAnswerToSipi => "AP never answers its SIPI",
            Fault::StepFailsGoingDown => "step fails going down",
            Fault::HeldInDisableIrq => "CPU held in DISABLE_IRQ past the stop-machine timeout",
            Fault::HeldBeforeParking => "CPU held before parking past the park timeout",
            Fault::AnotherCpuStalls => "another CPU stalls with interrupts off",
        }
    }
}

/// Faults on the way up, and on the way down.
const UP: [Fault; 3] = [Fault::StepFailsGoingUp, Fault::HeldPastBringUpTimeout, Fault::NoAnswerToSipi];
const DOWN: [Fault; 4] =
    [Fault::StepFailsGoingDown, Fault::HeldInDisableIrq, Fault::HeldBeforeParking, Fault::AnotherCpuStalls];

/// Every fault kind's name, for the test that checks each was injected.
pub fn kinds() -> impl Iterator<Item = &'static str> {
    UP.into_iter().chain(DOWN).map(Fault::name)
}

/// What `disarm` must undo.
enum Armed {
    Hook(Point),
    Stall,
}

static STALL: AtomicBool = AtomicBool::new(false);
static STALLING: AtomicBool = AtomicBool::new(false);
/// A stalled CPU gives up after this long, whatever happens.
const STALL_LIMIT_MS: u64 = 2_000;

fn stall_with_interrupts_off(_: usize) {
    STALLING.store(true, Ordering::SeqCst);
    let d = kernel::time::Deadline::after_ms(STALL_LIMIT_MS);
    while STALL.load(Ordering::SeqCst) && !d.expired() {
        core::hint::spin_loop();
    }
    STALLING.store(false, Ordering::SeqCst);
}

pub struct Injector {
    ops: u64,
    next_up: usize,
    next_down: usize,
    armed: Option<Armed>,
}

impl Injector {
    pub fn new() -> Injector {
        Injector { ops: 0, next_up: 0, next_down: 0, armed: None }
    }

    /// A step of the table, by the operation's number: its startup hook
    /// going up, a controller teardown's going down (the target's dying
    /// teardowns must not fail).
    fn step_hook(&self, up: bool) -> Point {
        let steps = || {
            hotplug::STEPS.iter().filter(move |s| up || (s.runs == hotplug::Runs::Controller && s.teardown.is_some()))
        };
        let step = steps().nth((self.ops / 2) as usize % steps().count()).expect("a step");
        if up { step.id.up_hook() } else { step.id.down_hook() }
    }

    /// Another AP that is online, to stall.
    fn staller(cpu: CpuId) -> Option<CpuId> {
        let me = percpu::current_cpu();
        smp::ONLINE.snapshot().iter().find(|c| *c != cpu && *c != me && *c != CpuId::BOOT)
    }

    /// Makes `staller` spin with interrupts off, until `disarm`.
    fn stall(staller: CpuId) -> Option<Armed> {
        STALL.store(true, Ordering::SeqCst);
        if calls::call_single_nowait(staller, stall_with_interrupts_off, 0).is_err()
            || !kernel::time::wait_until(1_000_000, || STALLING.load(Ordering::SeqCst))
        {
            STALL.store(false, Ordering::SeqCst);
            return None;
        }
        Some(Armed::Stall)
    }
}

impl Default for Injector {
    fn default() -> Self {
        Self::new()
    }
}

impl Faults for Injector {
    fn arm(&mut self, cpu: CpuId, up: bool) -> Option<&'static str> {
        self.ops += 1;
        if self.ops % 2 == 1 {
            return None;
        }
        let fault = if up {
            self.next_up = (self.next_up + 1) % UP.len();
            UP[self.next_up]
        } else {
            self.next_down = (self.next_down + 1) % DOWN.len();
            DOWN[self.next_down]
        };
        let hook = |name: Point, mode: Mode| {
            hooks::arm(name, Some(cpu), mode);
            Some(Armed::Hook(name))
        };
        self.armed = match fault {
            Fault::StepFailsGoingUp | Fault::StepFailsGoingDown => hook(self.step_hook(up), Mode::FailOnce),
            Fault::HeldPastBringUpTimeout => hook(points::AP_BEFORE_ONLINE, Mode::Pause),
            Fault::NoAnswerToSipi => hook(points::BRINGUP_NO_SIPI, Mode::Fail),
            Fault::HeldInDisableIrq => hook(points::STOP_MACHINE_DISABLE_IRQ, Mode::Pause),
            Fault::HeldBeforeParking => hook(points::HOTPLUG_OFFLINE_WINDOW, Mode::Pause),
            Fault::AnotherCpuStalls => Self::stall(Self::staller(cpu)?),
        };
        self.armed.as_ref().map(|_| fault.name())
    }

    fn disarm(&mut self, _cpu: CpuId) {
        match self.armed.take() {
            Some(Armed::Hook(name)) => hooks::release(name),
            Some(Armed::Stall) => {
                STALL.store(false, Ordering::SeqCst);
                kernel::time::wait_until(STALL_LIMIT_MS * 1000, || !STALLING.load(Ordering::SeqCst));
            }
            None => {}
        }
    }
}
