//! The bench lines (`bench.run=1`), one tab-separated line per item:
//!
//! - `@@BENCH-INFO\tcpus\t<n>\ttsc_mhz\t<m>\tidle\t<mode>` first (`<mode>`:
//!   how idle CPUs wait, `halt` or `poll`; kernels older than polling idle
//!   leave out the last two fields);
//! - `@@BENCH-INFO\terror\t<text>` when the guest cannot measure at all;
//! - `@@BENCH\t<name>\t<unit>\t<median>\t<p99>\t<samples>` per figure, unit
//!   `ns` or `per_s`, samples 0 when the figure could not be measured;
//! - `@@BENCH-DONE` last, before the guest exits with success.
//!
//! Any other line is the kernel's own output and ignored. A line that starts
//! like ours but does not parse is an error, never skipped: a silently lost
//! figure would make a regression look like an improvement.

use alloc::borrow::ToOwned;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::FreeText;

const INFO: &str = "@@BENCH-INFO";
const FIGURE: &str = "@@BENCH";
const DONE: &str = "@@BENCH-DONE";

/// The figures, by the names the guest reports them under.
pub mod names {
    /// The floor: a ping-pong between two CPUs through shared memory, no IPI.
    pub const FLOOR: &str = "floor_pingpong";
    pub const IPI_ROUNDTRIP: &str = "ipi_roundtrip";
    /// An IPI a CPU sends itself, to its handler and back: the interrupt
    /// controller's own cost (ICR write, delivery, EOI) with no second vCPU
    /// to wake, for telling the emulator's cross-CPU cost from the kernel's
    /// send path (README, Performance).
    pub const IPI_SELF: &str = "ipi_self";
    pub const CALL_SINGLE_SYNC: &str = "call_single_sync";
    /// A synchronous call to a CPU that runs code with interrupts on.
    pub const CALL_SINGLE_BUSY: &str = "call_single_busy";
    /// A synchronous call to a CPU that polls its queue (`idle=poll`'s wait),
    /// measured in every boot whatever its idle mode.
    pub const CALL_SINGLE_POLL: &str = "call_single_poll";
    pub const ASYNC_ONE_SENDER: &str = "async_throughput_one_sender";
    pub const ASYNC_ALL_SENDERS: &str = "async_throughput_all_senders";
    pub const CALL_ALL_WAIT: &str = "call_all_wait";
    /// `call_all` with waiting, every target running code with interrupts on.
    pub const CALL_ALL_BUSY: &str = "call_all_busy";
    pub const STOP_MACHINE_ALL: &str = "stop_machine_all";
    pub const HOTPLUG_DOWN: &str = "hotplug_down";
    pub const HOTPLUG_UP: &str = "hotplug_up";
    pub const HOTPLUG_CYCLE: &str = "hotplug_cycle";
    pub const BRINGUP_ONE_BY_ONE: &str = "bringup_one_by_one";
    pub const BRINGUP_PARALLEL: &str = "bringup_parallel";
}

/// What a figure counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(rename_all = "snake_case"))]
pub enum Unit {
    /// Nanoseconds per operation: lower is better.
    Ns,
    /// Operations per second: higher is better.
    PerS,
}

impl Unit {
    /// As the guest writes it.
    pub fn name(self) -> &'static str {
        match self {
            Unit::Ns => "ns",
            Unit::PerS => "per_s",
        }
    }

    pub fn parse(s: &str) -> Option<Unit> {
        match s {
            "ns" => Some(Unit::Ns),
            "per_s" => Some(Unit::PerS),
            _ => None,
        }
    }
}

/// One line of the bench, as the guest writes it (`Display`, with `&str`
/// text) and as the host reads it back (with `String`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Line<S = String> {
    /// `idle`: the guest's idle mode, if it said.
    Info {
        cpus: u32,
        tsc_mhz: u64,
        idle: Option<S>,
    },
    GuestError(S),
    Figure {
        name: S,
        unit: Unit,
        median: u64,
        p99: u64,
        samples: u64,
    },
    Done,
}

impl<S: fmt::Display> fmt::Display for Line<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Line::Info { cpus, tsc_mhz, idle: Some(idle) } => {
                write!(f, "{INFO}\tcpus\t{cpus}\ttsc_mhz\t{tsc_mhz}\tidle\t{idle}")
            }
            Line::Info { cpus, tsc_mhz, idle: None } => write!(f, "{INFO}\tcpus\t{cpus}\ttsc_mhz\t{tsc_mhz}"),
            Line::GuestError(why) => write!(f, "{INFO}\terror\t{}", FreeText(why)),
            Line::Figure { name, unit, median, p99, samples } => {
                write!(f, "{FIGURE}\t{name}\t{}\t{median}\t{p99}\t{samples}", unit.name())
            }
            Line::Done => f.write_str(DONE),
        }
    }
}

/// `Ok(None)` for a line that is not ours.
pub fn parse_line(line: &str) -> Result<Option<Line>, String> {
    let line = crate::clean_line(line);
    let fields: Vec<&str> = line.split('\t').collect();
    let bad = |why: &str| Err(format!("malformed bench line ({why}): `{line}`"));
    match fields[0] {
        DONE if fields.len() == 1 => Ok(Some(Line::Done)),
        DONE => bad("nothing may follow @@BENCH-DONE"),
        INFO => match fields[1..] {
            ["cpus", cpus, "tsc_mhz", mhz, ref idle @ ..] => {
                let idle = match idle {
                    [] => None,
                    ["idle", mode] if !mode.is_empty() => Some((*mode).to_owned()),
                    _ => return bad("after the TSC MHz only `idle MODE` may follow"),
                };
                match (cpus.parse(), mhz.parse()) {
                    (Ok(cpus), Ok(tsc_mhz)) => Ok(Some(Line::Info { cpus, tsc_mhz, idle })),
                    _ => bad("CPU count and TSC MHz must be whole numbers"),
                }
            }
            ["error", ref rest @ ..] if !rest.is_empty() => Ok(Some(Line::GuestError(rest.join(" ")))),
            _ => bad("expected `cpus N tsc_mhz M [idle MODE]` or `error TEXT`"),
        },
        FIGURE => match fields[1..] {
            [name, unit, median, p99, samples] => {
                if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                    return bad("the name must be letters, digits and `_`");
                }
                let Some(unit) = Unit::parse(unit) else {
                    return bad("the unit must be `ns` or `per_s`");
                };
                match (median.parse::<u64>(), p99.parse::<u64>(), samples.parse::<u64>()) {
                    (Ok(median), Ok(p99), Ok(samples)) => {
                        Ok(Some(Line::Figure { name: name.to_owned(), unit, median, p99, samples }))
                    }
                    _ => bad("median, p99 and samples must be whole numbers"),
                }
            }
            _ => bad("expected 5 tab-separated fields after @@BENCH"),
        },
        // `@@BENCHMARK` or `@@BENCH INFO`: someone meant us, and got it wrong.
        first if first.starts_with(FIGURE) => bad("unknown @@BENCH keyword"),
        _ => Ok(None),
    }
}
