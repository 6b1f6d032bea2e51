//! This CPU (the façade's `arch::cpu`): the timestamp counter, halting, and
//! the registers a stopped CPU leaves behind.

use x86_64::structures::idt::InterruptStackFrame;

pub use super::nmi_halt::halt_while_eq;
use smp_core::CpuId;

/// The timestamp counter.
pub fn timestamp() -> u64 {
    // SAFETY: RDTSC has no side effects and is available on every x86_64 CPU.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Timestamp ticks per microsecond (MHz), timed over `window_us` of the
/// PIT; `None` if the PIT never ran out.
pub fn measure_timestamp_mhz(window_us: u64) -> Option<u64> {
    super::pit::measure_tsc_per_us(window_us)
}

/// The timestamp counter's rate as the CPU states it: CPUID leaf 0x15
/// (crystal clock times its ratio) where it is complete, else leaf 0x16's
/// base frequency; `None` where it says neither (QEMU's TCG models, often).
pub fn timestamp_mhz_from_cpuid() -> Option<u64> {
    let cpuid = raw_cpuid::CpuId::new();
    let from_crystal = cpuid.get_tsc_info().and_then(|t| t.tsc_frequency()).map(|hz| hz / 1_000_000);
    let base = || cpuid.get_processor_frequency_info().map(|f| u64::from(f.processor_base_frequency()));
    from_crystal.filter(|m| *m > 0).or_else(|| base().filter(|m| *m > 0))
}

/// Halts this CPU for good: interrupts off, `hlt` in a loop (an NMI may
/// still wake it, so loop).
pub fn halt_forever() -> ! {
    x86_64::instructions::interrupts::disable();
    loop {
        x86_64::instructions::hlt();
    }
}

/// Whether `cpu` could take an NMI now: one that has no IDT yet (still in
/// the trampoline) would triple-fault.
pub fn can_take_nmi(cpu: CpuId) -> bool {
    super::idt::is_loaded_on(cpu)
}

/// Points this CPU's local-storage base (GS) at `base`.
pub fn set_local_base(base: *const u8) {
    x86_64::registers::model_specific::GsBase::write(x86_64::VirtAddr::from_ptr(base));
}

/// The first word at this CPU's local-storage base: one `mov` from `gs:0`.
///
/// # Safety
/// [`set_local_base`] has run on this CPU with the address of a live,
/// word-aligned object.
#[inline(always)]
pub unsafe fn local_base_word() -> usize {
    let word: usize;
    // SAFETY: the caller guarantees GS points at a live, aligned word.
    unsafe { core::arch::asm!("mov {}, gs:[0]", out(reg) word, options(nostack, readonly, preserves_flags)) };
    word
}

/// Where a CPU was: instruction pointer, stack pointer and flags.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Registers {
    pub ip: u64,
    pub sp: u64,
    pub flags: u64,
}

impl Registers {
    /// The calling code's.
    #[inline(always)]
    pub fn here() -> Registers {
        let (ip, sp, flags): (u64, u64, u64);
        // SAFETY: reads registers only; `pushfq; pop` leaves the stack as it was.
        unsafe {
            core::arch::asm!(
                "lea {ip}, [rip]",
                "mov {sp}, rsp",
                "pushfq",
                "pop {fl}",
                ip = out(reg) ip,
                sp = out(reg) sp,
                fl = out(reg) flags,
            )
        };
        Registers { ip, sp, flags }
    }

    /// Where an interrupt found the CPU.
    pub fn interrupted(frame: &InterruptStackFrame) -> Registers {
        Registers {
            ip: frame.instruction_pointer.as_u64(),
            sp: frame.stack_pointer.as_u64(),
            flags: frame.cpu_flags.bits(),
        }
    }
}
