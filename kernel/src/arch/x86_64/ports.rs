//! I/O port numbers, named after the documents that define them.

/// COM1, the first PC serial port.
pub const COM1: u16 = 0x3F8;
/// QEMU's `isa-debug-exit` device (as configured by xtask: iobase=0xf4).
pub const QEMU_DEBUG_EXIT: u16 = 0xF4;
/// Bochs's shutdown port: writing the string "Shutdown" ends the emulator.
pub const BOCHS_SHUTDOWN: u16 = 0x8900;
/// 8254 PIT channel 2 data port.
pub const PIT_CHANNEL2: u16 = 0x42;
/// 8254 PIT mode/command register.
pub const PIT_COMMAND: u16 = 0x43;
/// PC/AT NMI status and control (port B): bit 0 gates PIT channel 2, bit 1
/// enables the speaker, bit 5 reads channel 2's output.
pub const NMI_STATUS_CONTROL: u16 = 0x61;
/// 8042 PS/2 controller data port: device bytes in, command arguments out.
pub const I8042_DATA: u16 = 0x60;
/// 8042 PS/2 controller status register (read) and command register (write).
pub const I8042_STATUS_COMMAND: u16 = 0x64;
