//! `cargo xtask usb`'s arguments, its refusals through the command itself,
//! and its dialog.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use crate::cli::{Cli, Command, FirmwareArg};
use crate::usb::UsbArgs;
use crate::usb::checks::{BlockDevice, DevNum, Disk};
use crate::usb::dialog::{Consent, confirm, consent, human_size, progress_line, question, summary};
use crate::usb::write::Phase;
use clap::Parser;
use clap::error::ErrorKind;

fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
    Cli::try_parse_from(std::iter::once("cargo-xtask").chain(args.iter().copied()))
}

fn usb(args: &[&str]) -> UsbArgs {
    let Command::Usb(u) = parse(args).unwrap().command else { panic!("not usb") };
    u
}

// ---- arguments ----

#[test]
fn defaults() {
    let u = usb(&["usb", "/dev/sdb"]);
    assert_eq!(u.device, Path::new("/dev/sdb"));
    assert_eq!(u.firmware, FirmwareArg::Uefi, "what most machines boot");
    assert!(!u.yes && !u.kernel.test_kernel);
    assert_eq!(u.kernel.kernel, None);
    assert!(u.kernel.params.is_empty());
}

#[test]
fn the_image_options_are_images() {
    let u = usb(&[
        "usb",
        "--firmware",
        "bios",
        "--yes",
        "--test-kernel",
        "--kernel",
        "k.elf",
        "-p",
        "demo.keep_running=1",
        "/dev/disk/by-id/usb-X",
    ]);
    assert_eq!(u.firmware, FirmwareArg::Bios);
    assert!(u.yes && u.kernel.test_kernel);
    assert_eq!(u.kernel.kernel, Some(PathBuf::from("k.elf")));
    assert_eq!(u.kernel.params, vec![("demo.keep_running".into(), "1".into())]);
    assert!(usb(&["usb", "-y", "/dev/sdb"]).yes);
}

#[test]
fn bad_arguments_are_rejected() {
    let kind = |args: &[&str]| parse(args).expect_err("should be rejected").kind();
    assert_eq!(kind(&["usb"]), ErrorKind::MissingRequiredArgument, "DEVICE is required");
    // One image per stick: `all` is for `image`.
    assert_eq!(kind(&["usb", "--firmware", "all", "/dev/sdb"]), ErrorKind::InvalidValue);
    assert_eq!(kind(&["usb", "-p", "novalue", "/dev/sdb"]), ErrorKind::ValueValidation);
    assert_eq!(kind(&["usb", "/dev/sdb", "/dev/sdc"]), ErrorKind::UnknownArgument);
}

#[test]
fn help_says_what_is_checked_and_the_exit_statuses() {
    let help = parse(&["usb", "--help"]).unwrap_err();
    assert_eq!(help.kind(), ErrorKind::DisplayHelp);
    let text = help.to_string();
    for needle in ["removable", "partition", "mountinfo", "/proc/swaps", "O_EXCL", "--yes", "Exit status", "2 when"] {
        assert!(text.contains(needle), "{needle}: {text}");
    }
}

// ---- refusals, through the command as `cargo xtask usb` runs it ----

fn refusal(device: &Path) -> String {
    let cli = parse(&["usb", "--yes", device.to_str().unwrap()]).unwrap();
    format!("{:#}", crate::commands::run(cli).expect_err("should be refused"))
}

#[test]
fn the_command_refuses_a_missing_device() {
    let msg = refusal(Path::new("/dev/xtask-no-such-stick"));
    assert!(msg.contains("/dev/xtask-no-such-stick does not exist"), "{msg}");
}

#[test]
fn the_command_refuses_a_regular_file_and_leaves_it_alone() {
    let file = std::env::temp_dir().join(format!("xtask-usb-cli-{}.img", std::process::id()));
    std::fs::write(&file, b"precious").unwrap();
    let msg = refusal(&file);
    assert!(msg.contains("is not a block device"), "{msg}");
    assert_eq!(std::fs::read(&file).unwrap(), b"precious");
    let _ = std::fs::remove_file(file);
}

// ---- the dialog ----

#[test]
fn without_a_terminal_only_yes_writes() {
    let msg = consent(false, false).expect_err("nobody could answer").to_string();
    assert!(msg.contains("not a terminal") && msg.contains("--yes"), "{msg}");
    assert_eq!(consent(true, false).unwrap(), Consent::Given);
    assert_eq!(consent(false, true).unwrap(), Consent::Ask);
    assert_eq!(consent(true, true).unwrap(), Consent::Given);
}

#[test]
fn only_y_or_yes_confirms() {
    let q = question("target/xtask/run/uefi/uefi.img", Path::new("/dev/sdb"));
    assert_eq!(q, "Write target/xtask/run/uefi/uefi.img to /dev/sdb? This destroys everything on it. [y/N] ");
    for (answer, yes) in [
        ("y\n", true),
        ("yes\n", true),
        ("  YES \n", true),
        ("Y", true),
        ("\n", false),
        ("n\n", false),
        ("yess\n", false),
        ("sure\n", false),
        ("", false),
    ] {
        let mut shown = Vec::new();
        assert_eq!(confirm(&q, &mut Cursor::new(answer), &mut shown).unwrap(), yes, "{answer:?}");
        assert!(shown.starts_with(q.as_bytes()));
    }
}

#[test]
fn the_summary_names_the_stick_and_the_image() {
    let disk = Disk {
        name: "sdb".into(),
        path: "/dev/sdb".into(),
        vendor: Some("SanDisk".into()),
        model: Some("Cruzer Blade".into()),
        bytes: 16_008_609_792,
    };
    let device = BlockDevice {
        given: "/dev/disk/by-id/usb-SanDisk".into(),
        path: "/dev/sdb".into(),
        dev: DevNum { major: 8, minor: 16 },
    };
    let text = summary(&disk, &device, "uefi.img", 12_582_912);
    assert_eq!(
        text,
        "device: /dev/sdb (/dev/disk/by-id/usb-SanDisk), sdb to the kernel\n\
         model:  SanDisk Cruzer Blade\n\
         size:   16.0 GB, 16008609792 bytes\n\
         image:  uefi.img (12.6 MB, 12582912 bytes)"
    );
    let anonymous = Disk { vendor: None, model: None, ..disk };
    let direct = BlockDevice { given: "/dev/sdb".into(), ..device };
    let text = summary(&anonymous, &direct, "uefi.img", 1);
    assert!(text.starts_with("device: /dev/sdb, sdb to the kernel\nmodel:  unknown"), "{text}");
}

#[test]
fn sizes_and_progress() {
    assert_eq!(human_size(999), "999 B");
    assert_eq!(human_size(1000), "1.0 kB");
    assert_eq!(human_size(999_999), "1.0 MB", "no `1000.0 kB`");
    assert_eq!(human_size(16_008_609_792), "16.0 GB");
    assert_eq!(human_size(u64::MAX), "18.4 EB");
    assert_eq!(progress_line(Phase::Writing, 1 << 20, 4 << 20), "written  1048576 of 4194304 bytes (25%)");
    assert_eq!(progress_line(Phase::Verifying, 4 << 20, 4 << 20), "verified 4194304 of 4194304 bytes (100%)");
}
