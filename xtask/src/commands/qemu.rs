//! `cargo xtask qemu`: one interactive boot with the guest's verdict as our
//! exit status.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Result, bail};

use crate::backtrace::LiveFilter;
use crate::boot::Booter;
use crate::build::{self, Kernel};
use crate::cli::{QemuArgs, boot_params};
use crate::judge::{Exit, unexpected_exit};
use crate::process::{Output, RunOptions, Stream};
use crate::protocol::{EXIT_FAILURE, EXIT_SUCCESS};
use crate::qemu::unmet_requirement;
use crate::{gdb, prereq, symbols, workspace};

/// Without --keep-running the demo ends by itself; this is plenty.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// Exit statuses (see the command's --help).
const EXIT_RESET: u8 = 3;
const EXIT_TIMEOUT: u8 = 124;

pub fn run(args: &QemuArgs) -> Result<ExitCode> {
    let firmware = args.firmware.into();
    let mut extra = args.qemu_args.clone();
    if args.gdb {
        extra.extend(gdb::qemu_args(args.gdb_port));
    }
    let cfg = super::qemu_config(firmware, &args.vm, &extra);
    let host = prereq::ensure(firmware == bootimage::Firmware::Uefi)?;
    if let Some(why) = unmet_requirement(&cfg, host.version) {
        bail!("cannot boot this configuration: {why}");
    }
    let kernel = if args.test_kernel { Kernel::Tests } else { Kernel::Demo };
    let elf = build::kernel_elf(args.kernel.as_deref(), kernel)?;
    let mut params = boot_params(&args.params);
    if args.keep_running {
        params.set("demo.keep_running", "1")?;
    }
    // A person at a debugger takes as long as it takes.
    let timeout = match (args.timeout, args.keep_running || args.gdb) {
        (Some(secs), _) => Some(Duration::from_secs(secs)),
        (None, true) => None,
        (None, false) => Some(DEFAULT_TIMEOUT),
    };
    let booter = Booter::new(host, elf, workspace::new_run_dir()?)?;
    let name = format!("qemu-{}", firmware.name());
    eprintln!(
        "xtask: booting {} ({}), serial log in {}",
        workspace::display(&booter.elf),
        cfg.label(),
        workspace::display(&booter.run_dir.join(format!("{name}.log")))
    );
    if args.gdb {
        // gdb runs elsewhere: the ELF's path must not depend on our directory.
        let elf = std::fs::canonicalize(&booter.elf).unwrap_or_else(|_| booter.elf.clone());
        eprintln!(
            "xtask: QEMU waits for gdb on port {port}, stopped before the first instruction. Attach with:\n\n    \
             {}\n\n\
             xtask: every vCPU is a gdb thread (`info threads`, `thread 2`); e.g. `break \
             kernel::smp::hotplug::cpu_down`, then `continue`. `kill` in gdb, or Ctrl-C here, ends QEMU.",
            gdb::attach_command(&elf, args.gdb_port),
            port = args.gdb_port,
        );
    }
    let opts = RunOptions {
        timeout,
        // With a time limit QEMU may get killed, and then it cannot restore
        // a terminal it changed; without one, the person may type to the guest.
        inherit_stdin: timeout.is_none(),
    };
    let symbols = symbols::load_or_warn(&booter.elf);
    let mut backtraces = LiveFilter::default();
    let boot = booter.boot(&cfg, &params, &name, &opts, |out| {
        // Raw chunks, not lines: a prompt without a newline shows at once.
        // Only `@@BT` lines wait for their end, to be shown symbolized.
        if let Output::Chunk(stream, bytes) = out {
            let _ = match stream {
                Stream::Stdout => {
                    let bytes = backtraces.push(bytes, symbols.as_ref());
                    std::io::stdout().write_all(&bytes).and_then(|()| std::io::stdout().flush())
                }
                Stream::Stderr => std::io::stderr().write_all(bytes),
            };
        }
    })?;
    let _ = std::io::stdout().write_all(&backtraces.finish()).and_then(|()| std::io::stdout().flush());
    let secs = boot.elapsed.as_secs_f64();
    let (message, code) = match boot.exit {
        Exit::Code(EXIT_SUCCESS) => (format!("guest exited with success after {secs:.1} s"), 0),
        Exit::Code(EXIT_FAILURE) => (format!("guest exited with FAILURE after {secs:.1} s"), 1),
        Exit::TimedOut => (format!("guest still running after {secs:.1} s: killed (hang?)"), EXIT_TIMEOUT),
        // gdb's `kill` ends QEMU with status 0, as a reset would.
        Exit::Code(0) if args.gdb => {
            (format!("QEMU ended after {secs:.1} s (`kill` from gdb, or a guest reset)"), EXIT_RESET)
        }
        Exit::Code(c) => (format!("after {secs:.1} s: {}", unexpected_exit(c)), EXIT_RESET),
        Exit::Signal(s) => (format!("QEMU was killed by signal {s}"), EXIT_RESET),
    };
    eprintln!("xtask: {message}");
    Ok(ExitCode::from(code))
}
