//! `cargo xtask usb`'s arguments (its help text is on `cli::Command::Usb`).

use std::path::PathBuf;

use clap::Args;

use crate::cli::{FirmwareArg, parse_param};

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
    /// Write the guest test kernel (guest-tests) instead of the demo kernel.
    #[arg(long)]
    pub test_kernel: bool,
    /// Use this kernel ELF instead of building one.
    #[arg(long, value_name = "ELF")]
    pub kernel: Option<PathBuf>,
    /// Boot parameter for the image's ramdisk (repeatable), e.g. `-p demo.keep_running=1`.
    #[arg(short = 'p', long = "param", value_name = "KEY=VALUE", value_parser = parse_param)]
    pub params: Vec<(String, String)>,
}
