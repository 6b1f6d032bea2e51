//! Facts about where the numbers were taken, for the results file: with
//! emulated times, a figure means little without its host and QEMU.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::bench::results::HostInfo;

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path).map(|s| s.trim().to_owned()).unwrap_or_default()
}

/// This machine.
pub fn host_info() -> HostInfo {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &str| {
        cpuinfo.lines().find_map(|l| l.strip_prefix(name)?.split_once(':').map(|(_, v)| v.trim().to_owned()))
    };
    HostInfo {
        hostname: read_trimmed("/proc/sys/kernel/hostname"),
        cpu_model: field("model name").unwrap_or_default(),
        cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
        os: format!("{} {}", read_trimmed("/proc/sys/kernel/ostype"), read_trimmed("/proc/sys/kernel/osrelease"))
            .trim()
            .to_owned(),
        cpu_mhz: field("cpu MHz").and_then(|v| v.parse().ok()).unwrap_or(0.0),
        busy_before_pct: busy_pct(Duration::from_secs(1)).unwrap_or(0.0),
    }
}

/// The first line of `qemu --version`, e.g. `QEMU emulator version 10.0.2 (Debian ...)`.
pub fn qemu_version_line(qemu: &Path) -> String {
    Command::new(qemu)
        .arg("--version")
        .output()
        .ok()
        .and_then(|out| String::from_utf8_lossy(&out.stdout).lines().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".into())
}

/// ISO 8601 (UTC) for seconds since the epoch: `2026-11-21T13:47:24Z`.
pub fn iso_date(secs: u64) -> String {
    // workspace::timestamp gives `YYYYMMDD-HHMMSS`.
    let t = crate::workspace::timestamp(secs);
    format!("{}-{}-{}T{}:{}:{}Z", &t[0..4], &t[4..6], &t[6..8], &t[9..11], &t[11..13], &t[13..15])
}

/// (busy, total) jiffies over all cores, from /proc/stat's `cpu` line.
fn cpu_jiffies() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> =
        stat.lines().next()?.strip_prefix("cpu ")?.split_whitespace().filter_map(|f| f.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal ...: idle and iowait are not busy.
    let idle = fields.get(3)? + fields.get(4).unwrap_or(&0);
    let total: u64 = fields.iter().take(8).sum();
    Some((total - idle, total))
}

/// How busy the host's cores are, in percent, measured over `window`. The
/// load average would lag by a minute and still show work that has ended.
pub fn busy_pct(window: Duration) -> Option<f64> {
    let (busy0, total0) = cpu_jiffies()?;
    std::thread::sleep(window);
    let (busy1, total1) = cpu_jiffies()?;
    let total = total1.checked_sub(total0).filter(|&t| t > 0)?;
    Some(busy1.saturating_sub(busy0) as f64 * 100.0 / total as f64)
}

/// Warnings about the host that make the emulated times less trustworthy.
pub fn caveats(host: &HostInfo) -> Vec<String> {
    let mut out = Vec::new();
    // A build or another QEMU shows up as tens of percent; a quiet host as a few.
    if host.busy_before_pct > 20.0 {
        out.push(format!(
            "the host's {} cores were {:.0}% busy before the first boot: other work competes with \
             QEMU's vCPU threads and stretches the emulated times",
            host.cores, host.busy_before_pct
        ));
    }
    out
}

/// A note when the guest's TSC calibration is more than 5% off the host's
/// clock: under TCG the guest reads the host's TSC, so its ns figures are
/// off by as much (the x floor ratios are not: both sides use the same clock).
pub fn tsc_note(host_mhz: f64, guest_mhz: u64, cpus: u32) -> Option<String> {
    if host_mhz <= 0.0 || guest_mhz == 0 {
        return None;
    }
    let off = host_mhz / guest_mhz as f64 - 1.0;
    (off.abs() > 0.05).then(|| {
        format!(
            "with {cpus} CPUs the guest calibrated its TSC at {guest_mhz} MHz, the host's clock is {host_mhz:.0} MHz: \
             its times read about {:.0}% too {} (x floor is not affected)",
            off.abs() * 100.0,
            if off < 0.0 { "low" } else { "high" }
        )
    })
}
