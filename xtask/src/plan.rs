//! Turns the guest's test list into boots.
//!
//! Rules, in order:
//! 1. `example=1` tests are dropped unless `--examples`;
//! 2. a configuration's selection (see [`NamePattern`]; none: every test)
//!    and then the FILTER (a substring of the name) keep the matching tests:
//!    a test runs only when it passes both;
//! 3. tests with `min_cpus` above `--smp` are skipped without booting;
//! 4. tests that can share a boot (`fresh=0`, `expect=ok`, no `params`) run
//!    together in one boot, in list order, and that boot comes first;
//! 5. every other test gets a boot of its own, in list order.
//!
//! Every boot's parameters are, in this order (a later one wins on a clash):
//! `ktest.run`; the runner's own (`smp.expect_cpus=<--smp>`, so a test can
//! check that every CPU QEMU was given came online, then the configuration's
//! own parameters); the tests' `params`; the user's `-p`. `ktest.run` itself
//! cannot be overridden.
//!
//! A boot's time limit is a firmware allowance plus the sum of its tests'
//! `timeout_ms`.

use std::time::Duration;

use bootimage::{BootParams, Firmware};

use crate::protocol::TestInfo;
use crate::vm::{Emulator, VmConfig};

/// What the user asked for.
#[derive(Clone, Debug, Default)]
pub struct PlanOptions {
    /// CPUs present in the machine (for `-smp 2,maxcpus=4`: 2).
    pub smp: u32,
    pub examples: bool,
    pub filter: Option<String>,
    /// `-p key=value`, applied after the tests' own parameters.
    pub user_params: Vec<(String, String)>,
    /// The configuration's selection: a test must match one of these (all
    /// tests when empty). The FILTER applies on top.
    pub only: Vec<NamePattern>,
    /// The configuration's boot parameters, part of the runner's own.
    pub config_params: Vec<(String, String)>,
}

/// One entry of a configuration's test selection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NamePattern {
    /// Names starting with this, e.g. a module: `bringup::`.
    Prefix(&'static str),
    /// Exactly this name.
    Exact(&'static str),
}

impl NamePattern {
    pub fn matches(self, name: &str) -> bool {
        match self {
            NamePattern::Prefix(p) => name.starts_with(p),
            NamePattern::Exact(n) => name == n,
        }
    }
}

impl std::fmt::Display for NamePattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NamePattern::Prefix(p) => f.write_str(p),
            NamePattern::Exact(n) => f.write_str(n),
        }
    }
}

/// The parameter that tells the guest how many CPUs QEMU was given.
pub const EXPECT_CPUS: &str = "smp.expect_cpus";

impl PlanOptions {
    /// What the runner tells every boot (the list boot included), before
    /// the tests' and the user's parameters.
    pub fn runner_params(&self) -> Vec<(String, String)> {
        let mut params = vec![(EXPECT_CPUS.to_owned(), self.smp.to_string())];
        params.extend(self.config_params.iter().cloned());
        params
    }

    /// Whether the selection and the FILTER keep `name`.
    pub fn selects(&self, name: &str) -> bool {
        (self.only.is_empty() || self.only.iter().any(|p| p.matches(name)))
            && self.filter.as_ref().is_none_or(|f| name.contains(f.as_str()))
    }

    /// The selection in words, for headers: `bringup::, calls::`, `all tests`,
    /// with `and FILTER "x"` when one was given.
    pub fn describe_selection(&self) -> String {
        let mut out = if self.only.is_empty() {
            "all tests".to_owned()
        } else {
            let only: Vec<String> = self.only.iter().map(|p| p.to_string()).collect();
            only.join(", ")
        };
        if let Some(f) = &self.filter {
            out += &format!(" and FILTER \"{f}\"");
        }
        out
    }
}

/// One QEMU run of the test kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootPlan {
    /// The tests, in the order the guest runs them.
    pub tests: Vec<TestInfo>,
    /// The complete boot parameters, `ktest.run` included.
    pub params: BootParams,
}

impl BootPlan {
    /// A boot running `tests` one after the other (`ktest.run=a,b,c`).
    pub fn new(tests: Vec<TestInfo>, opts: &PlanOptions) -> Self {
        let run = tests.iter().map(|t| t.name.as_str()).collect::<Vec<_>>().join(",");
        let mut params = BootParams::default();
        // Names and parameters were validated when parsed, so `set` cannot fail
        // on them; a failure would be a bug worth a loud panic.
        params.set("ktest.run", &run).expect("test names are valid parameter values");
        let runner = opts.runner_params();
        let test_params = tests.iter().flat_map(|t| t.params.iter());
        for (k, v) in runner.iter().chain(test_params).chain(&opts.user_params) {
            params.set(k, v).expect("parameters were validated when parsed");
        }
        // Set again so that no test's or user's parameter can redirect the run
        // (the judge would wait for verdicts of tests that never run).
        params.set("ktest.run", &run).expect("valid as above");
        BootPlan { tests, params }
    }

    /// How long the boot may take on `vm` before it is declared hung.
    pub fn timeout(&self, vm: &VmConfig) -> Duration {
        vm.boot_allowance() + self.tests_time()
    }

    /// The tests' own time budgets, summed (the part of the time limit
    /// that does not depend on the machine).
    pub fn tests_time(&self) -> Duration {
        Duration::from_millis(self.tests.iter().map(|t| t.timeout_ms).sum())
    }
}

/// Time to get from power-on to the first test: OVMF under TCG on two
/// overcommitted cores is slow; SeaBIOS is quick; Bochs interprets every
/// instruction (a 4-CPU list boot: ~10 s).
pub fn boot_allowance(emulator: Emulator, firmware: Firmware) -> Duration {
    match (emulator, firmware) {
        (Emulator::Bochs, _) => Duration::from_secs(90),
        (Emulator::Qemu, Firmware::Bios) => Duration::from_secs(15),
        (Emulator::Qemu, Firmware::Uefi) => Duration::from_secs(40),
    }
}

/// The outcome of planning.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Tests that will not run, with the reason to report.
    pub skipped: Vec<(TestInfo, String)>,
    /// Boots to make, in order.
    pub boots: Vec<BootPlan>,
    /// Example tests left out because `--examples` was not given.
    pub examples_dropped: usize,
    /// Tests left out by the configuration's selection or the filter.
    pub filtered_out: usize,
}

impl Plan {
    /// No test to run and none to report as skipped.
    pub fn is_empty(&self) -> bool {
        self.boots.is_empty() && self.skipped.is_empty()
    }

    /// Number of tests that will run.
    pub fn test_count(&self) -> usize {
        self.boots.iter().map(|b| b.tests.len()).sum()
    }
}

pub fn plan(tests: &[TestInfo], opts: &PlanOptions) -> Plan {
    let mut out = Plan::default();
    let mut shared = Vec::new();
    let mut single = Vec::new();
    for test in tests {
        if test.example && !opts.examples {
            out.examples_dropped += 1;
            continue;
        }
        if !opts.selects(&test.name) {
            out.filtered_out += 1;
            continue;
        }
        if test.min_cpus > opts.smp {
            let reason = format!("needs {} CPUs, running with {}", test.min_cpus, opts.smp);
            out.skipped.push((test.clone(), reason));
            continue;
        }
        if test.can_share_boot() {
            shared.push(test.clone());
        } else {
            single.push(BootPlan::new(vec![test.clone()], opts));
        }
    }
    if !shared.is_empty() {
        out.boots.push(BootPlan::new(shared, opts));
    }
    out.boots.extend(single);
    out
}
