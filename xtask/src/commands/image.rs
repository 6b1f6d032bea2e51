//! `cargo xtask image`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

use crate::cli::{ImageArgs, boot_params};
use crate::workspace;

pub fn run(args: &ImageArgs) -> Result<ExitCode> {
    for image in build(args)? {
        // Only the paths on stdout, so scripts can use them.
        println!("{}", workspace::display(&image));
    }
    Ok(ExitCode::SUCCESS)
}

/// Builds the kernel `args` names and its images, one per firmware, in a new
/// run directory; `usb` writes what this builds, so the two never differ.
pub(super) fn build(args: &ImageArgs) -> Result<Vec<PathBuf>> {
    let elf = super::kernel_elf(&args.kernel)?;
    let params = boot_params(&args.kernel.params);
    let run_dir = workspace::new_run_dir()?;
    let elf = crate::strip::stripped_copy(&elf, &run_dir)?;
    args.firmware
        .firmwares()
        .into_iter()
        .map(|firmware| bootimage::build_image(&elf, firmware, &params, &run_dir.join(firmware.name())))
        .collect()
}
