//! `cargo xtask image`.

use std::process::ExitCode;

use anyhow::Result;

use crate::build::{self, Kernel};
use crate::cli::{ImageArgs, boot_params};
use crate::workspace;

pub fn run(args: &ImageArgs) -> Result<ExitCode> {
    let kernel = if args.test_kernel { Kernel::Tests } else { Kernel::Demo };
    let elf = build::kernel_elf(args.kernel.as_deref(), kernel)?;
    let params = boot_params(&args.params);
    let run_dir = workspace::new_run_dir()?;
    let elf = crate::strip::stripped_copy(&elf, &run_dir)?;
    for firmware in args.firmware.firmwares() {
        let image = bootimage::build_image(&elf, firmware, &params, &run_dir.join(firmware.name()))?;
        // Only the paths on stdout, so scripts can use them.
        println!("{}", workspace::display(&image));
    }
    Ok(ExitCode::SUCCESS)
}
