//! `cargo xtask lint`: the one lint command, the one CI runs. rustfmt in
//! check mode over the whole workspace, then clippy with warnings denied:
//! on the host crates (the workspace's default members), and on the two
//! kernels for their own target. A plain `cargo clippy --workspace` cannot
//! do both, since the kernels are
//! `no_std` binaries with their own panic handler (a host build of them
//! clashes with std's: duplicate `panic_impl`).

use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::build::{self, KERNEL_TARGET, Kernel};
use crate::cli::LintArgs;

pub fn run(args: &LintArgs) -> Result<ExitCode> {
    let mut steps: Vec<(String, Vec<String>)> = Vec::new();
    let strings = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    if !args.no_fmt {
        steps.push(("rustfmt".into(), strings(&["fmt", "--all", "--check"])));
    }
    let deny = ["--", "-D", "warnings"];
    // The workspace's default members are the host crates.
    let mut host = strings(&["clippy", "--all-targets"]);
    host.extend(strings(&deny));
    steps.push(("clippy, host crates".into(), host));
    for kernel in [Kernel::Demo, Kernel::Tests] {
        let mut k = strings(&["clippy", "--package", kernel.package(), "--target", KERNEL_TARGET]);
        k.extend(strings(&deny));
        steps.push((format!("clippy, {} for {KERNEL_TARGET}", kernel.package()), k));
    }
    let mut failed = Vec::new();
    for (what, cmd) in &steps {
        eprintln!("xtask: lint: {what}: cargo {}", cmd.join(" "));
        let status = build::cargo().args(cmd).status().with_context(|| format!("starting cargo for {what}"))?;
        if !status.success() {
            failed.push(what.as_str());
        }
    }
    if failed.is_empty() {
        eprintln!("xtask: lint: clean ({} checks)", steps.len());
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("xtask: lint: FAILED: {} (fix, or for rustfmt run `cargo fmt --all`)", failed.join(", "));
        Ok(ExitCode::FAILURE)
    }
}
