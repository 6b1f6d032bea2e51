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
//! The cells are defined in [`matrix`]. Features a cell needs that the host may lack (x2APIC under TCG, more
//! than 255 CPUs, Bochs) make it *skipped*, with the reason and the command
//! that enables it; never silently passed.

mod matrix;

use crate::cli::TestArgs;
use crate::guest::GuestRun;
use crate::plan::PlanOptions;
use crate::vm::VmConfig;

#[cfg(test)]
pub use self::matrix::find;
pub use self::matrix::{Config, configs};

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

/// Boot parameter telling the guest that the emulator sets the ESR's send
/// accept error for an IPI no APIC takes, which the `unhappy::` send-error
/// tests need (Bochs does; QEMU 10 never sets it).
pub const EXPECT_SEND_ERRORS: &str = "smp.expect_send_errors";

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
    #[cfg(test)]
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
#[cfg(test)]
pub fn expect_cpus(smp: &str) -> Result<u32, String> {
    split_smp(smp).map(|(n, _)| n)
}

impl Config {
    /// The machine this cell boots, with the user's options that apply to
    /// every configuration.
    pub fn vm(&self, args: &TestArgs) -> VmConfig {
        let (smp, smp_opts) = split_smp(&self.smp).expect("the matrix is checked by xtask's tests");
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
            machines: vec![vm],
        }
    }
}

/// The standard run: every test, on the machine the options describe.
pub fn default_run(args: &TestArgs) -> GuestRun {
    GuestRun {
        name: DEFAULT.to_owned(),
        header: true,
        machines: args
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
