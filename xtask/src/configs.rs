//! The machine matrix: every machine the kernel must work on, each a named
//! configuration running a part of the guest tests.
//!
//! The matrix is QEMU's `pc` and `q35` × SeaBIOS and OVMF × 1, 2, 4, 7 and
//! 8 CPUs × an xAPIC-only and an x2APIC CPU, plus the machines that break
//! kernels in their own way: disabled MADT entries (`maxcpus` > `smp`), 300
//! CPUs with x2APIC ids above 255, Bochs's independent APIC model with and
//! without x2APIC, and booting from a USB stick. [`CI`] marks the cells
//! `cargo xtask test` runs by default; `cargo xtask matrix` runs them all.
//!
//! The user's FILTER, `-p`, `--examples`, QEMU arguments after `--` and
//! (where the cell names none) `--memory` apply to every configuration;
//! `--smp`, `--machine`, `--cpu` and `--firmware` shape `default` only.
//! Features a cell needs that the host may lack (x2APIC under TCG, more
//! than 255 CPUs, Bochs) make it *skipped*, with the reason and the command
//! that enables it; never silently passed.

use std::sync::LazyLock;
use std::time::Duration;

use bootimage::Firmware;

use crate::bochs;
use crate::cli::{Machine, TestArgs};
use crate::guest::GuestRun;
use crate::plan::{NamePattern, PlanOptions};
use crate::vm::{Emulator, Medium, VmConfig};

/// The standard run: every test, on the command line's machine.
pub const DEFAULT: &str = "default";
/// The cells marked [`Config::ci`].
pub const CI: &str = "ci";
/// Every cell of the matrix.
pub const MATRIX: &str = "matrix";
/// `default` and every cell.
pub const ALL: &str = "all";
/// What `cargo xtask test` runs without `--configs`.
pub const TEST_DEFAULT: &str = "default,ci";

/// Boot parameter telling the guest which APIC mode the CPU model offers,
/// checked by `bringup::apic_mode_is_the_one_the_machine_offers`.
pub const EXPECT_APIC: &str = "smp.expect_apic";

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
const SMP_TESTS: &[NamePattern] =
    &[NamePattern::Prefix("bringup::"), NamePattern::Prefix("calls::"), NamePattern::Prefix("hotplug::")];
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

/// A QEMU cell with the defaults of the grid.
fn qemu_cell(name: String, description: String, machine: Machine, firmware: Firmware, smp: String) -> Config {
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
                    let description = format!("{SMP_TESTS_WORDS} on QEMU {m}, {fw}, {cpus} CPU(s), {a} CPU model");
                    out.push(Config {
                        cpu: Some(apic.qemu_cpu()),
                        params: vec![(EXPECT_APIC, a)],
                        ..qemu_cell(name, description, machine, firmware, cpus.to_string())
                    });
                }
            }
        }
    }
    out
}

const SMP_TESTS_WORDS: &str = "bringup::, calls::, hotplug::";

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
            params: vec![(EXPECT_APIC, apic.name())],
            ..qemu_cell(
                name,
                format!("{SMP_TESTS_WORDS} under Bochs 2.7, BIOS, 4 CPUs, {model}"),
                Machine::Pc,
                Firmware::Bios,
                "4".into(),
            )
        }
    };
    let usb = |firmware: Firmware| Config {
        medium: Medium::UsbStick,
        tests: BRINGUP,
        ..qemu_cell(
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
            ..qemu_cell(
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
            ],
            // 300 CPUs under TCG take ~25 s to come up on two cores.
            boot_allowance: Some(Duration::from_secs(120)),
            ..qemu_cell(
                "q35-bios-smp300-x2apic".into(),
                "every CPU online and reached by call_all with 300 CPUs, x2APIC ids above 255 \
                 (q35, IOMMU interrupt remapping, BIOS)"
                    .into(),
                Machine::Q35,
                Firmware::Bios,
                "300".into(),
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
pub fn find(name: &str) -> Option<&'static Config> {
    configs().iter().find(|c| c.name == name)
}

/// Which configurations to run: `--configs`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selection {
    /// Whether the `default` configuration runs (always first).
    pub default: bool,
    /// The cells, in matrix order.
    pub configs: Vec<&'static Config>,
}

impl Selection {
    /// The names, in run order.
    pub fn names(&self) -> Vec<&'static str> {
        let default = self.default.then_some(DEFAULT);
        default.into_iter().chain(self.configs.iter().map(|c| c.name.as_str())).collect()
    }
}

/// Whether `name` matches `pattern`, where `*` stands for any text.
pub fn glob_matches(pattern: &str, name: &str) -> bool {
    let Some((first, rest)) = pattern.split_once('*') else {
        return pattern == name;
    };
    let Some(mut left) = name.strip_prefix(first) else {
        return false;
    };
    let mut parts: Vec<&str> = rest.split('*').collect();
    let last = parts.pop().unwrap_or("");
    for part in parts {
        match left.find(part) {
            Some(i) => left = &left[i + part.len()..],
            None => return false,
        }
    }
    left.len() >= last.len() && left.ends_with(last)
}

/// Parses `--configs`: `default`, `ci`, `matrix`, `all`, cell names and
/// `*` patterns (`bochs-*`, `*-smp7-*`), separated by commas. They run in
/// matrix order, `default` first, each once. A pattern matching nothing is
/// an error, not an empty run.
pub fn parse_selection(s: &str) -> Result<Selection, String> {
    let mut default = false;
    let mut chosen = vec![false; configs().len()];
    for word in s.split(',').map(str::trim) {
        match word {
            "" => return Err(format!("`{s}` has an empty configuration name")),
            ALL => {
                default = true;
                chosen.fill(true);
            }
            MATRIX => chosen.fill(true),
            CI => configs().iter().zip(&mut chosen).filter(|(c, _)| c.ci).for_each(|(_, x)| *x = true),
            DEFAULT => default = true,
            pattern => {
                let mut any = false;
                for (c, x) in configs().iter().zip(&mut chosen) {
                    if glob_matches(pattern, &c.name) {
                        *x = true;
                        any = true;
                    }
                }
                if !any {
                    return Err(format!(
                        "no configuration matches `{pattern}`; give {DEFAULT}, {CI}, {MATRIX}, {ALL}, a name or a \
                         `*` pattern (--list-configs names them)"
                    ));
                }
            }
        }
    }
    let configs = configs().iter().zip(chosen).filter_map(|(c, chosen)| chosen.then_some(c)).collect();
    Ok(Selection { default, configs })
}

/// Splits QEMU's `-smp` value into the CPUs present (its leading number)
/// and the rest: `2,maxcpus=4` is `(2, Some("maxcpus=4"))`.
pub fn split_smp(smp: &str) -> Result<(u32, Option<&str>), String> {
    let (count, rest) = match smp.split_once(',') {
        Some((count, rest)) => (count, Some(rest)),
        None => (smp, None),
    };
    match count.parse::<u32>() {
        Ok(n) if n > 0 && count.bytes().all(|b| b.is_ascii_digit()) => Ok((n, rest.filter(|r| !r.is_empty()))),
        _ => Err(format!("`-smp {smp}` does not start with a CPU count (like `2` or `2,maxcpus=4`)")),
    }
}

/// `smp.expect_cpus` for QEMU's `-smp` value: the CPUs present at boot,
/// not `maxcpus`.
pub fn expect_cpus(smp: &str) -> Result<u32, String> {
    split_smp(smp).map(|(n, _)| n)
}

impl Config {
    /// The machine this cell boots, with the user's options that apply to
    /// every configuration.
    pub fn vm(&self, args: &TestArgs) -> VmConfig {
        let (smp, smp_opts) = split_smp(&self.smp).expect("the matrix is checked by tooling-tests");
        let mut extra: Vec<String> = self.qemu_args.iter().map(|&a| a.to_owned()).collect();
        extra.extend(args.qemu_args.iter().cloned());
        VmConfig {
            name: Some(self.name.clone()),
            emulator: self.emulator,
            firmware: self.firmware,
            medium: self.medium,
            machine: self.machine,
            machine_opts: self.machine_opts.map(str::to_owned),
            smp,
            smp_opts: smp_opts.map(str::to_owned),
            memory: self.memory.unwrap_or(&args.vm.memory).to_owned(),
            cpu: self.cpu.map(str::to_owned),
            extra,
            boot_allowance: self.boot_allowance,
        }
    }

    /// This configuration as the guest runner takes it.
    pub fn guest_run(&self, args: &TestArgs) -> GuestRun {
        let vm = self.vm(args);
        GuestRun {
            name: self.name.clone(),
            header: true,
            plan: PlanOptions {
                smp: vm.smp,
                only: self.tests.to_vec(),
                config_params: self.params.iter().map(|&(k, v)| (k.to_owned(), v.to_owned())).collect(),
                ..user_plan_options(args)
            },
            qemu: vec![vm],
        }
    }
}

/// The standard run: every test, on the machine the options describe.
pub fn default_run(args: &TestArgs) -> GuestRun {
    GuestRun {
        name: DEFAULT.to_owned(),
        header: true,
        qemu: args
            .firmware
            .firmwares()
            .into_iter()
            .map(|fw| crate::commands::qemu_config(fw, &args.vm, &args.qemu_args))
            .collect(),
        plan: PlanOptions { smp: args.vm.smp, ..user_plan_options(args) },
    }
}

/// What the user's options ask of every configuration's plan.
fn user_plan_options(args: &TestArgs) -> PlanOptions {
    PlanOptions {
        smp: 0,
        examples: args.examples,
        filter: args.filter.clone(),
        user_params: args.params.clone(),
        only: Vec::new(),
        config_params: Vec::new(),
    }
}

/// The runs `--configs` selects, in order. Headers separate them, except
/// when `default` runs alone (its output is then as it always was).
pub fn guest_runs(args: &TestArgs) -> Vec<GuestRun> {
    let selection = &args.configs;
    let mut runs = Vec::new();
    if selection.default {
        runs.push(default_run(args));
    }
    runs.extend(selection.configs.iter().map(|c| c.guest_run(args)));
    if let [only] = &mut runs[..]
        && selection.default
    {
        only.header = false;
    }
    runs
}

/// `--list-configs`: every name with its description, `*` marking CI's.
pub fn list_text() -> String {
    let width = configs().iter().map(|c| c.name.len()).max().unwrap_or(0).max(DEFAULT.len());
    let mut out = format!(
        "  {DEFAULT:<width$}  every test, on the machine --smp/--machine/--cpu/--firmware describe \
         (default: 4 CPUs, pc, BIOS and UEFI)\n"
    );
    for c in configs() {
        let mark = if c.ci { '*' } else { ' ' };
        out += &format!("{mark} {:<width$}  {}\n", c.name, c.description);
    }
    out += &format!(
        "\n{DEFAULT} runs first; * marks the `{CI}` subset. `{MATRIX}` is every cell, `{ALL}` is {DEFAULT} and \
         {MATRIX}; `cargo xtask test` runs `{TEST_DEFAULT}`. Names and `*` patterns (e.g. `bochs-*`) pick cells.\n"
    );
    out
}
