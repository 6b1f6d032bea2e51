//! Bochs: the configuration file of one boot, the disk geometry it needs,
//! and the verdict its shutdown port cannot carry. Facts measured on Bochs
//! 2.7 are in `docs/platform.md`.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use bootimage::Firmware;

use crate::judge::Exit;
use crate::protocol::{EXIT_FAILURE, EXIT_SUCCESS};
use crate::vm::{Medium, VmConfig};

/// The emulator binary.
pub const BOCHS: &str = "bochs";
/// Debian's packages for a headless Bochs: the emulator, its BIOS, the VGA
/// BIOS and the SDL2 display (the only one that runs headless, with
/// [`HEADLESS`]).
pub const PACKAGES: &[&str] = &["bochs", "bochsbios", "vgabios", "bochs-sdl"];
/// 16 and more CPUs panic Bochs 2.7 ("too many registered timers").
pub const MAX_CPUS: u32 = 15;
/// SDL2 without a screen.
pub const HEADLESS: (&str, &str) = ("SDL_VIDEODRIVER", "dummy");
/// Bochs's CPU model with x2APIC (its default model has none).
pub const X2APIC_MODEL: &str = "corei7_skylake_x";

const BIOS_ROM: &str = "/usr/share/bochs/BIOS-bochs-latest";
const VGA_ROM: &str = "/usr/share/vgabios/vgabios.bin";
const SDL2_PLUGIN: &str = "/usr/lib/x86_64-linux-gnu/bochs/plugins/libbx_sdl2_gui.so";

/// A flat disk is cylinders of 16 heads × 63 sectors × 512 bytes.
const HEADS: u64 = 16;
const SECTORS_PER_TRACK: u64 = 63;
const CYLINDER_BYTES: u64 = HEADS * SECTORS_PER_TRACK * 512;

/// Instructions per emulated second: the guest's TSC frequency and timers
/// follow it (`clock: sync=none` keeps emulated time independent of the
/// host's load, so a busy host makes a boot slower, never different). Bochs
/// emulates ~15 million instructions a second here; at 10 million, guest
/// time runs about as fast as the host's, and a test that waits a guest
/// second spins 10 million instructions instead of 50 (the SMP tests took
/// 43 s instead of 122 s).
const IPS: u64 = 10_000_000;

/// What Bochs prints when the guest writes `Shutdown` to port 0x8900.
pub const SHUTDOWN_MESSAGE: &str = "Shutdown port: shutdown requested";

/// The command that installs Bochs.
pub fn install_hint() -> String {
    format!("apt-get install {}", PACKAGES.join(" "))
}

/// Why `cfg` cannot run under Bochs here (`bochs`: the binary, if found).
pub fn unmet_requirement(cfg: &VmConfig, bochs: Option<&Path>) -> Option<String> {
    if cfg.firmware != Firmware::Bios {
        return Some("Bochs boots the BIOS image only".into());
    }
    if cfg.medium != Medium::Disk {
        return Some("Bochs has no xHCI controller to boot a USB stick from".into());
    }
    if cfg.smp > MAX_CPUS {
        return Some(format!("Bochs 2.7 runs at most {MAX_CPUS} CPUs, not {}", cfg.smp));
    }
    install_problem(bochs)
}

/// What of Bochs is missing here (`bochs`: the binary, if found), with the
/// command that installs it; `None` when it is all there.
pub fn install_problem(bochs: Option<&Path>) -> Option<String> {
    let missing = match bochs {
        None => "Bochs is not installed",
        Some(_) if !Path::new(SDL2_PLUGIN).is_file() => "Bochs's SDL2 display (bochs-sdl) is not installed",
        Some(_) if !Path::new(BIOS_ROM).is_file() => "the Bochs BIOS (bochsbios) is not installed",
        Some(_) if !Path::new(VGA_ROM).is_file() => "the VGA BIOS (vgabios) is not installed",
        Some(_) => return None,
    };
    Some(format!("{missing}; to enable: {}", install_hint()))
}

/// Pads `image` to whole cylinders (Bochs refuses a flat disk that is not)
/// and returns its cylinder count.
pub fn pad_to_cylinders(image: &Path) -> Result<u64> {
    let file = OpenOptions::new().write(true).open(image).with_context(|| format!("opening {}", image.display()))?;
    let len = file.metadata()?.len();
    let cylinders = len.div_ceil(CYLINDER_BYTES).max(1);
    file.set_len(cylinders * CYLINDER_BYTES).with_context(|| format!("padding {}", image.display()))?;
    Ok(cylinders)
}

/// Megabytes from QEMU's `-m` syntax (`256M`, `1G`, `512`).
fn megabytes(memory: &str) -> Option<u64> {
    let (digits, unit) = memory.split_at(memory.find(|c: char| !c.is_ascii_digit()).unwrap_or(memory.len()));
    let n: u64 = digits.parse().ok()?;
    match unit.to_ascii_uppercase().as_str() {
        "" | "M" | "MB" => Some(n),
        "G" | "GB" => Some(n * 1024),
        _ => None,
    }
}

/// The files of one Bochs boot.
#[derive(Debug)]
pub struct BochsFiles {
    /// The configuration (`-f`).
    pub config: PathBuf,
    /// The debugger's command file (`-rc`): one `c`, so the debugger that
    /// Debian builds in runs the guest instead of waiting at a prompt.
    pub rc: PathBuf,
    /// Bochs's own log.
    pub log: PathBuf,
}

impl BochsFiles {
    /// The arguments for `bochs`.
    pub fn args(&self) -> Vec<String> {
        vec!["-q".into(), "-f".into(), self.config.display().to_string(), "-rc".into(), self.rc.display().to_string()]
    }
}

/// The configuration text for booting `image` (`cylinders` long) with the
/// serial line connecting to 127.0.0.1:`serial_port`.
pub fn config_text(cfg: &VmConfig, image: &Path, cylinders: u64, serial_port: u16, log: &Path) -> String {
    let megs = megabytes(&cfg.memory).unwrap_or(256);
    let model = cfg.cpu.as_ref().map(|m| format!(", model={m}")).unwrap_or_default();
    format!(
        "megs: {megs}\n\
         cpu: count={cpus}, ips={IPS}, reset_on_triple_fault=0{model}\n\
         romimage: file={BIOS_ROM}, options=fastboot\n\
         vgaromimage: file={VGA_ROM}\n\
         display_library: sdl2\n\
         ata0-master: type=disk, path={image}, mode=flat, cylinders={cylinders}, heads={HEADS}, spt={SECTORS_PER_TRACK}\n\
         boot: disk\n\
         com1: enabled=1, mode=socket-client, dev=127.0.0.1:{serial_port}\n\
         speaker: enabled=0\n\
         clock: sync=none\n\
         log: {log}\n",
        cpus = cfg.smp,
        image = image.display(),
        log = log.display(),
    )
}

/// Writes the files for booting `image` into `dir`.
pub fn prepare(cfg: &VmConfig, image: &Path, serial_port: u16, dir: &Path) -> Result<BochsFiles> {
    let cylinders = pad_to_cylinders(image)?;
    let files = BochsFiles { config: dir.join("bochsrc"), rc: dir.join("bochs.rc"), log: dir.join("bochs.log") };
    std::fs::write(&files.config, config_text(cfg, image, cylinders, serial_port, &files.log))
        .with_context(|| format!("writing {}", files.config.display()))?;
    std::fs::write(&files.rc, "c\n").with_context(|| format!("writing {}", files.rc.display()))?;
    Ok(files)
}

/// Watches a Bochs boot for the guest's `@@EXIT` line and Bochs's shutdown
/// message, which together stand for QEMU's exit status.
#[derive(Debug, Default)]
pub struct ExitWatch {
    verdict: Option<bool>,
    shutdown: bool,
}

impl ExitWatch {
    /// A serial line of the guest.
    pub fn serial(&mut self, line: &str) {
        if let Some(verdict) = protocol::exit::parse_line(line) {
            self.verdict = Some(verdict == protocol::exit::Verdict::Success);
        }
    }

    /// A line Bochs itself printed.
    pub fn emulator(&mut self, line: &str) {
        self.shutdown |= line.contains(SHUTDOWN_MESSAGE);
    }

    /// Bochs's exit as QEMU's would be: the guest's verdict when it shut
    /// down through the port after saying it; otherwise unchanged (a panic
    /// of Bochs, a triple fault, a kill).
    pub fn exit(&self, exit: Exit) -> Exit {
        match (exit, self.shutdown, self.verdict) {
            (Exit::Code(_), true, Some(true)) => Exit::Code(EXIT_SUCCESS),
            (Exit::Code(_), true, Some(false)) => Exit::Code(EXIT_FAILURE),
            (exit, _, _) => exit,
        }
    }
}
