//! The interactive console: commands typed on COM1 or on a PS/2 keyboard
//! (hardware often has only the latter), answered on the serial port and
//! the framebuffer. `cargo xtask qemu --keep-running` lands here after the
//! demonstration.

mod line;
mod load;
mod show;

use alloc::format;
use alloc::string::{String, ToString};

use smp_core::{CpuId, CpuSet};

use kernel::smp::{self, hotplug, stop, stop_machine};
use kernel::{console, keyboard, percpu, power, println_raw};

pub use line::LineEditor;

const HELP: &str = "commands: help | cpus | down N | up N | stopmachine | torture SECS | bench | counters | shutdown";

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
        "cpus" => Ok(show::cpus()),
        "down" => {
            let cpu = cpu_arg(words.next())?;
            hotplug::cpu_down(cpu).map(|()| format!("{cpu} is offline")).map_err(|e| format!("{e:?}"))
        }
        "up" => {
            let cpu = cpu_arg(words.next())?;
            hotplug::cpu_up(cpu).map(|()| format!("{cpu} is online")).map_err(|e| format!("{e:?}"))
        }
        "stopmachine" => {
            let t = kernel::time::rdtsc();
            stop_machine::stop_machine(&CpuSet::single(percpu::current_cpu()), &|_| {})
                .map(|()| {
                    format!(
                        "stop-machine over {} CPUs: {} us",
                        smp::online_count(),
                        kernel::time::ticks_to_us(kernel::time::rdtsc() - t)
                    )
                })
                .map_err(|e| format!("{e:?}"))
        }
        "torture" => load::torture(words.next()),
        "bench" => load::bench(),
        "counters" => Ok(show::counters()),
        "shutdown" => {
            let r = stop::stop_other_cpus(stop::Reason::Stop);
            stop::print_report(&r);
            power::exit(power::ExitCode::Success)
        }
        other => Err(format!("unknown command `{other}`; {HELP}")),
    }
}

/// Reads command lines from COM1 and the PS/2 keyboard forever. Both are
/// polled: a console that only waits for a person typing needs no
/// interrupt routing.
pub fn run() -> ! {
    let sources = if keyboard::present() { "COM1 and the PS/2 keyboard" } else { "COM1" };
    // `cargo xtask qemu --keep-running` types piped input only after this
    // (xtask's `protocol::CONSOLE_READY`).
    println_raw!("{} on {sources}; {HELP}", protocol::CONSOLE_READY);
    let mut editor = LineEditor::new();
    loop {
        let Some(byte) = console::try_read_byte().or_else(keyboard::try_read_byte) else {
            core::hint::spin_loop();
            continue;
        };
        if let Some(line) = editor.feed(byte) {
            run_line(line.trim());
        }
    }
}

/// Echoes the line (the framebuffer shows nothing as it is typed: it draws
/// whole lines), then runs it and prints what it printed.
fn run_line(line: &str) {
    if line.is_empty() {
        return;
    }
    println_raw!("> {line}");
    match execute(line) {
        Ok(out) if !out.is_empty() => println_raw!("{out}"),
        Ok(_) => {}
        Err(e) => println_raw!("error: {e}"),
    }
}
