//! The machine matrix: its cells, `--configs` parsing, what each cell puts
//! on QEMU's command line and in its boots, how its test selection meets
//! the user's FILTER, and the closing table.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cli::{Cli, Command, Machine, TestArgs};
use crate::configs::{self, EXPECT_APIC, configs, expect_cpus, glob_matches, guest_runs, parse_selection, split_smp};
use crate::guest::{GuestRun, MachineResult, reproduce_command};
use crate::plan::{EXPECT_CPUS, plan};
use crate::prereq::Ovmf;
use crate::protocol::TestInfo;
use crate::qemu::{command_args, unmet_requirement};
use crate::report::{Tally, machine_table};
use crate::vm::{Emulator, Medium, VmConfig};
use bootimage::Firmware;
use clap::Parser;
use clap::error::ErrorKind;

fn parse(args: &[&str]) -> Result<TestArgs, clap::Error> {
    let cli = Cli::try_parse_from(["cargo-xtask", "test"].iter().chain(args))?;
    let Command::Test(t) = cli.command else { panic!("not a test command") };
    Ok(t)
}

fn names(args: &[&str]) -> Vec<&'static str> {
    parse(args).unwrap().configs.names()
}

fn run<'a>(runs: &'a [GuestRun], name: &str) -> &'a GuestRun {
    runs.iter().find(|r| r.name == name).unwrap_or_else(|| panic!("no run {name}"))
}

/// The runs of `--configs all` with the user's `args`.
fn all_runs(args: &[&str]) -> Vec<GuestRun> {
    guest_runs(&parse(&[&["--configs", "all"], args].concat()).unwrap())
}

/// The one machine of cell `name`.
fn vm<'a>(runs: &'a [GuestRun], name: &str) -> &'a VmConfig {
    let r = run(runs, name);
    assert_eq!(r.machines.len(), 1, "a cell is one machine");
    &r.machines[0]
}

fn qemu_line(cfg: &VmConfig) -> String {
    let ovmf = Ovmf::Combined(PathBuf::from("/usr/share/ovmf/OVMF.fd"));
    command_args(cfg, Path::new("/t/disk.img"), Some(&ovmf), Path::new("/t/vars.fd")).join(" ")
}

fn info(name: &str, min_cpus: u32) -> TestInfo {
    let mut t = TestInfo::new(name);
    t.min_cpus = min_cpus;
    t
}

/// A test list shaped like the guest's.
fn guest_list() -> Vec<TestInfo> {
    vec![
        info("boot::heap_works", 1),
        info("bringup::every_present_cpu_is_online", 1),
        info("bringup::expected_cpu_count_is_online", 1),
        info("bringup::apic_mode_is_the_one_the_machine_offers", 1),
        info("bringup::every_online_cpu_answers_an_ipi", 2),
        info("bringup::a_failing_setup_step_leaves_only_that_cpu_offline", 4),
        info("calls::call_all_reaches_every_online_cpu", 2),
        info("calls::call_single_runs_there", 2),
        info("hotplug::down_and_up", 2),
        info("stop::everyone_stops", 2),
        info("stress::cross_call_stress", 2),
    ]
}

fn planned(run: &GuestRun) -> (Vec<String>, Vec<String>) {
    let p = plan(&guest_list(), &run.plan);
    let ran = p.boots.iter().flat_map(|b| &b.tests).map(|t| t.name.clone()).collect();
    let skipped = p.skipped.iter().map(|(t, _)| t.name.clone()).collect();
    (ran, skipped)
}

// --- the matrix ----------------------------------------------------------

#[test]
fn the_grid_is_every_machine_firmware_cpu_count_and_apic_mode() {
    let names: HashSet<&str> = configs().iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names.len(), configs().len(), "names are unique");
    for m in ["pc", "q35"] {
        for fw in ["bios", "uefi"] {
            for n in [1, 2, 4, 7, 8] {
                for apic in ["xapic", "x2apic"] {
                    let name = format!("{m}-{fw}-smp{n}-{apic}");
                    let c = configs::find(&name).unwrap_or_else(|| panic!("{name} missing"));
                    assert_eq!(c.machine.name(), m);
                    assert_eq!(c.firmware.name(), fw);
                    assert_eq!(expect_cpus(&c.smp), Ok(n));
                    assert!(c.params.contains(&(EXPECT_APIC, apic)), "{name} tells the guest its APIC");
                    assert!(c.description.contains(&format!("{n} CPU")), "{}", c.description);
                }
            }
        }
    }
    for special in [
        "pc-bios-maxcpus",
        "q35-bios-smp300-x2apic",
        "q35-bios-smp1024-x2apic",
        "bochs-smp4-xapic",
        "bochs-smp4-x2apic",
        "usb-bios",
        "usb-uefi",
    ] {
        assert!(names.contains(special), "{special} missing");
    }
    assert_eq!(configs().len(), 40 + 7);
    for c in configs() {
        split_smp(&c.smp).unwrap_or_else(|e| panic!("{}: {e}", c.name));
        assert!(!c.description.is_empty() && !c.tests.is_empty(), "{}", c.name);
    }
}

#[test]
fn ci_runs_one_of_each_kind_of_machine() {
    let ci: Vec<&configs::Config> = configs().iter().filter(|c| c.ci).collect();
    assert!((6..=12).contains(&ci.len()), "CI's subset must stay small: {}", ci.len());
    let has = |f: &dyn Fn(&configs::Config) -> bool| ci.iter().any(|c| f(c));
    assert!(has(&|c| c.machine == Machine::Pc) && has(&|c| c.machine == Machine::Q35));
    assert!(has(&|c| c.firmware == Firmware::Bios && c.emulator == Emulator::Qemu));
    assert!(has(&|c| c.firmware == Firmware::Uefi));
    assert!(
        has(&|c| c.params.contains(&(EXPECT_APIC, "xapic"))) && has(&|c| c.params.contains(&(EXPECT_APIC, "x2apic")))
    );
    for n in [1, 7, 300] {
        assert!(has(&|c| expect_cpus(&c.smp) == Ok(n)), "a machine with {n} CPUs");
    }
    assert!(has(&|c| c.smp.contains("maxcpus")), "disabled MADT entries");
    assert_eq!(ci.iter().filter(|c| c.emulator == Emulator::Bochs).count(), 2, "Bochs with and without x2APIC");
    let usb: Vec<Firmware> = ci.iter().filter(|c| c.medium == Medium::UsbStick).map(|c| c.firmware).collect();
    assert_eq!(usb, [Firmware::Bios, Firmware::Uefi], "USB boot under SeaBIOS and OVMF");
}

// --- --configs ---------------------------------------------------------

#[test]
fn test_runs_default_then_the_ci_cells() {
    let sel = parse(&[]).unwrap().configs;
    assert!(sel.default);
    let ci: Vec<&str> = configs().iter().filter(|c| c.ci).map(|c| c.name.as_str()).collect();
    assert_eq!(names(&[]), [vec!["default"], ci.clone()].concat());
    assert_eq!(names(&["--configs", "ci"]), ci);
    assert!(!parse(&[]).unwrap().list_configs);
}

#[test]
fn all_and_matrix_name_every_cell_in_matrix_order() {
    let every: Vec<&str> = configs().iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names(&["--configs", "matrix"]), every);
    assert_eq!(names(&["--configs", "all"]), [vec!["default"], every.clone()].concat());
    assert_eq!(names(&["--configs", "bochs-smp4-xapic,all"]), names(&["--configs", "all"]));
}

#[test]
fn names_and_patterns_pick_cells_in_matrix_order_each_once() {
    assert_eq!(names(&["--configs", "default"]), ["default"]);
    assert_eq!(names(&["--configs", "usb-uefi,default,usb-bios,usb-uefi"]), ["default", "usb-bios", "usb-uefi"]);
    assert_eq!(names(&["--configs", "bochs-*"]), ["bochs-smp4-xapic", "bochs-smp4-x2apic"]);
    let smp7 = names(&["--configs", "*-smp7-*"]);
    assert_eq!(smp7.len(), 8, "{smp7:?}");
    assert!(smp7.iter().all(|n| n.contains("-smp7-")));
    assert_eq!(names(&["--configs", "q35-uefi-*-x2apic"]).len(), 5);
    let runs = guest_runs(&parse(&["--configs", "usb-bios"]).unwrap());
    assert_eq!(runs.len(), 1);
    assert!(runs[0].header, "a named configuration always has a header");
    let runs = guest_runs(&parse(&["--configs", "default"]).unwrap());
    assert_eq!(runs.len(), 1);
    assert!(!runs[0].header, "the default run alone looks as it always did");
    assert!(runs[0].plan.only.is_empty() && runs[0].plan.config_params.is_empty());
}

#[test]
fn globs_match_whole_names() {
    assert!(glob_matches("bochs-*", "bochs-smp4-xapic"));
    assert!(glob_matches("*", "anything"));
    assert!(glob_matches("*-smp7-*", "pc-bios-smp7-xapic"));
    assert!(glob_matches("pc-*-x2apic", "pc-uefi-smp1-x2apic"));
    assert!(glob_matches("a*b*c", "abc"));
    assert!(!glob_matches("pc-*-x2apic", "pc-uefi-smp1-xapic"));
    assert!(!glob_matches("bochs", "bochs-smp4-xapic"), "no pattern, exact name");
    assert!(!glob_matches("*-smp1", "pc-bios-smp1-xapic"));
    assert!(!glob_matches("a*bc*bc", "abc"), "the pieces may not overlap");
}

#[test]
fn unmatched_or_empty_configuration_names_are_errors() {
    for (value, needle) in [
        ("smp16", "no configuration matches `smp16`"),
        ("default,PC-*", "no configuration matches `PC-*`"),
        ("usb-bios,", "empty"),
        ("", "empty"),
    ] {
        let e = parse(&["--configs", value]).expect_err(value);
        assert_eq!(e.kind(), ErrorKind::ValueValidation, "{value}");
        let msg = e.to_string();
        assert!(msg.contains(needle), "{value}: {msg}");
    }
    let msg = parse_selection("bogus").unwrap_err();
    assert!(msg.contains("--list-configs") && msg.contains("`*` pattern"), "{msg}");
}

#[test]
fn list_configs_names_each_with_a_description_and_marks_ci() {
    assert!(parse(&["--list-configs"]).unwrap().list_configs);
    let text = configs::list_text();
    assert!(text.lines().next().unwrap().trim_start().starts_with("default "), "{text}");
    for c in configs() {
        let line = text
            .lines()
            .find(|l| l.trim_start_matches(['*', ' ']).split_whitespace().next() == Some(c.name.as_str()))
            .unwrap_or_else(|| panic!("{} not listed: {text}", c.name));
        assert!(line.contains(&c.description), "{line}");
        assert_eq!(line.starts_with('*'), c.ci, "{line}");
    }
    assert!(text.contains("cargo xtask test` runs `default,ci`"), "{text}");
}

#[test]
fn help_says_the_machine_options_shape_default_only() {
    let e = parse(&["--help"]).unwrap_err();
    let text = e.to_string();
    assert!(text.contains("--configs") && text.contains("--list-configs"));
    assert!(text.contains("shape the `default` configuration only"), "{text}");
    assert!(text.contains("cargo xtask matrix"), "{text}");
}

// --- smp.expect_cpus ---------------------------------------------------

#[test]
fn expect_cpus_is_the_leading_number_of_smp() {
    assert_eq!(expect_cpus("2,maxcpus=4"), Ok(2));
    assert_eq!(expect_cpus("300"), Ok(300));
    assert_eq!(split_smp("2,maxcpus=4"), Ok((2, Some("maxcpus=4"))));
    assert_eq!(split_smp("4"), Ok((4, None)));
    for bad in ["maxcpus=4", "", "0", "x2", "+2", ",maxcpus=4", "cpus=2"] {
        assert!(expect_cpus(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn maxcpus_tells_the_guest_the_cpus_present_not_the_maximum() {
    let runs = all_runs(&[]);
    let maxcpus = run(&runs, "pc-bios-maxcpus");
    assert_eq!(maxcpus.plan.smp, 2);
    assert!(maxcpus.plan.runner_params().contains(&(EXPECT_CPUS.into(), "2".into())));
    let p = plan(&guest_list(), &maxcpus.plan);
    for boot in &p.boots {
        assert_eq!(boot.params.get(EXPECT_CPUS), Some("2"));
    }
    let (ran, skipped) = planned(maxcpus);
    assert_eq!(skipped, ["bringup::a_failing_setup_step_leaves_only_that_cpu_offline"]);
    assert!(ran.contains(&"bringup::every_online_cpu_answers_an_ipi".to_owned()));
    assert!(p.skipped[0].1.contains("running with 2"), "{:?}", p.skipped);
    for r in &runs {
        for cfg in &r.machines {
            assert_eq!(cfg.smp, r.plan.smp, "{}", r.name);
        }
    }
}

// --- selection and FILTER ----------------------------------------------

#[test]
fn cells_run_their_part_of_the_tests() {
    let runs = all_runs(&[]);
    let (ran, skipped) = planned(run(&runs, "q35-uefi-smp8-xapic"));
    assert_eq!(ran.len(), 8, "bringup::, calls::, hotplug:: : {ran:?}");
    assert!(ran.iter().all(|n| ["bringup::", "calls::", "hotplug::"].iter().any(|p| n.starts_with(p))));
    assert!(skipped.is_empty());

    let (ran, skipped) = planned(run(&runs, "pc-bios-smp1-x2apic"));
    assert_eq!(ran.len(), 3, "{ran:?}");
    assert_eq!(skipped.len(), 5, "{skipped:?}");

    let (ran, _) = planned(run(&runs, "usb-uefi"));
    assert!(ran.iter().all(|n| n.starts_with("bringup::")), "{ran:?}");

    let x300 = run(&runs, "q35-bios-smp300-x2apic");
    let (ran, skipped) = planned(x300);
    assert_eq!(
        ran,
        [
            "bringup::every_present_cpu_is_online",
            "bringup::expected_cpu_count_is_online",
            "bringup::apic_mode_is_the_one_the_machine_offers",
            "calls::call_all_reaches_every_online_cpu",
        ]
    );
    assert!(skipped.is_empty());
    assert_eq!(plan(&guest_list(), &x300.plan).boots.len(), 1, "one shared boot of 300 CPUs");
    let mut longer = guest_list();
    longer.push(info("bringup::every_present_cpu_is_online_twice", 1));
    assert_eq!(plan(&longer, &x300.plan).test_count(), 4, "exact names");

    let (ran, _) = planned(run(&runs, "default"));
    assert_eq!(ran.len(), guest_list().len(), "default runs everything");
}

#[test]
fn the_user_filter_intersects_every_configuration() {
    let runs = all_runs(&["ipi"]);
    let (ran, _) = planned(run(&runs, "pc-bios-smp8-xapic"));
    assert_eq!(ran, ["bringup::every_online_cpu_answers_an_ipi"]);
    let (ran, _) = planned(run(&runs, "q35-bios-smp300-x2apic"));
    assert!(ran.is_empty(), "{ran:?}");
    let (ran, _) = planned(run(&runs, "default"));
    assert_eq!(ran, ["bringup::every_online_cpu_answers_an_ipi"]);

    let runs = all_runs(&["call_all"]);
    let (ran, _) = planned(run(&runs, "q35-bios-smp300-x2apic"));
    assert_eq!(ran, ["calls::call_all_reaches_every_online_cpu"]);
    let (ran, _) = planned(run(&runs, "usb-bios"));
    assert!(ran.is_empty(), "calls:: is not in usb-bios: {ran:?}");

    let runs = all_runs(&["boot::"]);
    for r in &runs {
        let (ran, _) = planned(r);
        if r.name == "default" {
            assert_eq!(ran, ["boot::heap_works"]);
        } else {
            assert!(ran.is_empty(), "{}: {ran:?}", r.name);
        }
    }
    let desc = run(&all_runs(&["ipi"]), "pc-bios-smp8-xapic").plan.describe_selection();
    assert!(desc.contains("bringup::") && desc.contains("\"ipi\""), "{desc}");
}

// --- QEMU command lines ------------------------------------------------

#[test]
fn grid_cells_name_their_apic_mode_on_the_cpu_model() {
    let runs = all_runs(&[]);
    let x = qemu_line(vm(&runs, "pc-bios-smp4-xapic"));
    assert!(x.starts_with("-machine pc -smp 4 -m 256M "), "{x}");
    assert!(x.contains("-cpu qemu64,x2apic=off"), "{x}");
    assert!(!x.contains("ovmf"), "{x}");
    let x2 = qemu_line(vm(&runs, "q35-uefi-smp7-x2apic"));
    assert!(x2.starts_with("-machine q35 -smp 7 -m 256M "), "{x2}");
    assert!(x2.contains("-cpu qemu64,x2apic=on") && x2.contains("-bios /usr/share/ovmf/OVMF.fd"), "{x2}");
    let x2 = vm(&runs, "q35-uefi-smp7-x2apic");
    let why = unmet_requirement(x2, Some((7, 2))).expect("7.2 has no TCG x2APIC");
    assert!(why.contains("QEMU >= 8.1") && why.contains("apt-get install -t bookworm-backports"), "{why}");
    assert_eq!(unmet_requirement(x2, Some((8, 1))), None);
    assert_eq!(unmet_requirement(vm(&runs, "pc-bios-smp4-xapic"), Some((7, 2))), None);
    assert_eq!(vm(&runs, "q35-uefi-smp7-x2apic").label(), "q35-uefi-smp7-x2apic");
}

#[test]
fn usb_cells_boot_from_a_stick_on_xhci() {
    let runs = all_runs(&[]);
    for fw in [Firmware::Bios, Firmware::Uefi] {
        let cfg = vm(&runs, &format!("usb-{}", fw.name()));
        assert_eq!((cfg.medium, cfg.firmware), (Medium::UsbStick, fw));
        let line = qemu_line(cfg);
        assert!(
            line.contains(
                "-device qemu-xhci,id=xhci -drive if=none,id=stick,format=raw,file=/t/disk.img \
                 -device usb-storage,bus=xhci.0,drive=stick"
            ),
            "{line}"
        );
        assert!(!line.contains("-drive format=raw"), "no disk besides the stick: {line}");
        let p = plan(&guest_list(), &run(&runs, &cfg.label()).plan);
        let cmd = reproduce_command(cfg, &p.boots[0], None);
        assert!(cmd.contains(" --usb") && cmd.contains(&format!("--firmware {}", fw.name())), "{cmd}");
    }
}

#[test]
fn the_300_cpu_machine() {
    let runs = all_runs(&[]);
    let cfg = vm(&runs, "q35-bios-smp300-x2apic");
    let line = qemu_line(cfg);
    for needle in [
        "-machine q35,kernel-irqchip=split ",
        "-smp 300 ",
        "-m 512M ",
        "-device intel-iommu,intremap=on,eim=on",
        "-cpu qemu64,x2apic=on",
    ] {
        assert!(line.contains(needle), "{needle} missing: {line}");
    }
    assert!(unmet_requirement(cfg, Some((8, 0))).is_some());
    assert_eq!(unmet_requirement(cfg, Some((10, 0))), None);
    let r = run(&runs, "q35-bios-smp300-x2apic");
    let p = plan(&guest_list(), &r.plan);
    assert_eq!(p.boots[0].params.get("smp.fast_start"), Some("1"));
    assert_eq!(p.boots[0].params.get(EXPECT_APIC), Some("x2apic"));
    assert!(cfg.boot_allowance() >= Duration::from_secs(120), "300 CPUs under TCG take ~25 s to come up");
    assert_eq!(p.boots[0].timeout(cfg), cfg.boot_allowance() + p.boots[0].tests_time());
    let cmd = reproduce_command(cfg, &p.boots[0], None);
    for needle in [
        "cargo xtask qemu --test-kernel",
        "--smp 300",
        "--machine q35",
        "--memory 512M",
        "-p smp.fast_start=1",
        "-p smp.expect_cpus=300",
        "-machine q35,kernel-irqchip=split",
        "-device intel-iommu,intremap=on,eim=on",
        "--cpu qemu64,x2apic=on",
    ] {
        assert!(cmd.contains(needle), "{needle} missing: {cmd}");
    }
}

#[test]
fn maxcpus_reproduction_keeps_maxcpus() {
    let runs = all_runs(&[]);
    let r = run(&runs, "pc-bios-maxcpus");
    let p = plan(&guest_list(), &r.plan);
    let cmd = reproduce_command(&r.machines[0], &p.boots[0], None);
    assert!(cmd.contains("--smp 2 "), "{cmd}");
    assert!(cmd.contains(" -- -smp 2,maxcpus=4"), "{cmd}");
    assert!(qemu_line(&r.machines[0]).contains("-machine pc -smp 2,maxcpus=4 "));
}

#[test]
fn bochs_cells_are_bios_machines_with_four_cpus_reproduced_by_xtask_bochs() {
    let runs = all_runs(&[]);
    for (name, x2apic) in [("bochs-smp4-xapic", false), ("bochs-smp4-x2apic", true)] {
        let cfg = vm(&runs, name);
        assert_eq!((cfg.emulator, cfg.firmware, cfg.smp), (Emulator::Bochs, Firmware::Bios, 4));
        assert_eq!(cfg.cpu.as_deref() == Some(crate::bochs::X2APIC_MODEL), x2apic, "{name}");
        assert!(cfg.boot_allowance() > vm(&runs, "pc-bios-smp4-xapic").boot_allowance(), "Bochs is slower");
        let p = plan(&guest_list(), &run(&runs, name).plan);
        let cmd = reproduce_command(cfg, &p.boots[0], None);
        assert!(cmd.starts_with("cargo xtask bochs --test-kernel --cpus 4"), "{cmd}");
        assert_eq!(cmd.contains(" --x2apic"), x2apic, "{cmd}");
        assert!(cmd.contains(&format!("-p {EXPECT_APIC}=")), "{cmd}");
    }
}

#[test]
fn the_machine_options_shape_default_only() {
    let runs = all_runs(&[
        "--smp",
        "3",
        "--machine",
        "q35",
        "--cpu",
        "max",
        "--firmware",
        "uefi",
        "--memory",
        "1G",
        "-p",
        "log=debug",
        "--",
        "-d",
        "int",
    ]);
    let default = run(&runs, "default");
    assert_eq!(default.machines.len(), 1);
    assert_eq!(default.machines[0].label(), "uefi/smp3");
    assert_eq!(default.plan.smp, 3);
    let line = qemu_line(&default.machines[0]);
    assert!(line.starts_with("-machine q35 -smp 3 -m 1G ") && line.contains("-cpu max -d int"), "{line}");

    let cell = vm(&runs, "pc-bios-smp8-xapic");
    assert_eq!(cell.firmware, Firmware::Bios, "--firmware is the default's");
    let line = qemu_line(cell);
    assert!(line.starts_with("-machine pc -smp 8 -m 1G "), "{line}");
    assert!(line.contains("-cpu qemu64,x2apic=off"), "{line}");
    assert!(line.ends_with("-d int"), "the user's QEMU args: {line}");
    let x300 = qemu_line(vm(&runs, "q35-bios-smp300-x2apic"));
    assert!(x300.contains("-m 512M "), "its own memory: {x300}");
    for r in &runs {
        assert_eq!(r.plan.user_params, [("log".to_owned(), "debug".to_owned())], "{}", r.name);
    }
}

#[test]
fn default_run_is_unchanged() {
    let runs = all_runs(&[]);
    assert_eq!(runs[0].name, "default");
    let default = &runs[0];
    assert_eq!(default.machines.iter().map(|c| c.label()).collect::<Vec<_>>(), ["bios/smp4", "uefi/smp4"]);
    assert_eq!(
        qemu_line(&default.machines[0]),
        "-machine pc -smp 4 -m 256M -display none -no-reboot -serial stdio \
         -device isa-debug-exit,iobase=0xf4,iosize=0x04 -drive format=raw,file=/t/disk.img"
    );
    assert_eq!(default.plan.runner_params(), [(EXPECT_CPUS.to_owned(), "4".to_owned())]);
    assert_eq!(default.machines[0].boot_allowance(), Duration::from_secs(15));
    assert_eq!(default.machines[1].boot_allowance(), Duration::from_secs(40));
}

// --- the closing table -------------------------------------------------

#[test]
fn the_table_has_a_row_per_machine_and_says_why_one_was_skipped() {
    let row = |label: &str, passed, failed, skipped, secs: Option<u64>, why: Option<&str>| MachineResult {
        config: label.into(),
        label: label.into(),
        tally: Tally { passed, failed, skipped },
        elapsed: secs.map(Duration::from_secs),
        skipped: why.map(str::to_owned),
    };
    let text = machine_table(&[
        row("pc-bios-smp1-xapic", 3, 0, 5, Some(12), None),
        row("q35-uefi-smp7-x2apic", 7, 1, 0, Some(95), None),
        row("bochs-smp4-xapic", 0, 0, 1, None, Some("Bochs is not installed; to enable: apt-get install bochs")),
    ]);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("configuration") && lines[0].contains("verdict"), "{text}");
    assert!(lines[1].starts_with("pc-bios-smp1-xapic") && lines[1].contains("pass") && lines[1].contains("12.0 s"));
    assert!(lines[2].contains("FAIL") && lines[2].contains("95.0 s"), "{text}");
    assert!(lines[3].contains("SKIP") && lines[3].trim_end().ends_with('-'), "{text}");
    assert!(lines[4].contains("bochs-smp4-xapic: skipped: Bochs is not installed; to enable: apt-get install bochs"));
}

#[test]
fn failures_are_kept_with_their_reproduce_line_and_repeated_after_the_table() {
    use crate::judge::Outcome;
    use crate::report::{Findings, recap};
    let mut found = Findings::default();
    found.record("guest bios/smp4 calls::a ... ok".into(), &Outcome::Passed);
    found.record("guest bios/smp4 calls::b ... FAILED: late".into(), &Outcome::Failed("late".into()));
    found.record("guest bios/smp4 calls::c ... skipped: 1 CPU".into(), &Outcome::Skipped("1 CPU".into()));
    found.failures.push("    reproduce: cargo xtask qemu".into());
    assert_eq!(found.tally, Tally { passed: 1, failed: 1, skipped: 1 });
    assert_eq!(
        recap(&found.failures),
        "failures, again:\n  guest bios/smp4 calls::b ... FAILED: late\n      reproduce: cargo xtask qemu\n"
    );
    assert_eq!(recap(&[]), "");
}
