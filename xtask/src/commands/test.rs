//! `cargo xtask test`: host tests, then guest tests, then the closing count.

use std::process::ExitCode;

use anyhow::Result;

use crate::boot::Booter;
use crate::build::{self, Kernel, Profile};
use crate::cli::TestArgs;
use crate::guest::{self, GuestOptions};
use crate::report::{self, Tally};
use crate::vm::Emulator;
use crate::{configs, hosttest, prereq, workspace};

pub fn run(args: &TestArgs) -> Result<ExitCode> {
    if args.list_configs {
        print!("{}", configs::list_text());
        return Ok(ExitCode::SUCCESS);
    }
    let mut tally = Tally::default();
    if !args.no_host {
        tally.add(hosttest::run(args.host_filter.as_deref(), args.verbose)?);
    }
    if !args.no_guest {
        let runs = configs::guest_runs(args);
        let uefi = runs.iter().flat_map(|run| &run.machines).any(|cfg| cfg.firmware == bootimage::Firmware::Uefi);
        let bochs = runs.iter().flat_map(|run| &run.machines).any(|cfg| cfg.emulator == Emulator::Bochs);
        let host = prereq::ensure(uefi, bochs)?;
        match host.version {
            Some((a, b)) => eprintln!("xtask: {} {a}.{b}", prereq::QEMU),
            None => eprintln!("xtask: {} (version unknown)", prereq::QEMU),
        }
        let elf = build::kernel_elf(args.kernel.as_deref(), Kernel::Tests, Profile::Dev)?;
        let booter = Booter::new(host, elf, workspace::new_run_dir()?)?;
        let opts = GuestOptions {
            runs,
            verbose: args.verbose,
            timeout_scale: args.timeout_scale,
            kernel: args.kernel.clone(),
        };
        let report = guest::run_tests(&booter, &opts)?;
        if report.machines.len() > 1 || !args.configs.configs.is_empty() {
            println!("\n{}", report::machine_table(&report.machines));
        }
        print!("{}", report::recap(&report.found.failures));
        tally.add(report.found.tally);
    }
    // The closing line, alone, in the form CI reads.
    println!("{}", tally.summary_line());
    Ok(if tally.failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
