//! The host tests: `cargo test` on the workspace's default members (the
//! host-buildable crates), with libtest's result lines counted.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use anyhow::{Context, Result};

use crate::build::cargo;
use crate::report::Tally;

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

/// Runs the host tests. Cargo's own progress goes to the terminal; of the
/// tests' output only result lines and failures are shown unless `verbose`.
/// Ignored tests count as skipped; a cargo failure without a failing test
/// (e.g. a compile error) counts as one failure.
pub fn run(filter: Option<&str>, verbose: bool) -> Result<Tally> {
    eprintln!("xtask: host tests: cargo test (default members)");
    let mut cmd = cargo();
    cmd.arg("test");
    if let Some(filter) = filter {
        cmd.args(["--", filter]);
    }
    let mut child = cmd.stdout(Stdio::piped()).spawn().context("starting cargo test")?;
    let stdout = child.stdout.take().expect("piped");
    let mut tally = Tally::default();
    let mut in_failures = false;
    for line in BufReader::new(stdout).lines() {
        let line = line.context("reading cargo test's output")?;
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
    let status = child.wait().context("waiting for cargo test")?;
    if !status.success() && tally.failed == 0 {
        println!("host: cargo test failed ({status}) before reporting a failing test (see above)");
        tally.failed += 1;
    }
    Ok(tally)
}
