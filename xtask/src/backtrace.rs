//! Backtraces from the guest: the kernel prints raw `@@BT` lines (see
//! [`crate::protocol`]); this turns them into `function at file:line`, for
//! people and for the judge. Pure: the symbols come from a [`Symbols`]
//! (in practice [`crate::symbols::Symbolizer`] over the kernel ELF; in
//! tests, a closure).

use std::collections::BTreeMap;
use std::fmt;
use std::rc::Rc;

use crate::protocol::{BT_PREFIX, BtLine, parse_backtrace_line};

/// One source-level frame at an address: a function (maybe inlined into
/// the next frame) and where in it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceFrame {
    /// Demangled, without the hash: `guest_tests::debug::deep_two`.
    pub function: Option<String>,
    /// Relative to the workspace when inside it.
    pub file: Option<String>,
    pub line: Option<u32>,
}

impl SourceFrame {
    #[cfg(test)]
    pub fn new(function: &str, file: &str, line: u32) -> Self {
        SourceFrame { function: Some(function.to_owned()), file: Some(file.to_owned()), line: Some(line) }
    }
}

impl fmt::Display for SourceFrame {
    /// `function at file:line`, with `??` for what is unknown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.function.as_deref().unwrap_or("??"))?;
        match (&self.file, self.line) {
            (Some(file), Some(line)) => write!(f, " at {file}:{line}"),
            (Some(file), None) => write!(f, " at {file}"),
            _ => Ok(()),
        }
    }
}

/// Where symbols come from.
pub trait Symbols {
    /// The source frames at `elf_address`, innermost (inlined) first; empty
    /// when nothing is known there.
    fn lookup(&self, elf_address: u64) -> Vec<SourceFrame>;
}

impl<F: Fn(u64) -> Vec<SourceFrame>> Symbols for F {
    fn lookup(&self, elf_address: u64) -> Vec<SourceFrame> {
        self(elf_address)
    }
}

/// No symbols at all (no ELF, or it could not be read): addresses stay raw.
pub fn no_symbols() -> Rc<dyn Symbols> {
    Rc::new(|_: u64| Vec::new())
}

/// One `@@BT` frame with its symbols.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub cpu: u32,
    pub depth: u32,
    /// Runtime address, inside the call instruction.
    pub address: u64,
    /// Innermost first; empty when unknown.
    pub source: Vec<SourceFrame>,
}

impl Frame {
    /// Symbolizes a frame line; an address below the kernel base is not the
    /// kernel's, so nothing is looked up for it.
    pub fn resolve(cpu: u32, depth: u32, address: u64, base: u64, symbols: &dyn Symbols) -> Frame {
        let source = address.checked_sub(base).map(|elf| symbols.lookup(elf)).unwrap_or_default();
        Frame { cpu, depth, address, source }
    }

    /// `  cpu0 #2 0xffff80000003c4b8 guest_tests::debug::deep_two at tests/guest/src/debug.rs:66`,
    /// then one `inlined into` line per caller it was inlined into.
    pub fn lines(&self) -> Vec<String> {
        let head = format!("  cpu{} #{} {:#x} ", self.cpu, self.depth, self.address);
        let Some((first, callers)) = self.source.split_first() else {
            return vec![format!("{head}??")];
        };
        let mut out = vec![format!("{head}{first}")];
        let indent = " ".repeat(head.len());
        out.extend(callers.iter().map(|caller| format!("{indent}inlined into {caller}")));
        out
    }
}

/// The human line for the end of a walk.
pub fn end_line(cpu: u32, why: &str) -> String {
    format!("  cpu{cpu} end of backtrace: {why}")
}

/// The human lines for a serial line if it is a backtrace line; `None` for
/// any other line (and a malformed `@@BT` line, which is better shown raw).
pub fn render_line(line: &str, symbols: &dyn Symbols) -> Option<Vec<String>> {
    match parse_backtrace_line(line).ok()?? {
        BtLine::Frame { cpu, depth, address, base } => Some(Frame::resolve(cpu, depth, address, base, symbols).lines()),
        BtLine::End { cpu, why } => Some(vec![end_line(cpu, &why)]),
    }
}

/// `line`, or its human lines when it is a backtrace line.
pub fn render(line: &str, symbols: &dyn Symbols) -> Vec<String> {
    render_line(line, symbols).unwrap_or_else(|| vec![line.to_owned()])
}

/// One CPU's backtrace as the guest printed it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Trace {
    pub cpu: u32,
    /// Innermost first.
    pub frames: Vec<Frame>,
    /// How the walk ended (`None`: no `@@BT-END` came).
    pub end: Option<String>,
}

impl Trace {
    /// The human lines of the whole trace.
    pub fn lines(&self) -> Vec<String> {
        let mut out: Vec<String> = self.frames.iter().flat_map(Frame::lines).collect();
        if let Some(why) = &self.end {
            out.push(end_line(self.cpu, why));
        }
        out
    }

    /// Every source frame, innermost first (inlined ones included).
    pub fn source_frames(&self) -> impl Iterator<Item = &SourceFrame> {
        self.frames.iter().flat_map(|f| f.source.iter())
    }
}

/// The latest backtrace of each CPU, built from the lines as they come.
#[derive(Clone, Debug, Default)]
pub struct Traces {
    latest: BTreeMap<u32, Trace>,
}

impl Traces {
    /// Takes one parsed line. A depth-0 frame, or a frame after the CPU's
    /// walk ended, starts a new trace for that CPU.
    pub fn feed(&mut self, line: BtLine, symbols: &dyn Symbols) {
        match line {
            BtLine::Frame { cpu, depth, address, base } => {
                let trace = self.latest.entry(cpu).or_insert_with(|| Trace { cpu, ..Trace::default() });
                if depth == 0 || trace.end.is_some() {
                    *trace = Trace { cpu, ..Trace::default() };
                }
                trace.frames.push(Frame::resolve(cpu, depth, address, base, symbols));
            }
            BtLine::End { cpu, why } => {
                self.latest.entry(cpu).or_insert_with(|| Trace { cpu, ..Trace::default() }).end = Some(why);
            }
        }
    }

    pub fn get(&self, cpu: u32) -> Option<&Trace> {
        self.latest.get(&cpu)
    }

    pub fn clear(&mut self) {
        self.latest.clear();
    }
}

/// Checks that `trace` names `required` (function names, innermost first)
/// in that order (substring match on the demangled name, other frames in
/// between allowed), each with a file and line. The error says which
/// function is missing and what the trace showed instead.
pub fn check_required(required: &[String], cpu: u32, trace: Option<&Trace>) -> Result<(), String> {
    if required.is_empty() {
        return Ok(());
    }
    let wanted = required.join(", ");
    let Some(trace) = trace.filter(|t| !t.frames.is_empty()) else {
        return Err(format!("no backtrace of cpu {cpu} came before the crash line (must name {wanted})"));
    };
    let frames: Vec<&SourceFrame> = trace.source_frames().collect();
    let mut from = 0;
    let mut previous: Option<&str> = None;
    for name in required {
        let found = frames[from..]
            .iter()
            .position(|f| f.function.as_deref().is_some_and(|function| function.contains(name.as_str())));
        let Some(i) = found.map(|i| from + i) else {
            let after = previous.map(|p| format!(" after `{p}`")).unwrap_or_default();
            return Err(format!(
                "backtrace of cpu {cpu} does not name `{name}`{after} (must name {wanted}, innermost first); it shows: {}",
                shown_names(&frames)
            ));
        };
        let frame = frames[i];
        if frame.file.is_none() || frame.line.is_none() {
            return Err(format!("backtrace of cpu {cpu} names `{name}` as `{frame}`, without a file and line"));
        }
        previous = Some(name);
        from = i + 1;
    }
    Ok(())
}

/// The function names of a trace, short enough for a verdict line.
fn shown_names(frames: &[&SourceFrame]) -> String {
    const SHOWN: usize = 12;
    let mut names: Vec<&str> = frames.iter().take(SHOWN).map(|f| f.function.as_deref().unwrap_or("??")).collect();
    if frames.is_empty() {
        names.push("no symbols (is the kernel ELF the one that ran?)");
    } else if frames.len() > SHOWN {
        names.push("...");
    }
    names.join(" <- ")
}

/// Rewrites a byte stream as it is echoed live, replacing each whole `@@BT`
/// line with its human lines and passing everything else through at once
/// (a prompt without a newline must still show). Only a line that may still
/// turn out to be a backtrace line is held back, until its newline.
#[derive(Debug, Default)]
pub struct LiveFilter {
    held: Vec<u8>,
    /// The current line is not a backtrace line: pass it on to its end.
    passing: bool,
}

impl LiveFilter {
    /// The bytes to write for `bytes`.
    pub fn push(&mut self, bytes: &[u8], symbols: &dyn Symbols) -> Vec<u8> {
        let mut out = Vec::with_capacity(bytes.len());
        let prefix = BT_PREFIX.as_bytes();
        for &b in bytes {
            if self.passing {
                out.push(b);
                self.passing = b != b'\n';
                continue;
            }
            self.held.push(b);
            if b == b'\n' {
                self.release_line(&mut out, symbols);
            } else if !(self.held.starts_with(prefix) || prefix.starts_with(&self.held)) {
                out.append(&mut self.held);
                self.passing = true;
            }
        }
        out
    }

    /// Whatever is still held back (the stream ended inside a line).
    pub fn finish(&mut self) -> Vec<u8> {
        self.passing = false;
        std::mem::take(&mut self.held)
    }

    fn release_line(&mut self, out: &mut Vec<u8>, symbols: &dyn Symbols) {
        let line = std::mem::take(&mut self.held);
        let text = String::from_utf8_lossy(&line);
        // Keep the guest's line ending: with `\r\n` the terminal needs it.
        let ending = if text.ends_with("\r\n") { "\r\n" } else { "\n" };
        match render_line(&text, symbols) {
            Some(lines) => {
                for l in lines {
                    out.extend_from_slice(l.as_bytes());
                    out.extend_from_slice(ending.as_bytes());
                }
            }
            None => out.extend_from_slice(&line),
        }
    }
}

/// A saved serial log with every backtrace line symbolized, the rest as it
/// was.
pub fn symbolize_log(log: &str, symbols: &dyn Symbols) -> String {
    let mut out = String::with_capacity(log.len());
    for line in log.lines() {
        for shown in render(line, symbols) {
            out += &shown;
            out.push('\n');
        }
    }
    out
}

/// Whether a log came from the test kernel: only it speaks the `@@KTEST`
/// protocol (the demo kernel prints none of those lines).
pub fn is_test_kernel_log(log: &str) -> bool {
    log.lines().any(|line| matches!(crate::protocol::parse_line(line), Ok(Some(_)) | Err(_)))
}
