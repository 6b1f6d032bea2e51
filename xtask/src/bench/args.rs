//! `cargo xtask bench`'s arguments (the variant in [`crate::cli::Command`]
//! points here, so the bench's options live with the bench).

use std::path::PathBuf;

use clap::Args;

use crate::build::Profile;
use crate::cli::{FirmwareArg, parse_param};

/// The CPU counts to sweep: ascending, each once, each at least 2.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmpList(pub Vec<u32>);

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// CPU counts to sweep, comma-separated; every count is a boot (or --runs boots) of its own.
    #[arg(long, value_name = "LIST", default_value = "2,4", value_parser = parse_smp_list)]
    pub smp: SmpList,
    /// Firmware to boot with.
    #[arg(long, value_enum, default_value_t = FirmwareArg::Bios)]
    pub firmware: FirmwareArg,
    /// Boots per CPU count; their figures are combined by the median of the medians.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub runs: u32,
    /// Where the results JSON, the plots and the serial logs go [default: target/bench/<UTC time>/].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Compare with an earlier results JSON: each figure's ratio new/old, regressions marked.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// How much worse than the baseline (in percent) a figure must be to count as a regression.
    #[arg(long, value_name = "PCT", default_value_t = 25.0, value_parser = parse_threshold)]
    pub threshold: f64,
    /// Exit with status 2 when a figure regressed beyond --threshold against --baseline.
    #[arg(long, requires = "baseline")]
    pub fail_on_regression: bool,
    /// Also write the results JSON to FILE (to use later as --baseline).
    #[arg(long, value_name = "FILE")]
    pub save_baseline: Option<PathBuf>,
    /// Boot parameter for every boot (repeatable), e.g. `-p idle=poll` (idle CPUs spin instead of halting:
    /// the output says which idle mode each figure was measured with).
    #[arg(short = 'p', long = "param", value_name = "KEY=VALUE", value_parser = parse_bench_param)]
    pub params: Vec<(String, String)>,
    /// Cargo profile of the demonstration kernel it builds: a benchmark measures optimised code, as Linux's
    /// reference numbers do; `dev` measures what the tests run.
    #[arg(long, value_enum, default_value_t = Profile::Release)]
    pub profile: Profile,
    /// Use this kernel ELF instead of building the demonstration kernel (--profile is then ignored).
    #[arg(long, value_name = "ELF")]
    pub kernel: Option<PathBuf>,
    /// Kill a boot that has not finished after this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: u64,
    /// Extra arguments for QEMU, after `--`.
    #[arg(last = true, value_name = "QEMU ARGS")]
    pub qemu_args: Vec<String>,
}

/// `2,4,8` → the counts, ascending and without repeats.
pub fn parse_smp_list(s: &str) -> Result<SmpList, String> {
    let mut counts = Vec::new();
    for word in s.split(',').map(str::trim) {
        match word.parse::<u32>() {
            Ok(n) if (2..=4096).contains(&n) => counts.push(n),
            Ok(n) => return Err(format!("{n} CPUs: the bench needs 2 to 4096 (the floor is a ping-pong between two)")),
            Err(_) => return Err(format!("`{word}` in `{s}` is not a CPU count; expected a list like `2,4,8`")),
        }
    }
    counts.sort_unstable();
    counts.dedup();
    Ok(SmpList(counts))
}

fn parse_threshold(s: &str) -> Result<f64, String> {
    match s.trim_end_matches('%').parse::<f64>() {
        Ok(p) if p.is_finite() && p >= 0.0 => Ok(p),
        _ => Err(format!("`{s}` is not a percentage like 25")),
    }
}

/// A `-p` for the bench: `ktest.*` and `smp.expect_cpus` are how the runner
/// drives each boot.
fn parse_bench_param(s: &str) -> Result<(String, String), String> {
    let (k, v) = parse_param(s)?;
    if k.starts_with("bench.") || k == crate::plan::EXPECT_CPUS {
        return Err(format!("`{k}` is set by the bench runner for every boot"));
    }
    Ok((k, v))
}
