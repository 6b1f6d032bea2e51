//! The protocol between the kernels and `cargo xtask`, defined once. **This
//! comment is the reference.** The kernels write their protocol lines with
//! this crate's line types (each a `Display`), and xtask parses them with
//! this crate's parsers, so the two sides cannot drift apart: the tests in
//! `tests/round_trip.rs` write every line and parse it back. xtask's planner
//! and judge (`xtask/src/plan.rs`, `xtask/src/judge.rs`) act on what it parses.
//!
//! # Host → guest: boot parameters
//!
//! Boot parameters are `key=value` lines in the loader's ramdisk (see
//! `bootimage::BootParams`). The test kernel understands:
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
//! `xtask/src/plan.rs` for the order).
//!
//! # Guest → host: exit status
//!
//! The kernel leaves QEMU by writing to the `isa-debug-exit` device at port
//! `0xf4`: `0x10` for success, `0x11` for failure. QEMU then exits with
//! `(value << 1) | 1`, i.e. [`exit::QEMU_SUCCESS`] (33) or [`exit::QEMU_FAILURE`] (35).
//! Any other QEMU exit status (0 after a triple fault or reset with
//! `-no-reboot`, or a signal) means the guest reset or powered off on its own:
//! never a pass.
//!
//! Bochs has no such device: its shutdown port (`0x8900`, written the string
//! `Shutdown`) ends the run with status 1 whatever the verdict. So just before
//! leaving, the kernel prints `@@EXIT\t<success|failure>` on its own line,
//! and the Bochs runner (`xtask/src/bochs.rs`) reports a shutdown after that
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
//!   order (see `xtask/src/judge.rs`).
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
//! They are not `@@KTEST` lines: [`ktest::parse_line`] leaves them alone, and
//! [`bt::parse_line`] reads them. The runner shows them symbolized
//! (see `xtask/src/backtrace.rs`).
//!
//! The last field of `FAIL`, `SKIP`, `PANIC` and `FAULT` is free text and may
//! itself contain TABs. A line that starts with `@@KTEST ` but does not parse
//! is a protocol error, which the runner reports as a failure rather than
//! ignoring it: a silently misread line could hide a test.

//!
//! # Guest → host: benchmarks
//!
//! The bench (`bench.run=1`) prints one tab-separated line per item; see
//! [`bench`]. Any other line is the kernel's own output.
//!
//! # Host → guest: the torture's call kinds
//!
//! `stress.weights=a,b,c,d,e,f` weighs the torture's call kinds in the
//! order of [`torture::CALL_KINDS`].
#![no_std]

extern crate alloc;

pub mod bench;
pub mod bt;
pub mod exit;
pub mod ktest;
pub mod torture;

use alloc::string::String;
use core::fmt;

/// What the demonstration kernel's console prints (on COM1) once it takes
/// commands: input piped to `cargo xtask qemu --keep-running` is held back
/// until then.
pub const CONSOLE_READY: &str = "console ready";

/// A protocol line that does not parse.
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

impl core::error::Error for ProtocolError {}

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

/// Free text in a line's last field, written with every line break and TAB
/// turned into a space: one protocol line stays one line.
pub struct FreeText<T>(pub T);

impl<T: fmt::Display> fmt::Display for FreeText<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct OneLine<'a, 'b>(&'a mut fmt::Formatter<'b>);
        impl fmt::Write for OneLine<'_, '_> {
            fn write_str(&mut self, s: &str) -> fmt::Result {
                for part in s.split_inclusive(['\n', '\r', '\t']) {
                    match part.strip_suffix(['\n', '\r', '\t']) {
                        Some(text) => {
                            self.0.write_str(text)?;
                            self.0.write_str(" ")?;
                        }
                        None => self.0.write_str(part)?,
                    }
                }
                Ok(())
            }
        }
        fmt::write(&mut OneLine(f), format_args!("{}", self.0))
    }
}

fn number<T: core::str::FromStr>(s: &str, what: &str) -> Result<T, String> {
    s.parse().map_err(|_| alloc::format!("{what} `{s}` is not a number"))
}
