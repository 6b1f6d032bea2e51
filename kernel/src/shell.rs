//! The interactive console: commands typed on COM1 (on hardware without
//! serial, nothing is typed and the kernel just idles). `cargo xtask qemu
//! --keep-running` lands here after the demonstration.

use alloc::format;
use alloc::string::{String, ToString};
use core::fmt::Write;
use core::sync::atomic::Ordering;

use smp_core::{CpuId, CpuSet};

use crate::smp::{self, calls, hotplug, stop, stop_machine};
use crate::{console, percpu, power, println_raw};

const HELP: &str = "commands: help | cpus | down N | up N | stopmachine | counters | shutdown";

/// Runs one command line and returns what it prints.
pub fn execute(line: &str) -> Result<String, String> {
    let mut words = line.split_whitespace();
    let cmd = words.next().unwrap_or("");
    let cpu_arg = |w: Option<&str>| -> Result<CpuId, String> {
        let n: usize = w
            .ok_or_else(|| "which CPU? (a number)".to_string())?
            .parse()
            .map_err(|_| "the CPU must be a number".to_string())?;
        CpuId::new(n).ok_or_else(|| format!("cpu{n} is beyond the kernel's limit"))
    };
    match cmd {
        "" => Ok(String::new()),
        "help" => Ok(HELP.into()),
        "cpus" => Ok(cpus()),
        "down" => {
            let cpu = cpu_arg(words.next())?;
            hotplug::cpu_down(cpu).map(|()| format!("{cpu} is offline")).map_err(|e| format!("{e:?}"))
        }
        "up" => {
            let cpu = cpu_arg(words.next())?;
            hotplug::cpu_up(cpu).map(|()| format!("{cpu} is online")).map_err(|e| format!("{e:?}"))
        }
        "stopmachine" => {
            let t = crate::time::rdtsc();
            stop_machine::stop_machine(&CpuSet::single(percpu::current_cpu()), &|_| {})
                .map(|()| {
                    format!(
                        "stop-machine over {} CPUs: {} us",
                        smp::online_count(),
                        crate::time::ticks_to_us(crate::time::rdtsc() - t)
                    )
                })
                .map_err(|e| format!("{e:?}"))
        }
        "counters" => Ok(counters()),
        "shutdown" => {
            let r = stop::stop_other_cpus(stop::Reason::Stop);
            stop::print_report(&r);
            power::exit(power::ExitCode::Success)
        }
        other => Err(format!("unknown command `{other}`; {HELP}")),
    }
}

fn cpus() -> String {
    let mut out = String::new();
    let Some(topo) = smp::topology::get() else { return "no CPU table".into() };
    for c in &topo.cpus {
        let _ = writeln!(
            out,
            "{:>6} {:>10} {:?} {:?}",
            format!("{}", c.cpu),
            format!("{}", c.apic_id),
            hotplug::state(c.cpu),
            percpu::of(c.cpu).activity()
        );
    }
    out
}

fn counters() -> String {
    let mut out = String::new();
    for cpu in smp::PRESENT.snapshot().iter() {
        let c = calls::counters(cpu);
        let _ = writeln!(
            out,
            "{cpu}: doorbells sent {} received {} skipped {} (owed) {} (polling), calls run {}, watchdog reports {}",
            c.doorbells_sent.load(Ordering::Relaxed),
            c.doorbells_received.load(Ordering::Relaxed),
            c.doorbells_skipped.load(Ordering::Relaxed),
            c.doorbells_polled.load(Ordering::Relaxed),
            c.calls_run.load(Ordering::Relaxed),
            c.watchdog_reports.load(Ordering::Relaxed),
        );
    }
    let (spurious, unexpected) = crate::arch::x86_64::interrupts::stray_counts();
    let _ = writeln!(
        out,
        "interrupts: {spurious} spurious, {unexpected} unexpected; {} unclaimed NMIs",
        crate::arch::x86_64::nmi::unclaimed()
    );
    let s = &hotplug::STATS;
    let _ = write!(
        out,
        "hotplug: {} up, {} down, {} failed, {} rolled back; {} stop-machines",
        s.ups.load(Ordering::Relaxed),
        s.downs.load(Ordering::Relaxed),
        s.failures.load(Ordering::Relaxed),
        s.rollbacks.load(Ordering::Relaxed),
        stop_machine::runs()
    );
    out
}

/// Reads command lines from COM1 forever.
pub fn run() -> ! {
    println_raw!("console ready; {HELP}");
    let mut line = String::new();
    loop {
        match console::try_read_byte() {
            Some(b'\r' | b'\n') => {
                let result = execute(line.trim());
                match result {
                    Ok(out) if !out.is_empty() => println_raw!("{out}"),
                    Ok(_) => {}
                    Err(e) => println_raw!("error: {e}"),
                }
                line.clear();
            }
            Some(8 | 0x7F) => {
                line.pop();
            }
            Some(b) if b.is_ascii() && !b.is_ascii_control() => line.push(b as char),
            _ => core::hint::spin_loop(),
        }
    }
}
