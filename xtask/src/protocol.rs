//! The guest test protocol: how the test kernel (`tests/guest`) and
//! `cargo xtask test` talk. **This comment is the reference**; the kernel side
//! implements it, this module parses it, [`crate::plan`] and [`crate::judge`]
//! act on it.
//!
//! # Host → guest: boot parameters
//!
//! Boot parameters are `key=value` lines in the loader's ramdisk (see
//! [`bootimage::BootParams`]). The test kernel understands:
//!
//! | parameter | meaning |
//! |---|---|
//! | `ktest.list=1` | print the list of tests (`LIST` lines, then `LIST-END`), then exit with success |
//! | `ktest.run=a,b,c` | run exactly these tests, in this order, then print `DONE` and exit: success if none failed, else failure |
//!
//! Every other parameter is for the kernel itself (e.g. `smp.parallel=0`);
//! the runner passes the user's `-p key=value` and each test's own `params`
//! through unchanged. Test names therefore never contain `,` or whitespace.
//!
//! The runner also sets `smp.expect_cpus=<N>` in every boot, N being the CPU
//! count QEMU was given (`--smp`), so a test can check that all of them came
//! online. A test's `params` and the user's `-p` may override it (see
//! [`crate::plan`] for the order).
//!
//! # Guest → host: exit status
//!
//! The kernel leaves QEMU by writing to the `isa-debug-exit` device at port
//! `0xf4`: `0x10` for success, `0x11` for failure. QEMU then exits with
//! `(value << 1) | 1`, i.e. [`EXIT_SUCCESS`] (33) or [`EXIT_FAILURE`] (35).
//! Any other QEMU exit status (0 after a triple fault or reset with
//! `-no-reboot`, or a signal) means the guest reset or powered off on its own:
//! never a pass.
//!
//! Bochs has no such device: its shutdown port (`0x8900`, written the string
//! `Shutdown`) ends the run with status 1 whatever the verdict. So just before
//! leaving, the kernel prints `@@EXIT\t<success|failure>` on its own line,
//! and the Bochs runner ([`crate::bochs`]) reports a shutdown after that
//! line as status 33 or 35, and one without it as a reset.
//!
//! # Guest → host: serial lines
//!
//! COM1 output is a mix of ordinary log lines (e.g.
//! `[    0.012345 cpu0] INFO  kernel: ...`), which the runner only saves and
//! shows, and *protocol lines*, which:
//!
//! - start at column 0 with `@@KTEST ` (note the space) and a keyword;
//! - separate the keyword and every field after it by one TAB (`\t`);
//! - end with `\n`; a trailing `\r` is ignored, and so are terminal escape
//!   sequences *before* the prefix (OVMF leaves some on the line the kernel
//!   starts writing on);
//! - must be written whole, under the kernel's console lock, so that lines
//!   from several CPUs never interleave inside one line.
//!
//! | line | when |
//! |---|---|
//! | `@@KTEST LIST\t<name>\tfresh=<0\|1>\tmin_cpus=<n>\ttimeout_ms=<n>\texpect=<ok\|panic\|fault>\texample=<0\|1>\tparams=<k=v;k=v or empty>\tmessage=<text or empty>\tbacktrace=<f1,f2,... or empty>` | once per test, with `ktest.list=1` |
//! | `@@KTEST LIST-END\t<count>` | after the last `LIST` line; `count` = number of `LIST` lines |
//! | `@@KTEST BEGIN\t<name>` | a test starts |
//! | `@@KTEST PASS\t<name>\t<elapsed_us>` | it returned successfully after `elapsed_us` µs |
//! | `@@KTEST FAIL\t<name>\t<message>` | it failed (an assertion that does not bring the kernel down); the run goes on |
//! | `@@KTEST SKIP\t<name>\t<reason>` | it did not run, e.g. fewer CPUs came online than it needs |
//! | `@@KTEST PANIC\t<cpu>\t<message and location>` | the panic handler, on CPU `cpu`; the guest then exits with failure |
//! | `@@KTEST FAULT\t<cpu>\t<exception name and details>` | a fatal CPU exception handler; the guest then exits with failure |
//! | `@@KTEST DONE\t<passed>\t<failed>\t<skipped>` | after the last test of `ktest.run`, just before exiting |
//!
//! `LIST` fields after the name are `key=value` (split at the first `=`, so a
//! `message` may contain `=`) and may come in any order; the first seven keys
//! are required, `backtrace` is optional (absent: empty) and unknown keys are
//! ignored, so the kernel can add keys without breaking an older runner.
//! Their meaning:
//!
//! - `fresh=1`: the test needs a kernel nobody else has run in (it gets its
//!   own boot);
//! - `min_cpus`: the CPUs it needs; with fewer (`--smp`) it is skipped
//!   without booting;
//! - `timeout_ms`: its time budget; a boot may take a firmware allowance plus
//!   the sum of its tests' budgets before it is declared hung;
//! - `expect`: `ok` (must return), `panic` or `fault` (must bring the kernel
//!   down with a `PANIC`/`FAULT` line whose text contains `message`, and the
//!   guest must then exit with failure);
//! - `example=1`: a demonstration (e.g. a deliberately failing test), run only
//!   with `--examples`;
//! - `params`: extra boot parameters the test needs, `;`-separated (the test
//!   gets its own boot);
//! - `backtrace`: for `expect=panic|fault`, function names, innermost first,
//!   that the symbolized backtrace of the crashing CPU must show in this
//!   order (see [`crate::judge`]).
//!
//! # Guest → host: backtraces
//!
//! The kernel prints stack traces (on a panic before its `PANIC` line, for
//! every CPU a crash stop halted, for fatal exceptions, from the cross-call
//! watchdog) as lines of their own, also at column 0 and TAB-separated:
//!
//! | line | meaning |
//! |---|---|
//! | `@@BT\t<cpu>\t<depth>\t<address>\t<kernel base>` | frame `depth` (0 innermost) of CPU `cpu`'s stack; `address` (hex, `0x`) is a return address minus one, so inside the call instruction; the ELF address is `address - kernel base` |
//! | `@@BT-END\t<cpu>\t<why the walk ended>` | after the last frame of a walk |
//!
//! They are not `@@KTEST` lines: [`parse_line`] leaves them alone, and
//! [`parse_backtrace_line`] reads them. The runner shows them symbolized
//! (see [`crate::backtrace`]).
//!
//! The last field of `FAIL`, `SKIP`, `PANIC` and `FAULT` is free text and may
//! itself contain TABs. A line that starts with `@@KTEST ` but does not parse
//! is a protocol error, which the runner reports as a failure rather than
//! ignoring it: a silently misread line could hide a test.

use std::fmt;

/// The prefix that marks a protocol line.
pub const PREFIX: &str = "@@KTEST ";

/// What the demonstration kernel's console prints (on COM1) once it takes
/// commands (`kernel/diag/src/shell/mod.rs`): input piped to `cargo xtask qemu
/// --keep-running` is held back until then.
pub const CONSOLE_READY: &str = "console ready";

/// QEMU's exit status when the guest wrote `0x10` (success) to isa-debug-exit.
pub const EXIT_SUCCESS: i32 = 33;
/// QEMU's exit status when the guest wrote `0x11` (failure) to isa-debug-exit.
pub const EXIT_FAILURE: i32 = 35;

/// What a test must do to pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Return normally (`PASS`).
    Ok,
    /// Bring the kernel down through the panic handler (`PANIC`).
    Panic,
    /// Bring the kernel down through a fatal exception handler (`FAULT`).
    Fault,
}

impl Expect {
    pub fn name(self) -> &'static str {
        match self {
            Expect::Ok => "ok",
            Expect::Panic => "panic",
            Expect::Fault => "fault",
        }
    }
}

/// One test as announced by a `LIST` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestInfo {
    pub name: String,
    pub fresh: bool,
    pub min_cpus: u32,
    pub timeout_ms: u64,
    pub expect: Expect,
    pub example: bool,
    /// Extra boot parameters, in the order listed.
    pub params: Vec<(String, String)>,
    /// For `expect=panic|fault`: text the PANIC/FAULT line must contain
    /// (empty: any).
    pub message: String,
    /// For `expect=panic|fault`: functions (innermost first) the crashing
    /// CPU's symbolized backtrace must name, in this order (empty: none).
    pub backtrace: Vec<String>,
}

impl TestInfo {
    /// A test that runs in a shared boot by default: handy for tests and
    /// callers that only care about a few fields.
    pub fn new(name: &str) -> Self {
        TestInfo {
            name: name.to_owned(),
            fresh: false,
            min_cpus: 1,
            timeout_ms: 1000,
            expect: Expect::Ok,
            example: false,
            params: Vec::new(),
            message: String::new(),
            backtrace: Vec::new(),
        }
    }

    /// Whether the test may share a boot with others: it must neither need a
    /// pristine kernel, nor bring the kernel down, nor change its parameters.
    pub fn can_share_boot(&self) -> bool {
        !self.fresh && self.expect == Expect::Ok && self.params.is_empty()
    }
}

/// A parsed protocol line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    List(TestInfo),
    ListEnd { count: usize },
    Begin { name: String },
    Pass { name: String, elapsed_us: u64 },
    Fail { name: String, message: String },
    Skip { name: String, reason: String },
    Panic { cpu: u32, message: String },
    Fault { cpu: u32, message: String },
    Done { passed: u32, failed: u32, skipped: u32 },
}

/// A line that starts with [`PREFIX`] but breaks the protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProtocolError {
    pub line: String,
    pub reason: String,
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} in protocol line {:?}", self.reason, self.line)
    }
}

impl std::error::Error for ProtocolError {}

/// Removes what serial output carries around a line but is not part of it: a
/// trailing `\r` (and `\n`), and terminal escape sequences or other control
/// characters at the start.
pub fn clean_line(raw: &str) -> &str {
    let mut s = raw.trim_end_matches(['\n', '\r']);
    loop {
        let mut chars = s.chars();
        match chars.next() {
            // CSI: ESC [ parameters... final byte in 0x40..=0x7e.
            Some('\x1b') if s[1..].starts_with('[') => {
                let rest = &s[2..];
                match rest.find(|c: char| ('\x40'..='\x7e').contains(&c)) {
                    Some(end) => s = &rest[end + 1..],
                    None => return "",
                }
            }
            // Any other escape: ESC plus one character.
            Some('\x1b') => {
                chars.next();
                s = chars.as_str();
            }
            Some(c) if c.is_control() && c != '\t' => s = chars.as_str(),
            _ => return s,
        }
    }
}

/// Parses one serial line. `Ok(None)` for an ordinary log line, `Ok(Some)`
/// for a protocol line, `Err` for a malformed protocol line. Never panics.
pub fn parse_line(raw: &str) -> Result<Option<Event>, ProtocolError> {
    let line = clean_line(raw);
    let Some(body) = line.strip_prefix(PREFIX) else {
        return Ok(None);
    };
    let err = |reason: String| ProtocolError { line: line.to_owned(), reason };
    let (keyword, rest) = match body.split_once('\t') {
        Some((k, r)) => (k, Some(r)),
        None => (body, None),
    };
    // Each keyword takes a fixed number of fields; the last one of the
    // free-text kinds keeps any TABs it contains.
    let fields = |n: usize| -> Result<Vec<&str>, ProtocolError> {
        let rest = rest.ok_or_else(|| err(format!("`{keyword}` needs {n} field(s), got none")))?;
        let parts: Vec<&str> = rest.splitn(n, '\t').collect();
        if parts.len() != n {
            return Err(err(format!("`{keyword}` needs {n} field(s), got {}", parts.len())));
        }
        Ok(parts)
    };
    let exact = |n: usize| -> Result<Vec<&str>, ProtocolError> {
        let parts: Vec<&str> = rest.map(|r| r.split('\t').collect()).unwrap_or_default();
        if parts.len() != n {
            return Err(err(format!("`{keyword}` needs exactly {n} field(s), got {}", parts.len())));
        }
        Ok(parts)
    };
    let event = match keyword {
        "LIST" => {
            let rest = rest.ok_or_else(|| err("`LIST` without a test name".into()))?;
            Event::List(parse_list_fields(rest).map_err(err)?)
        }
        "LIST-END" => {
            let f = exact(1)?;
            Event::ListEnd { count: number(f[0], "count").map_err(err)? }
        }
        "BEGIN" => {
            let f = exact(1)?;
            Event::Begin { name: test_name(f[0]).map_err(err)? }
        }
        "PASS" => {
            let f = exact(2)?;
            Event::Pass { name: test_name(f[0]).map_err(err)?, elapsed_us: number(f[1], "elapsed_us").map_err(err)? }
        }
        "FAIL" => {
            let f = fields(2)?;
            Event::Fail { name: test_name(f[0]).map_err(err)?, message: f[1].to_owned() }
        }
        "SKIP" => {
            let f = fields(2)?;
            Event::Skip { name: test_name(f[0]).map_err(err)?, reason: f[1].to_owned() }
        }
        "PANIC" | "FAULT" => {
            let f = fields(2)?;
            let cpu = number(f[0], "cpu").map_err(err)?;
            let message = f[1].to_owned();
            if keyword == "PANIC" { Event::Panic { cpu, message } } else { Event::Fault { cpu, message } }
        }
        "DONE" => {
            let f = exact(3)?;
            Event::Done {
                passed: number(f[0], "passed").map_err(err)?,
                failed: number(f[1], "failed").map_err(err)?,
                skipped: number(f[2], "skipped").map_err(err)?,
            }
        }
        other => return Err(err(format!("unknown keyword `{other}`"))),
    };
    Ok(Some(event))
}

fn parse_list_fields(rest: &str) -> Result<TestInfo, String> {
    let mut parts = rest.split('\t');
    let name = test_name(parts.next().unwrap_or(""))?;
    let (mut fresh, mut min_cpus, mut timeout_ms, mut expect, mut example, mut params, mut message) =
        (None, None, None, None, None, None, None);
    let mut backtrace = Vec::new();
    for part in parts {
        let Some((key, value)) = part.split_once('=') else {
            return Err(format!("field `{part}` of test `{name}` is not key=value"));
        };
        match key {
            "fresh" => fresh = Some(flag(value, key)?),
            "min_cpus" => min_cpus = Some(number(value, key)?),
            "timeout_ms" => timeout_ms = Some(number(value, key)?),
            "expect" => {
                expect = Some(match value {
                    "ok" => Expect::Ok,
                    "panic" => Expect::Panic,
                    "fault" => Expect::Fault,
                    other => return Err(format!("expect=`{other}` is not ok, panic or fault")),
                })
            }
            "example" => example = Some(flag(value, key)?),
            "params" => params = Some(test_params(value)?),
            "message" => message = Some(value.to_owned()),
            "backtrace" => {
                backtrace = value.split(',').map(str::trim).filter(|f| !f.is_empty()).map(String::from).collect()
            }
            // Unknown keys: a newer kernel may say more than we understand.
            _ => {}
        }
    }
    let missing = |key: &str| format!("test `{name}` lacks the `{key}=` field");
    Ok(TestInfo {
        fresh: fresh.ok_or_else(|| missing("fresh"))?,
        min_cpus: min_cpus.ok_or_else(|| missing("min_cpus"))?,
        timeout_ms: timeout_ms.ok_or_else(|| missing("timeout_ms"))?,
        expect: expect.ok_or_else(|| missing("expect"))?,
        example: example.ok_or_else(|| missing("example"))?,
        params: params.ok_or_else(|| missing("params"))?,
        message: message.ok_or_else(|| missing("message"))?,
        backtrace,
        name,
    })
}

/// Test names travel in `ktest.run=a,b` and in TAB-separated fields.
fn test_name(s: &str) -> Result<String, String> {
    if s.is_empty() {
        return Err("empty test name".into());
    }
    if s.contains(|c: char| c == ',' || c.is_whitespace() || c.is_control()) {
        return Err(format!("test name `{s}` contains `,`, whitespace or a control character"));
    }
    Ok(s.to_owned())
}

fn number<T: std::str::FromStr>(s: &str, what: &str) -> Result<T, String> {
    s.parse().map_err(|_| format!("{what} `{s}` is not a number"))
}

fn flag(s: &str, what: &str) -> Result<bool, String> {
    match s {
        "0" => Ok(false),
        "1" => Ok(true),
        other => Err(format!("{what}=`{other}` is not 0 or 1")),
    }
}

/// `k=v;k=v` (or empty), validated with the same rules as `-p`.
fn test_params(s: &str) -> Result<Vec<(String, String)>, String> {
    let words: Vec<&str> = s.split(';').filter(|w| !w.is_empty()).collect();
    bootimage::BootParams::parse(words.iter().copied()).map_err(|e| format!("params: {e}"))?;
    Ok(words.iter().filter_map(|w| w.split_once('=')).map(|(k, v)| (k.to_owned(), v.to_owned())).collect())
}

/// The `LIST` line the kernel prints for `test` (used by the tests of this
/// crate and as an executable statement of the format).
pub fn format_list_line(test: &TestInfo) -> String {
    let params: Vec<String> = test.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!(
        "{PREFIX}LIST\t{}\tfresh={}\tmin_cpus={}\ttimeout_ms={}\texpect={}\texample={}\tparams={}\tmessage={}\tbacktrace={}",
        test.name,
        u8::from(test.fresh),
        test.min_cpus,
        test.timeout_ms,
        test.expect.name(),
        u8::from(test.example),
        params.join(";"),
        test.message,
        test.backtrace.join(","),
    )
}

/// The prefix of the backtrace lines (`@@BT` and `@@BT-END`).
pub const BT_PREFIX: &str = "@@BT";

/// A parsed backtrace line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BtLine {
    /// Frame `depth` of CPU `cpu`: `address` is a runtime address inside a
    /// call instruction, `base` where the kernel image was loaded.
    Frame { cpu: u32, depth: u32, address: u64, base: u64 },
    /// CPU `cpu`'s walk ended, for the reason given.
    End { cpu: u32, why: String },
}

impl BtLine {
    pub fn cpu(&self) -> u32 {
        match self {
            BtLine::Frame { cpu, .. } | BtLine::End { cpu, .. } => *cpu,
        }
    }
}

/// Parses a backtrace line: `Ok(None)` for any other line, `Err` for a
/// malformed one. Never panics.
pub fn parse_backtrace_line(raw: &str) -> Result<Option<BtLine>, ProtocolError> {
    let line = clean_line(raw);
    let err = |reason: String| ProtocolError { line: line.to_owned(), reason };
    if let Some(rest) = line.strip_prefix("@@BT-END\t") {
        let (cpu, why) = rest.split_once('\t').unwrap_or((rest, ""));
        return Ok(Some(BtLine::End { cpu: number(cpu, "cpu").map_err(err)?, why: why.to_owned() }));
    }
    let Some(rest) = line.strip_prefix("@@BT\t") else {
        return Ok(None);
    };
    let f: Vec<&str> = rest.split('\t').collect();
    let [cpu, depth, address, base] = f[..] else {
        return Err(err(format!("`@@BT` needs exactly 4 fields, got {}", f.len())));
    };
    Ok(Some(BtLine::Frame {
        cpu: number(cpu, "cpu").map_err(err)?,
        depth: number(depth, "depth").map_err(err)?,
        address: hex(address, "address").map_err(err)?,
        base: hex(base, "kernel base").map_err(err)?,
    }))
}

/// `0x`-prefixed hexadecimal, as the kernel prints addresses.
fn hex(s: &str, what: &str) -> Result<u64, String> {
    s.strip_prefix("0x")
        .and_then(|digits| u64::from_str_radix(digits, 16).ok())
        .ok_or_else(|| format!("{what} `{s}` is not a 0x-prefixed hex number"))
}
