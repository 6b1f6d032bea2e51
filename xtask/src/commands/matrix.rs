//! `cargo xtask matrix`: the guest tests over the machine matrix; `cargo
//! xtask test` without host tests, with the cells for configurations.

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::{FirmwareChoice, Machine, MatrixArgs, TestArgs, VmArgs};
use crate::configs::{self, Selection};

pub fn run(args: &MatrixArgs) -> Result<ExitCode> {
    if args.list {
        print!("{}", configs::list_text());
        return Ok(ExitCode::SUCCESS);
    }
    super::test::run(&as_test_args(args))
}

/// The `cargo xtask test` that runs exactly the chosen cells.
fn as_test_args(args: &MatrixArgs) -> TestArgs {
    TestArgs {
        configs: Selection { default: false, configs: args.cells.configs.clone() },
        list_configs: false,
        examples: false,
        no_host: true,
        no_guest: false,
        host_filter: None,
        verbose: args.verbose,
        timeout_scale: args.timeout_scale,
        kernel: args.kernel.clone(),
        params: args.params.clone(),
        filter: args.filter.clone(),
        qemu_args: Vec::new(),
        // The cells define their machines; these shape only `default`,
        // which the matrix does not run (but --memory: cells without one).
        firmware: FirmwareChoice::All,
        vm: VmArgs { smp: 4, machine: Machine::Pc, memory: "256M".into(), cpu: None },
    }
}
