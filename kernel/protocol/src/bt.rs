//! The backtrace lines, `@@BT` and `@@BT-END` (the reference is the crate's
//! comment).

use alloc::borrow::ToOwned;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::{FreeText, ProtocolError, clean_line, number};

/// The prefix both backtrace lines start with.
pub const PREFIX: &str = "@@BT";

/// A backtrace line, as the kernel writes it (`Display`) and as the host
/// reads it back (`address` is a runtime address inside a call
/// instruction, `base` where the kernel image was loaded).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Line<W = String> {
    Frame {
        cpu: u32,
        depth: u32,
        address: u64,
        base: u64,
    },
    /// CPU `cpu`'s walk ended, for the reason given.
    End {
        cpu: u32,
        why: W,
    },
}

impl<W> Line<W> {
    pub fn cpu(&self) -> u32 {
        match self {
            Line::Frame { cpu, .. } | Line::End { cpu, .. } => *cpu,
        }
    }
}

impl<W: fmt::Display> fmt::Display for Line<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Line::Frame { cpu, depth, address, base } => write!(f, "{PREFIX}\t{cpu}\t{depth}\t{address:#x}\t{base:#x}"),
            Line::End { cpu, why } => write!(f, "{PREFIX}-END\t{cpu}\t{}", FreeText(why)),
        }
    }
}

/// Parses a backtrace line: `Ok(None)` for any other line, `Err` for a
/// malformed one. Never panics.
pub fn parse_line(raw: &str) -> Result<Option<Line>, ProtocolError> {
    let line = clean_line(raw);
    let err = |reason: String| ProtocolError { line: line.to_owned(), reason };
    if let Some(rest) = line.strip_prefix("@@BT-END\t") {
        let (cpu, why) = rest.split_once('\t').unwrap_or((rest, ""));
        return Ok(Some(Line::End { cpu: number(cpu, "cpu").map_err(err)?, why: why.to_owned() }));
    }
    let Some(rest) = line.strip_prefix("@@BT\t") else {
        return Ok(None);
    };
    let f: Vec<&str> = rest.split('\t').collect();
    let [cpu, depth, address, base] = f[..] else {
        return Err(err(format!("`@@BT` needs exactly 4 fields, got {}", f.len())));
    };
    Ok(Some(Line::Frame {
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
