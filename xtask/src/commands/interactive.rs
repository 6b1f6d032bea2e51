//! One boot with the guest's serial line streamed to a person, and its
//! verdict as our exit status: `cargo xtask qemu` and `cargo xtask bochs`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use bootimage::BootParams;

use crate::backtrace::LiveFilter;
use crate::boot::Booter;
use crate::judge::{Exit, unexpected_exit};
use crate::process::{Output, RunOptions, Stream};
use crate::protocol::{EXIT_FAILURE, EXIT_SUCCESS};
use crate::symbols;
use crate::vm::{Emulator, VmConfig};

/// Exit statuses (see the commands' --help).
const EXIT_RESET: u8 = 3;
const EXIT_TIMEOUT: u8 = 124;

/// Boots `cfg`, writing the serial output to `serial` (backtraces
/// symbolized) and QEMU's messages to stderr; Bochs's chatter stays in the
/// log. `gdb`: a debugger may end the run.
pub fn boot(
    booter: &Booter,
    cfg: &VmConfig,
    params: &BootParams,
    name: &str,
    opts: &RunOptions,
    serial: &mut dyn Write,
    gdb: bool,
) -> Result<ExitCode> {
    let symbols = symbols::load_or_warn(&booter.elf);
    let mut backtraces = LiveFilter::default();
    let emulator = cfg.emulator.name();
    let boot = booter.boot(cfg, params, name, opts, |out| {
        // Raw chunks, not lines: a prompt without a newline shows at once.
        // Only `@@BT` lines wait for their end, to be shown symbolized.
        let _ = match (out, cfg.emulator) {
            (Output::Chunk(Stream::Stdout, bytes), _) => {
                let bytes = backtraces.push(bytes, symbols.as_ref());
                serial.write_all(&bytes).and_then(|()| serial.flush())
            }
            (Output::Chunk(Stream::Stderr, bytes), Emulator::Qemu) => std::io::stderr().write_all(bytes),
            // Bochs prints its banner, register dumps and debugger prompts;
            // only why it ended matters here.
            (Output::Line(Stream::Stderr, _, line), Emulator::Bochs)
                if line.contains(crate::bochs::SHUTDOWN_MESSAGE) =>
            {
                writeln!(std::io::stderr(), "[bochs] {line}")
            }
            _ => Ok(()),
        };
    })?;
    let _ = serial.write_all(&backtraces.finish()).and_then(|()| serial.flush());
    let secs = boot.elapsed.as_secs_f64();
    let (message, code) = match boot.exit {
        Exit::Code(EXIT_SUCCESS) => (format!("guest exited with success after {secs:.1} s"), 0),
        Exit::Code(EXIT_FAILURE) => (format!("guest exited with FAILURE after {secs:.1} s"), 1),
        Exit::TimedOut => (format!("guest still running after {secs:.1} s: killed (hang?)"), EXIT_TIMEOUT),
        // gdb's `kill` ends QEMU with status 0, as a reset would.
        Exit::Code(0) if gdb => {
            (format!("QEMU ended after {secs:.1} s (`kill` from gdb, or a guest reset)"), EXIT_RESET)
        }
        Exit::Code(c) => (
            format!("after {secs:.1} s: {} (the log: {})", unexpected_exit(c), crate::workspace::display(&boot.log)),
            EXIT_RESET,
        ),
        Exit::Signal(s) => (format!("{emulator} was killed by signal {s}"), EXIT_RESET),
    };
    eprintln!("xtask: {message}");
    Ok(ExitCode::from(code))
}
