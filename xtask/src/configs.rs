//! The named test configurations: machines the SMP bring-up must also work
//! on, each running a part of the guest tests.
//!
//! `cargo xtask test` runs the `default` configuration (every test, on the
//! machine the command-line options describe) and then, unless `--configs`
//! says otherwise, every entry of [`CONFIGS`], in table order. The user's
//! FILTER, `-p`, `--examples`, QEMU arguments after `--` and (where the
//! entry names none) `--memory` apply to every configuration; `--smp`,
//! `--machine`, `--cpu` and `--firmware` shape `default` only.
//!
//! QEMU features an entry needs (x2APIC under TCG, more than 255 CPUs) are
//! read off its command line by [`crate::qemu::requirements`]: on an older
//! QEMU the entry is reported as skipped, with the way to get a newer one.

use std::time::Duration;

use bootimage::Firmware;

use crate::cli::{Machine, TestArgs};
use crate::guest::GuestRun;
use crate::plan::{NamePattern, PlanOptions};
use crate::qemu::QemuConfig;

/// The standard run: every test, on the command line's machine.
pub const DEFAULT: &str = "default";
/// `default` and every entry of [`CONFIGS`].
pub const ALL: &str = "all";

/// One named configuration.
#[derive(Debug, PartialEq, Eq)]
pub struct Config {
    pub name: &'static str,
    /// One line, for `--list-configs`.
    pub description: &'static str,
    pub firmwares: &'static [Firmware],
    /// QEMU's `-smp` value; its leading number is the CPUs present, which
    /// the guest is told as `smp.expect_cpus` (see [`expect_cpus`]).
    pub smp: &'static str,
    pub machine: Machine,
    /// More `-machine` options.
    pub machine_opts: Option<&'static str>,
    pub cpu: Option<&'static str>,
    /// More QEMU arguments (the user's, after `--`, follow them).
    pub qemu_args: &'static [&'static str],
    /// QEMU's `-m`; `None`: the user's `--memory`.
    pub memory: Option<&'static str>,
    /// Boot parameters, given like the runner's own (a test's or the
    /// user's `-p` wins over them).
    pub params: &'static [(&'static str, &'static str)],
    /// The tests it runs: those matching any of these.
    pub tests: &'static [NamePattern],
    /// Time from power-on to the first test, when the firmware's usual
    /// allowance is not enough.
    pub boot_allowance: Option<Duration>,
}

const BOTH: &[Firmware] = &[Firmware::Bios, Firmware::Uefi];
const BIOS: &[Firmware] = &[Firmware::Bios];
const BRINGUP: &[NamePattern] = &[NamePattern::Prefix("bringup::")];

/// A plain `pc` machine with `smp` CPUs running the bring-up suite.
const fn plain(
    name: &'static str,
    description: &'static str,
    firmwares: &'static [Firmware],
    smp: &'static str,
) -> Config {
    Config {
        name,
        description,
        firmwares,
        smp,
        machine: Machine::Pc,
        machine_opts: None,
        cpu: None,
        qemu_args: &[],
        memory: None,
        params: &[],
        tests: BRINGUP,
        boot_allowance: None,
    }
}

/// The table, in run order.
pub const CONFIGS: &[Config] = &[
    plain("smp1", "bringup:: on 1 CPU (no APs to start), BIOS and UEFI", BOTH, "1"),
    plain("smp2", "bringup:: on 2 CPUs, BIOS and UEFI", BOTH, "2"),
    plain("smp8", "bringup:: on 8 CPUs, BIOS and UEFI", BOTH, "8"),
    plain(
        "maxcpus",
        "bringup:: with -smp 2,maxcpus=4: 2 CPUs present, 2 disabled MADT entries (BIOS)",
        BIOS,
        "2,maxcpus=4",
    ),
    Config {
        cpu: Some("qemu64,x2apic=on"),
        tests: &[NamePattern::Prefix("bringup::"), NamePattern::Prefix("calls::")],
        ..plain("x2apic", "bringup:: and calls:: in x2APIC mode, 4 CPUs (BIOS; needs QEMU >= 8.1)", BIOS, "4")
    },
    Config {
        machine: Machine::Q35,
        machine_opts: Some("kernel-irqchip=split"),
        cpu: Some("qemu64,x2apic=on"),
        qemu_args: &["-device", "intel-iommu,intremap=on,eim=on"],
        memory: Some("512M"),
        params: &[("smp.fast_start", "1")],
        tests: &[
            NamePattern::Exact("bringup::every_present_cpu_is_online"),
            NamePattern::Exact("bringup::expected_cpu_count_is_online"),
            NamePattern::Exact("calls::call_all_reaches_every_online_cpu"),
        ],
        // 300 CPUs under TCG take ~25 s to come up on two cores.
        boot_allowance: Some(Duration::from_secs(120)),
        ..plain(
            "x2apic-300",
            "every CPU online and reached by call_all with 300 CPUs (q35, x2APIC, IOMMU \
             interrupt remapping; BIOS; needs QEMU >= 8.1)",
            BIOS,
            "300",
        )
    },
];

/// The configuration called `name`.
pub fn find(name: &str) -> Option<&'static Config> {
    CONFIGS.iter().find(|c| c.name == name)
}

/// Which configurations to run: `--configs`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selection {
    /// Whether the `default` configuration runs (always first).
    pub default: bool,
    /// The named ones, in table order.
    pub configs: Vec<&'static Config>,
}

impl Selection {
    /// The names, in run order.
    pub fn names(&self) -> Vec<&'static str> {
        let default = self.default.then_some(DEFAULT);
        default.into_iter().chain(self.configs.iter().map(|c| c.name)).collect()
    }
}

/// Parses `--configs`: `all`, `default`, or names separated by commas
/// (`default,smp8,x2apic`). They run in table order, `default` first,
/// each once.
pub fn parse_selection(s: &str) -> Result<Selection, String> {
    let mut default = false;
    let mut chosen = vec![false; CONFIGS.len()];
    for word in s.split(',').map(str::trim) {
        match word {
            "" => return Err(format!("`{s}` has an empty configuration name")),
            ALL => {
                default = true;
                chosen.fill(true);
            }
            DEFAULT => default = true,
            name => match CONFIGS.iter().position(|c| c.name == name) {
                Some(i) => chosen[i] = true,
                None => {
                    return Err(format!(
                        "unknown configuration `{name}`; known: {ALL}, {DEFAULT}, {} \
                         (--list-configs describes them)",
                        CONFIGS.iter().map(|c| c.name).collect::<Vec<_>>().join(", ")
                    ));
                }
            },
        }
    }
    let configs = CONFIGS.iter().zip(chosen).filter_map(|(c, chosen)| chosen.then_some(c)).collect();
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
    /// This configuration as the guest runner takes it, with the user's
    /// options that apply to every configuration.
    pub fn guest_run(&self, args: &TestArgs) -> GuestRun {
        let (smp, smp_opts) = split_smp(self.smp).expect("CONFIGS are checked by tooling-tests");
        let mut extra: Vec<String> = self.qemu_args.iter().map(|&a| a.to_owned()).collect();
        extra.extend(args.qemu_args.iter().cloned());
        let qemu = self
            .firmwares
            .iter()
            .map(|&firmware| QemuConfig {
                name: Some(self.name.to_owned()),
                firmware,
                machine: self.machine,
                machine_opts: self.machine_opts.map(str::to_owned),
                smp,
                smp_opts: smp_opts.map(str::to_owned),
                memory: self.memory.unwrap_or(&args.vm.memory).to_owned(),
                cpu: self.cpu.map(str::to_owned),
                extra: extra.clone(),
                boot_allowance: self.boot_allowance,
            })
            .collect();
        GuestRun {
            name: self.name.to_owned(),
            header: true,
            qemu,
            plan: PlanOptions {
                smp,
                only: self.tests.to_vec(),
                config_params: self.params.iter().map(|&(k, v)| (k.to_owned(), v.to_owned())).collect(),
                ..user_plan_options(args)
            },
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

/// `--list-configs`: every name with its description.
pub fn list_text() -> String {
    let mut out = format!(
        "{DEFAULT:<12} every test, on the machine --smp/--machine/--cpu/--firmware describe \
         (default: 4 CPUs, pc, BIOS and UEFI)\n"
    );
    for c in CONFIGS {
        out += &format!("{:<12} {}\n", c.name, c.description);
    }
    out += &format!("{ALL:<12} {DEFAULT} and all of the above (what --configs means when not given)\n");
    out
}
