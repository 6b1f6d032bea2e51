//! `cargo xtask symbolize`: a saved serial log with its backtraces in
//! `function at file:line` form.

use std::io::{Read, Write};
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::backtrace::{is_test_kernel_log, symbolize_log};
use crate::build::{self, Kernel, Profile};
use crate::cli::SymbolizeArgs;
use crate::symbols::Symbolizer;
use crate::workspace;

pub fn run(args: &SymbolizeArgs) -> Result<ExitCode> {
    let mut log = String::new();
    if args.file.as_os_str() == "-" {
        std::io::stdin().read_to_string(&mut log).context("reading standard input")?;
    } else {
        // Lossy: a log from real hardware may hold line noise.
        let bytes = std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
        log = String::from_utf8_lossy(&bytes).into_owned();
    }
    let kernel =
        if args.test_kernel || (!args.demo_kernel && is_test_kernel_log(&log)) { Kernel::Tests } else { Kernel::Demo };
    let elf = build::kernel_elf(args.kernel.as_deref(), kernel, Profile::Dev)?;
    eprintln!("xtask: symbols from {}", workspace::display(&elf));
    let symbols = Symbolizer::load(&elf)?;
    // Only the log on stdout, so it can be redirected.
    std::io::stdout().write_all(symbolize_log(&log, &symbols).as_bytes())?;
    Ok(ExitCode::SUCCESS)
}
