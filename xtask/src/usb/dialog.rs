//! What the person at the terminal is shown and asked.

use std::io::{self, BufRead, Write};
use std::path::Path;

use anyhow::{Result, bail};

use crate::usb::checks::{BlockDevice, Disk};
use crate::usb::write::Phase;

/// How the write gets its go-ahead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Consent {
    /// `--yes`.
    Given,
    /// Ask on the terminal.
    Ask,
}

/// Refuses when nobody can answer: a question on a pipe would either hang
/// or take whatever the pipe holds as a yes.
pub fn consent(yes: bool, stdin_is_terminal: bool) -> Result<Consent> {
    match (yes, stdin_is_terminal) {
        (true, _) => Ok(Consent::Given),
        (false, true) => Ok(Consent::Ask),
        (false, false) => {
            bail!("standard input is not a terminal, so nobody can confirm: pass --yes to write without asking")
        }
    }
}

/// Asks `question` on `output`; only `y` or `yes` (any case) is a yes, and
/// the end of input is a no.
pub fn confirm(question: &str, input: &mut impl BufRead, output: &mut impl Write) -> io::Result<bool> {
    write!(output, "{question}")?;
    output.flush()?;
    let mut answer = String::new();
    if input.read_line(&mut answer)? == 0 {
        writeln!(output)?;
        return Ok(false);
    }
    Ok(matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes"))
}

pub fn question(image: &str, device: &Path) -> String {
    format!("Write {image} to {}? This destroys everything on it. [y/N] ", device.display())
}

/// The device and the image, for the person to recognise the stick by.
pub fn summary(disk: &Disk, device: &BlockDevice, image: &str, image_bytes: u64) -> String {
    let via = if device.given == device.path { String::new() } else { format!(" ({})", device.given.display()) };
    let model = match [&disk.vendor, &disk.model].into_iter().flatten().map(String::as_str).collect::<Vec<_>>() {
        names if names.is_empty() => "unknown (sysfs names no vendor or model)".to_owned(),
        names => names.join(" "),
    };
    format!(
        "device: {}{via}, {} to the kernel\nmodel:  {model}\nsize:   {}\nimage:  {image} ({})",
        disk.path.display(),
        disk.name,
        sizes(disk.bytes),
        sizes(image_bytes)
    )
}

/// `16.0 GB, 16008609792 bytes`.
fn sizes(bytes: u64) -> String {
    format!("{}, {bytes} bytes", human_size(bytes))
}

/// In decimal units, as the label on the stick counts.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["kB", "MB", "GB", "TB", "PB", "EB"];
    if bytes < 1000 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1000.0;
    let mut unit = 0;
    while value >= 999.95 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Whole percent done, 100 for nothing to do.
pub fn percent(done: u64, total: u64) -> u64 {
    if total == 0 { 100 } else { (u128::from(done) * 100 / u128::from(total)) as u64 }
}

/// `written  1048576 of 4194304 bytes (25%)`; both verbs are as wide, so a
/// line rewritten in place with `\r` leaves nothing behind.
pub fn progress_line(phase: Phase, done: u64, total: u64) -> String {
    let verb = match phase {
        Phase::Writing => "written ",
        Phase::Verifying => "verified",
    };
    format!("{verb} {done} of {total} bytes ({}%)", percent(done, total))
}
