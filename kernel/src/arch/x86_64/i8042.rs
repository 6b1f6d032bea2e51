//! The 8042 PS/2 controller: the PC keyboard's bytes arrive through it.
//!
//! Polled, not interrupt-driven: the console reads it from its input loop,
//! and the kernel routes no legacy IRQs (the 8259s are masked, no IOAPIC is
//! programmed), so IRQ 1 is neither needed nor available. Every wait on the
//! controller is bounded, and a machine without legacy PS/2 (its status port
//! floats to 0xFF) is reported absent instead of being waited on.

use x86_64::instructions::port::{Port, PortReadOnly, PortWriteOnly};

use super::ports::{I8042_DATA, I8042_STATUS_COMMAND};

/// Status: a byte waits in the data port for the CPU.
const STATUS_OUTPUT_FULL: u8 = 1 << 0;
/// Status: the controller has not yet taken the CPU's last byte.
const STATUS_INPUT_FULL: u8 = 1 << 1;
/// Status: the waiting byte came from the second (mouse) port.
const STATUS_AUX_DATA: u8 = 1 << 5;
/// What the status port reads on an ISA bus with nothing behind it.
const STATUS_FLOATING: u8 = 0xFF;

/// Controller command: send the configuration byte to the data port.
const CMD_READ_CONFIG: u8 = 0x20;
/// Controller command: the next data byte is the new configuration byte.
const CMD_WRITE_CONFIG: u8 = 0x60;
/// Controller command: present the next data byte as if the keyboard sent it.
const CMD_WRITE_KEYBOARD_OUTPUT: u8 = 0xD2;

/// Configuration: the keyboard's clock is held off (the port is disabled).
const CONFIG_KEYBOARD_DISABLED: u8 = 1 << 4;
/// Configuration: translate the keyboard's scancode set 2 into set 1.
const CONFIG_TRANSLATE: u8 = 1 << 6;

/// How long the controller may take to take or produce one byte. Real
/// controllers answer within a millisecond (Linux waits up to half a
/// second); this bounds what a broken one costs, once, at start-up.
const BYTE_TIMEOUT_US: u64 = 50_000;
/// Bytes drained at start-up: the controller buffers at most a few (16 on
/// the chips Linux knows), so more means the status is stuck, not full.
const MAX_STALE_BYTES: usize = 32;

/// What went wrong talking to the controller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The status port floats: there is no controller.
    Absent,
    /// The controller did not take or produce a byte in time (named step).
    Timeout(&'static str),
    /// The output buffer never drains: something keeps it full.
    Stuck,
}

/// The controller's ports. Whoever holds this is the only one talking to it.
pub struct I8042 {
    data: Port<u8>,
    status: PortReadOnly<u8>,
    command: PortWriteOnly<u8>,
}

impl I8042 {
    /// Claims the controller's ports.
    ///
    /// # Safety
    /// At most one `I8042` exists at a time, and nothing else uses ports
    /// 0x60 and 0x64: the controller's command/answer exchanges must not be
    /// interleaved with another user's.
    pub const unsafe fn new() -> I8042 {
        I8042 {
            data: Port::new(I8042_DATA),
            status: PortReadOnly::new(I8042_STATUS_COMMAND),
            command: PortWriteOnly::new(I8042_STATUS_COMMAND),
        }
    }

    fn status(&mut self) -> u8 {
        // SAFETY: reading the status register has no side effect; the ports
        // are ours (see `new`).
        unsafe { self.status.read() }
    }

    /// Checks that a controller is there and sets it up for the console: the
    /// keyboard port enabled, scancodes translated to set 1. Whatever the
    /// firmware left in the output buffer is thrown away.
    pub fn init(&mut self) -> Result<(), Error> {
        if self.status() == STATUS_FLOATING {
            return Err(Error::Absent);
        }
        self.drain()?;
        self.send_command(CMD_READ_CONFIG)?;
        let config = self.read_data("reading the configuration")?;
        let wanted = (config | CONFIG_TRANSLATE) & !CONFIG_KEYBOARD_DISABLED;
        if wanted != config {
            self.send_command(CMD_WRITE_CONFIG)?;
            self.write_data(wanted, "writing the configuration")?;
        }
        Ok(())
    }

    /// A byte the keyboard sent, if one is waiting. Mouse bytes are read
    /// (so that they do not block the keyboard's) and dropped.
    pub fn try_read_keyboard(&mut self) -> Option<u8> {
        let status = self.status();
        if status & STATUS_OUTPUT_FULL == 0 {
            return None;
        }
        // SAFETY: a byte is waiting (OUTPUT_FULL); reading it only pops it.
        let byte = unsafe { self.data.read() };
        (status & STATUS_AUX_DATA == 0).then_some(byte)
    }

    /// Makes the controller present `byte` as if the keyboard had sent it
    /// (command 0xD2), and waits until it is readable. This lets a test drive
    /// the whole input path through the real device.
    pub fn write_keyboard_output(&mut self, byte: u8) -> Result<(), Error> {
        self.send_command(CMD_WRITE_KEYBOARD_OUTPUT)?;
        self.write_data(byte, "writing the keyboard output buffer")?;
        if self.wait(STATUS_OUTPUT_FULL, STATUS_OUTPUT_FULL) {
            Ok(())
        } else {
            Err(Error::Timeout("presenting the injected byte"))
        }
    }

    /// Waits until `status & mask == want`; false past the timeout.
    fn wait(&mut self, mask: u8, want: u8) -> bool {
        crate::time::wait_until(BYTE_TIMEOUT_US, || self.status() & mask == want)
    }

    fn drain(&mut self) -> Result<(), Error> {
        for _ in 0..MAX_STALE_BYTES {
            if self.status() & STATUS_OUTPUT_FULL == 0 {
                return Ok(());
            }
            // SAFETY: a byte is waiting; reading it only pops it.
            unsafe { self.data.read() };
        }
        Err(Error::Stuck)
    }

    fn send_command(&mut self, command: u8) -> Result<(), Error> {
        if !self.wait(STATUS_INPUT_FULL, 0) {
            return Err(Error::Timeout("sending a command"));
        }
        // SAFETY: the controller's input buffer is empty; the ports are ours,
        // so no other exchange is in progress.
        unsafe { self.command.write(command) };
        Ok(())
    }

    fn write_data(&mut self, byte: u8, step: &'static str) -> Result<(), Error> {
        if !self.wait(STATUS_INPUT_FULL, 0) {
            return Err(Error::Timeout(step));
        }
        // SAFETY: as in `send_command`; this byte is the argument of the
        // command just sent.
        unsafe { self.data.write(byte) };
        Ok(())
    }

    fn read_data(&mut self, step: &'static str) -> Result<u8, Error> {
        if !self.wait(STATUS_OUTPUT_FULL, STATUS_OUTPUT_FULL) {
            return Err(Error::Timeout(step));
        }
        // SAFETY: the answer to our command is waiting; reading pops it.
        Ok(unsafe { self.data.read() })
    }
}
