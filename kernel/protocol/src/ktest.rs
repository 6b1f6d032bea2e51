//! The `@@KTEST` lines: the test kernel's list of tests, each test's verdict,
//! and the panic and fault reports (the reference is the crate's comment).

use alloc::borrow::ToOwned;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::{FreeText, ProtocolError, clean_line, number};

/// The prefix that marks a protocol line.
pub const PREFIX: &str = "@@KTEST ";

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

/// The `LIST` line of one test, as the kernel writes it.
#[derive(Clone, Copy, Debug)]
pub struct Listing<'a> {
    pub name: &'a str,
    pub fresh: bool,
    pub min_cpus: usize,
    pub timeout_ms: u64,
    pub expect: Expect,
    pub example: bool,
    /// `k=v;k=v`, or empty.
    pub params: &'a str,
    pub message: &'a str,
    /// `f1,f2,...`, or empty.
    pub backtrace: &'a str,
}

impl fmt::Display for Listing<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{PREFIX}LIST\t{}\tfresh={}\tmin_cpus={}\ttimeout_ms={}\texpect={}\texample={}\tparams={}\tmessage={}\tbacktrace={}",
            self.name,
            u8::from(self.fresh),
            self.min_cpus,
            self.timeout_ms,
            self.expect.name(),
            u8::from(self.example),
            self.params,
            FreeText(self.message),
            self.backtrace,
        )
    }
}

/// Every other `@@KTEST` line, as the kernel writes it (`Display`).
#[derive(Clone, Copy, Debug)]
pub enum Line<'a, M = &'a str> {
    ListEnd { count: usize },
    Begin { name: &'a str },
    Pass { name: &'a str, elapsed_us: u64 },
    Fail { name: &'a str, message: M },
    Skip { name: &'a str, reason: M },
    Panic { cpu: usize, message: M },
    Fault { cpu: usize, message: M },
    Done { passed: u32, failed: u32, skipped: u32 },
}

impl<M: fmt::Display> fmt::Display for Line<'_, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Line::ListEnd { count } => write!(f, "{PREFIX}LIST-END\t{count}"),
            Line::Begin { name } => write!(f, "{PREFIX}BEGIN\t{name}"),
            Line::Pass { name, elapsed_us } => write!(f, "{PREFIX}PASS\t{name}\t{elapsed_us}"),
            Line::Fail { name, message } => write!(f, "{PREFIX}FAIL\t{name}\t{}", FreeText(message)),
            Line::Skip { name, reason } => write!(f, "{PREFIX}SKIP\t{name}\t{}", FreeText(reason)),
            Line::Panic { cpu, message } => write!(f, "{PREFIX}PANIC\t{cpu}\t{}", FreeText(message)),
            Line::Fault { cpu, message } => write!(f, "{PREFIX}FAULT\t{cpu}\t{}", FreeText(message)),
            Line::Done { passed, failed, skipped } => write!(f, "{PREFIX}DONE\t{passed}\t{failed}\t{skipped}"),
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

    /// Writes its `LIST` line (through [`Listing`], as the kernel does).
    pub fn list_line(&self) -> String {
        let params: Vec<String> = self.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let (params, backtrace) = (params.join(";"), self.backtrace.join(","));
        format!(
            "{}",
            Listing {
                name: &self.name,
                fresh: self.fresh,
                min_cpus: self.min_cpus as usize,
                timeout_ms: self.timeout_ms,
                expect: self.expect,
                example: self.example,
                params: &params,
                message: &self.message,
                backtrace: &backtrace,
            }
        )
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

/// Parses one serial line. `Ok(None)` for an ordinary log line, `Ok(Some)`
/// for a protocol line, `Err` for a malformed protocol line. Never panics.
/// A test's `params` are split into `key=value` pairs here; whether they are
/// valid boot parameters is the runner's to check.
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

fn flag(s: &str, what: &str) -> Result<bool, String> {
    match s {
        "0" => Ok(false),
        "1" => Ok(true),
        other => Err(format!("{what}=`{other}` is not 0 or 1")),
    }
}

/// `k=v;k=v` (or empty) into pairs; each needs a key and a `=`.
fn test_params(s: &str) -> Result<Vec<(String, String)>, String> {
    s.split(';')
        .filter(|w| !w.is_empty())
        .map(|w| match w.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
            _ => Err(format!("params: `{w}` is not key=value")),
        })
        .collect()
}
