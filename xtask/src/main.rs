//! `cargo xtask`: builds the kernels and their disk images, boots them in
//! QEMU or Bochs, and runs the host and in-guest tests.
//!
//! The pure parts (protocol reading, planning, judging, counting) are kept
//! apart from the parts that touch cargo, QEMU and the terminal, so that the
//! tests (`src/tests/`) can test them without booting anything.

mod backtrace;
mod bench;
mod bochs;
mod boot;
mod build;
mod cli;
mod commands;
mod configs;
mod gdb;
mod guest;
mod hosttest;
mod judge;
mod plan;
mod prereq;
mod process;
mod protocol;
mod qemu;
mod report;
mod strip;
mod symbols;
#[cfg(test)]
mod tests;
mod torture;
mod usb;
mod vm;
mod workspace;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match commands::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
