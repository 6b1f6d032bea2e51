//! The QEMU command line, and which QEMU a configuration needs.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use bootimage::Firmware;

use crate::prereq::{BACKPORTS_HINT, Ovmf};
use crate::vm::{Medium, VmConfig};

/// The arguments for booting `image`. `vars` is where a writable copy of a
/// split OVMF's variable store lives (see [`prepare_firmware`]).
pub fn command_args(cfg: &VmConfig, image: &Path, ovmf: Option<&Ovmf>, vars: &Path) -> Vec<String> {
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
    ];
    match cfg.medium {
        Medium::Disk => args.extend(["-drive".into(), format!("format=raw,file={}", image.display())]),
        // SeaBIOS and OVMF both boot from a USB stick on xHCI; the kernel
        // never touches USB, so what is tested is the firmware's hand-over.
        Medium::UsbStick => args.extend([
            "-device".into(),
            "qemu-xhci,id=xhci".into(),
            "-drive".into(),
            format!("if=none,id=stick,format=raw,file={}", image.display()),
            "-device".into(),
            "usb-storage,bus=xhci.0,drive=stick".into(),
        ]),
    }
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
pub fn requirements(cfg: &VmConfig) -> Vec<Requirement> {
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
pub fn unmet_requirement(cfg: &VmConfig, version: Option<(u32, u32)>) -> Option<String> {
    let req = requirements(cfg).into_iter().find(|r| version.is_none_or(|v| v < r.min_version))?;
    let found = match version {
        Some((a, b)) => format!("{a}.{b}"),
        None => "an unknown version".into(),
    };
    let (a, b) = req.min_version;
    Some(format!("{} needs QEMU >= {a}.{b}, found {found}; to enable: {BACKPORTS_HINT}", req.what))
}
