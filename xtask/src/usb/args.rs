//! `cargo xtask usb`'s arguments (its help text is on `cli::Command::Usb`).

use std::path::PathBuf;

use clap::Args;

use crate::cli::{FirmwareArg, KernelArgs};

#[derive(Args, Debug)]
pub struct UsbArgs {
    /// The stick's whole-disk device, e.g. /dev/sdb or /dev/disk/by-id/usb-...
    /// (`lsblk -o NAME,TRAN,RM,SIZE,MODEL` lists them).
    #[arg(value_name = "DEVICE")]
    pub device: PathBuf,
    /// Firmware the stick boots with. Most PCs since about 2012 boot UEFI, and many
    /// recent ones nothing else; bios needs the machine's legacy (CSM) boot.
    #[arg(long, value_enum, default_value_t = FirmwareArg::Uefi)]
    pub firmware: FirmwareArg,
    /// Write without asking (the device checks still apply).
    #[arg(short = 'y', long)]
    pub yes: bool,
    #[command(flatten)]
    pub kernel: KernelArgs,
}
