//! The torture's fault injector (`torture.faults=1`, `cargo xtask torture
//! --faults`): every other hotplug operation gets one fault, the kinds in
//! turn, so that a short run injects every kind. Each fault makes its
//! operation fail (or, for a CPU held in its offline window, end before the
//! CPU parked); the torture then checks that the machine is where the
//! answer says, and the run's books must balance as without faults.

use core::sync::atomic::{AtomicBool, Ordering};

use kernel::hooks::{self, Mode};
use kernel::smp::{self, calls, hotplug};
use kernel::torture::Faults;
use kernel::{CpuId, percpu};

/// Timeouts short enough that a held CPU crosses them at once: stop-machine
/// gives up after 200 ms, bring-up after 300 ms, `cpu_down` stops waiting
/// for the park after 300 ms.
pub const PARAMS: &str = "stress.ms=8000;torture.hotplug_ms=20;torture.faults=1;\
                          stop_machine.timeout_ms=200;smp.ap_timeout_ms=300;hotplug.park_timeout_ms=300";

/// Faults on the way up.
const UP: [&str; 3] = ["step fails going up", "AP held past the bring-up timeout", "AP never answers its SIPI"];
/// Faults on the way down.
const DOWN: [&str; 4] = [
    "step fails going down",
    "CPU held in DISABLE_IRQ past the stop-machine timeout",
    "CPU held before parking past the park timeout",
    "another CPU stalls with interrupts off",
];

/// Every fault kind, for the test that checks each was injected.
pub fn kinds() -> impl Iterator<Item = &'static str> {
    UP.into_iter().chain(DOWN)
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
    /// What `disarm` must undo.
    armed: Option<&'static str>,
    /// Hook names armed, to release.
    hooks: [Option<&'static str>; 2],
}

impl Injector {
    pub fn new() -> Injector {
        Injector { ops: 0, next_up: 0, next_down: 0, armed: None, hooks: [None; 2] }
    }

    fn hook(&mut self, name: &'static str, cpu: CpuId, mode: Mode) {
        hooks::arm(name, Some(cpu), mode);
        let slot = self.hooks.iter_mut().find(|h| h.is_none()).expect("two hooks at most");
        *slot = Some(name);
    }

    /// A step of the table, by the operation's number: its startup hook
    /// going up, a controller teardown's going down (the target's dying
    /// teardowns must not fail).
    fn step_hook(&self, up: bool) -> &'static str {
        let names: alloc::vec::Vec<&'static str> = hotplug::STEPS
            .iter()
            .filter(|s| up || (s.runs == hotplug::Runs::Controller && s.teardown.is_some()))
            .map(|s| if up { s.name } else { s.down_hook })
            .collect();
        names[(self.ops / 2) as usize % names.len()]
    }

    /// Another AP that is online, to stall.
    fn staller(cpu: CpuId) -> Option<CpuId> {
        let me = percpu::current_cpu();
        smp::ONLINE.snapshot().iter().find(|c| *c != cpu && *c != me && *c != CpuId::BOOT)
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
        let kind = if up {
            self.next_up = (self.next_up + 1) % UP.len();
            UP[self.next_up]
        } else {
            self.next_down = (self.next_down + 1) % DOWN.len();
            DOWN[self.next_down]
        };
        match kind {
            "step fails going up" | "step fails going down" => {
                let step = self.step_hook(up);
                self.hook(step, cpu, Mode::FailOnce);
            }
            "AP held past the bring-up timeout" => self.hook("ap.before-online", cpu, Mode::Pause),
            "AP never answers its SIPI" => self.hook("bringup.no-sipi", cpu, Mode::Fail),
            "CPU held in DISABLE_IRQ past the stop-machine timeout" => {
                self.hook("stop_machine.disable-irq", cpu, Mode::Pause)
            }
            "CPU held before parking past the park timeout" => self.hook("hotplug.offline-window", cpu, Mode::Pause),
            _ => {
                let staller = Self::staller(cpu)?;
                STALL.store(true, Ordering::SeqCst);
                if calls::call_single_nowait(staller, stall_with_interrupts_off, 0).is_err()
                    || !kernel::time::wait_until(1_000_000, || STALLING.load(Ordering::SeqCst))
                {
                    STALL.store(false, Ordering::SeqCst);
                    return None;
                }
            }
        }
        self.armed = Some(kind);
        Some(kind)
    }

    fn disarm(&mut self, _cpu: CpuId) {
        for name in self.hooks.iter_mut().filter_map(Option::take) {
            hooks::release(name);
        }
        if self.armed.take().is_some() {
            STALL.store(false, Ordering::SeqCst);
            kernel::time::wait_until(STALL_LIMIT_MS * 1000, || !STALLING.load(Ordering::SeqCst));
        }
    }
}
