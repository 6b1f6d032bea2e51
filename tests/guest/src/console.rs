//! The interactive console, fed through its real input devices: COM1's
//! receive path (the UART in loop-back mode) and the PS/2 keyboard's (the
//! i8042 presenting scancodes as if typed), checked by what the commands did.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use crate::ktest::{Failure, Outcome, Test};
use crate::{kassert, kassert_eq, ktest};
use diag::shell;
use kernel::smp::{self, hotplug};
use kernel::{CpuId, console, keyboard, println_raw};

pub const TESTS: &[Test] = &[
    ktest!(console_commands_arrive_over_serial_and_act).min_cpus(2),
    ktest!(console_commands_typed_on_the_keyboard_act).min_cpus(2),
    ktest!(console_torture_sends_calls_and_hotplugs_cleanly).min_cpus(3).timeout_ms(120_000),
    ktest!(console_bench_measures_calls).min_cpus(2).timeout_ms(60_000),
];

/// Types `line` over the looped-back UART and runs what arrives.
fn type_line(line: &str) -> Result<Result<String, String>, Failure> {
    let got = console::loopback(line.as_bytes());
    let got = core::str::from_utf8(&got).map_err(|_| Failure("garbled bytes came back".into()))?;
    kassert_eq!(got, line);
    Ok(shell::execute(got))
}

fn console_commands_arrive_over_serial_and_act() -> Outcome {
    let x = smp::ONLINE.snapshot().iter().last().ok_or(Failure("no CPU".into()))?;
    let (ups, downs) = (hotplug::STATS.ups.load(Ordering::SeqCst), hotplug::STATS.downs.load(Ordering::SeqCst));
    let listed = type_line("cpus")?.map_err(Failure)?;
    kassert!(listed.contains("Online"), "cpus printed: {listed}");
    let down = type_line(&format!("down {}", x.index()))?;
    kassert!(down.is_ok(), "down: {down:?}");
    kassert_eq!(hotplug::state(x), hotplug::CpuState::Offline);
    let up = type_line(&format!("up {}", x.index()))?;
    kassert!(up.is_ok(), "up: {up:?}");
    kassert_eq!(hotplug::state(x), hotplug::CpuState::Online);
    kassert!(type_line("stopmachine")?.is_ok());
    let counters = type_line("counters")?.map_err(Failure)?;
    let want = format!("hotplug: {} up, {} down", ups + 1, downs + 1);
    kassert!(counters.contains(&want), "counters printed: {counters} (wanted {want})");
    kassert!(type_line("frobnicate")?.is_err(), "an unknown command was accepted");
    kassert!(type_line("down banana")?.is_err(), "a malformed CPU number was accepted");
    Ok(())
}

/// Scancode set 1 (IBM PC/AT, what the i8042 delivers with translation on).
/// A key's release code is its make code with this bit set.
const RELEASE: u8 = 0x80;
const ENTER: u8 = 0x1C;
const BACKSPACE: u8 = 0x0E;
const SPACE: u8 = 0x39;
const LEFT_SHIFT: u8 = 0x2A;
/// The keyboard's rows number their keys consecutively in set 1.
const ROWS: [(u8, &str); 4] = [(0x02, "1234567890"), (0x10, "qwertyuiop"), (0x1E, "asdfghjkl"), (0x2C, "zxcvbnm")];

fn make_code(c: char) -> Result<u8, Failure> {
    if c == ' ' {
        return Ok(SPACE);
    }
    ROWS.iter()
        .find_map(|(first, keys)| keys.find(c).map(|i| first + i as u8))
        .ok_or_else(|| Failure(format!("no key for {c:?} in the test's table")))
}

/// Press and release.
fn stroke(make: u8) -> [u8; 2] {
    [make, make | RELEASE]
}

fn strokes(text: &str) -> Result<Vec<u8>, Failure> {
    let mut codes = Vec::new();
    for c in text.chars() {
        codes.extend(stroke(make_code(c)?));
    }
    Ok(codes)
}

/// Has the i8042 deliver `scancodes` one at a time and reads each back the
/// way the shell's input loop does, returning the characters decoded.
fn press(scancodes: &[u8]) -> Result<Vec<u8>, Failure> {
    let mut typed = Vec::new();
    for &code in scancodes {
        keyboard::inject_scancode(code).map_err(|e| Failure(format!("i8042 refused {code:#04x}: {e:?}")))?;
        typed.extend(keyboard::try_read_byte());
    }
    Ok(typed)
}

/// Types `scancodes` into a fresh line editor, as the shell does, and
/// returns the line that Enter completed.
fn keyboard_line(scancodes: &[u8]) -> Result<String, Failure> {
    let mut editor = shell::LineEditor::new();
    let mut line = None;
    for b in press(scancodes)? {
        line = line.or(editor.feed(b));
    }
    line.ok_or_else(|| Failure("Enter never reached the line editor".into()))
}

/// Types `text` and Enter, and runs the line the shell got.
fn type_on_keyboard(text: &str) -> Result<Result<String, String>, Failure> {
    let mut codes = strokes(text)?;
    codes.extend(stroke(ENTER));
    let line = keyboard_line(&codes)?;
    kassert_eq!(line, text);
    Ok(shell::execute(&line))
}

fn console_commands_typed_on_the_keyboard_act() -> Outcome {
    kassert!(keyboard::present(), "QEMU's PC has an i8042, but the console did not find it");
    let x: CpuId = smp::ONLINE.snapshot().iter().last().ok_or(Failure("no CPU".into()))?;
    let listed = type_on_keyboard("cpus")?.map_err(Failure)?;
    kassert!(listed.contains("Online"), "cpus printed: {listed}");
    let down = type_on_keyboard(&format!("down {}", x.index()))?;
    kassert!(down.is_ok(), "down: {down:?}");
    kassert_eq!(hotplug::state(x), hotplug::CpuState::Offline);
    let up = type_on_keyboard(&format!("up {}", x.index()))?;
    kassert!(up.is_ok(), "up: {up:?}");
    kassert_eq!(hotplug::state(x), hotplug::CpuState::Online);
    // Modifier state and line editing: shift makes capitals, backspace
    // takes back the last character.
    let shifted = press(&[LEFT_SHIFT, make_code('x')?, make_code('x')? | RELEASE, LEFT_SHIFT | RELEASE])?;
    kassert_eq!(shifted, b"X");
    let mut codes = strokes("cpux")?;
    codes.extend(stroke(BACKSPACE));
    codes.extend(strokes("s")?);
    codes.extend(stroke(ENTER));
    kassert_eq!(keyboard_line(&codes)?, "cpus");
    Ok(())
}

/// The number just before `suffix` in `text` (`"12 calls"` → 12).
fn number_before(text: &str, suffix: &str) -> Result<u64, Failure> {
    let head = text.split(suffix).next().filter(|h| h.len() < text.len());
    let digits = head.and_then(|h| h.trim_end().rsplit(|c: char| !c.is_ascii_digit()).next());
    digits.and_then(|d| d.parse().ok()).ok_or_else(|| Failure(format!("no number before `{suffix}` in: {text}")))
}

/// The number just after `prefix` in `text` (`"p99 40 ns"`, `"p99 "` → 40).
fn number_after(text: &str, prefix: &str) -> Result<u64, Failure> {
    let tail = text.split_once(prefix).map(|(_, t)| t);
    let digits = tail.map(|t| t.split(|c: char| !c.is_ascii_digit()).next().unwrap_or(""));
    digits.and_then(|d| d.parse().ok()).ok_or_else(|| Failure(format!("no number after `{prefix}` in: {text}")))
}

fn console_torture_sends_calls_and_hotplugs_cleanly() -> Outcome {
    let online = smp::ONLINE.snapshot();
    let downs = hotplug::STATS.downs.load(Ordering::SeqCst);
    let out = shell::execute("torture 2").map_err(Failure)?;
    println_raw!("{out}");
    let summary = out.lines().last().unwrap_or("");
    kassert!(summary.ends_with(": PASS"), "torture printed: {out}");
    kassert!(number_before(summary, " calls,")? > 0, "no call was sent: {summary}");
    kassert!(number_before(summary, " hotplug operations")? > 0, "no CPU went down or up: {summary}");
    kassert_eq!(number_before(summary, " errors")?, 0);
    // The counts printed are the kernel's, not the torture's own idea.
    kassert!(hotplug::STATS.downs.load(Ordering::SeqCst) > downs, "the hotplug counters did not move");
    kassert!(smp::ONLINE.snapshot() == online, "the torture did not bring every CPU back");
    for bad in ["torture", "torture 0", "torture 601", "torture soon"] {
        kassert!(shell::execute(bad).is_err(), "`{bad}` was accepted");
    }
    Ok(())
}

fn console_bench_measures_calls() -> Outcome {
    let out = shell::execute("bench").map_err(Failure)?;
    println_raw!("{out}");
    for name in ["floor_pingpong", "ipi_roundtrip", "call_single_sync"] {
        let line = out.lines().find(|l| l.contains(name)).ok_or_else(|| Failure(format!("no {name} in: {out}")))?;
        let (median, p99) = (number_after(line, "median ")?, number_after(line, "p99 ")?);
        kassert!(median > 0 && p99 >= median, "{line}");
    }
    Ok(())
}
