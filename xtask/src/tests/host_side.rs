//! The smaller pure pieces: cargo test result lines, QEMU version and
//! requirements, the QEMU command line, counts, line splitting.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::build::artifact_executable;
use crate::cli::Machine;
use crate::hosttest::{Counts, LOOM_ARGS, loom_rustflags, loom_target_dir, parse_result_line};
use crate::judge::{Outcome, Verdict};
use crate::prereq::{Ovmf, parse_qemu_version};
use crate::process::LineBuffer;
use crate::qemu::{command_args, unmet_requirement};
use crate::report::{Tail, Tally, printable, verdict_line};
use crate::vm::VmConfig;
use bootimage::Firmware;

#[test]
fn cargo_test_result_lines() {
    assert_eq!(
        parse_result_line(
            "test result: ok. 12 passed; 0 failed; 3 ignored; 0 measured; 0 filtered out; finished in 0.01s"
        ),
        Some(Counts { passed: 12, failed: 0, ignored: 3 })
    );
    assert_eq!(
        parse_result_line(
            "test result: FAILED. 1 passed; 2 failed; 0 ignored; 0 measured; 5 filtered out; finished in 1.00s"
        ),
        Some(Counts { passed: 1, failed: 2, ignored: 0 })
    );
    assert_eq!(parse_result_line("test foo ... ok"), None);
    assert_eq!(parse_result_line("test result: ok. lots passed"), None);
    assert_eq!(parse_result_line("running 3 tests"), None);
}

#[test]
fn loom_runs_apart_from_the_normal_build() {
    assert_eq!(LOOM_ARGS.join(" "), "test -p smp-core --release --test callq_loom");
    assert_eq!(loom_rustflags(None), "--cfg loom");
    assert_eq!(loom_rustflags(Some("  ")), "--cfg loom");
    assert_eq!(loom_rustflags(Some("-D warnings")), "-D warnings --cfg loom", "the caller's flags are kept");
    // Its own target directory: --cfg loom must not invalidate the normal cache.
    let dir = loom_target_dir();
    assert!(dir.ends_with("loom") && dir != crate::workspace::target_dir(), "{}", dir.display());
}

#[test]
fn qemu_versions() {
    assert_eq!(
        parse_qemu_version("QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2+deb13u1~bpo12+1)\nCopyright"),
        Some((10, 0))
    );
    assert_eq!(parse_qemu_version("QEMU emulator version 7.2.15 (Debian 1:7.2+dfsg-7+deb12u12)"), Some((7, 2)));
    assert_eq!(parse_qemu_version("QEMU emulator version 8.1.0"), Some((8, 1)));
    assert_eq!(parse_qemu_version("QEMU emulator version 9.2.50rc1"), Some((9, 2)));
    assert_eq!(parse_qemu_version("qemu-system-x86_64: command not found"), None);
    assert_eq!(parse_qemu_version(""), None);
}

fn cfg() -> VmConfig {
    VmConfig::qemu(Firmware::Bios, 4)
}

#[test]
fn x2apic_needs_qemu_8_1_and_says_how_to_get_it() {
    let mut c = cfg();
    assert_eq!(unmet_requirement(&c, Some((7, 2))), None, "plain configs run anywhere");
    c.cpu = Some("qemu64,x2apic=on".into());
    let why = unmet_requirement(&c, Some((7, 2))).expect("7.2 lacks TCG x2APIC");
    assert!(why.contains("QEMU >= 8.1") && why.contains("found 7.2"), "{why}");
    assert!(why.contains("apt-get install -t bookworm-backports qemu-system-x86"), "{why}");
    assert_eq!(unmet_requirement(&c, Some((8, 1))), None);
    assert_eq!(unmet_requirement(&c, Some((10, 0))), None);
    assert!(unmet_requirement(&c, None).is_some(), "unknown version: do not guess");

    let mut c = cfg();
    c.extra = vec!["-cpu".into(), "max,+x2apic".into()];
    assert!(unmet_requirement(&c, Some((8, 0))).is_some());
    let mut c = cfg();
    c.smp = 300;
    assert!(unmet_requirement(&c, Some((7, 2))).is_some());
    c.cpu = Some("qemu64,x2apic=off".into());
    assert!(unmet_requirement(&c, Some((7, 2))).unwrap().contains("300"));
}

#[test]
fn qemu_command_line() {
    let mut c = cfg();
    c.cpu = Some("qemu64".into());
    c.extra = vec!["-d".into(), "int".into()];
    let args = command_args(&c, Path::new("/t/bios.img"), None, Path::new("/t/vars.fd"));
    let line = args.join(" ");
    assert_eq!(
        line,
        "-machine pc -smp 4 -m 256M -display none -no-reboot -serial stdio \
         -device isa-debug-exit,iobase=0xf4,iosize=0x04 -drive format=raw,file=/t/bios.img -cpu qemu64 -d int"
    );
    assert!(!line.contains("kvm"), "TCG only");

    let mut c = cfg();
    c.firmware = Firmware::Uefi;
    c.machine = Machine::Q35;
    let ovmf = Ovmf::Combined(PathBuf::from("/usr/share/ovmf/OVMF.fd"));
    let args = command_args(&c, Path::new("/t/uefi.img"), Some(&ovmf), Path::new("/t/vars.fd"));
    let line = args.join(" ");
    assert!(line.starts_with("-machine q35 "), "{line}");
    assert!(line.ends_with("-bios /usr/share/ovmf/OVMF.fd"), "{line}");

    let split =
        Ovmf::Split { code: "/usr/share/OVMF/OVMF_CODE.fd".into(), vars: "/usr/share/OVMF/OVMF_VARS.fd".into() };
    let line = command_args(&c, Path::new("/t/uefi.img"), Some(&split), Path::new("/t/vars.fd")).join(" ");
    assert!(line.contains("if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE.fd"), "{line}");
    assert!(line.contains("if=pflash,format=raw,unit=1,file=/t/vars.fd"), "a copy, never the shared template: {line}");
}

#[test]
fn closing_line() {
    let mut t = Tally::default();
    t.count(&Outcome::Passed);
    t.count(&Outcome::Failed("x".into()));
    assert_eq!(t.summary_line(), "1 passed, 1 failed");
    t.add(Tally { passed: 2, failed: 0, skipped: 3 });
    assert_eq!(t.summary_line(), "3 passed, 1 failed, 3 skipped");
}

#[test]
fn verdict_lines() {
    let v = Verdict {
        name: "boot::heap_works".into(),
        outcome: Outcome::Passed,
        duration: Some(Duration::from_millis(410)),
    };
    assert_eq!(verdict_line("bios/smp4", &v), "guest bios/smp4 boot::heap_works ... ok (0.41s)");
    let v = Verdict { outcome: Outcome::Failed("hung: no verdict after 12.0 s".into()), ..v };
    assert_eq!(
        verdict_line("uefi/smp2", &v),
        "guest uefi/smp2 boot::heap_works ... FAILED (0.41s): hung: no verdict after 12.0 s"
    );
    let v = Verdict { outcome: Outcome::Skipped("needs 8 CPUs, running with 4".into()), duration: None, ..v };
    assert_eq!(
        verdict_line("bios/smp4", &v),
        "guest bios/smp4 boot::heap_works ... skipped: needs 8 CPUs, running with 4"
    );
}

#[test]
fn serial_bytes_become_lines() {
    let mut b = LineBuffer::default();
    assert!(b.push(b"@@KTEST BEG").is_empty());
    assert_eq!(b.push(b"IN\ta\r\nlog\n\xff\xfepart"), ["@@KTEST BEGIN\ta", "log"]);
    assert_eq!(b.rest().as_deref(), Some("\u{fffd}\u{fffd}part"));
    assert_eq!(b.rest(), None);
}

#[test]
fn firmware_noise_cannot_drive_the_terminal() {
    assert_eq!(printable("\x1b[2J\x1b[01;01Hhello\tworld\x07"), "hello\tworld^G");
}

#[test]
fn tail_keeps_the_last_lines_and_does_not_repeat_them() {
    let mut tail = Tail::default();
    for i in 0..100 {
        tail.push(&i.to_string());
    }
    let shown = tail.take_unshown();
    assert_eq!(shown.len(), crate::report::TAIL_LINES);
    assert_eq!(shown.last().map(String::as_str), Some("99"));
    tail.push("100");
    assert_eq!(tail.take_unshown(), ["100"]);
    assert!(tail.take_unshown().is_empty());
}

#[test]
fn kernel_elf_comes_from_cargos_messages() {
    let msg = r#"{"reason":"compiler-artifact","target":{"name":"guest-tests","kind":["bin"]},"executable":"/w/target/x86_64-unknown-none/debug/guest-tests"}"#;
    assert_eq!(
        artifact_executable(msg, "guest-tests"),
        Some(PathBuf::from("/w/target/x86_64-unknown-none/debug/guest-tests"))
    );
    assert_eq!(artifact_executable(msg, "kernel"), None);
    assert_eq!(artifact_executable(r#"{"reason":"build-finished","success":true}"#, "kernel"), None);
    assert_eq!(artifact_executable("Compiling kernel", "kernel"), None);
}

#[test]
fn run_directories_are_named_by_utc_time() {
    assert_eq!(crate::workspace::timestamp(0), "19700101-000000");
    assert_eq!(crate::workspace::timestamp(951_782_400 + 3661), "20000229-010101");
    assert_eq!(crate::workspace::timestamp(1_732_190_000), "20241121-115320");
}

#[test]
fn gdb_attach_command_and_qemu_arguments() {
    use crate::gdb::{KERNEL_BASE, attach_command, qemu_args};
    assert_eq!(KERNEL_BASE, 0xffff_8000_0000_0000, "kernel/src/boot.rs KERNEL_BASE");
    assert_eq!(qemu_args(1234), ["-gdb", "tcp:127.0.0.1:1234", "-S"]);
    assert_eq!(
        attach_command(Path::new("/w/target/x86_64-unknown-none/debug/kernel"), 1240),
        "gdb -ex 'set architecture i386:x86-64' \
         -ex 'symbol-file /w/target/x86_64-unknown-none/debug/kernel -o 0xffff800000000000' -ex 'target remote :1240'"
    );
    // A path with a space stays one file name for gdb, inside the shell's quotes.
    let cmd = attach_command(Path::new("/my dir/kernel"), 1234);
    assert!(cmd.contains("-ex 'symbol-file \"/my dir/kernel\" -o 0xffff800000000000'"), "{cmd}");
}

#[test]
fn pruning_keeps_the_newest_runs_and_any_run_still_going() {
    let base = std::env::temp_dir().join(format!("xtask-prune-{}", std::process::id()));
    let name = |i: usize| base.join(format!("20260101-0000{i:02}-1"));
    for i in 0..14 {
        std::fs::create_dir_all(name(i)).unwrap();
    }
    let long_run = crate::workspace::hold(&name(1)).unwrap();
    crate::workspace::prune(&base);
    let left: Vec<bool> = (0..14).map(|i| name(i).exists()).collect();
    assert!(!left[0] && !left[2] && !left[3], "old runs go: {left:?}");
    assert!(left[1], "a run still holding its directory stays");
    assert!(left[4..].iter().all(|&x| x), "the newest ten stay: {left:?}");
    drop(long_run);
    crate::workspace::prune(&base);
    assert!(!name(1).exists(), "once it ended, it goes too");
    std::fs::remove_dir_all(&base).unwrap();
}
