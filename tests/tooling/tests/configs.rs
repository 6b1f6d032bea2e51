//! The named test configurations: `--configs` parsing, what each one puts
//! on QEMU's command line and in its boots, and how its test selection
//! meets the user's FILTER.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bootimage::Firmware;
use clap::Parser;
use clap::error::ErrorKind;
use xtask::cli::{Cli, Command, TestArgs};
use xtask::configs::{self, CONFIGS, expect_cpus, guest_runs, parse_selection, split_smp};
use xtask::guest::{GuestRun, reproduce_command};
use xtask::plan::{EXPECT_CPUS, plan};
use xtask::prereq::Ovmf;
use xtask::protocol::TestInfo;
use xtask::qemu::{QemuConfig, command_args, unmet_requirement};

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
    guest_runs(&parse(args).unwrap())
}

fn qemu_line(cfg: &QemuConfig) -> String {
    let ovmf = Ovmf::Combined(PathBuf::from("/usr/share/ovmf/OVMF.fd"));
    command_args(cfg, Path::new("/t/disk.img"), Some(&ovmf), Path::new("/t/vars.fd")).join(" ")
}

/// The QEMU line of configuration `name` under `firmware`, with the
/// default options.
fn line_of(name: &str, firmware: Firmware) -> String {
    let runs = all_runs(&[]);
    let cfg = run(&runs, name)
        .qemu
        .iter()
        .find(|c| c.firmware == firmware)
        .unwrap_or_else(|| panic!("{name} has no {firmware:?}"));
    qemu_line(cfg)
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
        info("bringup::every_online_cpu_answers_an_ipi", 2),
        info("bringup::a_failing_setup_step_leaves_only_that_cpu_offline", 4),
        info("calls::call_all_reaches_every_online_cpu", 2),
        info("calls::call_single_runs_there", 2),
        info("hotplug::bringup::looks_like_a_module", 2),
        info("stress::cross_call_stress", 2),
    ]
}

fn planned(run: &GuestRun) -> (Vec<String>, Vec<String>) {
    let p = plan(&guest_list(), &run.plan);
    let ran = p.boots.iter().flat_map(|b| &b.tests).map(|t| t.name.clone()).collect();
    let skipped = p.skipped.iter().map(|(t, _)| t.name.clone()).collect();
    (ran, skipped)
}

// --- --configs ---------------------------------------------------------

#[test]
fn configs_default_to_all_in_table_order_with_default_first() {
    let all = names(&[]);
    assert_eq!(all, ["default", "smp1", "smp2", "smp8", "maxcpus", "x2apic", "x2apic-300"]);
    assert_eq!(names(&["--configs", "all"]), all);
    assert_eq!(names(&["--configs", "smp8,all"]), all);
    assert!(!parse(&[]).unwrap().list_configs);
}

#[test]
fn configs_default_is_the_standard_run_alone() {
    let sel = parse(&["--configs", "default"]).unwrap().configs;
    assert!(sel.default);
    assert!(sel.configs.is_empty());
    let runs = guest_runs(&parse(&["--configs", "default"]).unwrap());
    assert_eq!(runs.len(), 1);
    assert!(!runs[0].header, "the default run alone looks as it always did");
    assert!(runs[0].plan.only.is_empty() && runs[0].plan.config_params.is_empty());
}

#[test]
fn configs_list_runs_in_table_order_each_once() {
    assert_eq!(names(&["--configs", "default,smp8,x2apic"]), ["default", "smp8", "x2apic"]);
    assert_eq!(names(&["--configs", "x2apic,smp8,x2apic,default"]), ["default", "smp8", "x2apic"]);
    assert_eq!(names(&["--configs", "smp8,maxcpus,x2apic,x2apic-300"]), ["smp8", "maxcpus", "x2apic", "x2apic-300"]);
    let runs = guest_runs(&parse(&["--configs", "smp1"]).unwrap());
    assert_eq!(runs.len(), 1);
    assert!(runs[0].header, "a named configuration always has a header");
    assert!(guest_runs(&parse(&["--configs", "default,smp1"]).unwrap()).iter().all(|r| r.header));
}

#[test]
fn unknown_or_empty_configuration_names_are_errors() {
    for (value, needle) in [
        ("smp16", "unknown configuration `smp16`"),
        ("default,x2APIC", "unknown configuration `x2APIC`"),
        ("smp8,", "empty"),
        ("", "empty"),
    ] {
        let e = parse(&["--configs", value]).expect_err(value);
        assert_eq!(e.kind(), ErrorKind::ValueValidation, "{value}");
        let msg = e.to_string();
        assert!(msg.contains(needle), "{value}: {msg}");
    }
    let msg = parse_selection("bogus").unwrap_err();
    for c in CONFIGS {
        assert!(msg.contains(c.name), "lists the known names: {msg}");
    }
    assert!(msg.contains("--list-configs"), "{msg}");
}

#[test]
fn list_configs_names_each_with_a_description() {
    assert!(parse(&["--list-configs"]).unwrap().list_configs);
    let text = configs::list_text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), CONFIGS.len() + 2, "{text}");
    assert!(lines[0].starts_with("default "), "{text}");
    assert!(lines.last().unwrap().starts_with("all "), "{text}");
    for c in CONFIGS {
        let line = lines
            .iter()
            .find(|l| l.split_whitespace().next() == Some(c.name))
            .unwrap_or_else(|| panic!("{} not listed: {text}", c.name));
        assert!(line.contains(c.description), "{line}");
        assert!(!c.description.is_empty());
    }
}

#[test]
fn help_says_the_machine_options_shape_default_only() {
    let e = parse(&["--help"]).unwrap_err();
    let text = e.to_string();
    assert!(text.contains("--configs") && text.contains("--list-configs"));
    assert!(text.contains("shape the `default` configuration only"), "{text}");
}

// --- smp.expect_cpus ---------------------------------------------------

#[test]
fn expect_cpus_is_the_leading_number_of_smp() {
    assert_eq!(expect_cpus("2,maxcpus=4"), Ok(2));
    assert_eq!(expect_cpus("300"), Ok(300));
    assert_eq!(expect_cpus("8"), Ok(8));
    assert_eq!(split_smp("2,maxcpus=4"), Ok((2, Some("maxcpus=4"))));
    assert_eq!(split_smp("4"), Ok((4, None)));
    for bad in ["maxcpus=4", "", "0", "x2", "+2", ",maxcpus=4", "cpus=2"] {
        assert!(expect_cpus(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn maxcpus_tells_the_guest_the_cpus_present_not_the_maximum() {
    let runs = all_runs(&[]);
    let maxcpus = run(&runs, "maxcpus");
    assert_eq!(maxcpus.plan.smp, 2);
    assert!(maxcpus.plan.runner_params().contains(&(EXPECT_CPUS.into(), "2".into())));
    let p = plan(&guest_list(), &maxcpus.plan);
    for boot in &p.boots {
        assert_eq!(boot.params.get(EXPECT_CPUS), Some("2"));
    }
    // Tests needing more than the 2 present CPUs are skipped, as usual.
    let (ran, skipped) = planned(maxcpus);
    assert_eq!(skipped, ["bringup::a_failing_setup_step_leaves_only_that_cpu_offline"]);
    assert!(ran.contains(&"bringup::every_online_cpu_answers_an_ipi".to_owned()));
    assert!(p.skipped[0].1.contains("running with 2"), "{:?}", p.skipped);

    let x300 = run(&runs, "x2apic-300");
    assert_eq!(x300.plan.smp, 300);
    assert_eq!(plan(&guest_list(), &x300.plan).boots[0].params.get(EXPECT_CPUS), Some("300"));
    for r in &runs {
        for cfg in &r.qemu {
            assert_eq!(cfg.smp, r.plan.smp, "{}", r.name);
        }
    }
}

// --- selection and FILTER ----------------------------------------------

#[test]
fn configurations_run_their_part_of_the_tests() {
    let runs = all_runs(&[]);
    let (ran, skipped) = planned(run(&runs, "smp8"));
    assert_eq!(
        ran,
        [
            "bringup::every_present_cpu_is_online",
            "bringup::expected_cpu_count_is_online",
            "bringup::every_online_cpu_answers_an_ipi",
            "bringup::a_failing_setup_step_leaves_only_that_cpu_offline",
        ],
        "bringup:: is a module prefix, not a substring"
    );
    assert!(skipped.is_empty());

    let (ran, skipped) = planned(run(&runs, "smp1"));
    assert_eq!(ran, ["bringup::every_present_cpu_is_online", "bringup::expected_cpu_count_is_online"]);
    assert_eq!(skipped.len(), 2, "{skipped:?}");

    let (ran, _) = planned(run(&runs, "x2apic"));
    assert_eq!(ran.len(), 6, "bringup:: and calls:: : {ran:?}");
    assert!(ran.iter().all(|n| n.starts_with("bringup::") || n.starts_with("calls::")));

    let x300 = run(&runs, "x2apic-300");
    let (ran, skipped) = planned(x300);
    assert_eq!(
        ran,
        [
            "bringup::every_present_cpu_is_online",
            "bringup::expected_cpu_count_is_online",
            "calls::call_all_reaches_every_online_cpu",
        ]
    );
    assert!(skipped.is_empty());
    assert_eq!(plan(&guest_list(), &x300.plan).boots.len(), 1, "one shared boot of 300 CPUs");
    // Exact names: a longer name with the same start is not one of them.
    let mut longer = guest_list();
    longer.push(info("bringup::every_present_cpu_is_online_twice", 1));
    assert_eq!(plan(&longer, &x300.plan).test_count(), 3);

    let (ran, _) = planned(run(&runs, "default"));
    assert_eq!(ran.len(), guest_list().len(), "default runs everything");
}

#[test]
fn the_user_filter_intersects_every_configuration() {
    let runs = all_runs(&["ipi"]);
    let (ran, _) = planned(run(&runs, "smp8"));
    assert_eq!(ran, ["bringup::every_online_cpu_answers_an_ipi"]);
    let (ran, _) = planned(run(&runs, "x2apic-300"));
    assert!(ran.is_empty(), "{ran:?}");
    let (ran, _) = planned(run(&runs, "default"));
    assert_eq!(ran, ["bringup::every_online_cpu_answers_an_ipi"]);

    let runs = all_runs(&["call_all"]);
    let (ran, _) = planned(run(&runs, "x2apic-300"));
    assert_eq!(ran, ["calls::call_all_reaches_every_online_cpu"]);
    let (ran, _) = planned(run(&runs, "x2apic"));
    assert_eq!(ran, ["calls::call_all_reaches_every_online_cpu"]);
    let (ran, _) = planned(run(&runs, "smp2"));
    assert!(ran.is_empty(), "calls:: is not in smp2: {ran:?}");

    let runs = all_runs(&["boot::"]);
    for r in &runs {
        let (ran, _) = planned(r);
        if r.name == "default" {
            assert_eq!(ran, ["boot::heap_works"]);
        } else {
            assert!(ran.is_empty(), "{}: {ran:?}", r.name);
        }
    }
    let smp8 = run(&all_runs(&["ipi"]), "smp8").plan.describe_selection();
    assert!(smp8.contains("bringup::") && smp8.contains("\"ipi\""), "{smp8}");
}

// --- QEMU command lines ------------------------------------------------

#[test]
fn plain_smp_configurations_boot_pc_under_both_firmwares() {
    let runs = all_runs(&[]);
    for (name, n) in [("smp1", 1), ("smp2", 2), ("smp8", 8)] {
        let r = run(&runs, name);
        assert_eq!(r.qemu.iter().map(|c| c.firmware).collect::<Vec<_>>(), [Firmware::Bios, Firmware::Uefi], "{name}");
        for cfg in &r.qemu {
            let line = qemu_line(cfg);
            assert!(line.starts_with(&format!("-machine pc -smp {n} -m 256M ")), "{line}");
            assert!(!line.contains("-cpu"), "{line}");
            assert_eq!(unmet_requirement(cfg, Some((7, 2))), None);
        }
        assert!(line_of(name, Firmware::Uefi).contains("-bios /usr/share/ovmf/OVMF.fd"));
        assert_eq!(r.qemu[0].label(), format!("bios/{name}"));
        assert_eq!(r.qemu[1].label(), format!("uefi/{name}"));
    }
}

#[test]
fn maxcpus_has_disabled_slots_under_bios() {
    let runs = all_runs(&[]);
    let r = run(&runs, "maxcpus");
    assert_eq!(r.qemu.len(), 1);
    assert_eq!(r.qemu[0].firmware, Firmware::Bios);
    let line = qemu_line(&r.qemu[0]);
    assert!(line.contains("-machine pc -smp 2,maxcpus=4 "), "{line}");
    assert_eq!(r.qemu[0].label(), "bios/maxcpus");
}

#[test]
fn x2apic_needs_qemu_8_1() {
    let runs = all_runs(&[]);
    let r = run(&runs, "x2apic");
    assert_eq!(r.qemu.len(), 1);
    let cfg = &r.qemu[0];
    assert_eq!(cfg.firmware, Firmware::Bios);
    let line = qemu_line(cfg);
    assert!(line.contains("-smp 4 "), "{line}");
    assert!(line.contains("-cpu qemu64,x2apic=on"), "{line}");
    let why = unmet_requirement(cfg, Some((7, 2))).expect("7.2 has no TCG x2APIC");
    assert!(why.contains("QEMU >= 8.1"), "{why}");
    assert!(why.contains("apt-get install -t bookworm-backports"), "{why}");
    assert_eq!(unmet_requirement(cfg, Some((8, 1))), None);
    assert_eq!(unmet_requirement(cfg, Some((10, 0))), None);
}

#[test]
fn x2apic_300_is_the_big_machine() {
    let runs = all_runs(&[]);
    let r = run(&runs, "x2apic-300");
    assert_eq!(r.qemu.len(), 1);
    let cfg = &r.qemu[0];
    assert_eq!(cfg.firmware, Firmware::Bios);
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

    let p = plan(&guest_list(), &r.plan);
    assert_eq!(p.boots[0].params.get("smp.fast_start"), Some("1"));
    assert!(cfg.boot_allowance() >= Duration::from_secs(120), "300 CPUs under TCG take ~25 s to come up");
    assert!(cfg.boot_allowance() + p.boots[0].tests_time() > p.boots[0].timeout(Firmware::Bios));

    // A hand reproduction boots the same machine.
    let cmd = reproduce_command(cfg, &p.boots[0], None);
    for needle in [
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
    let r = run(&runs, "maxcpus");
    let p = plan(&guest_list(), &r.plan);
    let cmd = reproduce_command(&r.qemu[0], &p.boots[0], None);
    assert!(cmd.contains("--smp 2 "), "{cmd}");
    assert!(cmd.contains(" -- -smp 2,maxcpus=4"), "{cmd}");
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
    assert_eq!(default.qemu.len(), 1);
    assert_eq!(default.qemu[0].label(), "uefi/smp3");
    assert_eq!(default.plan.smp, 3);
    let line = qemu_line(&default.qemu[0]);
    assert!(line.starts_with("-machine q35 -smp 3 -m 1G ") && line.contains("-cpu max -d int"), "{line}");

    let smp8 = run(&runs, "smp8");
    assert_eq!(smp8.qemu.len(), 2, "--firmware is the default's");
    assert_eq!(smp8.plan.smp, 8);
    for cfg in &smp8.qemu {
        let line = qemu_line(cfg);
        assert!(line.starts_with("-machine pc -smp 8 -m 1G "), "{line}");
        assert!(!line.contains("-cpu"), "{line}");
        assert!(line.ends_with("-d int"), "the user's QEMU args: {line}");
    }
    let x300 = qemu_line(&run(&runs, "x2apic-300").qemu[0]);
    assert!(x300.contains("-m 512M "), "its own memory: {x300}");
    assert!(x300.ends_with("-d int"), "{x300}");
    for r in &runs {
        assert_eq!(r.plan.user_params, [("log".to_owned(), "debug".to_owned())], "{}", r.name);
    }
}

#[test]
fn default_run_is_unchanged() {
    let runs = all_runs(&[]);
    assert_eq!(runs[0].name, "default");
    let default = &runs[0];
    assert_eq!(default.qemu.iter().map(|c| c.label()).collect::<Vec<_>>(), ["bios/smp4", "uefi/smp4"]);
    assert_eq!(
        qemu_line(&default.qemu[0]),
        "-machine pc -smp 4 -m 256M -display none -no-reboot -serial stdio \
         -device isa-debug-exit,iobase=0xf4,iosize=0x04 -drive format=raw,file=/t/disk.img"
    );
    assert_eq!(default.plan.runner_params(), [(EXPECT_CPUS.to_owned(), "4".to_owned())]);
    assert_eq!(default.qemu[0].boot_allowance(), Duration::from_secs(15));
    assert_eq!(default.qemu[1].boot_allowance(), Duration::from_secs(40));
}
