//! One boot: build the image with its boot parameters into a directory of
//! its own, run QEMU on it, save the serial log.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use bootimage::BootParams;

use crate::judge::Exit;
use crate::prereq::Host;
use crate::process::{self, Output, RunOptions, Stream};
use crate::qemu::{self, QemuConfig};

/// Prefix of QEMU's own messages (stderr) in logs and tails.
pub const QEMU_STDERR: &str = "[qemu stderr] ";

/// Makes boots of one kernel ELF.
#[derive(Debug)]
pub struct Booter {
    pub host: Host,
    /// The kernel as built, for symbols.
    pub elf: PathBuf,
    /// The same kernel without debug info, for images (see [`crate::strip`]).
    pub image_elf: PathBuf,
    /// This run's directory under target/xtask.
    pub run_dir: PathBuf,
}

/// A finished boot.
#[derive(Debug)]
pub struct Boot {
    pub exit: Exit,
    pub elapsed: Duration,
    /// The full serial output (QEMU's stderr lines marked [`QEMU_STDERR`]).
    pub log: PathBuf,
    /// Image, boot parameters and firmware variables of this boot.
    pub dir: PathBuf,
}

impl Booter {
    /// Boots `elf` on `host`, keeping every boot's files in `run_dir`.
    pub fn new(host: Host, elf: PathBuf, run_dir: PathBuf) -> Result<Booter> {
        let image_elf = crate::strip::stripped_copy(&elf, &run_dir)?;
        Ok(Booter { host, elf, image_elf, run_dir })
    }

    /// Boots with `params` as `<run_dir>/<name>/`, logging to
    /// `<run_dir>/<name>.log`. `sink` sees the output as it comes.
    pub fn boot(
        &self,
        cfg: &QemuConfig,
        params: &BootParams,
        name: &str,
        opts: &RunOptions,
        mut sink: impl FnMut(Output<'_>),
    ) -> Result<Boot> {
        let dir = self.run_dir.join(name);
        let image = bootimage::build_image(&self.image_elf, cfg.firmware, params, &dir)?;
        let vars = qemu::prepare_firmware(self.host.ovmf.as_ref(), &dir)?;
        let args = qemu::command_args(cfg, &image, self.host.ovmf.as_ref(), &vars);
        let log_path = self.run_dir.join(format!("{name}.log"));
        let mut log =
            BufWriter::new(File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?);
        let qemu = self.host.qemu.display().to_string();
        // The command line heads the log, so the log alone reproduces the boot.
        writeln!(log, "# {qemu} {}", args.join(" "))?;
        let mut log_error = None;
        let (exit, elapsed) = process::run(&qemu, &args, opts, |out| {
            if let Output::Line(stream, _, line) = out {
                let prefix = if stream == Stream::Stderr { QEMU_STDERR } else { "" };
                // Flush per line: if we are killed, the log still shows how far the guest got.
                if let Err(e) = writeln!(log, "{prefix}{line}").and_then(|()| log.flush()) {
                    log_error.get_or_insert(e);
                }
            }
            sink(out);
        })?;
        if let Some(e) = log_error {
            return Err(e).with_context(|| format!("writing {}", log_path.display()));
        }
        Ok(Boot { exit, elapsed, log: log_path, dir })
    }
}
