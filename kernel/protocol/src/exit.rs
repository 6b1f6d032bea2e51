//! How a run ends: the value the kernel writes to QEMU's `isa-debug-exit`
//! device, the exit status QEMU turns it into, and the `@@EXIT` line the
//! kernel prints first for emulators without that device (Bochs).

use core::fmt;

/// The `isa-debug-exit` value for a run that succeeded.
pub const DEBUG_EXIT_SUCCESS: u32 = 0x10;
/// The `isa-debug-exit` value for a run that failed.
pub const DEBUG_EXIT_FAILURE: u32 = 0x11;
/// QEMU's exit status for a written value v: `(v << 1) | 1`.
pub const QEMU_SUCCESS: i32 = ((DEBUG_EXIT_SUCCESS << 1) | 1) as i32;
pub const QEMU_FAILURE: i32 = ((DEBUG_EXIT_FAILURE << 1) | 1) as i32;

/// How a run ended, by the kernel's own verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Success,
    Failure,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Success => "success",
            Verdict::Failure => "failure",
        }
    }

    /// The value for `isa-debug-exit`.
    pub fn debug_exit_value(self) -> u32 {
        match self {
            Verdict::Success => DEBUG_EXIT_SUCCESS,
            Verdict::Failure => DEBUG_EXIT_FAILURE,
        }
    }

    /// The QEMU exit status that carries this verdict.
    pub fn qemu_status(self) -> i32 {
        match self {
            Verdict::Success => QEMU_SUCCESS,
            Verdict::Failure => QEMU_FAILURE,
        }
    }
}

/// The `@@EXIT` line, as the kernel writes it just before leaving.
#[derive(Clone, Copy, Debug)]
pub struct Line(pub Verdict);

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "@@EXIT\t{}", self.0.name())
    }
}

/// The verdict of an `@@EXIT` line; `None` for any other line (and for an
/// `@@EXIT` with an unknown verdict, which is as good as none).
pub fn parse_line(line: &str) -> Option<Verdict> {
    match crate::clean_line(line).trim_end().strip_prefix("@@EXIT\t")? {
        "success" => Some(Verdict::Success),
        "failure" => Some(Verdict::Failure),
        _ => None,
    }
}
