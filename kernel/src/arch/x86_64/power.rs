//! Ending a run: QEMU's exit device, Bochs's shutdown port, else halt.

use x86_64::instructions::port::Port;

use super::cpu::halt_forever;
use super::ports::{BOCHS_SHUTDOWN, QEMU_DEBUG_EXIT};

/// The verdict a run ends with (`protocol::exit`: the value QEMU's
/// isa-debug-exit device turns into its exit status, and the `@@EXIT` line).
pub use protocol::exit::Verdict as ExitCode;

/// Ends the run. Never returns: if no emulator device takes the write (real
/// hardware) the CPU halts with interrupts off.
pub fn exit(code: ExitCode) -> ! {
    // Bochs's shutdown port carries no status: this line is the verdict there.
    crate::println_raw!("{}", protocol::exit::Line(code));
    crate::console::drain();
    // SAFETY: port 0xF4 is QEMU's debug-exit device under xtask; elsewhere
    // it is an unused ISA port and the write is ignored.
    unsafe { Port::<u32>::new(QEMU_DEBUG_EXIT).write(code.debug_exit_value()) };
    // SAFETY: Bochs's shutdown port; ignored by everything else.
    unsafe {
        let mut port = Port::<u8>::new(BOCHS_SHUTDOWN);
        for &b in b"Shutdown" {
            port.write(b);
        }
    }
    halt_forever()
}
