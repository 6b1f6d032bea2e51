//! `cargo xtask bochs`: one boot of the BIOS image under Bochs.

use std::fs::File;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use bootimage::Firmware;

use crate::boot::Booter;
use crate::cli::{BochsArgs, boot_params};
use crate::process::RunOptions;
use crate::vm::{Emulator, VmConfig};
use crate::{bochs, prereq, workspace};

pub fn run(args: &BochsArgs) -> Result<ExitCode> {
    let cfg = VmConfig {
        emulator: Emulator::Bochs,
        memory: format!("{}M", args.memory),
        cpu: args.x2apic.then(|| bochs::X2APIC_MODEL.to_owned()),
        ..VmConfig::qemu(Firmware::Bios, args.cpus)
    };
    let host = prereq::ensure(false, true)?;
    if let Some(why) = cfg.unmet_requirement(&host) {
        bail!("cannot boot under Bochs: {why}");
    }
    let elf = super::kernel_elf(&args.kernel)?;
    let booter = Booter::new(host, elf, workspace::new_run_dir()?)?;
    let name = "bochs";
    eprintln!(
        "xtask: booting {} under Bochs ({} CPU(s){}), serial log in {}",
        workspace::display(&booter.elf),
        args.cpus,
        if args.x2apic { ", x2APIC" } else { "" },
        workspace::display(&booter.run_dir.join(format!("{name}.log")))
    );
    let opts = RunOptions { timeout: Some(Duration::from_secs(args.timeout)), ..RunOptions::default() };
    let params = boot_params(&args.kernel.params);
    match &args.serial {
        Some(path) => {
            let mut file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
            super::interactive::boot(&booter, &cfg, &params, name, &opts, &mut file, false)
        }
        None => super::interactive::boot(&booter, &cfg, &params, name, &opts, &mut std::io::stdout(), false),
    }
}
