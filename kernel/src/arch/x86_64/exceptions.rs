//! CPU exception handlers (SDM vol. 3, table 6-1). Breakpoints are reported
//! and resumed; NMIs go to the NMI dispatcher; everything else is fatal and
//! ends the run with a report naming vector, error code, RIP, CR2 and CPU.

use core::sync::atomic::{AtomicU64, Ordering};

use x86_64::VirtAddr;
use x86_64::registers::control::Cr2;
use x86_64::structures::idt::{InterruptDescriptorTable, InterruptStackFrame, PageFaultErrorCode};

use super::gdt;
use crate::{percpu, power};

static BREAKPOINTS: AtomicU64 = AtomicU64::new(0);

/// How many breakpoint exceptions were handled (and resumed) so far.
pub fn breakpoints_handled() -> u64 {
    BREAKPOINTS.load(Ordering::SeqCst)
}

/// Fills the exception half of the IDT.
pub fn install(idt: &mut InterruptDescriptorTable) {
    idt.divide_error.set_handler_fn(divide_error);
    idt.debug.set_handler_fn(debug);
    // SAFETY: the IST indices name stacks every CPU's TSS sets up before it
    // loads this IDT (`gdt::init_this_cpu`).
    unsafe {
        idt.non_maskable_interrupt.set_handler_fn(nmi).set_stack_index(gdt::IST_NMI);
        idt.double_fault.set_handler_fn(double_fault).set_stack_index(gdt::IST_DOUBLE_FAULT);
        idt.machine_check.set_handler_fn(machine_check).set_stack_index(gdt::IST_MACHINE_CHECK);
    }
    idt.breakpoint.set_handler_fn(breakpoint);
    idt.overflow.set_handler_fn(overflow);
    idt.bound_range_exceeded.set_handler_fn(bound_range);
    idt.invalid_opcode.set_handler_fn(invalid_opcode);
    idt.device_not_available.set_handler_fn(device_not_available);
    idt.invalid_tss.set_handler_fn(invalid_tss);
    idt.segment_not_present.set_handler_fn(segment_not_present);
    idt.stack_segment_fault.set_handler_fn(stack_segment);
    idt.general_protection_fault.set_handler_fn(general_protection);
    idt.page_fault.set_handler_fn(page_fault);
    idt.x87_floating_point.set_handler_fn(x87_fp);
    idt.alignment_check.set_handler_fn(alignment_check);
    idt.simd_floating_point.set_handler_fn(simd_fp);
    idt.virtualization.set_handler_fn(virtualization);
    idt.cp_protection_exception.set_handler_fn(control_protection);
}

/// Prints the report (human lines plus the test protocol's FAULT line) and
/// ends the run as a failure.
pub fn fatal(
    name: &str,
    vector: u8,
    error: Option<u64>,
    frame: &InterruptStackFrame,
    extra: core::fmt::Arguments<'_>,
) -> ! {
    let cpu = percpu::current_cpu();
    let cr2 = Cr2::read_raw();
    let err = match error {
        Some(e) => alloc_free_hex(e),
        None => HexBuf::none(),
    };
    log::error!(
        "EXCEPTION {name} (vector {vector}) on {cpu}: error code {}, RIP {:#x}, RSP {:#x}, RFLAGS {:#x}, CR2 {cr2:#x}{extra}",
        err.as_str(),
        frame.instruction_pointer.as_u64(),
        frame.stack_pointer.as_u64(),
        frame.cpu_flags.bits(),
    );
    // The handler's own frame links to the interrupted code's frames.
    crate::backtrace::print_from(cpu.index(), crate::backtrace::current_rbp());
    crate::println_raw!(
        "{}",
        protocol::ktest::Line::Fault {
            cpu: cpu.index(),
            message: format_args!(
                "{name} (vector {vector}) at RIP {:#x}, error code {}, CR2 {cr2:#x}{extra}",
                frame.instruction_pointer.as_u64(),
                err.as_str()
            )
        }
    );
    power::exit(power::ExitCode::Failure)
}

/// Formats without the heap: a fault may come from the allocator itself.
struct HexBuf {
    buf: [u8; 18],
    len: usize,
}

impl HexBuf {
    fn none() -> HexBuf {
        let mut b = HexBuf { buf: [0; 18], len: 4 };
        b.buf[..4].copy_from_slice(b"none");
        b
    }

    fn as_str(&self) -> &str {
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("?")
    }
}

fn alloc_free_hex(v: u64) -> HexBuf {
    let mut b = HexBuf { buf: [0; 18], len: 0 };
    b.buf[0] = b'0';
    b.buf[1] = b'x';
    let digits = (64 - v.leading_zeros()).div_ceil(4).max(1) as usize;
    for i in 0..digits {
        let nib = (v >> ((digits - 1 - i) * 4)) & 0xF;
        b.buf[2 + i] = b"0123456789abcdef"[nib as usize];
    }
    b.len = 2 + digits;
    b
}

macro_rules! fatal_handler {
    ($fn:ident, $name:literal, $vec:literal) => {
        extern "x86-interrupt" fn $fn(frame: InterruptStackFrame) {
            fatal($name, $vec, None, &frame, format_args!(""));
        }
    };
    ($fn:ident, $name:literal, $vec:literal, error) => {
        extern "x86-interrupt" fn $fn(frame: InterruptStackFrame, code: u64) {
            fatal($name, $vec, Some(code), &frame, format_args!(""));
        }
    };
}

fatal_handler!(divide_error, "DIVIDE ERROR (#DE)", 0);
fatal_handler!(debug, "DEBUG (#DB)", 1);
fatal_handler!(overflow, "OVERFLOW (#OF)", 4);
fatal_handler!(bound_range, "BOUND RANGE EXCEEDED (#BR)", 5);
fatal_handler!(invalid_opcode, "INVALID OPCODE (#UD)", 6);
fatal_handler!(device_not_available, "DEVICE NOT AVAILABLE (#NM)", 7);
fatal_handler!(invalid_tss, "INVALID TSS (#TS)", 10, error);
fatal_handler!(segment_not_present, "SEGMENT NOT PRESENT (#NP)", 11, error);
fatal_handler!(stack_segment, "STACK-SEGMENT FAULT (#SS)", 12, error);
fatal_handler!(general_protection, "GENERAL PROTECTION (#GP)", 13, error);
fatal_handler!(x87_fp, "x87 FLOATING-POINT ERROR (#MF)", 16);
fatal_handler!(alignment_check, "ALIGNMENT CHECK (#AC)", 17, error);
fatal_handler!(simd_fp, "SIMD FLOATING-POINT (#XM)", 19);
fatal_handler!(virtualization, "VIRTUALIZATION (#VE)", 20);
fatal_handler!(control_protection, "CONTROL PROTECTION (#CP)", 21, error);

extern "x86-interrupt" fn breakpoint(frame: InterruptStackFrame) {
    BREAKPOINTS.fetch_add(1, Ordering::SeqCst);
    log::info!("breakpoint (#BP) at RIP {:#x}, resuming", frame.instruction_pointer.as_u64());
}

extern "x86-interrupt" fn nmi(mut frame: InterruptStackFrame) {
    crate::arch::x86_64::nmi::dispatch(&mut frame);
}

extern "x86-interrupt" fn machine_check(frame: InterruptStackFrame) -> ! {
    fatal("MACHINE CHECK (#MC)", 18, None, &frame, format_args!(""))
}

extern "x86-interrupt" fn page_fault(frame: InterruptStackFrame, code: PageFaultErrorCode) {
    let cr2 = Cr2::read_raw();
    let guard = if crate::mem::vmem::is_guard_page(VirtAddr::new_truncate(cr2)) {
        " (address in a stack guard page: stack overflow)"
    } else {
        ""
    };
    fatal("PAGE FAULT (#PF)", 14, Some(code.bits()), &frame, format_args!(" [{code:?}]{guard}"));
}

/// A double fault here almost always means the stack overflowed into its
/// guard page, so the page fault could not push its frame. The handler runs
/// on its own IST stack; the report says so, and says whether the faulting
/// address was a guard page.
extern "x86-interrupt" fn double_fault(frame: InterruptStackFrame, _code: u64) -> ! {
    let cpu = percpu::current_cpu();
    let rsp: u64;
    // SAFETY: reads the stack pointer only.
    unsafe { core::arch::asm!("mov {}, rsp", out(reg) rsp, options(nomem, nostack, preserves_flags)) };
    let on_ist =
        gdt::ist_stacks(cpu).is_some_and(|s| s[gdt::IST_DOUBLE_FAULT as usize].contains(VirtAddr::new_truncate(rsp)));
    let cr2 = Cr2::read_raw();
    let overflow = crate::mem::vmem::is_guard_page(VirtAddr::new_truncate(cr2));
    fatal(
        "DOUBLE FAULT (#DF)",
        8,
        Some(0),
        &frame,
        format_args!(
            "; handler on IST stack: {}; {}",
            if on_ist { "yes" } else { "NO" },
            if overflow { "stack overflow: CR2 is in a stack guard page" } else { "CR2 is not a guard page" }
        ),
    )
}
