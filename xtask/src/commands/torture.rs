//! `cargo xtask torture`: one long stress boot of the test kernel, its
//! progress streamed, judged like any guest test.

use std::process::ExitCode;

use anyhow::{Result, anyhow, bail};

use crate::backtrace;
use crate::boot::{Booter, EMULATOR_OUTPUT};
use crate::build::{self, Kernel, Profile};
use crate::cli::{TortureArgs, boot_params};
use crate::judge::{Judge, Outcome};
use crate::process::{Output, RunOptions, Stream};
use crate::protocol::TestInfo;
use crate::report::{self, Tail};
use crate::{guest, prereq, symbols, torture, workspace};

pub fn run(args: &TortureArgs) -> Result<ExitCode> {
    // Before anything slow: a bad combination of options fails at once.
    let plan = torture::plan(&args.request()).map_err(|e| anyhow!(e))?;
    let firmware = args.firmware.into();
    let cfg = super::qemu_config(firmware, &args.vm(), &args.qemu_args);
    let host = prereq::ensure(firmware == bootimage::Firmware::Uefi, false)?;
    if let Some(why) = cfg.unmet_requirement(&host) {
        bail!("cannot boot this configuration: {why}");
    }
    let elf = build::kernel_elf(args.kernel.as_deref(), Kernel::Tests, Profile::Dev)?;
    let booter = Booter::new(host, elf, workspace::new_run_dir()?)?;
    let name = format!("torture-{}", firmware.name());
    let label = cfg.label();
    eprintln!(
        "xtask: {} for {} s on {label}, weights {} ({}){}; serial log in {}",
        plan.test,
        args.duration,
        args.weights,
        torture::CALL_KINDS.join(", "),
        if args.no_hotplug { String::new() } else { format!(", hotplug every {} ms", args.hotplug_ms) },
        workspace::display(&booter.run_dir.join(format!("{name}.log")))
    );

    let symbols = symbols::load_or_warn(&booter.elf);
    let mut judge = Judge::new(vec![TestInfo::new(plan.test)]).with_symbols(symbols.clone());
    let mut tail = Tail::default();
    let opts = RunOptions { timeout: Some(plan.timeout), ..RunOptions::default() };
    let boot = booter.boot(&cfg, &boot_params(&plan.params), &name, &opts, |out| {
        let Output::Line(stream, at, line) = out else { return };
        if stream == Stream::Stderr {
            let line = format!("{EMULATOR_OUTPUT}{line}");
            if args.verbose {
                eprintln!("{}", report::printable(&line));
            }
            tail.push(&line);
            return;
        }
        for shown in backtrace::render(line, symbols.as_ref()) {
            if args.verbose || torture::shows(line) {
                println!("{}", report::printable(&shown));
            }
            tail.push(&shown);
        }
        // Verdicts are printed once QEMU is gone: only its exit status can
        // make an expected ending out of a crash.
        judge.feed(at, line);
    })?;

    let report = judge.finish(boot.exit, boot.elapsed);
    let passed = report.boot_failures.is_empty()
        && !report.verdicts.is_empty()
        && report.verdicts.iter().all(|v| v.outcome == Outcome::Passed);
    if !passed && !args.verbose {
        // What led there: assertion messages, panics and backtraces are not
        // among the lines shown live.
        guest::print_excerpt(&mut tail, report.crash_trace.as_ref(), &mut false);
    }
    for verdict in &report.verdicts {
        println!("{}", report::verdict_line(&label, verdict));
    }
    for why in &report.boot_failures {
        println!("{}", report::boot_failure_line(&label, "<torture>", why));
    }
    println!("    serial log: {}", workspace::display(&boot.log));
    if passed {
        let _ = std::fs::remove_dir_all(&boot.dir);
    }
    eprintln!("xtask: torture {} after {}", if passed { "PASSED" } else { "FAILED" }, report::secs(boot.elapsed));
    Ok(if passed { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
