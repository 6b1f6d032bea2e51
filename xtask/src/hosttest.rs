//! The host tests: `cargo test` on the workspace's default members (the
//! host-buildable crates), then the loom models of the call-queue protocol,
//! with libtest's result lines counted.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{Context, Result};

use crate::build::cargo;
use crate::report::Tally;
use crate::workspace;

/// The counts of one `test result:` line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub passed: u64,
    pub failed: u64,
    pub ignored: u64,
}

/// Reads libtest's `test result: ok. 3 passed; 0 failed; 1 ignored; ...`.
pub fn parse_result_line(line: &str) -> Option<Counts> {
    let rest = line.trim().strip_prefix("test result: ")?;
    let (_verdict, rest) = rest.split_once(". ")?;
    let mut counts = Counts::default();
    let mut seen = 0;
    for part in rest.split(';') {
        let mut words = part.split_whitespace();
        let (Some(n), Some(what)) = (words.next(), words.next()) else {
            continue;
        };
        let Ok(n) = n.parse::<u64>() else { continue };
        match what {
            "passed" => counts.passed = n,
            "failed" => counts.failed = n,
            "ignored" => counts.ignored = n,
            _ => continue,
        }
        seen += 1;
    }
    (seen == 3).then_some(counts)
}

/// The loom models of the call-queue protocol: one test binary of
/// `smp-core`, built with `--cfg loom` (which swaps the queue's atomics for
/// loom's) and in release mode (the model checker explores thousands of
/// interleavings; debug builds take minutes).
pub const LOOM_ARGS: [&str; 6] = ["test", "-p", "smp-core", "--release", "--test", "callq_loom"];

/// Where the loom build goes: `--cfg loom` changes every crate's flags, so in
/// the normal target directory it would throw away the regular build cache
/// (and the next regular build would throw away its own).
pub fn loom_target_dir() -> PathBuf {
    workspace::target_dir().join("loom")
}

/// `RUSTFLAGS` for the loom build: the caller's own, plus `--cfg loom`.
pub fn loom_rustflags(existing: Option<&str>) -> String {
    match existing.map(str::trim).filter(|s| !s.is_empty()) {
        Some(flags) => format!("{flags} --cfg loom"),
        None => "--cfg loom".to_owned(),
    }
}

/// Runs the host tests: `cargo test` on the default members, then the loom
/// models. `filter` goes to both as libtest's name filter.
pub fn run(filter: Option<&str>, verbose: bool) -> Result<Tally> {
    eprintln!("xtask: host tests: cargo test (default members)");
    let mut cmd = cargo();
    cmd.arg("test");
    let mut tally = run_counted(cmd, filter, verbose, "cargo test")?;

    eprintln!(
        "xtask: host tests: loom models of the call queue (--cfg loom, release, in {}; the first build takes minutes)",
        workspace::display(&loom_target_dir())
    );
    let mut cmd = cargo();
    cmd.args(LOOM_ARGS);
    let flags = std::env::var("RUSTFLAGS").ok();
    cmd.env("RUSTFLAGS", loom_rustflags(flags.as_deref())).env("CARGO_TARGET_DIR", loom_target_dir());
    tally.add(run_counted(cmd, filter, verbose, "the loom run")?);
    Ok(tally)
}

/// Runs one `cargo test` command. Cargo's own progress goes to the terminal;
/// of the tests' output only result lines and failures are shown unless
/// `verbose`. Ignored tests count as skipped; a cargo failure without a
/// failing test (e.g. a compile error) counts as one failure.
fn run_counted(mut cmd: Command, filter: Option<&str>, verbose: bool, what: &str) -> Result<Tally> {
    if let Some(filter) = filter {
        cmd.args(["--", filter]);
    }
    let mut child = cmd.stdout(Stdio::piped()).spawn().with_context(|| format!("starting {what}"))?;
    let stdout = child.stdout.take().expect("piped");
    let mut tally = Tally::default();
    let mut in_failures = false;
    for line in BufReader::new(stdout).lines() {
        let line = line.with_context(|| format!("reading {what}'s output"))?;
        if let Some(c) = parse_result_line(&line) {
            tally.passed += c.passed;
            tally.failed += c.failed;
            tally.skipped += c.ignored;
            in_failures = false;
            println!("host: {}", line.trim());
            continue;
        }
        if line == "failures:" {
            in_failures = true;
        }
        if verbose || in_failures || line.ends_with("FAILED") {
            println!("{line}");
        }
    }
    let status = child.wait().with_context(|| format!("waiting for {what}"))?;
    if !status.success() && tally.failed == 0 {
        println!("host: {what} failed ({status}) before reporting a failing test (see above)");
        tally.failed += 1;
    }
    Ok(tally)
}
