//! The cells of the machine matrix: the grid and the machines that break
//! kernels in their own way, and which of them CI runs.

use std::sync::LazyLock;
use std::time::Duration;

use bootimage::Firmware;

use super::{EXPECT_APIC, EXPECT_SEND_ERRORS};
use crate::bochs;
use crate::cli::Machine;
use crate::plan::NamePattern;
use crate::vm::{Emulator, Medium};

/// One named configuration: a cell of the matrix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub name: String,
    /// One line, for `--list-configs`.
    pub description: String,
    pub emulator: Emulator,
    pub firmware: Firmware,
    pub medium: Medium,
    pub machine: Machine,
    /// More `-machine` options.
    pub machine_opts: Option<&'static str>,
    /// QEMU's `-smp` value; its leading number is the CPUs present, which
    /// the guest is told as `smp.expect_cpus` (see [`expect_cpus`]).
    pub smp: String,
    /// The CPU model, as the emulator names it.
    pub cpu: Option<&'static str>,
    /// More QEMU arguments (the user's, after `--`, follow them).
    pub qemu_args: &'static [&'static str],
    /// QEMU's `-m`; `None`: the user's `--memory`.
    pub memory: Option<&'static str>,
    /// Boot parameters, given like the runner's own (a test's or the
    /// user's `-p` wins over them).
    pub params: Vec<(&'static str, &'static str)>,
    /// The tests it runs: those matching any of these.
    pub tests: &'static [NamePattern],
    /// Time from power-on to the first test, when the usual allowance is
    /// not enough.
    pub boot_allowance: Option<Duration>,
    /// Part of the subset CI runs (`--configs ci`).
    pub ci: bool,
}

/// What a cell of the plain grid runs: the SMP machinery, which is what
/// differs between machines. `default` runs everything else too.
const SMP_TESTS: &[NamePattern] = &[
    NamePattern::Prefix("bringup::"),
    NamePattern::Prefix("calls::"),
    NamePattern::Prefix("hotplug::"),
    NamePattern::Prefix("unhappy::"),
    NamePattern::Prefix("fanout::"),
];
const BRINGUP: &[NamePattern] = &[NamePattern::Prefix("bringup::")];

/// The grid's dimensions.
const MACHINES: [Machine; 2] = [Machine::Pc, Machine::Q35];
const FIRMWARES: [Firmware; 2] = [Firmware::Bios, Firmware::Uefi];
const CPU_COUNTS: [u32; 5] = [1, 2, 4, 7, 8];

/// The CPU's local APIC as the CPU model offers it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApicMode {
    XApic,
    X2Apic,
}

impl ApicMode {
    pub fn name(self) -> &'static str {
        match self {
            ApicMode::XApic => "xapic",
            ApicMode::X2Apic => "x2apic",
        }
    }

    fn qemu_cpu(self) -> &'static str {
        match self {
            ApicMode::XApic => "qemu64,x2apic=off",
            ApicMode::X2Apic => "qemu64,x2apic=on",
        }
    }
}

/// The cells marked for CI: one of each kind of machine, chosen so that
/// every dimension's values appear (pc and q35, both firmwares, odd and
/// even and single CPU counts, both APIC modes), within CI's time.
const CI_CELLS: &[&str] = &[
    "pc-bios-smp1-xapic",
    "pc-uefi-smp2-xapic",
    "q35-bios-smp8-x2apic",
    "q35-uefi-smp7-x2apic",
    "pc-bios-maxcpus",
    "q35-bios-smp300-x2apic",
    "bochs-smp4-xapic",
    "bochs-smp4-x2apic",
    "usb-bios",
    "usb-uefi",
];

/// A cell with the grid's defaults: QEMU, booting from disk, the SMP suites.
fn cell(name: String, description: String, machine: Machine, firmware: Firmware, smp: String) -> Config {
    Config {
        ci: CI_CELLS.contains(&name.as_str()),
        name,
        description,
        emulator: Emulator::Qemu,
        firmware,
        medium: Medium::Disk,
        machine,
        machine_opts: None,
        smp,
        cpu: None,
        qemu_args: &[],
        memory: None,
        params: Vec::new(),
        tests: SMP_TESTS,
        boot_allowance: None,
    }
}

fn grid() -> Vec<Config> {
    let mut out = Vec::new();
    for machine in MACHINES {
        for firmware in FIRMWARES {
            for cpus in CPU_COUNTS {
                for apic in [ApicMode::XApic, ApicMode::X2Apic] {
                    let (m, fw, a) = (machine.name(), firmware.name(), apic.name());
                    let name = format!("{m}-{fw}-smp{cpus}-{a}");
                    let description = format!("{} on QEMU {m}, {fw}, {cpus} CPU(s), {a} CPU model", words(SMP_TESTS));
                    out.push(Config {
                        cpu: Some(apic.qemu_cpu()),
                        params: vec![(EXPECT_APIC, a)],
                        ..cell(name, description, machine, firmware, cpus.to_string())
                    });
                }
            }
        }
    }
    out
}

/// A selection in words, for descriptions: `bringup::, calls::, hotplug::`.
fn words(tests: &[NamePattern]) -> String {
    tests.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

fn special() -> Vec<Config> {
    let bochs = |apic: ApicMode| {
        let name = format!("bochs-smp4-{}", apic.name());
        let model = match apic {
            ApicMode::XApic => "Bochs's default CPU (no x2APIC)",
            ApicMode::X2Apic => bochs::X2APIC_MODEL,
        };
        Config {
            emulator: Emulator::Bochs,
            cpu: (apic == ApicMode::X2Apic).then_some(bochs::X2APIC_MODEL),
            // Bochs, unlike QEMU, reports an IPI that no APIC accepted.
            params: vec![(EXPECT_APIC, apic.name()), (EXPECT_SEND_ERRORS, "1")],
            ..cell(
                name,
                format!("{} under Bochs 2.7, BIOS, 4 CPUs, {model}", words(SMP_TESTS)),
                Machine::Pc,
                Firmware::Bios,
                "4".into(),
            )
        }
    };
    let usb = |firmware: Firmware| Config {
        medium: Medium::UsbStick,
        tests: BRINGUP,
        ..cell(
            format!("usb-{}", firmware.name()),
            format!("bringup:: booted from a USB stick (usb-storage on xHCI), {}, 2 CPUs", firmware.name()),
            Machine::Pc,
            firmware,
            "2".into(),
        )
    };
    vec![
        Config {
            tests: BRINGUP,
            ..cell(
                "pc-bios-maxcpus".into(),
                "bringup:: with -smp 2,maxcpus=4: 2 CPUs present, 2 disabled MADT entries".into(),
                Machine::Pc,
                Firmware::Bios,
                "2,maxcpus=4".into(),
            )
        },
        Config {
            machine_opts: Some("kernel-irqchip=split"),
            cpu: Some(ApicMode::X2Apic.qemu_cpu()),
            qemu_args: &["-device", "intel-iommu,intremap=on,eim=on"],
            memory: Some("512M"),
            params: vec![("smp.fast_start", "1"), (EXPECT_APIC, "x2apic")],
            tests: &[
                NamePattern::Exact("bringup::every_present_cpu_is_online"),
                NamePattern::Exact("bringup::expected_cpu_count_is_online"),
                NamePattern::Exact("bringup::apic_mode_is_the_one_the_machine_offers"),
                NamePattern::Exact("calls::call_all_reaches_every_online_cpu"),
                NamePattern::Exact("fanout::a_call_to_every_other_cpu_is_one_broadcast"),
                NamePattern::Exact("fanout::with_a_cpu_offline_a_call_to_all_is_a_multicast"),
            ],
            // 300 CPUs under TCG take ~25 s to come up on two cores.
            boot_allowance: Some(Duration::from_secs(120)),
            ..cell(
                "q35-bios-smp300-x2apic".into(),
                "every CPU online and reached by call_all with 300 CPUs, x2APIC ids above 255 \
                 (q35, IOMMU interrupt remapping, BIOS)"
                    .into(),
                Machine::Q35,
                Firmware::Bios,
                "300".into(),
            )
        },
        Config {
            // SMM off: with it, SeaBIOS relocates every CPU's SMBASE and
            // QEMU's heap grew past 16 GB in 85 s at 1024 CPUs without the
            // kernel printing a line; without it QEMU stays near 600 MB
            // (docs/platform.md).
            machine_opts: Some("smm=off,kernel-irqchip=split"),
            cpu: Some(ApicMode::X2Apic.qemu_cpu()),
            qemu_args: &["-device", "intel-iommu,intremap=on,eim=on"],
            memory: Some("2G"),
            params: vec![("smp.fast_start", "1"), (EXPECT_APIC, "x2apic")],
            // QEMU alone takes ~30 s to create 1024 vCPU threads on two
            // cores; bring-up takes ~5 s more.
            boot_allowance: Some(Duration::from_secs(300)),
            ..cell(
                "q35-bios-smp1024-x2apic".into(),
                "the SMP suites with 1024 CPUs, x2APIC cluster multicast over 64 clusters \
                 (q35, IOMMU interrupt remapping, SMM off, BIOS)"
                    .into(),
                Machine::Q35,
                Firmware::Bios,
                "1024".into(),
            )
        },
        bochs(ApicMode::XApic),
        bochs(ApicMode::X2Apic),
        usb(Firmware::Bios),
        usb(Firmware::Uefi),
    ]
}

static CONFIGS: LazyLock<Vec<Config>> = LazyLock::new(|| [grid(), special()].concat());

/// Every cell, in run order.
pub fn configs() -> &'static [Config] {
    &CONFIGS
}

/// The configuration called `name`.
#[cfg(test)]
pub fn find(name: &str) -> Option<&'static Config> {
    configs().iter().find(|c| c.name == name)
}
