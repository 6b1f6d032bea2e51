//! The interactive console, fed through COM1's own receive path (the UART
//! in loop-back mode), checked by what the commands did.

use alloc::string::String;

use kernel::ktest::{Failure, Outcome, Test};
use kernel::smp::{self, hotplug};
use kernel::{console, kassert, kassert_eq, ktest, shell};

pub const TESTS: &[Test] = &[ktest!(console_commands_arrive_over_serial_and_act).min_cpus(2)];

/// Types `line` over the looped-back UART and runs what arrives.
fn type_line(line: &str) -> Result<Result<String, String>, Failure> {
    let got = console::loopback(line.as_bytes());
    let got = core::str::from_utf8(&got).map_err(|_| Failure("garbled bytes came back".into()))?;
    kassert_eq!(got, line);
    Ok(shell::execute(got))
}

fn console_commands_arrive_over_serial_and_act() -> Outcome {
    let x = smp::ONLINE.snapshot().iter().last().ok_or(Failure("no CPU".into()))?;
    let listed = type_line("cpus")?.map_err(Failure)?;
    kassert!(listed.contains("Online"), "cpus printed: {listed}");
    let down = type_line(&alloc::format!("down {}", x.index()))?;
    kassert!(down.is_ok(), "down: {down:?}");
    kassert_eq!(hotplug::state(x), hotplug::CpuState::Offline);
    let up = type_line(&alloc::format!("up {}", x.index()))?;
    kassert!(up.is_ok(), "up: {up:?}");
    kassert_eq!(hotplug::state(x), hotplug::CpuState::Online);
    kassert!(type_line("stopmachine")?.is_ok());
    let counters = type_line("counters")?.map_err(Failure)?;
    kassert!(counters.contains("hotplug: 1 up, 1 down"), "counters printed: {counters}");
    kassert!(type_line("frobnicate")?.is_err(), "an unknown command was accepted");
    kassert!(type_line("down banana")?.is_err(), "a malformed CPU number was accepted");
    Ok(())
}
