//! Host prerequisites for booting: QEMU and, for UEFI, OVMF. Installs them
//! when it may (root with apt-get: CI machines start bare), otherwise says
//! exactly what to run.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// The emulator binary.
pub const QEMU: &str = "qemu-system-x86_64";

/// How to get a QEMU new enough for x2APIC under TCG on Debian 12.
pub const BACKPORTS_HINT: &str = "add bookworm-backports and apt-get install -t bookworm-backports qemu-system-x86";

/// Overrides the OVMF search with a firmware file of one's own.
pub const OVMF_ENV: &str = "XTASK_OVMF";

/// Known OVMF locations, best first. `OVMF.fd` holds code and variable store
/// in one image (QEMU's `-bios`); `OVMF_CODE.fd` needs its `OVMF_VARS.fd`
/// beside it as pflash.
pub const OVMF_CANDIDATES: &[&str] = &[
    "/usr/share/ovmf/OVMF.fd",
    "/usr/share/qemu/OVMF.fd",
    "/usr/share/OVMF/OVMF_CODE.fd",
    "/usr/share/edk2/ovmf/OVMF_CODE.fd",
];

/// A UEFI firmware for QEMU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ovmf {
    /// One image, for `-bios`.
    Combined(PathBuf),
    /// Code plus a template of the variable store, for two pflash drives.
    Split { code: PathBuf, vars: PathBuf },
}

impl Ovmf {
    /// Recognises `path` as a combined image or as a code image with its
    /// variable store beside it.
    pub fn at(path: &Path) -> Option<Ovmf> {
        if !path.is_file() {
            return None;
        }
        let name = path.file_name()?.to_str()?;
        if !name.contains("CODE") {
            return Some(Ovmf::Combined(path.to_owned()));
        }
        let vars = path.with_file_name(name.replace("CODE", "VARS"));
        vars.is_file().then(|| Ovmf::Split { code: path.to_owned(), vars })
    }
}

/// What booting needs, found.
#[derive(Clone, Debug)]
pub struct Host {
    pub qemu: PathBuf,
    pub version: Option<(u32, u32)>,
    /// Present when UEFI was asked for.
    pub ovmf: Option<Ovmf>,
    /// Present when Bochs was asked for and is installed; a Bochs
    /// configuration without it is skipped, saying how to install it.
    pub bochs: Option<PathBuf>,
}

/// `name` on `PATH`, if it is there and executable.
pub fn find_program(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}

/// The installed QEMU's `(major, minor)`, from `qemu-system-x86_64 --version`.
pub fn qemu_version() -> Option<(u32, u32)> {
    let out = Command::new(QEMU).arg("--version").output().ok()?;
    parse_qemu_version(&String::from_utf8_lossy(&out.stdout))
}

/// Reads `QEMU emulator version 10.0.2 (Debian ...)`.
pub fn parse_qemu_version(text: &str) -> Option<(u32, u32)> {
    let rest = text.split("version ").nth(1)?;
    let word = rest.split_whitespace().next()?;
    let mut parts = word.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.trim_end_matches(|c: char| !c.is_ascii_digit()).parse().ok()?;
    Some((major, minor))
}

/// The OVMF to use: `$XTASK_OVMF` if set, else the first known location.
pub fn find_ovmf() -> Option<Ovmf> {
    if let Some(path) = std::env::var_os(OVMF_ENV) {
        return Ovmf::at(Path::new(&path));
    }
    OVMF_CANDIDATES.iter().find_map(|p| Ovmf::at(Path::new(p)))
}

/// Finds QEMU (and OVMF if `uefi`), installing them with apt-get when we
/// are root and may, else failing with the command to run. With `bochs`,
/// also looks for Bochs and installs it when we may; its absence is not an
/// error (the configurations that need it are reported as skipped).
pub fn ensure(uefi: bool, bochs: bool) -> Result<Host> {
    let mut missing = Vec::new();
    if find_program(QEMU).is_none() {
        missing.push("qemu-system-x86");
    }
    if uefi && find_ovmf().is_none() {
        missing.push("ovmf");
    }
    if !missing.is_empty() {
        install(&missing)?;
    }
    let qemu = find_program(QEMU).with_context(|| format!("{QEMU} is still not on PATH after installing it"))?;
    let ovmf = if uefi {
        Some(
            find_ovmf()
                .with_context(|| format!("no OVMF found (looked at ${OVMF_ENV} and {})", OVMF_CANDIDATES.join(", ")))?,
        )
    } else {
        None
    };
    let bochs = if bochs { find_or_install_bochs() } else { None };
    Ok(Host { qemu, version: qemu_version(), ovmf, bochs })
}

/// Bochs, installed first when missing and we may; `None` (with a note)
/// when it stays missing.
fn find_or_install_bochs() -> Option<PathBuf> {
    let complete = || find_program(crate::bochs::BOCHS).filter(|b| crate::bochs::install_problem(Some(b)).is_none());
    if complete().is_none()
        && may_install()
        && let Err(e) = install(crate::bochs::PACKAGES)
    {
        eprintln!("xtask: could not install Bochs: {e:#}");
    }
    complete()
}

/// Root with apt-get: a bare CI machine we may install on.
fn may_install() -> bool {
    rustix::process::getuid().is_root() && find_program("apt-get").is_some()
}

/// Debian 12's own QEMU (7.2) has no x2APIC under TCG; its backports suite
/// has 10.0, the QEMU CI uses (`.ci/run` adds the same source).
const BACKPORTS_SUITE: &str = "bookworm-backports";
const BACKPORTS_SOURCE_FILE: &str = "/etc/apt/sources.list.d/bookworm-backports.sources";
const BACKPORTS_SOURCE: &str = "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\n\
                                Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n";

/// Whether this is Debian 12, whose QEMU comes from backports.
fn is_bookworm() -> bool {
    std::fs::read_to_string("/etc/os-release")
        .is_ok_and(|text| text.lines().any(|l| l.trim() == "VERSION_CODENAME=bookworm"))
}

/// Adds the backports suite to apt's sources unless some source names it.
fn add_backports_source() -> Result<()> {
    let named = ["/etc/apt/sources.list"]
        .into_iter()
        .map(PathBuf::from)
        .chain(std::fs::read_dir("/etc/apt/sources.list.d").into_iter().flatten().flatten().map(|e| e.path()))
        .any(|p| std::fs::read_to_string(p).is_ok_and(|t| t.contains(BACKPORTS_SUITE)));
    if !named {
        eprintln!("xtask: adding {BACKPORTS_SUITE} to apt's sources ({BACKPORTS_SOURCE_FILE}) for a QEMU with x2APIC");
        std::fs::write(BACKPORTS_SOURCE_FILE, BACKPORTS_SOURCE)
            .with_context(|| format!("writing {BACKPORTS_SOURCE_FILE}"))?;
    }
    Ok(())
}

fn install(packages: &[&str]) -> Result<()> {
    let list = packages.join(" ");
    let backports = is_bookworm() && packages.contains(&"qemu-system-x86");
    if !may_install() {
        bail!(
            "missing {list}: booting the kernel needs {QEMU}{}. Install with:\n    sudo apt-get install {list}{}",
            if packages.contains(&"ovmf") { " and OVMF (UEFI firmware)" } else { "" },
            if backports { format!("\n(on Debian 12, for x2APIC: {BACKPORTS_HINT})") } else { String::new() }
        );
    }
    if backports {
        add_backports_source()?;
    }
    let mut steps = vec![vec!["update"]];
    if backports {
        steps.push(vec!["install", "-y", "-t", BACKPORTS_SUITE, "qemu-system-x86"]);
    }
    steps.push([&["install", "-y"][..], packages].concat());
    eprintln!("xtask: {list} missing; installing: apt-get update && apt-get install -y {list}");
    for args in steps {
        let status = Command::new("apt-get")
            .args(&args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .context("running apt-get")?;
        if !status.success() {
            bail!("`apt-get {}` failed ({status})", args.join(" "));
        }
    }
    Ok(())
}
