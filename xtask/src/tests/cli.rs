//! Argument handling: defaults, and bad arguments rejected with a clear
//! message (through clap's `try_parse_from`, as `cargo xtask` parses them).

use crate::cli::{Cli, Command, FirmwareArg, FirmwareChoice, Machine};
use clap::Parser;
use clap::error::ErrorKind;

fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
    Cli::try_parse_from(std::iter::once("cargo-xtask").chain(args.iter().copied()))
}

fn error(args: &[&str]) -> (ErrorKind, String) {
    let e = parse(args).expect_err("should be rejected");
    (e.kind(), e.to_string())
}

#[test]
fn test_defaults() {
    let Command::Test(t) = parse(&["test"]).unwrap().command else { panic!() };
    assert_eq!(t.firmware, FirmwareChoice::All);
    assert_eq!(t.vm.smp, 4);
    assert_eq!(t.vm.memory, "256M");
    assert_eq!(t.vm.machine, Machine::Pc);
    assert_eq!(t.vm.cpu, None);
    assert!(!t.examples && !t.no_host && !t.no_guest && !t.verbose);
    assert_eq!(t.filter, None);
    assert!(t.qemu_args.is_empty() && t.params.is_empty());
}

#[test]
fn test_with_everything() {
    let cli = parse(&[
        "test",
        "--smp",
        "8",
        "--firmware",
        "uefi",
        "--machine",
        "q35",
        "--cpu",
        "qemu64,x2apic=on",
        "--examples",
        "--no-host",
        "-p",
        "smp.parallel=0",
        "--param",
        "log=debug",
        "boot::",
        "--",
        "-d",
        "int",
    ])
    .unwrap();
    let Command::Test(t) = cli.command else { panic!() };
    assert_eq!(t.vm.smp, 8);
    assert_eq!(t.firmware.firmwares(), vec![bootimage::Firmware::Uefi]);
    assert_eq!(t.vm.machine, Machine::Q35);
    assert_eq!(t.vm.cpu.as_deref(), Some("qemu64,x2apic=on"));
    assert!(t.examples && t.no_host);
    assert_eq!(t.params, vec![("smp.parallel".into(), "0".into()), ("log".into(), "debug".into())]);
    assert_eq!(t.filter.as_deref(), Some("boot::"));
    assert_eq!(t.qemu_args, ["-d", "int"]);
}

#[test]
fn qemu_defaults_and_options() {
    let Command::Qemu(q) = parse(&["qemu"]).unwrap().command else { panic!() };
    assert_eq!(q.firmware, FirmwareArg::Bios);
    assert_eq!(q.timeout, None);
    assert!(!q.keep_running);
    let Command::Qemu(q) =
        parse(&["qemu", "--keep-running", "--timeout", "30", "--memory", "1G", "--", "-s"]).unwrap().command
    else {
        panic!()
    };
    assert!(q.keep_running);
    assert_eq!(q.timeout, Some(30));
    assert_eq!(q.vm.memory, "1G");
    assert_eq!(q.qemu_args, ["-s"]);
}

#[test]
fn image_options() {
    let Command::Image(i) =
        parse(&["image", "--firmware", "bios", "--test-kernel", "-p", "ktest.list=1"]).unwrap().command
    else {
        panic!()
    };
    assert_eq!(i.firmware, FirmwareChoice::Bios);
    assert!(i.kernel.test_kernel);
    assert_eq!(i.kernel.params, vec![("ktest.list".into(), "1".into())], "image may set ktest.*");
}

#[test]
fn unknown_firmware_is_rejected_with_the_choices() {
    for cmd in ["test", "qemu", "image"] {
        let (kind, msg) = error(&[cmd, "--firmware", "floppy"]);
        assert_eq!(kind, ErrorKind::InvalidValue, "{cmd}");
        assert!(msg.contains("floppy") && msg.contains("bios") && msg.contains("uefi"), "{msg}");
    }
    // `all` is for commands that boot more than once, not for `qemu`.
    assert_eq!(error(&["qemu", "--firmware", "all"]).0, ErrorKind::InvalidValue);
}

#[test]
fn bad_values_are_rejected() {
    for (args, needle) in [
        (&["test", "--smp", "0"][..], "0"),
        (&["test", "--smp", "four"], "four"),
        (&["test", "--machine", "isapc"], "isapc"),
        (&["test", "--memory", "lots"], "memory size"),
        (&["test", "--memory", "0M"], "memory size"),
        (&["qemu", "--memory", "256MB"], "memory size"),
        (&["test", "-p", "novalue"], "key=value"),
        (&["test", "-p", "a b=c"], "a b"),
        (&["qemu", "--timeout", "0"], "0"),
        (&["test", "--timeout-scale", "0"], "positive"),
    ] {
        let (kind, msg) = error(args);
        assert_ne!(kind, ErrorKind::DisplayHelp, "{args:?}");
        assert!(msg.contains(needle), "{args:?}: {msg}");
    }
}

#[test]
fn runner_parameters_are_the_runners() {
    let (_, msg) = error(&["test", "-p", "ktest.run=boot::a"]);
    assert!(msg.contains("set by the test runner"), "{msg}");
    // ... but booting one test by hand is fine.
    assert!(parse(&["qemu", "--test-kernel", "-p", "ktest.run=boot::a"]).is_ok());
}

#[test]
fn contradictory_or_unknown_flags() {
    assert_eq!(error(&["test", "--no-host", "--no-guest"]).0, ErrorKind::ArgumentConflict);
    assert_eq!(error(&["test", "--enable-kvm"]).0, ErrorKind::UnknownArgument);
    assert_eq!(error(&["boot"]).0, ErrorKind::InvalidSubcommand);
    assert_eq!(error(&[]).0, ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand);
}

#[test]
fn every_command_has_help() {
    for cmd in [
        &["--help"][..],
        &["test", "--help"],
        &["qemu", "--help"],
        &["bochs", "--help"],
        &["matrix", "--help"],
        &["image", "--help"],
        &["symbolize", "--help"],
        &["torture", "--help"],
        &["bench", "--help"],
        &["usb", "--help"],
        &["lint", "--help"],
    ] {
        let (kind, text) = error(cmd);
        assert_eq!(kind, ErrorKind::DisplayHelp);
        assert!(text.contains("Usage: cargo xtask"), "{text}");
    }
    let (_, text) = error(&["qemu", "--help"]);
    assert!(text.contains("124") && text.contains("--keep-running"), "exit codes documented: {text}");
}

#[test]
fn qemu_gdb_options() {
    let Command::Qemu(q) = parse(&["qemu", "--gdb"]).unwrap().command else { panic!() };
    assert!(q.gdb);
    assert_eq!(q.gdb_port, 1234);
    assert_eq!(q.timeout, None, "no time limit unless asked");
    let Command::Qemu(q) = parse(&["qemu", "--gdb", "--gdb-port", "4321"]).unwrap().command else { panic!() };
    assert_eq!(q.gdb_port, 4321);
    assert_eq!(error(&["qemu", "--gdb-port", "4321"]).0, ErrorKind::MissingRequiredArgument);
    assert_eq!(error(&["qemu", "--gdb", "--gdb-port", "99999"]).0, ErrorKind::ValueValidation);
}

#[test]
fn bochs_options_and_limits() {
    let Command::Bochs(b) = parse(&["bochs"]).unwrap().command else { panic!() };
    assert_eq!((b.cpus, b.x2apic, b.memory, b.timeout), (4, false, 256, 300));
    assert!(b.serial.is_none() && !b.kernel.test_kernel);
    let Command::Bochs(b) =
        parse(&["bochs", "--cpus", "15", "--x2apic", "--serial", "out.log", "-p", "log=debug"]).unwrap().command
    else {
        panic!()
    };
    assert_eq!((b.cpus, b.x2apic), (15, true));
    assert_eq!(b.kernel.params, [("log".to_owned(), "debug".to_owned())]);
    for bad in [&["bochs", "--cpus", "16"][..], &["bochs", "--cpus", "0"], &["bochs", "--memory", "8"]] {
        let (kind, text) = error(bad);
        assert_eq!(kind, ErrorKind::ValueValidation, "{bad:?}: {text}");
    }
    let (_, text) = error(&["bochs", "--help"]);
    assert!(text.contains("15") && text.contains("shutdown port") && text.contains("124"), "{text}");
}

#[test]
fn matrix_takes_cells_and_lists_them() {
    let Command::Matrix(m) = parse(&["matrix"]).unwrap().command else { panic!() };
    assert!(!m.cells.default, "the matrix is the cells, not the default run");
    assert_eq!(m.cells.configs.len(), crate::configs::configs().len());
    let Command::Matrix(m) = parse(&["matrix", "bochs-*,usb-uefi", "--list"]).unwrap().command else { panic!() };
    assert!(m.list);
    assert_eq!(m.cells.names(), ["bochs-smp4-xapic", "bochs-smp4-x2apic", "usb-uefi"]);
    let (kind, text) = error(&["matrix", "nosuchcell"]);
    assert_eq!(kind, ErrorKind::ValueValidation);
    assert!(text.contains("no configuration matches `nosuchcell`"), "{text}");
    let (_, text) = error(&["matrix", "--help"]);
    assert!(text.contains("SKIP") && text.contains("USB stick"), "{text}");
}

#[test]
fn qemu_can_boot_from_a_usb_stick() {
    let Command::Qemu(q) = parse(&["qemu", "--usb", "--firmware", "uefi"]).unwrap().command else { panic!() };
    assert!(q.usb);
    let Command::Qemu(q) = parse(&["qemu"]).unwrap().command else { panic!() };
    assert!(!q.usb);
}
