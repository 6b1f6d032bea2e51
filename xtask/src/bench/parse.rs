//! The guest's side of the bench protocol (tests/guest/src/bench.rs), one
//! tab-separated line per item:
//!
//! - `@@BENCH-INFO\tcpus\t<n>\ttsc_mhz\t<m>\tidle\t<mode>` first (`<mode>`:
//!   how idle CPUs wait, `halt` or `poll`; kernels older than polling idle
//!   leave out the last two fields);
//! - `@@BENCH-INFO\terror\t<text>` when the guest cannot measure at all;
//! - `@@BENCH\t<name>\t<unit>\t<median>\t<p99>\t<samples>` per figure, unit
//!   `ns` or `per_s`, samples 0 when the figure could not be measured;
//! - `@@BENCH-DONE` last, before the guest exits with success.
//!
//! Any other line is the kernel's own output and ignored. A line that starts
//! like ours but does not parse is an error, never skipped: a silently lost
//! figure would make a regression look like an improvement.

use crate::bench::results::{BootResult, Figure, Unit};
use crate::judge::{Exit, unexpected_exit};
use crate::protocol::{EXIT_FAILURE, EXIT_SUCCESS};

const INFO: &str = "@@BENCH-INFO";
const FIGURE: &str = "@@BENCH";
const DONE: &str = "@@BENCH-DONE";

/// One line of the protocol.
#[derive(Clone, Debug, PartialEq)]
pub enum BenchLine {
    /// `idle`: the guest's idle mode, if it said.
    Info {
        cpus: u32,
        tsc_mhz: u64,
        idle: Option<String>,
    },
    GuestError(String),
    Figure(Figure),
    Done,
}

/// `Ok(None)` for a line that is not ours.
pub fn parse_line(line: &str) -> Result<Option<BenchLine>, String> {
    let fields: Vec<&str> = line.split('\t').collect();
    let bad = |why: &str| Err(format!("malformed bench line ({why}): `{line}`"));
    match fields[0] {
        DONE if fields.len() == 1 => Ok(Some(BenchLine::Done)),
        DONE => bad("nothing may follow @@BENCH-DONE"),
        INFO => match fields[1..] {
            ["cpus", cpus, "tsc_mhz", mhz, ref idle @ ..] => {
                let idle = match idle {
                    [] => None,
                    ["idle", mode] if !mode.is_empty() => Some((*mode).to_owned()),
                    _ => return bad("after the TSC MHz only `idle MODE` may follow"),
                };
                match (cpus.parse(), mhz.parse()) {
                    (Ok(cpus), Ok(tsc_mhz)) => Ok(Some(BenchLine::Info { cpus, tsc_mhz, idle })),
                    _ => bad("CPU count and TSC MHz must be whole numbers"),
                }
            }
            ["error", ref rest @ ..] if !rest.is_empty() => Ok(Some(BenchLine::GuestError(rest.join(" ")))),
            _ => bad("expected `cpus N tsc_mhz M [idle MODE]` or `error TEXT`"),
        },
        FIGURE => match fields[1..] {
            [name, unit, median, p99, samples] => {
                if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                    return bad("the name must be letters, digits and `_`");
                }
                let Some(unit) = Unit::parse(unit) else {
                    return bad("the unit must be `ns` or `per_s`");
                };
                match (median.parse::<u64>(), p99.parse::<u64>(), samples.parse::<u64>()) {
                    (Ok(median), Ok(p99), Ok(samples)) => Ok(Some(BenchLine::Figure(Figure {
                        name: name.to_owned(),
                        unit,
                        median: median as f64,
                        p99: p99 as f64,
                        samples,
                    }))),
                    _ => bad("median, p99 and samples must be whole numbers"),
                }
            }
            _ => bad("expected 5 tab-separated fields after @@BENCH"),
        },
        // `@@BENCHMARK` or `@@BENCH INFO`: someone meant us, and got it wrong.
        first if first.starts_with(FIGURE) => bad("unknown @@BENCH keyword"),
        _ => Ok(None),
    }
}

/// Collects one boot's lines, then judges the boot.
#[derive(Debug)]
pub struct BootParser {
    expected_cpus: u32,
    info: Option<(u32, u64, Option<String>)>,
    figures: Vec<Figure>,
    done: bool,
    /// The first thing that went wrong; later lines are still read.
    error: Option<String>,
}

impl BootParser {
    /// For a boot with `expected_cpus` CPUs present: the guest must see them all.
    pub fn new(expected_cpus: u32) -> BootParser {
        BootParser { expected_cpus, info: None, figures: Vec::new(), done: false, error: None }
    }

    fn fail(&mut self, why: String) {
        self.error.get_or_insert(why);
    }

    /// Takes one serial line; returns the name of the figure it reported,
    /// if it did (for the progress bar).
    pub fn feed(&mut self, line: &str) -> Option<String> {
        match parse_line(line) {
            Ok(None) => None,
            Err(e) => {
                self.fail(e);
                None
            }
            Ok(Some(BenchLine::Info { cpus, tsc_mhz, idle })) => {
                if self.info.is_some() {
                    self.fail("@@BENCH-INFO came twice".into());
                }
                self.info = Some((cpus, tsc_mhz, idle));
                None
            }
            Ok(Some(BenchLine::GuestError(why))) => {
                self.fail(format!("the guest could not measure: {why}"));
                None
            }
            Ok(Some(BenchLine::Figure(figure))) => {
                let name = figure.name.clone();
                if self.info.is_none() {
                    self.fail(format!("`{name}` came before @@BENCH-INFO"));
                } else if self.done {
                    self.fail(format!("`{name}` came after @@BENCH-DONE"));
                } else if self.figures.iter().any(|f| f.name == name) {
                    self.fail(format!("`{name}` was reported twice"));
                } else {
                    self.figures.push(figure);
                }
                Some(name)
            }
            Ok(Some(BenchLine::Done)) => {
                self.done = true;
                None
            }
        }
    }

    /// The boot's results, or why there are none.
    pub fn finish(self, exit: Exit) -> Result<BootResult, String> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let exit_ok = exit == Exit::Code(EXIT_SUCCESS);
        let Some((cpus, tsc_mhz, idle)) = self.info else {
            return Err(format!("no @@BENCH-INFO line ({})", describe(exit)));
        };
        if !self.done {
            return Err(format!("the guest stopped before @@BENCH-DONE ({})", describe(exit)));
        }
        if !exit_ok {
            return Err(format!("the guest reported every figure but then {}", describe(exit)));
        }
        if cpus != self.expected_cpus {
            return Err(format!("{cpus} CPU(s) online, QEMU was given {}: some did not come up", self.expected_cpus));
        }
        Ok(BootResult { cpus, tsc_mhz, idle, figures: self.figures })
    }
}

fn describe(exit: Exit) -> String {
    match exit {
        Exit::Code(EXIT_SUCCESS) => "exited with success".into(),
        Exit::Code(EXIT_FAILURE) => "exited with failure".into(),
        Exit::Code(c) => unexpected_exit(c),
        Exit::TimedOut => "timed out and was killed".into(),
        Exit::Signal(s) => format!("QEMU was killed by signal {s}"),
    }
}
