//! `cargo xtask qemu`: one interactive boot with the guest's verdict as our
//! exit status.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Result, bail};

use crate::boot::Booter;
use crate::cli::{QemuArgs, boot_params};
use crate::process::RunOptions;
use crate::{gdb, prereq, workspace};

/// Without --keep-running the demo ends by itself; this is plenty.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

pub fn run(args: &QemuArgs) -> Result<ExitCode> {
    let firmware = args.firmware.into();
    let mut extra = args.qemu_args.clone();
    if args.gdb {
        extra.extend(gdb::qemu_args(args.gdb_port));
    }
    let mut cfg = super::qemu_config(firmware, &args.vm, &extra);
    if args.usb {
        cfg.medium = crate::vm::Medium::UsbStick;
    }
    let host = prereq::ensure(firmware == bootimage::Firmware::Uefi, false)?;
    if let Some(why) = cfg.unmet_requirement(&host) {
        bail!("cannot boot this configuration: {why}");
    }
    let elf = super::kernel_elf(&args.kernel)?;
    let mut params = boot_params(&args.kernel.params);
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
        stdin_after: args.keep_running.then_some(crate::protocol::CONSOLE_READY),
        ..RunOptions::default()
    };
    super::interactive::boot(&booter, &cfg, &params, &name, &opts, &mut std::io::stdout(), args.gdb)
}
