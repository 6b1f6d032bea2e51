//! One boot: build the image with its boot parameters into a directory of
//! its own, run QEMU on it, save the serial log.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use bootimage::BootParams;

use crate::judge::Exit;
use crate::prereq::Host;
use crate::process::{self, Output, RunOptions, Stream};
use crate::vm::{Emulator, VmConfig};
use crate::{bochs, qemu};

/// Prefix of the emulator's own messages (QEMU's stderr, all of Bochs's
/// output) in logs and tails.
pub const EMULATOR_OUTPUT: &str = "[emulator] ";

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
    /// The full serial output, the emulator's own lines marked [`EMULATOR_OUTPUT`].
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
        cfg: &VmConfig,
        params: &BootParams,
        name: &str,
        opts: &RunOptions,
        mut sink: impl FnMut(Output<'_>),
    ) -> Result<Boot> {
        let dir = self.run_dir.join(name);
        let image = bootimage::build_image(&self.image_elf, cfg.firmware, params, &dir)?;
        let (program, args, opts) = match cfg.emulator {
            Emulator::Qemu => {
                let vars = qemu::prepare_firmware(self.host.ovmf.as_ref(), &dir)?;
                let args = qemu::command_args(cfg, &image, self.host.ovmf.as_ref(), &vars);
                let opts = RunOptions { serial: None, env: Vec::new(), ..*opts };
                (self.host.qemu.clone(), args, opts)
            }
            Emulator::Bochs => {
                let bochs =
                    self.host.bochs.clone().context("Bochs was not found (configurations needing it are skipped)")?;
                let listener = TcpListener::bind(("127.0.0.1", 0)).context("opening a port for Bochs's serial line")?;
                let files = bochs::prepare(cfg, &image, listener.local_addr()?.port(), &dir)?;
                let opts = RunOptions { serial: Some(listener), env: vec![bochs::HEADLESS], ..*opts };
                (bochs, files.args(), opts)
            }
        };
        let log_path = self.run_dir.join(format!("{name}.log"));
        let mut log =
            BufWriter::new(File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?);
        let program = program.display().to_string();
        // The command line heads the log, so the log alone reproduces the boot.
        writeln!(log, "# {program} {}", args.join(" "))?;
        let mut log_error = None;
        let mut bochs_exit = (cfg.emulator == Emulator::Bochs).then(bochs::ExitWatch::default);
        let (exit, elapsed) = process::run(&program, &args, &opts, |out| {
            if let Output::Line(stream, _, line) = out {
                let prefix = if stream == Stream::Stderr { EMULATOR_OUTPUT } else { "" };
                // Flush per line: if we are killed, the log still shows how far the guest got.
                if let Err(e) = writeln!(log, "{prefix}{line}").and_then(|()| log.flush()) {
                    log_error.get_or_insert(e);
                }
                match (&mut bochs_exit, stream) {
                    (Some(watch), Stream::Stdout) => watch.serial(line),
                    (Some(watch), Stream::Stderr) => watch.emulator(line),
                    (None, _) => {}
                }
            }
            sink(out);
        })?;
        let exit = bochs_exit.map_or(exit, |watch| watch.exit(exit));
        if let Some(e) = log_error {
            return Err(e).with_context(|| format!("writing {}", log_path.display()));
        }
        Ok(Boot { exit, elapsed, log: log_path, dir })
    }
}
