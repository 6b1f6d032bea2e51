//! Cargo invocations that build the kernels.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::workspace;

/// The target every kernel is built for.
pub const KERNEL_TARGET: &str = "x86_64-unknown-none";

/// Which kernel to build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    /// The demonstration kernel (package `demo`).
    Demo,
    /// The in-guest test kernel (package `guest-tests`).
    Tests,
}

impl Kernel {
    pub fn package(self) -> &'static str {
        match self {
            Kernel::Demo => "demo",
            Kernel::Tests => "guest-tests",
        }
    }
}

/// Which cargo profile to build a kernel with.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    /// `dev`: what tests and interactive boots use (opt-level 1, debug assertions).
    Dev,
    /// `release`: optimised, no debug assertions; what a benchmark measures.
    Release,
}

impl Profile {
    pub fn name(self) -> &'static str {
        match self {
            Profile::Dev => "dev",
            Profile::Release => "release",
        }
    }
}

/// `cargo` as the one running us (same toolchain), in the workspace root.
pub fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(workspace::root());
    cmd
}

/// Builds `kernel` and returns its ELF. Cargo's progress and diagnostics go
/// to the terminal; the ELF's path comes from cargo's JSON messages, so a
/// custom target directory or profile layout cannot fool us.
pub fn build_kernel(kernel: Kernel, profile: Profile) -> Result<PathBuf> {
    let package = kernel.package();
    eprintln!("xtask: building {package} for {KERNEL_TARGET} ({} profile)", profile.name());
    let mut child = cargo()
        .args(["build", "--package", package, "--bin", package, "--target", KERNEL_TARGET])
        .args(["--profile", profile.name()])
        .args(["--message-format", "json-render-diagnostics"])
        .stdout(Stdio::piped())
        .spawn()
        .context("starting cargo build")?;
    let mut elf = None;
    let stdout = child.stdout.take().expect("piped");
    for line in BufReader::new(stdout).lines() {
        let line = line.context("reading cargo's output")?;
        if let Some(path) = artifact_executable(&line, package) {
            elf = Some(path);
        }
    }
    let status = child.wait().context("waiting for cargo build")?;
    if !status.success() {
        bail!("building {package} failed ({status})");
    }
    elf.with_context(|| format!("cargo built {package} but named no executable"))
}

/// The executable of `bin` if `line` is cargo's message that it was built.
pub fn artifact_executable(line: &str, bin: &str) -> Option<PathBuf> {
    let msg: serde_json::Value = serde_json::from_str(line).ok()?;
    if msg["reason"] != "compiler-artifact" || msg["target"]["name"] != bin {
        return None;
    }
    msg["executable"].as_str().map(PathBuf::from)
}

/// `prebuilt` if given (it must exist), else a fresh build of `kernel`.
pub fn kernel_elf(prebuilt: Option<&Path>, kernel: Kernel, profile: Profile) -> Result<PathBuf> {
    match prebuilt {
        Some(path) if path.is_file() => Ok(path.to_owned()),
        Some(path) => bail!("kernel ELF {} does not exist", path.display()),
        None => build_kernel(kernel, profile),
    }
}
