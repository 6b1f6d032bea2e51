//! The per-CPU area, reached through the GS base.
//!
//! Each CPU's GS base points at its own [`PerCpu`], whose first word points at
//! itself, so `current()` is one `mov` from `gs:0`.

use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use smp_core::{CpuId, MAX_CPUS};
use x86_64::VirtAddr;
use x86_64::registers::model_specific::GsBase;

/// What a CPU is doing, for watchdog and stop reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Activity {
    Booting = 0,
    Idle = 1,
    Running = 2,
    InIpiHandler = 3,
    StopMachine = 4,
    Parked = 5,
    Stopped = 6,
}

impl Activity {
    /// In words, for reports.
    pub fn describe(self) -> &'static str {
        match self {
            Activity::Booting => "booting",
            Activity::Idle => "idle",
            Activity::Running => "running",
            Activity::InIpiHandler => "in an IPI handler",
            Activity::StopMachine => "in stop-machine",
            Activity::Parked => "parked",
            Activity::Stopped => "stopped",
        }
    }

    pub fn from_u32(v: u32) -> Activity {
        match v {
            1 => Activity::Idle,
            2 => Activity::Running,
            3 => Activity::InIpiHandler,
            4 => Activity::StopMachine,
            5 => Activity::Parked,
            6 => Activity::Stopped,
            _ => Activity::Booting,
        }
    }
}

#[repr(C, align(64))]
pub struct PerCpu {
    /// Must stay first: `current()` loads it from `gs:0`.
    self_ptr: *const PerCpu,
    cpu: CpuId,
    activity: AtomicU32,
}

// SAFETY: `self_ptr` is only ever this entry's own static address; the other
// fields are immutable after setup or atomic.
unsafe impl Sync for PerCpu {}

const fn entry(i: usize) -> PerCpu {
    PerCpu {
        self_ptr: core::ptr::null(),
        cpu: match CpuId::new(i) {
            Some(c) => c,
            None => panic!("per-CPU table larger than MAX_CPUS"),
        },
        activity: AtomicU32::new(Activity::Booting as u32),
    }
}

static PER_CPU: [PerCpu; MAX_CPUS] = {
    let mut table = [const { entry(0) }; MAX_CPUS];
    let mut i = 0;
    while i < MAX_CPUS {
        table[i] = entry(i);
        i += 1;
    }
    table
};

impl PerCpu {
    pub fn cpu(&self) -> CpuId {
        self.cpu
    }

    pub fn activity(&self) -> Activity {
        Activity::from_u32(self.activity.load(Ordering::Relaxed))
    }

    pub fn set_activity(&self, a: Activity) {
        self.activity.store(a as u32, Ordering::Relaxed);
    }
}

/// The per-CPU area of any CPU.
pub fn of(cpu: CpuId) -> &'static PerCpu {
    &PER_CPU[cpu.index()]
}

/// Points this CPU's GS base at `cpu`'s area. Called first thing on every CPU.
pub fn install(cpu: CpuId) {
    let area = &PER_CPU[cpu.index()];
    let ptr = area as *const PerCpu;
    // SAFETY: each CPU writes only its own entry's self pointer, before
    // anything reads it through GS; the pointer is the entry's own address.
    unsafe { core::ptr::write_volatile(core::ptr::addr_of!(area.self_ptr).cast_mut(), ptr) };
    GsBase::write(VirtAddr::from_ptr(ptr));
    GS_READY.store(true, Ordering::Release);
}

/// Set once the boot CPU installed its GS base; every AP installs its own
/// before running anything that logs.
static GS_READY: AtomicBool = AtomicBool::new(false);

/// This CPU's area. Before [`install`] ran (GS base 0) it answers the boot
/// CPU's, so early log lines still work.
pub fn current() -> &'static PerCpu {
    if !GS_READY.load(Ordering::Acquire) {
        return &PER_CPU[0];
    }
    let ptr: *const PerCpu;
    // SAFETY: GS base points at an installed `PerCpu` whose first field is
    // its own address.
    unsafe { core::arch::asm!("mov {}, gs:[0]", out(reg) ptr, options(nostack, readonly, preserves_flags)) };
    // SAFETY: `ptr` is the address of a `'static` entry of `PER_CPU`.
    unsafe { &*ptr }
}

/// The id of the CPU running this code.
pub fn current_cpu() -> CpuId {
    current().cpu
}
