//! The host's side of the bench lines; the lines themselves are defined in
//! `protocol::bench` (the guest writes them with it).

use crate::bench::results::{BootResult, Figure};
use crate::judge::{Exit, unexpected_exit};
use crate::protocol::{EXIT_FAILURE, EXIT_SUCCESS};

/// One line of the protocol, with its figure as the host keeps it.
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
    use protocol::bench::Line;
    Ok(protocol::bench::parse_line(line)?.map(|l| match l {
        Line::Info { cpus, tsc_mhz, idle } => BenchLine::Info { cpus, tsc_mhz, idle },
        Line::GuestError(why) => BenchLine::GuestError(why),
        Line::Figure { name, unit, median, p99, samples } => {
            BenchLine::Figure(Figure { name, unit, median: median as f64, p99: p99 as f64, samples })
        }
        Line::Done => BenchLine::Done,
    }))
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
