//! Running the in-guest tests: list them with one boot, plan the boots,
//! run them per firmware, print one line per test as verdicts arrive.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::Result;
use bootimage::Firmware;

use crate::backtrace::{self, Symbols, Trace};
use crate::boot::{Boot, Booter, EMULATOR_OUTPUT};
use crate::judge::{Judge, ListJudge, Outcome};
use crate::plan::{self, BootPlan, PlanOptions};
use crate::process::{Output, RunOptions, Stream};
use crate::protocol::TestInfo;
use crate::report::{self, Findings, Tail, Tally};
use crate::vm::{Emulator, Medium, VmConfig};
use crate::{symbols, workspace};

/// Time the test kernel gets to print its list, on top of the firmware's
/// boot allowance.
const LIST_TIME: Duration = Duration::from_secs(10);

/// What `cargo xtask test` asked of the guest side.
#[derive(Debug)]
pub struct GuestOptions {
    /// The test configurations, in run order.
    pub runs: Vec<GuestRun>,
    pub verbose: bool,
    pub timeout_scale: f64,
    /// The `--kernel` the user gave, for the reproduce commands.
    pub kernel: Option<PathBuf>,
}

/// One test configuration (see [`crate::configs`]): its machines and
/// which tests it runs on them.
#[derive(Clone, Debug)]
pub struct GuestRun {
    /// `default` or the configuration's name.
    pub name: String,
    /// Print `== configuration NAME (FIRMWARE): SELECTION ==` before each
    /// firmware's tests.
    pub header: bool,
    /// Its machines (the default run: one per firmware), in run order.
    pub machines: Vec<VmConfig>,
    pub plan: PlanOptions,
}

/// How one machine of a run went, for the closing table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MachineResult {
    /// The configuration's name (`default` for the standard run).
    pub config: String,
    /// The machine's label, e.g. `bios/smp4` or the cell's name.
    pub label: String,
    pub tally: Tally,
    /// Wall time of its boots; `None` when it did not run.
    pub elapsed: Option<Duration>,
    /// Why it did not run, when the host cannot run it.
    pub skipped: Option<String>,
}

/// What the guest side did: the counts, and per machine for the table.
#[derive(Debug, Default)]
pub struct GuestReport {
    pub found: Findings,
    pub machines: Vec<MachineResult>,
}

/// Runs everything; returns the guest's counts. Errors are reserved for the
/// host failing us (cannot write a file, cannot start QEMU); whatever the
/// guest does ends up in the tally.
pub fn run_tests(booter: &Booter, opts: &GuestOptions) -> Result<GuestReport> {
    let mut found = Findings::default();
    let mut machines = Vec::new();
    let total = opts.runs.iter().map(|run| run.machines.len()).sum::<usize>();
    let mut done = 0;
    // Loaded once: backtraces are shown and judged symbolized.
    let symbols = symbols::load_or_warn(&booter.elf);
    let runnable = |cfg: &VmConfig| cfg.unmet_requirement(&booter.host).is_none();

    // The list is a property of the ELF, the same under every machine: one
    // list boot serves all configurations. It takes the cheapest machine
    // the host can run: QEMU before Bochs, BIOS before UEFI, then the fewest
    // CPUs.
    let lister = opts
        .runs
        .iter()
        .flat_map(|run| run.machines.iter().map(move |cfg| (run, cfg)))
        .filter(|(_, cfg)| runnable(cfg))
        .min_by_key(|(_, cfg)| (cfg.emulator == Emulator::Bochs, cfg.firmware == Firmware::Uefi, cfg.smp));
    let tests = match lister {
        Some((run, cfg)) => match list_tests(booter, cfg, &run.plan, opts, symbols.as_ref())? {
            Ok(tests) => Some(tests),
            // Already shown, with the serial output that explains it.
            Err(line) => {
                found.fail(line);
                None
            }
        },
        None => None,
    };

    for run in &opts.runs {
        let plan = tests.as_ref().map(|tests| {
            let plan = plan::plan(tests, &run.plan);
            if run.machines.iter().any(runnable) {
                let prefix = if run.header { format!("{}: ", run.name) } else { String::new() };
                print_plan_summary(&prefix, tests, &plan);
            }
            plan
        });
        let selection = run.plan.describe_selection();
        for cfg in &run.machines {
            done += 1;
            let mut result = MachineResult {
                config: run.name.clone(),
                label: cfg.label(),
                tally: Tally::default(),
                elapsed: None,
                skipped: None,
            };
            match cfg.unmet_requirement(&booter.host) {
                // Never a silent pass: the configuration shows up as skipped.
                Some(why) => {
                    print_header(run, cfg, &selection);
                    println!("guest {} ({selection}) ... skipped: {why}", cfg.label());
                    result.tally.skipped += 1;
                    result.skipped = Some(why);
                }
                // No plan: the list boot failed, and said so. Nothing
                // selected (a FILTER outside the configuration's tests):
                // nothing to show either.
                None => {
                    let Some(plan) = plan.as_ref().filter(|p| !p.is_empty()) else {
                        continue;
                    };
                    print_header(run, cfg, &selection);
                    let started = Instant::now();
                    let of_config = run_config(booter, cfg, plan, &run.plan, opts, &symbols)?;
                    result.tally = of_config.tally;
                    found.failures.extend(of_config.failures);
                    result.elapsed = Some(started.elapsed());
                    if run.header {
                        eprintln!(
                            "xtask: configuration {} done in {} ({done} of {total})",
                            cfg.label(),
                            report::secs(started.elapsed())
                        );
                    }
                }
            }
            found.tally.add(result.tally);
            machines.push(result);
        }
    }
    Ok(GuestReport { found, machines })
}

fn print_header(run: &GuestRun, cfg: &VmConfig, selection: &str) {
    if run.header {
        println!("== configuration {} ({}): {selection} ==", run.name, cfg.firmware.name());
    }
}

fn print_plan_summary(prefix: &str, tests: &[TestInfo], plan: &plan::Plan) {
    let mut notes = Vec::new();
    if plan.examples_dropped > 0 {
        notes.push(format!("{} example(s) left out (--examples runs them)", plan.examples_dropped));
    }
    if plan.filtered_out > 0 {
        notes.push(format!("{} filtered out", plan.filtered_out));
    }
    let notes = if notes.is_empty() { String::new() } else { format!("; {}", notes.join(", ")) };
    eprintln!(
        "xtask: {prefix}{} guest test(s): {} to run in {} boot(s) per firmware, {} skipped{notes}",
        tests.len(),
        plan.test_count(),
        plan.boots.len(),
        plan.skipped.len()
    );
}

fn scaled(d: Duration, opts: &GuestOptions) -> Duration {
    d.mul_f64(opts.timeout_scale)
}

/// Boots with `ktest.list=1`; the outer error is the host's, the inner the
/// guest's: its failure line, already shown with what explains it.
fn list_tests(
    booter: &Booter,
    cfg: &VmConfig,
    plan_opts: &PlanOptions,
    opts: &GuestOptions,
    symbols: &dyn Symbols,
) -> Result<Result<Vec<TestInfo>, String>> {
    let mut params = crate::cli::boot_params(&[plan_opts.runner_params(), plan_opts.user_params.clone()].concat());
    params.set("ktest.list", "1")?;
    let name = format!("{}-list", cfg.firmware.name());
    let run = RunOptions { timeout: Some(scaled(cfg.boot_allowance() + LIST_TIME, opts)), ..RunOptions::default() };
    eprintln!("xtask: listing guest tests ({})", cfg.label());
    let mut list = ListJudge::default();
    let mut tail = Tail::default();
    let boot = booter.boot(cfg, &params, &name, &run, |out| {
        if let Some((line, shown)) = serial_line(out, opts.verbose, symbols) {
            shown.iter().for_each(|l| tail.push(l));
            list.feed(&line);
        }
    })?;
    let result = list.finish(boot.exit).map_err(|why| report::boot_failure_line(&cfg.label(), "<list>", &why));
    if let Err(line) = &result {
        println!("{line}");
        show_failure_context(&mut tail, None, &boot, opts.verbose, true);
    } else {
        remove_image(&boot);
    }
    Ok(result)
}

/// A serial line from an output event (QEMU's stderr lines marked), and
/// what a person sees of it (a backtrace line symbolized); that is echoed
/// when verbose.
fn serial_line(out: Output<'_>, verbose: bool, symbols: &dyn Symbols) -> Option<(String, Vec<String>)> {
    let Output::Line(stream, _, line) = out else {
        return None;
    };
    let (line, shown) = match stream {
        Stream::Stdout => (line.to_owned(), backtrace::render(line, symbols)),
        Stream::Stderr => {
            let line = format!("{EMULATOR_OUTPUT}{line}");
            (line.clone(), vec![line])
        }
    };
    if verbose {
        for l in &shown {
            println!("    {}", report::printable(l));
        }
    }
    Some((line, shown))
}

/// Runs the plan under one machine.
fn run_config(
    booter: &Booter,
    cfg: &VmConfig,
    plan: &plan::Plan,
    plan_opts: &PlanOptions,
    opts: &GuestOptions,
    symbols: &Rc<dyn Symbols>,
) -> Result<Findings> {
    let label = cfg.label();
    let mut found = Findings::default();
    for (test, why) in &plan.skipped {
        println!("guest {label} {} ... skipped: {why}", test.name);
        found.tally.skipped += 1;
    }
    let mut queue: VecDeque<BootPlan> = plan.boots.iter().cloned().collect();
    let mut boot_no = 0;
    while let Some(boot_plan) = queue.pop_front() {
        boot_no += 1;
        let rerun = run_boot(booter, cfg, &boot_plan, boot_no, opts, symbols, &mut found)?;
        if !rerun.is_empty() {
            eprintln!(
                "xtask: {} test(s) of boot {boot_no} did not get to run before it went down; running them in a new boot",
                rerun.len()
            );
            queue.push_front(BootPlan::new(rerun, plan_opts));
        }
    }
    Ok(found)
}

/// One boot of the plan; prints its verdicts, returns the tests to re-run.
fn run_boot(
    booter: &Booter,
    cfg: &VmConfig,
    boot_plan: &BootPlan,
    boot_no: usize,
    opts: &GuestOptions,
    symbols: &Rc<dyn Symbols>,
    found: &mut Findings,
) -> Result<Vec<TestInfo>> {
    let label = cfg.label();
    // Named configurations keep their boots' files apart from the default's.
    let name = match &cfg.name {
        Some(config) => format!("{config}-{}-{boot_no}", cfg.firmware.name()),
        None => format!("{}-{boot_no}", cfg.firmware.name()),
    };
    let run = RunOptions { timeout: Some(scaled(boot_plan.timeout(cfg), opts)), ..RunOptions::default() };
    if opts.verbose {
        eprintln!(
            "xtask: boot {name}: {}",
            boot_plan.params.pairs().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")
        );
    }
    let mut judge = Judge::new(boot_plan.tests.clone()).with_symbols(symbols.clone());
    let mut tail = Tail::default();
    let mut shown = 0;
    let mut trace_shown = false;
    let boot = booter.boot(cfg, &boot_plan.params, &name, &run, |out| {
        let Some((line, lines)) = serial_line(out, opts.verbose, symbols.as_ref()) else {
            return;
        };
        lines.iter().for_each(|l| tail.push(l));
        if line.starts_with(EMULATOR_OUTPUT) {
            return;
        }
        let Output::Line(_, at, _) = out else { return };
        for verdict in judge.feed(at, &line) {
            shown += 1;
            let text = report::verdict_line(&label, &verdict);
            println!("{text}");
            found.record(text, &verdict.outcome);
            if matches!(verdict.outcome, Outcome::Failed(_)) && !opts.verbose {
                print_excerpt(&mut tail, judge.crash_trace(), &mut trace_shown);
            }
        }
    });
    let boot = boot?;
    let report = judge.finish(boot.exit, boot.elapsed);
    let late_failure = !report.boot_failures.is_empty()
        || report.verdicts[shown..].iter().any(|v| matches!(v.outcome, Outcome::Failed(_)));
    for verdict in &report.verdicts[shown..] {
        let text = report::verdict_line(&label, verdict);
        println!("{text}");
        found.record(text, &verdict.outcome);
    }
    for why in &report.boot_failures {
        let text = report::boot_failure_line(&label, &format!("<boot {boot_no}>"), why);
        println!("{text}");
        found.fail(text);
    }
    if report.has_failures() {
        let trace = report.crash_trace.as_ref().filter(|_| !trace_shown);
        show_failure_context(&mut tail, trace, &boot, opts.verbose, late_failure);
        let reproduce = format!("    reproduce: {}", reproduce_command(cfg, boot_plan, opts.kernel.as_deref()));
        println!("{reproduce}");
        found.failures.push(reproduce);
    } else {
        remove_image(&boot);
    }
    Ok(report.rerun)
}

/// The serial output that explains a failure: the last lines not shown yet,
/// then the crashing CPU's symbolized backtrace, unless those lines held it
/// already or it was shown before (`trace_shown`).
pub(crate) fn print_excerpt(tail: &mut Tail, trace: Option<&Trace>, trace_shown: &mut bool) {
    let lines = tail.take_unshown();
    if !lines.is_empty() {
        println!("    --- last lines of serial output ---");
        for line in &lines {
            println!("    | {}", report::printable(line));
        }
    }
    let Some(trace) = trace.filter(|_| !*trace_shown) else {
        return;
    };
    *trace_shown = true;
    let trace_lines = trace.lines();
    // A panic on a machine with many CPUs prints every CPU's backtrace after
    // its own: the tail then no longer holds the one that matters.
    if !trace_lines.iter().all(|l| lines.contains(l)) {
        println!("    --- backtrace of cpu {} (the crashing CPU) ---", trace.cpu);
        for line in trace_lines {
            println!("    | {}", report::printable(&line));
        }
    }
}

/// After a failure: the serial output that explains it (unless it was
/// already shown: `tail_due` is false when every failure of the boot was
/// streamed with its own excerpt) and where the full log is.
fn show_failure_context(tail: &mut Tail, trace: Option<&Trace>, boot: &Boot, verbose: bool, tail_due: bool) {
    if !verbose && tail_due {
        print_excerpt(tail, trace, &mut false);
    }
    println!("    serial log: {}", workspace::display(&boot.log));
}

/// The boot's image is only worth its megabytes when something failed.
fn remove_image(boot: &Boot) {
    let _ = std::fs::remove_dir_all(&boot.dir);
}

/// The `cargo xtask qemu` command that boots the same tests by hand.
pub fn reproduce_command(cfg: &VmConfig, boot_plan: &BootPlan, kernel: Option<&Path>) -> String {
    if cfg.emulator == Emulator::Bochs {
        return reproduce_under_bochs(cfg, boot_plan, kernel);
    }
    let mut cmd = format!(
        "cargo xtask qemu --test-kernel --firmware {} --smp {} --machine {} --memory {}",
        cfg.firmware.name(),
        cfg.smp,
        cfg.machine.name(),
        cfg.memory
    );
    if let Some(kernel) = kernel {
        cmd += &format!(" --kernel {}", shell_quote(&kernel.display().to_string()));
    }
    if let Some(cpu) = &cfg.cpu {
        cmd += &format!(" --cpu {}", shell_quote(cpu));
    }
    if cfg.medium == Medium::UsbStick {
        cmd += " --usb";
    }
    for (k, v) in boot_plan.params.pairs() {
        cmd += &format!(" -p {}", shell_quote(&format!("{k}={v}")));
    }
    // What --smp and --machine cannot say goes to QEMU as a later -smp or
    // -machine, which QEMU merges with (and lets override) the earlier one.
    let mut extra = Vec::new();
    if cfg.smp_opts.is_some() {
        extra.extend(["-smp".to_owned(), cfg.smp_arg()]);
    }
    if cfg.machine_opts.is_some() {
        extra.extend(["-machine".to_owned(), cfg.machine_arg()]);
    }
    extra.extend(cfg.extra.iter().cloned());
    if !extra.is_empty() {
        let extra: Vec<String> = extra.iter().map(|a| shell_quote(a)).collect();
        cmd += &format!(" -- {}", extra.join(" "));
    }
    cmd
}

/// The `cargo xtask bochs` command that boots the same tests by hand.
fn reproduce_under_bochs(cfg: &VmConfig, boot_plan: &BootPlan, kernel: Option<&Path>) -> String {
    let mut cmd = format!("cargo xtask bochs --test-kernel --cpus {}", cfg.smp);
    if cfg.cpu.as_deref() == Some(crate::bochs::X2APIC_MODEL) {
        cmd += " --x2apic";
    }
    if let Some(kernel) = kernel {
        cmd += &format!(" --kernel {}", shell_quote(&kernel.display().to_string()));
    }
    for (k, v) in boot_plan.params.pairs() {
        cmd += &format!(" -p {}", shell_quote(&format!("{k}={v}")));
    }
    cmd
}

/// Quotes `word` for a POSIX shell when it needs it.
fn shell_quote(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_.,:=/+@%".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}
