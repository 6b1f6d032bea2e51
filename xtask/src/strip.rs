//! The kernel as it goes into a disk image: without its DWARF.
//!
//! Debug info is most of the test kernel (10 of its 11.5 MB), and firmware
//! reads every byte of the image's kernel through emulated disk I/O: under
//! SeaBIOS and TCG a test kernel's list boot took 22 s with it and 10 s
//! without; Bochs is slower still. Backtraces are symbolized on the host from
//! the full ELF, and `--strip-debug` keeps the symbol table and every loaded
//! byte, so the guest runs the very same code.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// The rustup component that ships `llvm-objcopy` (in rust-toolchain.toml).
const LLVM_TOOLS: &str = "llvm-tools-preview";

/// Writes `elf` without debug sections into `dir` and returns the copy.
pub fn stripped_copy(elf: &Path, dir: &Path) -> Result<PathBuf> {
    let objcopy = llvm_objcopy()?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let name = elf.file_name().context("the kernel ELF path has no file name")?;
    let out = dir.join(name).with_extension("stripped");
    let status = Command::new(&objcopy)
        .arg("--strip-debug")
        .arg(elf)
        .arg(&out)
        .status()
        .with_context(|| format!("running {}", objcopy.display()))?;
    if !status.success() {
        bail!("{} --strip-debug {} failed ({status})", objcopy.display(), elf.display());
    }
    Ok(out)
}

/// `llvm-objcopy` of the toolchain running us.
fn llvm_objcopy() -> Result<PathBuf> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let ask = |arg: &str| -> Result<String> {
        let out = Command::new(&rustc).arg(arg).output().context("running rustc")?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let sysroot = ask("--print=sysroot")?;
    let host = ask("-vV")?
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_owned))
        .context("rustc -vV names no host triple")?;
    let path = Path::new(sysroot.trim()).join("lib/rustlib").join(host).join("bin/llvm-objcopy");
    if !path.is_file() {
        bail!("{} is missing; install it with `rustup component add {LLVM_TOOLS}`", path.display());
    }
    Ok(path)
}
