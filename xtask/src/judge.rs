//! Judging a boot: from the guest's serial lines and how QEMU ended, the
//! verdict of every test the boot was planned to run.
//!
//! [`Judge`] is fed line by line, so verdicts can be printed as they arrive,
//! and is finished with QEMU's exit; [`judge`] does both over a recorded
//! transcript. Neither touches QEMU, the clock or the terminal.
//!
//! Rules (see [`crate::protocol`] for the lines):
//! - `PASS` passes an `expect=ok` test; `FAIL` fails it with its message;
//!   `SKIP` skips it. `PASS` of an `expect=panic|fault` test fails it.
//! - `PANIC`/`FAULT` while an `expect=ok` test is begun fails that test with
//!   the crash text at once.
//! - An `expect=panic` (`fault`) test passes iff a `PANIC` (`FAULT`) line came
//!   while it was begun, its text contains the test's `message`, and QEMU
//!   exited with failure (35), and, if the test lists a `backtrace`, the
//!   crashing CPU's last backtrace before the crash line names those
//!   functions in that order, each with a file and line (see
//!   [`crate::backtrace::check_required`]). Anything else fails it, with the
//!   reason.
//! - When the boot ends, a begun test without a verdict fails: `hung: no
//!   verdict after X s` (time limit), `guest reset (triple fault?)` (any QEMU
//!   status but 33/35), or `no verdict` (33/35 without a crash line).
//! - Tests of the boot that never began: after a success exit (33) they fail
//!   (`no verdict`); after a crash, hang or reset they go to
//!   [`BootReport::rerun`] for a new boot if this boot judged at least one
//!   test (so re-running always makes progress), else they fail with the
//!   reason the boot went down.
//! - Problems that belong to no test (a crash or hang between tests, a
//!   malformed protocol line, a verdict for a test not in the boot, an exit
//!   status that contradicts the verdicts, a `DONE` count that disagrees) are
//!   [`BootReport::boot_failures`]; each counts as one failure.

use std::fmt;
use std::rc::Rc;
use std::time::Duration;

use crate::backtrace::{self, Symbols, Trace, Traces};
use crate::protocol::{self, EXIT_FAILURE, EXIT_SUCCESS, Event, Expect, TestInfo};

/// How QEMU ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// QEMU exited by itself with this status.
    Code(i32),
    /// QEMU was killed by this signal, not by us.
    Signal(i32),
    /// The boot ran past its time limit and we killed QEMU.
    TimedOut,
}

/// A test's result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    Failed(String),
    Skipped(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub name: String,
    pub outcome: Outcome,
    /// The guest's own time for a pass, else the time from `BEGIN` to the
    /// verdict as the host saw it; `None` if the test never began.
    pub duration: Option<Duration>,
}

/// Everything a finished boot says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BootReport {
    /// One verdict per judged test, in the order reached (the ones
    /// [`Judge::feed`] returned come first, in the same order).
    pub verdicts: Vec<Verdict>,
    /// Failures that belong to no single test.
    pub boot_failures: Vec<String>,
    /// Tests that never began because the boot went down: run them again.
    pub rerun: Vec<TestInfo>,
    /// How the boot ended, in words.
    pub ending: String,
    /// The backtrace the crashing CPU printed before its `PANIC`/`FAULT`
    /// line, symbolized, if there was a crash and a backtrace.
    pub crash_trace: Option<Trace>,
}

impl BootReport {
    pub fn has_failures(&self) -> bool {
        !self.boot_failures.is_empty() || self.verdicts.iter().any(|v| matches!(v.outcome, Outcome::Failed(_)))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Pending,
    Running { since: Duration },
    Judged,
}

#[derive(Clone, Debug)]
struct Crash {
    kind: Expect,
    cpu: u32,
    message: String,
    /// The test begun (and not yet judged) when the crash line came.
    during: Option<usize>,
    at: Duration,
    /// The crashing CPU's latest backtrace.
    trace: Option<Trace>,
}

impl Crash {
    fn describe(&self) -> String {
        match self.kind {
            Expect::Fault => format!("CPU fault on cpu {}: {}", self.cpu, self.message),
            _ => format!("panicked on cpu {}: {}", self.cpu, self.message),
        }
    }
}

/// The classes of QEMU endings the rules distinguish.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    Success,
    Failure,
    Hang,
    Reset,
}

/// Where the judge gets symbols from; a wrapper for `Debug`.
#[derive(Clone)]
struct SymbolSource(Rc<dyn Symbols>);

impl fmt::Debug for SymbolSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SymbolSource")
    }
}

/// Incremental judge of one boot.
#[derive(Debug)]
pub struct Judge {
    symbols: SymbolSource,
    /// Backtraces since the current test began.
    traces: Traces,
    tests: Vec<TestInfo>,
    state: Vec<State>,
    running: Option<usize>,
    crash: Option<Crash>,
    done: Option<(u32, u32, u32)>,
    /// Verdicts that came from the guest's own PASS/FAIL/SKIP lines, to
    /// check `DONE` and the exit status against.
    reported: (u32, u32, u32),
    last_judged: Option<usize>,
    verdicts: Vec<Verdict>,
    boot_failures: Vec<String>,
    saw_list: bool,
}

impl Judge {
    /// A judge for a boot that runs `tests` (in this order).
    pub fn new(tests: Vec<TestInfo>) -> Self {
        Judge {
            symbols: SymbolSource(backtrace::no_symbols()),
            traces: Traces::default(),
            state: vec![State::Pending; tests.len()],
            tests,
            running: None,
            crash: None,
            done: None,
            reported: (0, 0, 0),
            last_judged: None,
            verdicts: Vec::new(),
            boot_failures: Vec::new(),
            saw_list: false,
        }
    }

    /// Symbolizes backtraces with `symbols` (without, a test that requires
    /// a backtrace cannot pass).
    pub fn with_symbols(mut self, symbols: Rc<dyn Symbols>) -> Self {
        self.symbols = SymbolSource(symbols);
        self
    }

    /// The crashing CPU's backtrace, once a crash line came.
    pub fn crash_trace(&self) -> Option<&Trace> {
        self.crash.as_ref().and_then(|c| c.trace.as_ref())
    }

    /// Takes one serial line, seen `at` after QEMU started; returns the
    /// verdicts it settles.
    pub fn feed(&mut self, at: Duration, line: &str) -> Vec<Verdict> {
        let first_new = self.verdicts.len();
        match protocol::parse_backtrace_line(line) {
            Ok(Some(bt)) => {
                self.traces.feed(bt, self.symbols.0.as_ref());
                return Vec::new();
            }
            Ok(None) => {}
            Err(e) => {
                self.boot_failures.push(format!("protocol error: {e}"));
                return Vec::new();
            }
        }
        match protocol::parse_line(line) {
            Ok(None) => {}
            Ok(Some(event)) => self.event(at, event),
            Err(e) => self.boot_failures.push(format!("protocol error: {e}")),
        }
        self.verdicts[first_new..].to_vec()
    }

    fn event(&mut self, at: Duration, event: Event) {
        match event {
            Event::Begin { name } => {
                let Some(i) = self.lookup(&name, "BEGIN") else {
                    return;
                };
                if let Some(r) = self.running.filter(|&r| r != i) {
                    let why = format!("no verdict: the guest began `{name}` without finishing this test");
                    self.settle(r, Outcome::Failed(why), at, None);
                }
                if self.state[i] == State::Pending {
                    self.state[i] = State::Running { since: at };
                }
                // A backtrace from before this test says nothing about it.
                self.traces.clear();
                self.running = Some(i);
            }
            Event::Pass { name, elapsed_us } => {
                let Some(i) = self.lookup(&name, "PASS") else {
                    return;
                };
                self.reported.0 += 1;
                let outcome = match self.tests[i].expect {
                    Expect::Ok => Outcome::Passed,
                    kind => Outcome::Failed(format!("expected a {}, but the test returned", kind.name())),
                };
                self.settle(i, outcome, at, Some(Duration::from_micros(elapsed_us)));
            }
            Event::Fail { name, message } => {
                let Some(i) = self.lookup(&name, "FAIL") else {
                    return;
                };
                self.reported.1 += 1;
                self.settle(i, Outcome::Failed(message), at, None);
            }
            Event::Skip { name, reason } => {
                let Some(i) = self.lookup(&name, "SKIP") else {
                    return;
                };
                self.reported.2 += 1;
                self.settle(i, Outcome::Skipped(reason), at, None);
            }
            Event::Panic { cpu, message } => self.crashed(at, Expect::Panic, cpu, message),
            Event::Fault { cpu, message } => self.crashed(at, Expect::Fault, cpu, message),
            Event::Done { passed, failed, skipped } => self.done = Some((passed, failed, skipped)),
            Event::List(_) | Event::ListEnd { .. } => {
                if !self.saw_list {
                    self.saw_list = true;
                    self.boot_failures
                        .push("protocol error: LIST lines in a test run (did the kernel ignore ktest.run?)".into());
                }
            }
        }
    }

    /// The index of a test of this boot that still awaits its verdict.
    fn lookup(&mut self, name: &str, keyword: &str) -> Option<usize> {
        match self.tests.iter().position(|t| t.name == name) {
            None => {
                self.boot_failures
                    .push(format!("protocol error: {keyword} for `{name}`, which this boot was not asked to run"));
                None
            }
            Some(i) if self.state[i] == State::Judged => {
                self.boot_failures.push(format!("protocol error: {keyword} for `{name}`, which already has a verdict"));
                None
            }
            Some(i) => Some(i),
        }
    }

    fn crashed(&mut self, at: Duration, kind: Expect, cpu: u32, message: String) {
        // Other CPUs may report the same disaster; the first report is the
        // one that counts, the rest are in the log.
        if self.crash.is_some() {
            return;
        }
        let trace = self.traces.get(cpu).cloned();
        let crash = Crash { kind, cpu, message, during: self.running, at, trace };
        if let Some(r) = self.running {
            let expect = self.tests[r].expect;
            if expect == Expect::Ok {
                self.settle(r, Outcome::Failed(crash.describe()), at, None);
            } else if expect != kind {
                let why = format!("expected a {}, got: {}", expect.name(), crash.describe());
                self.settle(r, Outcome::Failed(why), at, None);
            }
            // The expected kind: the verdict waits for QEMU's exit status.
        }
        self.crash = Some(crash);
    }

    fn settle(&mut self, i: usize, outcome: Outcome, at: Duration, duration: Option<Duration>) {
        let duration = duration.or(match self.state[i] {
            State::Running { since } => Some(at.saturating_sub(since)),
            _ => None,
        });
        self.state[i] = State::Judged;
        if self.running == Some(i) {
            self.running = None;
        }
        self.last_judged = Some(i);
        self.verdicts.push(Verdict { name: self.tests[i].name.clone(), outcome, duration });
    }

    /// QEMU ended `at` after it started, in the way `exit` says.
    pub fn finish(mut self, exit: Exit, at: Duration) -> BootReport {
        let (end, ending) = match exit {
            Exit::Code(EXIT_SUCCESS) => (End::Success, format!("guest exited with success ({EXIT_SUCCESS})")),
            Exit::Code(EXIT_FAILURE) => (End::Failure, format!("guest exited with failure ({EXIT_FAILURE})")),
            Exit::TimedOut => (End::Hang, format!("guest hung: killed after {:.1} s", at.as_secs_f64())),
            Exit::Code(c) => (End::Reset, unexpected_exit(c)),
            Exit::Signal(s) => (End::Reset, format!("QEMU was killed by signal {s}")),
        };

        let begun_unjudged = self.running.is_some();
        if let Some(r) = self.running {
            let outcome = self.unfinished_test(r, end, &ending, at);
            // An expected crash ends the test when it is reported, not when
            // QEMU is done exiting.
            let crash_at = self.crash.as_ref().filter(|c| c.during == Some(r)).map(|c| c.at);
            self.settle(r, outcome, crash_at.unwrap_or(at), None);
        }

        if let Some(crash) = &self.crash
            && crash.during.is_none()
        {
            let place = self.place();
            self.boot_failures.push(format!("{} ({place})", crash.describe()));
        }

        let pending: Vec<usize> = (0..self.tests.len()).filter(|&i| self.state[i] == State::Pending).collect();
        let progressed = !self.verdicts.is_empty();
        // Success with a FAIL line is normal; failure with one is too.
        let clean_failure = end == End::Failure && self.reported.1 > 0;
        let abnormal =
            self.crash.is_some() || matches!(end, End::Hang | End::Reset) || (end == End::Failure && !clean_failure);

        // An ending no test explains (a hang or reset between tests, a failure
        // exit without a failing test) must still be reported, once.
        if abnormal && !begun_unjudged && self.crash.is_none() && (progressed || pending.is_empty()) {
            let place = self.place();
            self.boot_failures.push(format!("{ending} ({place})"));
        }

        let mut rerun = Vec::new();
        for i in pending {
            if !abnormal {
                let why = format!("no verdict: the {ending} without running this test");
                self.settle(i, Outcome::Failed(why), at, None);
            } else if progressed {
                rerun.push(self.tests[i].clone());
            } else {
                let why = match &self.crash {
                    Some(crash) => format!("not run: the boot went down before it began: {}", crash.describe()),
                    None => format!("not run: the boot went down before it began: {ending}"),
                };
                self.settle(i, Outcome::Failed(why), at, None);
            }
        }

        if end == End::Success && self.reported.1 > 0 {
            self.boot_failures.push(format!(
                "the guest exited with success ({EXIT_SUCCESS}) although {} test(s) failed",
                self.reported.1
            ));
        }
        if let Some(done) = self.done
            && self.crash.is_none()
            && done != self.reported
        {
            self.boot_failures.push(format!(
                "DONE says {} passed, {} failed, {} skipped; the guest's own verdict lines say {} passed, {} failed, {} skipped",
                done.0, done.1, done.2, self.reported.0, self.reported.1, self.reported.2
            ));
        }

        let crash_trace = self.crash.and_then(|c| c.trace);
        BootReport { verdicts: self.verdicts, boot_failures: self.boot_failures, rerun, ending, crash_trace }
    }

    /// The verdict of test `r`, begun but without a verdict when QEMU ended.
    fn unfinished_test(&self, r: usize, end: End, ending: &str, at: Duration) -> Outcome {
        let test = &self.tests[r];
        let since = match self.state[r] {
            State::Running { since } => since,
            _ => at,
        };
        let waited = at.saturating_sub(since).as_secs_f64();
        let kind = test.expect.name();
        let expected_crash =
            self.crash.as_ref().filter(|c| c.during == Some(r) && c.kind == test.expect && test.expect != Expect::Ok);
        match (expected_crash, end) {
            (Some(crash), End::Failure) if crash.message.contains(&test.message) => {
                match backtrace::check_required(&test.backtrace, crash.cpu, crash.trace.as_ref()) {
                    Ok(()) => Outcome::Passed,
                    Err(why) => Outcome::Failed(format!("{kind} as expected, but {why}")),
                }
            }
            (Some(crash), End::Failure) => Outcome::Failed(format!(
                "{kind} as expected, but its text {:?} does not contain {:?}",
                crash.message, test.message
            )),
            (Some(_), End::Hang) => Outcome::Failed(format!(
                "hung: the expected {kind} came, but the guest did not exit within {waited:.1} s"
            )),
            (Some(_), _) => Outcome::Failed(format!(
                "the expected {kind} came, but then the {ending} instead of exiting with failure ({EXIT_FAILURE})"
            )),
            (None, End::Hang) if test.expect != Expect::Ok => {
                Outcome::Failed(format!("hung: expected a {kind}, no verdict after {waited:.1} s"))
            }
            (None, End::Hang) => Outcome::Failed(format!("hung: no verdict after {waited:.1} s")),
            (None, End::Reset) => Outcome::Failed(format!("{ending} during the test")),
            (None, _) if test.expect != Expect::Ok => {
                Outcome::Failed(format!("expected a {kind}, but the {ending} without one"))
            }
            (None, _) => Outcome::Failed(format!("no verdict: the {ending} during the test")),
        }
    }

    /// Where in the run we are, for reports that belong to no test.
    fn place(&self) -> String {
        match self.last_judged {
            Some(i) => format!("outside any test, after `{}`", self.tests[i].name),
            None => "before the first test began".into(),
        }
    }
}

/// What a QEMU exit status other than 33/35 means.
pub fn unexpected_exit(code: i32) -> String {
    // The emulators' own errors (bad arguments, unreadable image, a Bochs
    // panic) also exit with 1.
    let hint = if code == 1 { "; 1 is also the emulator's own error status, see its messages" } else { "" };
    format!("guest reset (triple fault?) or powered off unexpectedly (emulator exit status {code}{hint})")
}

/// Judges a recorded boot: `lines` with the time each was seen (the tests'
/// way in; a live boot feeds a [`Judge`] as lines arrive).
#[cfg(test)]
pub fn judge<'a>(
    tests: &[TestInfo],
    lines: impl IntoIterator<Item = (Duration, &'a str)>,
    exit: Exit,
    at: Duration,
) -> BootReport {
    judge_with_symbols(tests, lines, exit, at, backtrace::no_symbols())
}

/// [`judge`], with backtraces symbolized by `symbols`.
#[cfg(test)]
pub fn judge_with_symbols<'a>(
    tests: &[TestInfo],
    lines: impl IntoIterator<Item = (Duration, &'a str)>,
    exit: Exit,
    at: Duration,
    symbols: Rc<dyn Symbols>,
) -> BootReport {
    let mut judge = Judge::new(tests.to_vec()).with_symbols(symbols);
    for (t, line) in lines {
        judge.feed(t, line);
    }
    judge.finish(exit, at)
}

/// Collects the test list from a `ktest.list=1` boot.
#[derive(Debug, Default)]
pub struct ListJudge {
    tests: Vec<TestInfo>,
    end: Option<usize>,
    errors: Vec<String>,
}

impl ListJudge {
    pub fn feed(&mut self, line: &str) {
        match protocol::parse_line(line) {
            Ok(Some(Event::List(test))) => {
                if self.end.is_some() {
                    self.errors.push(format!("LIST line for `{}` after LIST-END", test.name));
                } else if self.tests.iter().any(|t| t.name == test.name) {
                    self.errors.push(format!("test `{}` listed twice", test.name));
                } else {
                    self.tests.push(test);
                }
            }
            Ok(Some(Event::ListEnd { count })) => self.end = Some(count),
            Ok(Some(Event::Panic { cpu, message })) => {
                self.errors.push(format!("panicked on cpu {cpu}: {message}"));
            }
            Ok(Some(Event::Fault { cpu, message })) => {
                self.errors.push(format!("CPU fault on cpu {cpu}: {message}"));
            }
            Ok(Some(other)) => self.errors.push(format!("unexpected protocol line in a list boot: {other:?}")),
            Ok(None) => {}
            Err(e) => self.errors.push(e.to_string()),
        }
    }

    /// The list, or why it cannot be trusted.
    pub fn finish(self, exit: Exit) -> Result<Vec<TestInfo>, String> {
        let mut errors = self.errors;
        match exit {
            Exit::Code(EXIT_SUCCESS) => {}
            Exit::Code(EXIT_FAILURE) => errors.push(format!("guest exited with failure ({EXIT_FAILURE})")),
            Exit::Code(c) => errors.push(unexpected_exit(c)),
            Exit::Signal(s) => errors.push(format!("QEMU was killed by signal {s}")),
            Exit::TimedOut => errors.push("guest hung: no end of the list in time".into()),
        }
        match self.end {
            None => errors.push("no LIST-END line".into()),
            Some(n) if n != self.tests.len() => {
                errors.push(format!("LIST-END says {n} tests but {} were listed", self.tests.len()))
            }
            Some(_) => {}
        }
        if errors.is_empty() { Ok(self.tests) } else { Err(errors.join("; ")) }
    }
}
