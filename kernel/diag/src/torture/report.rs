//! What a run found: the per-kind books, the hotplug latencies, and the
//! verdict drawn from them.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use super::{FaultCount, KIND_NAMES, KINDS};

/// Latencies of one kind of hotplug operation, in microseconds.
#[derive(Clone, Copy, Debug, Default)]
pub struct Latency {
    pub n: u64,
    pub min: u64,
    pub max: u64,
    pub sum: u64,
    pub failed: u64,
}

impl Latency {
    pub(super) fn add(&mut self, us: u64) {
        self.min = if self.n == 0 { us } else { self.min.min(us) };
        self.max = self.max.max(us);
        self.sum += us;
        self.n += 1;
    }

    fn line(&self, what: &str) -> String {
        let mean = self.sum.checked_div(self.n).unwrap_or(0);
        format!(
            "{what}: {} ok, {} failed, min {} us, mean {mean} us, max {} us",
            self.n, self.failed, self.min, self.max
        )
    }
}

#[derive(Clone, Debug)]
pub struct Report {
    pub ms: u64,
    pub sent: [u64; KINDS],
    pub ran: [u64; KINDS],
    pub offline: [u64; KINDS],
    /// Async sends refused because the record was still in flight.
    pub busy: u64,
    pub errors: u64,
    /// Channels (kind, sender, target) whose calls did not balance at the
    /// end: calls lost (see `ledger`).
    pub lost: u64,
    /// Calls of abandoned senders that had never been queued (see `ledger`).
    pub written_off: u64,
    /// Senders whose CPU went down under them.
    pub abandoned: u64,
    /// Heap bytes in use at the start and at the end.
    pub heap: (usize, usize),
    /// `None`: the cross-call stress alone.
    pub hotplug: Option<(Latency, Latency)>,
    /// Faults injected, per kind (empty without an injector).
    pub faults: Vec<FaultCount>,
    /// Every sender finished after the end.
    pub senders_finished: bool,
    /// Every non-waiting call sent had run by the end.
    pub settled: bool,
}

impl Report {
    /// Calls handed over, every kind.
    pub fn calls(&self) -> u64 {
        self.sent.iter().sum()
    }

    /// Successful `cpu_down`s and `cpu_up`s.
    pub fn hotplug_ops(&self) -> u64 {
        self.hotplug.map_or(0, |(down, up)| down.n + up.n)
    }

    /// Whether the books balance: no error, no hang, no call lost or run twice.
    pub fn verdict(&self) -> Result<(), String> {
        if !self.senders_finished {
            return Err("senders still running 30 s after the end: a hang".into());
        }
        if self.errors != 0 {
            return Err(format!("{} errors (see the log)", self.errors));
        }
        if !self.settled || self.lost != 0 {
            return Err(format!("calls lost on {} channel(s) (see the log)", self.lost));
        }
        let (before, after) = self.heap;
        if after > before {
            return Err(format!("the heap grew by {} bytes: something going down leaked", after - before));
        }
        Ok(())
    }

    /// The summary, one line each: per kind, then the odd counts, then the
    /// hotplug latencies (`cargo xtask torture` shows lines with these prefixes).
    pub fn lines(&self) -> Vec<String> {
        let mut out: Vec<String> = (0..KINDS)
            .map(|k| {
                format!(
                    "stress: {:12} sent {:8} ran {:8} offline {:6}",
                    KIND_NAMES[k], self.sent[k], self.ran[k], self.offline[k]
                )
            })
            .collect();
        out.push(format!(
            "stress: busy {} errors {} lost {} abandoned senders {} (calls never queued {})",
            self.busy, self.errors, self.lost, self.abandoned, self.written_off
        ));
        out.push(format!("stress: heap in use {} bytes at the start, {} at the end", self.heap.0, self.heap.1));
        if let Some((down, up)) = &self.hotplug {
            out.push(format!("torture: {}", down.line("cpu_down")));
            out.push(format!("torture: {}", up.line("cpu_up")));
        }
        for f in &self.faults {
            out.push(format!(
                "torture: fault {:24} injected {:5}, operation failed {:5} (the CPU's state checked after each)",
                f.name, f.injected, f.op_failed
            ));
        }
        out
    }
}
