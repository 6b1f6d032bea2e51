//! `cargo xtask torture`: what one long stress boot of the test kernel asks
//! for, and which of its serial lines the person watches. Pure: the command
//! in [`crate::commands`] does the booting.
//!
//! The guest side is the tests `stress::hotplug_torture` (cross-call stress
//! while the boot CPU takes random CPUs down and up) and
//! `stress::cross_call_stress` (the stress alone) in `tests/guest/src/stress.rs`,
//! tuned by boot parameters; the engine is `kernel/diag/src/torture/`, which the
//! console's `torture` command also runs.

use std::time::Duration;

/// Call kinds, in the order `stress.weights` lists their weights.
pub use protocol::torture::CALL_KINDS;

/// The guest test with hotplug, with hotplug and faults, and without.
pub const HOTPLUG_TEST: &str = "stress::hotplug_torture";
pub const FAULTS_TEST: &str = "stress::hotplug_torture_with_faults";
pub const STRESS_TEST: &str = "stress::cross_call_stress";

/// With `--faults`: the injector on, and timeouts short enough that a held
/// CPU crosses them at once. The same as the guest test's own parameters
/// (`tests/guest/src/faults.rs` `PARAMS`; a host test holds them equal).
pub const FAULT_PARAMS: [(&str, &str); 4] = [
    ("torture.faults", "1"),
    ("stop_machine.timeout_ms", "200"),
    ("smp.ap_timeout_ms", "300"),
    ("hotplug.park_timeout_ms", "300"),
];

/// Time on top of the stress itself: boot (OVMF under TCG is slow), the
/// final bring-up of every CPU, the senders finishing, the report.
pub const SLACK: Duration = Duration::from_secs(120);

/// What the guest tests need: the boot CPU plus at least one sender, and
/// with hotplug one more, so that a CPU can be down while calls fly.
pub const MIN_CPUS_HOTPLUG: u32 = 3;
pub const MIN_CPUS_STRESS: u32 = 2;

/// The weight of each call kind (see [`CALL_KINDS`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Weights(pub [u32; 6]);

impl Default for Weights {
    /// Every kind equally often: the guest's own default.
    fn default() -> Self {
        Weights([1; 6])
    }
}

impl std::fmt::Display for Weights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.0.iter().map(u32::to_string).collect();
        f.write_str(&parts.join(","))
    }
}

/// `--weights a,b,c,d,e,f`: six whole numbers, not all zero. Strict, because
/// the guest reads a bad number as 1 and a missing one as "unchanged", so a
/// typo would silently test a different mix.
pub fn parse_weights(s: &str) -> Result<Weights, String> {
    let parts: Vec<&str> = s.split(',').map(str::trim).collect();
    if parts.len() != CALL_KINDS.len() {
        return Err(format!(
            "`{s}`: give {} weights separated by commas, for {}",
            CALL_KINDS.len(),
            CALL_KINDS.join(", ")
        ));
    }
    let mut weights = [0; 6];
    for ((slot, part), kind) in weights.iter_mut().zip(&parts).zip(CALL_KINDS) {
        *slot = part.parse().map_err(|_| format!("`{part}` (the weight of {kind}) is not a whole number"))?;
    }
    if weights.iter().all(|&w| w == 0) {
        return Err("all weights are 0: no call would be sent".into());
    }
    Ok(Weights(weights))
}

/// What the user asked for (the parsed command line, minus the machine).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub duration_s: u64,
    pub smp: u32,
    pub weights: Weights,
    /// Interval between hotplug operations; `None`: no hotplug.
    pub hotplug_ms: Option<u64>,
    /// Inject faults (with hotplug only).
    pub faults: bool,
    /// `-p key=value`, applied last.
    pub user_params: Vec<(String, String)>,
}

/// One torture boot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The guest test to run (`ktest.run`).
    pub test: &'static str,
    /// Boot parameters, in order (a later one wins on a clash).
    pub params: Vec<(String, String)>,
    /// When the boot is declared hung.
    pub timeout: Duration,
}

/// The boot `req` describes, or why it cannot run.
pub fn plan(req: &Request) -> Result<Plan, String> {
    let (test, min_cpus) = match (req.hotplug_ms, req.faults) {
        (Some(_), false) => (HOTPLUG_TEST, MIN_CPUS_HOTPLUG),
        (Some(_), true) => (FAULTS_TEST, MIN_CPUS_HOTPLUG),
        (None, false) => (STRESS_TEST, MIN_CPUS_STRESS),
        (None, true) => return Err("--faults injects faults into hotplug: it cannot go with --no-hotplug".into()),
    };
    if req.smp < min_cpus {
        let what = if req.hotplug_ms.is_some() { "the hotplug torture" } else { "the cross-call stress" };
        return Err(format!("{what} needs --smp {min_cpus} or more (got {})", req.smp));
    }
    let ms = req.duration_s.checked_mul(1000).ok_or("--duration is too long")?;
    let mut params = vec![
        ("ktest.run".to_owned(), test.to_owned()),
        ("stress.ms".to_owned(), ms.to_string()),
        ("stress.weights".to_owned(), req.weights.to_string()),
    ];
    if let Some(interval) = req.hotplug_ms {
        params.push(("torture.hotplug_ms".to_owned(), interval.to_string()));
    }
    if req.faults {
        params.extend(FAULT_PARAMS.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    }
    // As for `cargo xtask test`: the guest checks every CPU came online.
    params.push((crate::plan::EXPECT_CPUS.to_owned(), req.smp.to_string()));
    params.extend(req.user_params.iter().cloned());
    Ok(Plan { test, params, timeout: Duration::from_secs(req.duration_s) + SLACK })
}

/// Whether the person watching a torture run sees `line` (without
/// `--verbose`): the guest's progress and summary lines, and errors it logs.
pub fn shows(line: &str) -> bool {
    let line = crate::protocol::clean_line(line);
    if line.starts_with("stress: ") || line.starts_with("torture: ") {
        return true;
    }
    // Log lines: `[    1.234567 cpu3] ERROR guest_tests::stress: ...`.
    line.starts_with('[') && line.split_once("] ").is_some_and(|(_, rest)| rest.starts_with("ERROR"))
}
