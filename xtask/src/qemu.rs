//! The QEMU command line, and which QEMU a configuration needs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use bootimage::Firmware;

use crate::cli::Machine;
use crate::prereq::{BACKPORTS_HINT, Ovmf};

/// Everything that shapes a boot except the image.
#[derive(Clone, Debug)]
pub struct QemuConfig {
    /// The named test configuration this is (see [`crate::configs`]);
    /// `None` for the one the command-line options describe.
    pub name: Option<String>,
    pub firmware: Firmware,
    pub machine: Machine,
    /// More `-machine` options, e.g. `kernel-irqchip=split`.
    pub machine_opts: Option<String>,
    /// CPUs present at boot: `-smp`'s leading number.
    pub smp: u32,
    /// More `-smp` options, e.g. `maxcpus=4`.
    pub smp_opts: Option<String>,
    /// As QEMU's `-m` takes it, e.g. `256M`.
    pub memory: String,
    pub cpu: Option<String>,
    /// Passed through after ours.
    pub extra: Vec<String>,
    /// Time from power-on to the first test, when the firmware's usual
    /// [`boot_allowance`](crate::plan::boot_allowance) is not enough.
    pub boot_allowance: Option<Duration>,
}

impl QemuConfig {
    /// Short label for reports: `bios/smp4`, or `bios/<name>` for a named
    /// configuration.
    pub fn label(&self) -> String {
        match &self.name {
            Some(name) => format!("{}/{name}", self.firmware.name()),
            None => format!("{}/smp{}", self.firmware.name(), self.smp),
        }
    }

    /// QEMU's `-machine` value, e.g. `q35,kernel-irqchip=split`.
    pub fn machine_arg(&self) -> String {
        with_opts(self.machine.name().to_owned(), self.machine_opts.as_deref())
    }

    /// QEMU's `-smp` value, e.g. `2,maxcpus=4`.
    pub fn smp_arg(&self) -> String {
        with_opts(self.smp.to_string(), self.smp_opts.as_deref())
    }

    /// Time from power-on to the first test.
    pub fn boot_allowance(&self) -> Duration {
        self.boot_allowance.unwrap_or_else(|| crate::plan::boot_allowance(self.firmware))
    }
}

fn with_opts(value: String, opts: Option<&str>) -> String {
    match opts {
        Some(opts) => format!("{value},{opts}"),
        None => value,
    }
}

/// The arguments for booting `image`. `vars` is where a writable copy of a
/// split OVMF's variable store lives (see [`prepare_firmware`]).
pub fn command_args(cfg: &QemuConfig, image: &Path, ovmf: Option<&Ovmf>, vars: &Path) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "-machine".into(),
        cfg.machine_arg(),
        "-smp".into(),
        cfg.smp_arg(),
        "-m".into(),
        cfg.memory.clone(),
        "-display".into(),
        "none".into(),
        // A triple fault must end the run, not loop through the firmware.
        "-no-reboot".into(),
        "-serial".into(),
        "stdio".into(),
        "-device".into(),
        "isa-debug-exit,iobase=0xf4,iosize=0x04".into(),
        "-drive".into(),
        format!("format=raw,file={}", image.display()),
    ];
    if cfg.firmware == Firmware::Uefi {
        match ovmf {
            Some(Ovmf::Combined(path)) => args.extend(["-bios".into(), path.display().to_string()]),
            Some(Ovmf::Split { code, .. }) => args.extend([
                "-drive".into(),
                format!("if=pflash,format=raw,unit=0,readonly=on,file={}", code.display()),
                "-drive".into(),
                format!("if=pflash,format=raw,unit=1,file={}", vars.display()),
            ]),
            // Caller's bug; QEMU would boot SeaBIOS and the UEFI image would
            // not boot, which the run reports.
            None => {}
        }
    }
    if let Some(cpu) = &cfg.cpu {
        args.extend(["-cpu".into(), cpu.clone()]);
    }
    args.extend(cfg.extra.iter().cloned());
    args
}

/// Copies a split OVMF's variable store into `dir` (QEMU writes to it), and
/// returns where it is.
pub fn prepare_firmware(ovmf: Option<&Ovmf>, dir: &Path) -> Result<PathBuf> {
    let vars = dir.join("OVMF_VARS.fd");
    if let Some(Ovmf::Split { vars: template, .. }) = ovmf {
        std::fs::create_dir_all(dir)?;
        std::fs::copy(template, &vars).with_context(|| format!("copying {}", template.display()))?;
    }
    Ok(vars)
}

/// A QEMU feature a configuration relies on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requirement {
    pub min_version: (u32, u32),
    pub what: String,
}

/// The QEMU features `cfg` needs that not every QEMU has.
pub fn requirements(cfg: &QemuConfig) -> Vec<Requirement> {
    let wants_x2apic = |s: &str| s.contains("x2apic=on") || s.contains("+x2apic");
    let mut out = Vec::new();
    if cfg.cpu.as_deref().is_some_and(wants_x2apic) || cfg.extra.iter().any(|a| wants_x2apic(a)) {
        out.push(Requirement { min_version: (8, 1), what: "x2APIC under TCG".into() });
    } else if cfg.smp > 255 {
        out.push(Requirement {
            min_version: (8, 1),
            what: format!("x2APIC under TCG (needed for -smp {} > 255)", cfg.smp),
        });
    }
    out
}

/// Why `cfg` cannot run on QEMU `version`, with the way to fix it; `None`
/// when it can.
pub fn unmet_requirement(cfg: &QemuConfig, version: Option<(u32, u32)>) -> Option<String> {
    let req = requirements(cfg).into_iter().find(|r| version.is_none_or(|v| v < r.min_version))?;
    let found = match version {
        Some((a, b)) => format!("{a}.{b}"),
        None => "an unknown version".into(),
    };
    let (a, b) = req.min_version;
    Some(format!("{} needs QEMU >= {a}.{b}, found {found}; to enable: {BACKPORTS_HINT}", req.what))
}
