//! Running the in-guest tests: list them with one boot, plan the boots,
//! run them per firmware, print one line per test as verdicts arrive.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::Result;
use bootimage::Firmware;

use crate::backtrace::{self, Symbols, Trace};
use crate::boot::{Boot, Booter, QEMU_STDERR};
use crate::judge::{Judge, ListJudge, Outcome};
use crate::plan::{self, BootPlan, PlanOptions};
use crate::process::{Output, RunOptions, Stream};
use crate::protocol::TestInfo;
use crate::qemu::{QemuConfig, unmet_requirement};
use crate::report::{self, Tail, Tally};
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
    /// One machine per firmware, in run order.
    pub qemu: Vec<QemuConfig>,
    pub plan: PlanOptions,
}

/// Runs everything; returns the guest's counts. Errors are reserved for the
/// host failing us (cannot write a file, cannot start QEMU); whatever the
/// guest does ends up in the tally.
pub fn run_tests(booter: &Booter, opts: &GuestOptions) -> Result<Tally> {
    let mut tally = Tally::default();
    let version = booter.host.version;
    // Loaded once: backtraces are shown and judged symbolized.
    let symbols = symbols::load_or_warn(&booter.elf);
    let runnable = |cfg: &QemuConfig| unmet_requirement(cfg, version).is_none();

    // The list is a property of the ELF, the same under every machine: one
    // list boot serves all configurations. It takes the cheapest machine
    // this QEMU can run: BIOS before UEFI, then the fewest CPUs.
    let lister = opts
        .runs
        .iter()
        .flat_map(|run| run.qemu.iter().map(move |cfg| (run, cfg)))
        .filter(|(_, cfg)| runnable(cfg))
        .min_by_key(|(_, cfg)| (cfg.firmware == Firmware::Uefi, cfg.smp));
    let tests = match lister {
        Some((run, cfg)) => match list_tests(booter, cfg, &run.plan, opts, symbols.as_ref())? {
            Ok(tests) => Some(tests),
            // Already reported, with the serial output that explains it.
            Err(_) => {
                tally.failed += 1;
                None
            }
        },
        None => None,
    };

    for run in &opts.runs {
        let plan = tests.as_ref().map(|tests| {
            let plan = plan::plan(tests, &run.plan);
            if run.qemu.iter().any(runnable) {
                let prefix = if run.header { format!("{}: ", run.name) } else { String::new() };
                print_plan_summary(&prefix, tests, &plan);
            }
            plan
        });
        let selection = run.plan.describe_selection();
        for cfg in &run.qemu {
            match unmet_requirement(cfg, version) {
                // Never a silent pass: the configuration shows up as skipped.
                Some(why) => {
                    print_header(run, cfg, &selection);
                    println!("guest {} ({selection}) ... skipped: {why}", cfg.label());
                    tally.skipped += 1;
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
                    tally.add(run_config(booter, cfg, plan, &run.plan, opts, &symbols)?);
                    if run.header {
                        eprintln!("xtask: configuration {} done in {}", cfg.label(), report::secs(started.elapsed()));
                    }
                }
            }
        }
    }
    Ok(tally)
}

fn print_header(run: &GuestRun, cfg: &QemuConfig, selection: &str) {
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
/// guest's (already explained on the terminal).
fn list_tests(
    booter: &Booter,
    cfg: &QemuConfig,
    plan_opts: &PlanOptions,
    opts: &GuestOptions,
    symbols: &dyn Symbols,
) -> Result<Result<Vec<TestInfo>, String>> {
    let mut params = crate::cli::boot_params(&[plan_opts.runner_params(), plan_opts.user_params.clone()].concat());
    params.set("ktest.list", "1")?;
    let name = format!("{}-list", cfg.firmware.name());
    let run = RunOptions { timeout: Some(scaled(cfg.boot_allowance() + LIST_TIME, opts)), inherit_stdin: false };
    eprintln!("xtask: listing guest tests ({})", cfg.label());
    let mut list = ListJudge::default();
    let mut tail = Tail::default();
    let boot = booter.boot(cfg, &params, &name, &run, |out| {
        if let Some((line, shown)) = serial_line(out, opts.verbose, symbols) {
            shown.iter().for_each(|l| tail.push(l));
            list.feed(&line);
        }
    })?;
    let result = list.finish(boot.exit);
    if let Err(why) = &result {
        println!("{}", report::boot_failure_line(&cfg.label(), "<list>", why));
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
            let line = format!("{QEMU_STDERR}{line}");
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
    cfg: &QemuConfig,
    plan: &plan::Plan,
    plan_opts: &PlanOptions,
    opts: &GuestOptions,
    symbols: &Rc<dyn Symbols>,
) -> Result<Tally> {
    let label = cfg.label();
    let mut tally = Tally::default();
    for (test, why) in &plan.skipped {
        println!("guest {label} {} ... skipped: {why}", test.name);
        tally.skipped += 1;
    }
    let mut queue: VecDeque<BootPlan> = plan.boots.iter().cloned().collect();
    let mut boot_no = 0;
    while let Some(boot_plan) = queue.pop_front() {
        boot_no += 1;
        let rerun = run_boot(booter, cfg, &boot_plan, boot_no, opts, symbols, &mut tally)?;
        if !rerun.is_empty() {
            eprintln!(
                "xtask: {} test(s) of boot {boot_no} did not get to run before it went down; running them in a new boot",
                rerun.len()
            );
            queue.push_front(BootPlan::new(rerun, plan_opts));
        }
    }
    Ok(tally)
}

/// One boot of the plan; prints its verdicts, returns the tests to re-run.
fn run_boot(
    booter: &Booter,
    cfg: &QemuConfig,
    boot_plan: &BootPlan,
    boot_no: usize,
    opts: &GuestOptions,
    symbols: &Rc<dyn Symbols>,
    tally: &mut Tally,
) -> Result<Vec<TestInfo>> {
    let label = cfg.label();
    // Named configurations keep their boots' files apart from the default's.
    let name = match &cfg.name {
        Some(config) => format!("{config}-{}-{boot_no}", cfg.firmware.name()),
        None => format!("{}-{boot_no}", cfg.firmware.name()),
    };
    let run =
        RunOptions { timeout: Some(scaled(cfg.boot_allowance() + boot_plan.tests_time(), opts)), inherit_stdin: false };
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
        if line.starts_with(QEMU_STDERR) {
            return;
        }
        let Output::Line(_, at, _) = out else { return };
        for verdict in judge.feed(at, &line) {
            shown += 1;
            println!("{}", report::verdict_line(&label, &verdict));
            tally.count(&verdict.outcome);
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
        println!("{}", report::verdict_line(&label, verdict));
        tally.count(&verdict.outcome);
    }
    for why in &report.boot_failures {
        println!("{}", report::boot_failure_line(&label, &format!("<boot {boot_no}>"), why));
        tally.failed += 1;
    }
    if report.has_failures() {
        let trace = report.crash_trace.as_ref().filter(|_| !trace_shown);
        show_failure_context(&mut tail, trace, &boot, opts.verbose, late_failure);
        println!("    reproduce: {}", reproduce_command(cfg, boot_plan, opts.kernel.as_deref()));
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
pub fn reproduce_command(cfg: &QemuConfig, boot_plan: &BootPlan, kernel: Option<&Path>) -> String {
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

/// Quotes `word` for a POSIX shell when it needs it.
fn shell_quote(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_.,:=/+@%".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}
