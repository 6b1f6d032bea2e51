//! `cargo xtask usb`: checks the device, builds the image as `image` does,
//! asks, then writes and verifies.

use std::fs::File;
use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};

use crate::cli::{FirmwareArg, FirmwareChoice, ImageArgs};
use crate::usb::checks::{self, SystemRoot};
use crate::usb::dialog::{self, Consent};
use crate::usb::write::{self, Phase};
use crate::usb::{UsbArgs, open};
use crate::workspace;

/// Exit statuses (see the command's --help); refusals are errors, and so 1.
const EXIT_NOT_WRITTEN: u8 = 1;
const EXIT_WRITE_FAILED: u8 = 2;

pub fn run(args: &UsbArgs) -> Result<ExitCode> {
    if !cfg!(target_os = "linux") {
        bail!("`cargo xtask usb` reads Linux's sysfs and /proc: it runs on Linux only");
    }
    // Every check that can refuse comes before the build, which may take minutes.
    let device = checks::block_device(&args.device)?;
    let disk = checks::check_disk(&SystemRoot::live(), &device)?;
    let consent = dialog::consent(args.yes, std::io::stdin().is_terminal())?;
    let mut medium = open::open_exclusive(&device.path)?;
    let image = build_image(args)?;
    let image_bytes = std::fs::metadata(&image).with_context(|| format!("reading {}", image.display()))?.len();
    checks::check_fits(&disk, image_bytes)?;
    let shown_image = workspace::display(&image);
    eprintln!("{}", dialog::summary(&disk, &device, &shown_image, image_bytes));
    if consent == Consent::Ask {
        let question = dialog::question(&shown_image, &disk.path);
        if !dialog::confirm(&question, &mut std::io::stdin().lock(), &mut std::io::stderr())? {
            eprintln!("xtask: nothing written");
            return Ok(ExitCode::from(EXIT_NOT_WRITTEN));
        }
    }
    let mut source = File::open(&image).with_context(|| format!("opening {}", image.display()))?;
    let mut show = progress_printer(image_bytes);
    match write::write_and_verify(&mut source, image_bytes, &mut medium, &mut show) {
        Ok(()) => {
            eprintln!("xtask: done: you can remove the stick");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("\nerror: {e}");
            Ok(ExitCode::from(EXIT_WRITE_FAILED))
        }
    }
}

/// The one image `args` asks for, built by `image`'s own code.
fn build_image(args: &UsbArgs) -> Result<std::path::PathBuf> {
    let firmware = match args.firmware {
        FirmwareArg::Bios => FirmwareChoice::Bios,
        FirmwareArg::Uefi => FirmwareChoice::Uefi,
    };
    let image_args = ImageArgs { firmware, kernel: args.kernel.clone() };
    let mut images = super::image::build(&image_args)?;
    images.pop().context("no image was built")
}

/// One line rewritten in place on a terminal; in a log, a line per tenth.
fn progress_printer(total: u64) -> impl FnMut(Phase, u64) {
    let terminal = std::io::stderr().is_terminal();
    let mut last_tenth = None;
    move |phase, done| {
        let line = dialog::progress_line(phase, done, total);
        if terminal {
            eprint!("\r{line}");
            if done == total {
                eprintln!();
            }
        } else if last_tenth != Some((phase, dialog::percent(done, total) / 10)) {
            last_tenth = Some((phase, dialog::percent(done, total) / 10));
            eprintln!("{line}");
        }
    }
}
