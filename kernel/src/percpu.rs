//! The per-CPU area, reached through the CPU's local-storage base (on x86,
//! the GS base; set and read through `arch::cpu`).
//!
//! Each CPU's GS base points at its own [`CpuArea`], whose first word points at
//! itself, so `current()` is one `mov` from `gs:0`.

use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use smp_core::{CpuId, PerCpu, per_cpu};

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
pub struct CpuArea {
    /// Must stay first: `current()` loads it from `gs:0`.
    self_ptr: *const CpuArea,
    cpu: CpuId,
    activity: AtomicU32,
}

// SAFETY: `self_ptr` is only ever this entry's own static address; the other
// fields are immutable after setup or atomic.
unsafe impl Sync for CpuArea {}

per_cpu! {
    static PER_CPU: PerCpu<CpuArea> = |cpu| CpuArea {
        self_ptr: core::ptr::null(),
        cpu,
        activity: AtomicU32::new(Activity::Booting as u32),
    };
}

impl CpuArea {
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
pub fn of(cpu: CpuId) -> &'static CpuArea {
    PER_CPU.of(cpu)
}

/// Points this CPU's GS base at `cpu`'s area. Called first thing on every CPU.
pub fn install(cpu: CpuId) {
    let area = PER_CPU.of(cpu);
    let ptr = area as *const CpuArea;
    // SAFETY: each CPU writes only its own entry's self pointer, before
    // anything reads it through GS; the pointer is the entry's own address.
    unsafe { core::ptr::write_volatile(core::ptr::addr_of!(area.self_ptr).cast_mut(), ptr) };
    crate::arch::cpu::set_local_base(ptr.cast());
    GS_READY.store(true, Ordering::Release);
}

/// Set once the boot CPU installed its GS base; every AP installs its own
/// before running anything that logs.
static GS_READY: AtomicBool = AtomicBool::new(false);

/// This CPU's area. Before [`install`] ran (GS base 0) it answers the boot
/// CPU's, so early log lines still work.
pub fn current() -> &'static CpuArea {
    if !GS_READY.load(Ordering::Acquire) {
        return PER_CPU.of(CpuId::BOOT);
    }
    // SAFETY: this CPU's local base points at its installed `CpuArea`
    // (`install` ran before `GS_READY`), whose first field is its address.
    let ptr = unsafe { crate::arch::cpu::local_base_word() } as *const CpuArea;
    // SAFETY: `ptr` is the address of a `'static` entry of `PER_CPU`.
    unsafe { &*ptr }
}

/// The id of the CPU running this code.
pub fn current_cpu() -> CpuId {
    current().cpu
}

/// The running CPU's slot of a [`PerCpu`]. Code in this kernel never moves
/// to another CPU (there is no scheduler), so the slot stays the running
/// CPU's for as long as the caller holds it. Interrupt handlers on the same
/// CPU may use the slot meanwhile, which is why a shared `PerCpu` holds
/// `Sync` values (atomics, or a cell whose accessor turns interrupts off).
pub trait ThisCpu<T> {
    fn this(&self) -> &T;
}

impl<T> ThisCpu<T> for PerCpu<T> {
    #[inline]
    fn this(&self) -> &T {
        self.of(current_cpu())
    }
}
