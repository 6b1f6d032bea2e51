//! The commands: glue between the parsed arguments and the modules that do
//! the work.

mod bench;
mod bochs;
mod image;
mod interactive;
mod lint;
mod matrix;
mod qemu;
mod symbolize;
mod test;
mod torture;
mod usb;

use std::process::ExitCode;

use anyhow::Result;
use bootimage::Firmware;

use std::path::PathBuf;

use crate::build::{self, Kernel};
use crate::cli::{Cli, Command, KernelArgs, VmArgs};
use crate::vm::VmConfig;

/// Runs the command `cli` names.
pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Bench(args) => bench::run(&args),
        Command::Bochs(args) => bochs::run(&args),
        Command::Image(args) => image::run(&args),
        Command::Lint(args) => lint::run(&args),
        Command::Matrix(args) => matrix::run(&args),
        Command::Qemu(args) => qemu::run(&args),
        Command::Test(args) => test::run(&args),
        Command::Torture(args) => torture::run(&args),
        Command::Symbolize(args) => symbolize::run(&args),
        Command::Usb(args) => usb::run(&args),
    }
}

pub(crate) fn qemu_config(firmware: Firmware, vm: &VmArgs, extra: &[String]) -> VmConfig {
    VmConfig {
        machine: vm.machine,
        memory: vm.memory.clone(),
        cpu: vm.cpu.clone(),
        extra: extra.to_vec(),
        ..VmConfig::qemu(firmware, vm.smp)
    }
}

/// The kernel ELF `args` names: the one given, or a fresh build of the demo
/// or the test kernel.
pub(crate) fn kernel_elf(args: &KernelArgs) -> Result<PathBuf> {
    let kernel = if args.test_kernel { Kernel::Tests } else { Kernel::Demo };
    build::kernel_elf(args.kernel.as_deref(), kernel, build::Profile::Dev)
}
