//! Halting with interrupts off until an NMI, without losing the NMI that
//! arrives just before the `hlt`. A stop-machine waiter sleeps this way
//! (`smp/stop_machine.rs`): under an emulator a halted vCPU gives its host
//! core back to the vCPUs that still have to ack.
//!
//! With interrupts off only an NMI ends a `hlt`, and an NMI taken between
//! the waiter's last look and its `hlt` would leave it asleep for good. So
//! the last look and the `hlt` are one stub, [`halt_while_eq`], and an NMI
//! that lands between its look and its `hlt` resumes *after* the `hlt`
//! ([`skip_halt_if_interrupted_in_stub`], called first by the NMI
//! dispatcher). Waking early is harmless: the caller looks again.

use core::sync::atomic::AtomicU32;

use x86_64::structures::idt::InterruptStackFrame;

core::arch::global_asm!(
    r#"
    .section .text.nmi_halt, "ax"
    .global nmi_halt_stub
    .global nmi_halt_window
    .global nmi_halt_hlt
    .global nmi_halt_resume
// rdi: the word to watch, esi: the value it had. Halts only while equal,
// with interrupts off: a maskable interrupt taken between the compare and
// the hlt would return to the hlt, and an NMI inside its handler could not
// tell.
nmi_halt_stub:
    pushfq
nmi_halt_window:
    cli
    cmp dword ptr [rdi], esi
    jne nmi_halt_resume
nmi_halt_hlt:
    hlt
nmi_halt_resume:
    popfq
    ret
    .previous
"#
);

unsafe extern "C" {
    fn nmi_halt_stub(word: *const AtomicU32, value: u32);
    // Labels of the stub; only their addresses are taken.
    static nmi_halt_window: u8;
    static nmi_halt_hlt: u8;
    static nmi_halt_resume: u8;
}

/// Halts this CPU, interrupts off, while `word` still holds `value`; the
/// caller's interrupt flag is restored on return. Any NMI ends the halt, so
/// the caller must look again at what it waits for.
pub fn halt_while_eq(word: &AtomicU32, value: u32) {
    // SAFETY: the stub reads one aligned `u32` through a valid reference
    // (an atomic load on x86), halts, restores RFLAGS as it found them and
    // returns; it touches no other memory and no register beyond the C
    // ABI's scratch ones, and leaves the stack balanced.
    unsafe { nmi_halt_stub(word, value) }
}

/// The stub's addresses: its entry, the start of the window an NMI must
/// not leave for the `hlt` (the flags are saved by then), the `hlt`, and the
/// exit after it.
pub fn stub_addresses() -> [u64; 4] {
    [
        nmi_halt_stub as *const () as u64,
        (&raw const nmi_halt_window) as u64,
        (&raw const nmi_halt_hlt) as u64,
        (&raw const nmi_halt_resume) as u64,
    ]
}

/// Where an NMI that interrupted `rip` must return to: the stub's exit if
/// `rip` lies in its window up to and including the `hlt`, else `None`. An
/// NMI before the window returns there: the compare that follows it sees
/// whatever the NMI's sender changed first.
pub fn resume_point(rip: u64) -> Option<u64> {
    let [_, window, hlt, resume] = stub_addresses();
    (window..=hlt).contains(&rip).then_some(resume)
}

/// The NMI dispatcher's first step: an NMI that caught this CPU in the stub,
/// before its `hlt`, must end the halt it was about to enter.
pub fn skip_halt_if_interrupted_in_stub(frame: &mut InterruptStackFrame) {
    let Some(resume) = resume_point(frame.instruction_pointer.as_u64()) else { return };
    // SAFETY: only the return address changes, to the `ret` of the stub the
    // frame was interrupted in; stack, flags and segments stay as they were.
    unsafe { frame.as_mut().update(|f| f.instruction_pointer = x86_64::VirtAddr::new(resume)) };
}
