//! The interrupt half of the IDT: every vector the kernel uses has its
//! handler here, each handing straight to generic code and signalling EOI.

use core::sync::atomic::{AtomicU64, Ordering};

use x86_64::structures::idt::{InterruptDescriptorTable, InterruptStackFrame};

use super::apic;
use super::vectors;

static SPURIOUS: AtomicU64 = AtomicU64::new(0);
static UNEXPECTED: AtomicU64 = AtomicU64::new(0);

/// Fills every vector from 32 up.
pub fn install(idt: &mut InterruptDescriptorTable) {
    for v in 32..=255u8 {
        idt[v].set_handler_fn(unexpected);
    }
    for v in vectors::PIC_BASE..vectors::PIC_BASE + 16 {
        idt[v].set_handler_fn(legacy_pic);
    }
    idt[vectors::CALL_FUNCTION].set_handler_fn(call_function);
    idt[vectors::PING].set_handler_fn(ping);
    idt[vectors::STOP].set_handler_fn(stop);
    idt[vectors::STOP_MACHINE].set_handler_fn(stop_machine);
    idt[vectors::WAKE].set_handler_fn(wake);
    idt[vectors::LAPIC_TIMER].set_handler_fn(lapic_timer);
    idt[vectors::LAPIC_ERROR].set_handler_fn(lapic_error);
    idt[vectors::SPURIOUS].set_handler_fn(spurious);
}

/// Remaps the 8259 PICs away from the exception vectors and masks them:
/// the kernel takes no legacy IRQs, and an unremapped IRQ 0 would land on
/// the double-fault vector.
pub fn disable_legacy_pic() {
    // SAFETY: the standard PIC ports; remapping then masking every line
    // leaves them unable to raise anything but (ignored) spurious IRQs.
    unsafe {
        let mut pics = pic8259::ChainedPics::new(vectors::PIC_BASE, vectors::PIC_BASE + 8);
        pics.initialize();
        pics.write_masks(0xFF, 0xFF);
    }
}

/// EOI first, as Linux does: a call that turns interrupts back on (to wait
/// through a stop-machine, say) must be able to take the same-class IPIs.
extern "x86-interrupt" fn call_function(_: InterruptStackFrame) {
    apic::eoi();
    crate::smp::calls::on_doorbell();
}

extern "x86-interrupt" fn ping(_: InterruptStackFrame) {
    crate::smp::ping::on_ping();
    apic::eoi();
}

extern "x86-interrupt" fn stop(frame: InterruptStackFrame) {
    apic::eoi();
    crate::smp::stop::on_stop_ipi(super::cpu::Registers::interrupted(&frame));
}

/// EOI first: a participant re-enables interrupts in PREPARE and must be
/// able to take other IPIs then, as a stopper thread could.
extern "x86-interrupt" fn stop_machine(_: InterruptStackFrame) {
    apic::eoi();
    crate::smp::stop_machine::on_stop_machine_ipi();
    crate::smp::hotplug::park_if_dying();
}

/// The alarm (`apic::alarm`): it only ends a halt.
extern "x86-interrupt" fn lapic_timer(_: InterruptStackFrame) {
    apic::alarm::on_fired();
    apic::eoi();
}

/// A halted call waiter's wake-up: taking it is all it does.
extern "x86-interrupt" fn wake(_: InterruptStackFrame) {
    apic::eoi();
}

extern "x86-interrupt" fn lapic_error(_: InterruptStackFrame) {
    let errors = apic::on_error_interrupt();
    log::warn!("local APIC error interrupt: {errors}");
    apic::eoi();
}

/// Spurious interrupts must not be acknowledged (SDM vol. 3, 11.9).
extern "x86-interrupt" fn spurious(_: InterruptStackFrame) {
    SPURIOUS.fetch_add(1, Ordering::Relaxed);
}

/// A masked PIC can still raise spurious IRQ 7/15; they need no EOI.
extern "x86-interrupt" fn legacy_pic(_: InterruptStackFrame) {
    SPURIOUS.fetch_add(1, Ordering::Relaxed);
}

extern "x86-interrupt" fn unexpected(frame: InterruptStackFrame) {
    UNEXPECTED.fetch_add(1, Ordering::Relaxed);
    log::warn!("unexpected interrupt at RIP {:#x}", frame.instruction_pointer.as_u64());
    apic::eoi();
}

/// Spurious and unexpected interrupts seen so far.
pub fn stray_counts() -> (u64, u64) {
    (SPURIOUS.load(Ordering::Relaxed), UNEXPECTED.load(Ordering::Relaxed))
}
