//! `cargo xtask bench`: boots the demonstration kernel with `bench.run=1` once per
//! CPU count and run, then shows and saves what it measured (see
//! [`crate::bench`]).
//!
//! Exit status: 0 when every boot measured; 1 when a boot failed (the
//! others' figures are still shown and saved); 2 with
//! `--fail-on-regression` when a figure regressed against `--baseline`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use bootimage::Firmware;
use indicatif::{ProgressBar, ProgressStyle};

use crate::bench::parse::BootParser;
use crate::bench::results::{self, BootResult, CpuResult, Report};
use crate::bench::{BenchArgs, compare, goals, host, plot, table};
use crate::boot::{Booter, EMULATOR_OUTPUT};
use crate::build::{self, Kernel};
use crate::cli::boot_params;
use crate::plan::EXPECT_CPUS;
use crate::process::{Output, RunOptions, Stream};
use crate::report::{self, Tail};
use crate::vm::VmConfig;
use crate::{prereq, workspace};

const EXIT_BOOT_FAILED: u8 = 1;
const EXIT_REGRESSION: u8 = 2;

/// What every boot is told before the user's `-p`: measure instead of
/// testing, and skip the MP-spec INIT/SIPI delays, which are safe to skip
/// on emulators and would otherwise dominate the bring-up figures.
const RUNNER_PARAMS: [(&str, &str); 2] = [("bench.run", "1"), ("smp.fast_start", "1")];

pub fn run(args: &BenchArgs) -> Result<ExitCode> {
    // A mistyped baseline should fail now, not after minutes of boots.
    let baseline = args.baseline.as_deref().map(Report::load).transpose()?;
    let firmware: Firmware = args.firmware.into();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let configs: Vec<VmConfig> = args.smp.0.iter().map(|&n| qemu_config(firmware, n, &args.qemu_args)).collect();
    let host = prereq::ensure(firmware == Firmware::Uefi, false)?;
    for cfg in &configs {
        if let Some(why) = cfg.unmet_requirement(&host) {
            bail!("cannot boot {} CPUs: {why}", cfg.smp);
        }
    }
    let qemu_version = host::qemu_version_line(&host.qemu);
    let elf = build::kernel_elf(args.kernel.as_deref(), Kernel::Demo, args.profile)?;
    let out_dir =
        args.out.clone().unwrap_or_else(|| workspace::target_dir().join("bench").join(workspace::timestamp(now)));
    let run_dir = out_dir.join("boots");
    std::fs::create_dir_all(&run_dir).with_context(|| format!("creating {}", run_dir.display()))?;
    eprintln!(
        "xtask: bench of {} ({}; {} CPUs; {} boot(s) each), serial logs in {}",
        workspace::display(&elf),
        qemu_version,
        args.smp.0.iter().map(u32::to_string).collect::<Vec<_>>().join(", "),
        args.runs,
        workspace::display(&run_dir)
    );
    let booter = Booter::new(host, elf, run_dir)?;
    let host_info = host::host_info();
    for caveat in host::caveats(&host_info) {
        eprintln!("xtask: warning: {caveat}");
    }

    let (results, failures) = measure(&booter, &configs, args)?;
    if results.is_empty() {
        bail!("no boot measured anything: {}", failures.join("; "));
    }
    let mut params: Vec<String> = shared_params(args).iter().map(|(k, v)| format!("{k}={v}")).collect();
    params.push(format!("{EXPECT_CPUS}=<CPU count>"));
    let report = Report {
        schema: results::SCHEMA,
        date: host::iso_date(now),
        host: host_info,
        qemu: qemu_version,
        firmware: firmware.name().to_owned(),
        runs: args.runs,
        params,
        qemu_args: args.qemu_args.clone(),
        kernel: booter.elf.display().to_string(),
        goals: goals::evaluate(&results),
        results,
    };
    print_report(&report);
    let files = write_files(&report, &out_dir, args.save_baseline.as_deref())?;

    let regressions = match (&baseline, &args.baseline) {
        (Some(old), Some(path)) => print_comparison(old, path, &report, args.threshold),
        _ => 0,
    };
    println!();
    for file in files {
        println!("wrote {}", workspace::display(&file));
    }
    Ok(if !failures.is_empty() {
        eprintln!("xtask: {} boot(s) failed: {}", failures.len(), failures.join("; "));
        ExitCode::from(EXIT_BOOT_FAILED)
    } else if regressions > 0 && args.fail_on_regression {
        ExitCode::from(EXIT_REGRESSION)
    } else {
        ExitCode::SUCCESS
    })
}

/// A plain `pc` machine with `cpus` CPUs and the default memory.
fn qemu_config(firmware: Firmware, cpus: u32, extra: &[String]) -> VmConfig {
    VmConfig { extra: extra.to_vec(), ..VmConfig::qemu(firmware, cpus) }
}

/// The parameters of every boot but the CPU count: the runner's, then the
/// user's (which win on a clash).
fn shared_params(args: &BenchArgs) -> Vec<(String, String)> {
    let mut params: Vec<(String, String)> = RUNNER_PARAMS.iter().map(|&(k, v)| (k.into(), v.into())).collect();
    params.extend(args.params.iter().cloned());
    params
}

/// Runs every boot; returns the combined results per CPU count and one line
/// per failed boot.
fn measure(booter: &Booter, configs: &[VmConfig], args: &BenchArgs) -> Result<(Vec<CpuResult>, Vec<String>)> {
    let total = configs.len() as u64 * u64::from(args.runs);
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} boots  {msg}")
            .expect("a valid template"),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    let mut results = Vec::new();
    let mut failures = Vec::new();
    for cfg in configs {
        let mut boots = Vec::new();
        for run in 1..=args.runs {
            let label = format!("{} CPUs, run {run}/{}", cfg.smp, args.runs);
            bar.set_message(format!("{label}: booting"));
            let mut params = shared_params(args);
            params.push((EXPECT_CPUS.into(), cfg.smp.to_string()));
            let name = format!("{}-smp{}-run{run}", cfg.firmware.name(), cfg.smp);
            let (outcome, log) = boot_once(booter, cfg, &params, &name, args.timeout, |figure| {
                bar.set_message(format!("{label}: {figure} done"));
            })?;
            bar.inc(1);
            match outcome {
                Ok((boot, elapsed)) => {
                    bar.suspend(|| {
                        eprintln!("xtask: {label}: {} figures in {}", boot.figures.len(), report::secs(elapsed))
                    });
                    boots.push(boot);
                }
                Err((why, tail)) => {
                    bar.suspend(|| {
                        eprintln!("xtask: {label}: FAILED: {why}");
                        eprintln!("    --- last lines of serial output ---");
                        for line in tail {
                            eprintln!("    | {}", report::printable(&line));
                        }
                        eprintln!("    serial log: {}", workspace::display(&log));
                    });
                    failures.push(format!("{label}: {why}"));
                }
            }
        }
        if !boots.is_empty() {
            results.push(results::combine(&boots).map_err(anyhow::Error::msg)?);
        }
    }
    bar.finish_and_clear();
    Ok((results, failures))
}

/// A boot's measurements and its length, or why there are none with the
/// last serial lines.
type BootOutcome = Result<(BootResult, Duration), (String, Vec<String>)>;

/// One boot; `progress` hears each figure's name as it arrives. Returns the
/// outcome and the serial log's path.
fn boot_once(
    booter: &Booter,
    cfg: &VmConfig,
    params: &[(String, String)],
    name: &str,
    timeout_secs: u64,
    mut progress: impl FnMut(&str),
) -> Result<(BootOutcome, PathBuf)> {
    let mut parser = BootParser::new(cfg.smp);
    let mut tail = Tail::default();
    let opts = RunOptions { timeout: Some(Duration::from_secs(timeout_secs)), ..RunOptions::default() };
    let boot = booter.boot(cfg, &boot_params(params), name, &opts, |out| {
        if let Output::Line(stream, _, line) = out {
            if stream == Stream::Stderr {
                tail.push(&format!("{EMULATOR_OUTPUT}{line}"));
                return;
            }
            tail.push(line);
            if let Some(figure) = parser.feed(line) {
                progress(&figure);
            }
        }
    })?;
    let outcome = match parser.finish(boot.exit) {
        Ok(result) => {
            // The image is megabytes; the log is what is worth keeping.
            let _ = std::fs::remove_dir_all(&boot.dir);
            Ok((result, boot.elapsed))
        }
        Err(why) => Err((why, tail.take_unshown())),
    };
    Ok((outcome, boot.log))
}

fn print_report(report: &Report) {
    for r in &report.results {
        println!();
        print!("{}", table::figures_table(r, &report.firmware));
    }
    print!("{}", table::figures_legend());
    for r in &report.results {
        if let Some(note) = host::tsc_note(report.host.cpu_mhz, r.tsc_mhz, r.cpus) {
            println!("note: {note}");
        }
    }
    for caveat in host::caveats(&report.host) {
        println!("note: {caveat}");
    }
    if report.results.len() >= 2 {
        println!();
        print!("{}", table::scaling_table(&report.results));
    }
    println!();
    print!("{}", table::goals_table(&report.goals));
}

/// The comparison with the baseline at `path`; returns the regressions.
fn print_comparison(old: &Report, path: &Path, new: &Report, threshold: f64) -> usize {
    println!("\nbaseline: {} ({})", workspace::display(path), old.date);
    for note in compare::setup_differences(old, new) {
        println!("note: the runs differ in {note}");
    }
    let comparisons = compare::compare(old, new, threshold);
    print!("{}", table::comparison_table(&comparisons, threshold));
    comparisons.iter().filter(|c| c.regression).count()
}

/// The results JSON (and its copy for --save-baseline) and the plots;
/// returns their paths.
fn write_files(report: &Report, out_dir: &Path, save_baseline: Option<&Path>) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let json = out_dir.join("results.json");
    report.save(&json)?;
    files.push(json);
    if let Some(path) = save_baseline {
        report.save(path)?;
        files.push(path.to_owned());
    }
    for r in &report.results {
        let path = out_dir.join(format!("latency-smp{}.svg", r.cpus));
        plot::latency_svg(r, &path)?;
        files.push(path);
    }
    if report.results.len() >= 2 {
        let path = out_dir.join("scaling.svg");
        plot::scaling_svg(&report.results, &path)?;
        files.push(path);
    }
    Ok(files)
}
