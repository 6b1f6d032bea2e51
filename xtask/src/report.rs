//! What the person at the terminal reads: verdict lines, counts, and the
//! tail of a failing boot's serial output.

use std::collections::VecDeque;
use std::time::Duration;

use crate::judge::{Outcome, Verdict};

/// Lines of serial output shown after a failure.
pub const TAIL_LINES: usize = 40;

/// Passed, failed, skipped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub passed: u64,
    pub failed: u64,
    pub skipped: u64,
}

impl Tally {
    pub fn add(&mut self, other: Tally) {
        self.passed += other.passed;
        self.failed += other.failed;
        self.skipped += other.skipped;
    }

    pub fn count(&mut self, outcome: &Outcome) {
        match outcome {
            Outcome::Passed => self.passed += 1,
            Outcome::Failed(_) => self.failed += 1,
            Outcome::Skipped(_) => self.skipped += 1,
        }
    }

    /// The closing line: `N passed, N failed` plus `, N skipped` when any
    /// were.
    pub fn summary_line(&self) -> String {
        let mut line = format!("{} passed, {} failed", self.passed, self.failed);
        if self.skipped > 0 {
            line += &format!(", {} skipped", self.skipped);
        }
        line
    }
}

/// What boots found: the counts, and each failure's verdict line with the
/// command that reproduces it. The failures are repeated after the closing
/// table, because a log cut to its last lines (as CI shows it) must still
/// name what failed and how to run it again.
#[derive(Debug, Default)]
pub struct Findings {
    pub tally: Tally,
    pub failures: Vec<String>,
}

impl Findings {
    /// Counts a verdict, keeping its line when it failed.
    pub fn record(&mut self, line: String, outcome: &Outcome) {
        match outcome {
            Outcome::Failed(_) => self.fail(line),
            _ => self.tally.count(outcome),
        }
    }

    /// A failure that is no test's verdict (a boot that went wrong).
    pub fn fail(&mut self, line: String) {
        self.tally.failed += 1;
        self.failures.push(line);
    }
}

/// The failures again, printed after the closing table; empty when none.
pub fn recap(failures: &[String]) -> String {
    if failures.is_empty() {
        return String::new();
    }
    let mut out = String::from("failures, again:\n");
    for line in failures {
        out += &format!("  {line}\n");
    }
    out
}

/// `guest bios/smp4 boot::heap_works ... ok (0.41s)`.
pub fn verdict_line(label: &str, verdict: &Verdict) -> String {
    let time = verdict.duration.map(|d| format!(" ({:.2}s)", d.as_secs_f64())).unwrap_or_default();
    let name = &verdict.name;
    match &verdict.outcome {
        Outcome::Passed => format!("guest {label} {name} ... ok{time}"),
        Outcome::Failed(why) => format!("guest {label} {name} ... FAILED{time}: {why}"),
        Outcome::Skipped(why) => format!("guest {label} {name} ... skipped: {why}"),
    }
}

/// A failure that belongs to no single test, on the same pattern.
pub fn boot_failure_line(label: &str, boot: &str, why: &str) -> String {
    format!("guest {label} {boot} ... FAILED: {why}")
}

/// Formats a duration for messages.
pub fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

/// The last lines of a boot's serial output, remembering what was already
/// shown so that two failures in one boot do not print the same lines twice.
#[derive(Debug, Default)]
pub struct Tail {
    lines: VecDeque<(usize, String)>,
    seen: usize,
    shown_up_to: usize,
}

impl Tail {
    pub fn push(&mut self, line: &str) {
        self.seen += 1;
        if self.lines.len() == TAIL_LINES {
            self.lines.pop_front();
        }
        self.lines.push_back((self.seen, line.to_owned()));
    }

    /// The kept lines not shown yet; marks them shown.
    pub fn take_unshown(&mut self) -> Vec<String> {
        let from = self.shown_up_to;
        self.shown_up_to = self.seen;
        self.lines.iter().filter(|(n, _)| *n > from).map(|(_, l)| l.clone()).collect()
    }
}

/// `line` made safe to print on a terminal: firmware output carries escape
/// sequences (OVMF clears the screen) that must not act on the person's
/// terminal. CSI sequences are dropped, other control characters shown as
/// `^X`.
pub fn printable(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' if chars.peek() == Some(&'[') => {
                chars.next();
                // Parameters and intermediates, up to the final byte.
                for c in chars.by_ref() {
                    if ('\x40'..='\x7e').contains(&c) {
                        break;
                    }
                }
            }
            '\t' => out.push(c),
            c if (c as u32) < 0x20 => {
                out.push('^');
                out.push(char::from(b'@' + c as u8));
            }
            c if c.is_control() => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// The closing table of a run over several machines: one row per machine
/// with its verdict, counts and time; why a machine was skipped follows
/// the table, since the way to enable it is long.
pub fn machine_table(machines: &[crate::guest::MachineResult]) -> String {
    let width = machines.iter().map(|m| m.label.len()).max().unwrap_or(0).max("configuration".len());
    let mut out = format!(
        "{:<width$}  {:<7}  {:>6}  {:>6}  {:>7}  {:>8}\n",
        "configuration", "verdict", "passed", "failed", "skipped", "time"
    );
    let mut notes = Vec::new();
    for m in machines {
        let verdict = match (&m.skipped, m.tally) {
            (Some(why), _) => {
                notes.push(format!("{}: skipped: {why}", m.label));
                "SKIP"
            }
            (None, t) if t.failed > 0 => "FAIL",
            (None, t) if t.passed > 0 => "pass",
            (None, _) => "none",
        };
        let time = m.elapsed.map(|d| format!("{:.1} s", d.as_secs_f64())).unwrap_or_else(|| "-".into());
        let t = m.tally;
        out += &format!(
            "{:<width$}  {verdict:<7}  {:>6}  {:>6}  {:>7}  {time:>8}\n",
            m.label, t.passed, t.failed, t.skipped
        );
    }
    for note in notes {
        out += &format!("  {note}\n");
    }
    out
}
