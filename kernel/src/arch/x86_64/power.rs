//! Ending a run: QEMU's exit device, Bochs's shutdown port, else halt.

use x86_64::instructions::port::Port;

pub use super::cpu::halt_forever;
use super::ports::{BOCHS_SHUTDOWN, QEMU_DEBUG_EXIT};

/// The verdict a run ends with. QEMU turns the value v written to its
/// isa-debug-exit port into exit status (v << 1) | 1: 33 and 35.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum ExitCode {
    Success = 0x10,
    Failure = 0x11,
}

/// Ends the run. Never returns: if no emulator device takes the write (real
/// hardware) the CPU halts with interrupts off.
pub fn exit(code: ExitCode) -> ! {
    // Bochs's shutdown port carries no status: this line is the verdict there.
    let verdict = match code {
        ExitCode::Success => "success",
        ExitCode::Failure => "failure",
    };
    crate::println_raw!("@@EXIT\t{verdict}");
    crate::console::drain();
    // SAFETY: port 0xF4 is QEMU's debug-exit device under xtask; elsewhere
    // it is an unused ISA port and the write is ignored.
    unsafe { Port::<u32>::new(QEMU_DEBUG_EXIT).write(code as u32) };
    // SAFETY: Bochs's shutdown port; ignored by everything else.
    unsafe {
        let mut port = Port::<u8>::new(BOCHS_SHUTDOWN);
        for &b in b"Shutdown" {
            port.write(b);
        }
    }
    halt_forever()
}
