//! Running a child process (QEMU) with its output streamed line by line and a
//! time limit, without ever leaving it behind.
//!
//! Orphans are prevented three ways: the child is killed when the [`Running`]
//! guard is dropped (early returns, errors); a panic hook kills every child
//! still registered (the workspace builds with `panic = "abort"`, where no
//! destructor runs); and where util-linux's `setpriv` exists the child is
//! started through it with a parent-death signal, which covers xtask itself
//! being killed.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Mutex, Once};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::judge::Exit;

/// Which of the child's output streams a line came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// Something the child produced.
#[derive(Clone, Copy, Debug)]
pub enum Output<'a> {
    /// Raw bytes as they arrived (for live echo of partial lines).
    Chunk(Stream, &'a [u8]),
    /// A complete line without its `\n`, seen this long after the start.
    Line(Stream, Duration, &'a str),
}

/// How to run.
#[derive(Debug)]
pub struct RunOptions {
    /// Kill the child after this long.
    pub timeout: Option<Duration>,
    /// Give the child our stdin (interactive runs); otherwise /dev/null, so
    /// that QEMU leaves the terminal's settings alone.
    pub inherit_stdin: bool,
}

/// PIDs of the children now running, for the panic hook.
static CHILDREN: Mutex<Vec<u32>> = Mutex::new(Vec::new());
static PANIC_HOOK: Once = Once::new();

fn install_panic_hook() {
    PANIC_HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if let Ok(pids) = CHILDREN.lock() {
                for &pid in pids.iter() {
                    signal(pid, rustix::process::Signal::KILL);
                }
            }
            previous(info);
        }));
    });
}

fn signal(pid: u32, sig: rustix::process::Signal) {
    if let Some(pid) = i32::try_from(pid).ok().and_then(rustix::process::Pid::from_raw) {
        // The child may have exited already; nothing to do then.
        let _ = rustix::process::kill_process(pid, sig);
    }
}

/// A started child that is killed if dropped while running.
struct Running {
    child: Child,
    reaped: bool,
}

impl Running {
    fn wait_until(&mut self, deadline: Option<Instant>) -> Result<Option<ExitStatus>> {
        loop {
            if let Some(status) = self.child.try_wait().context("waiting for the child")? {
                self.reaped = true;
                return Ok(Some(status));
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(None);
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGTERM first so QEMU can restore the terminal and flush, SIGKILL if it
    /// does not go within two seconds.
    fn terminate(&mut self) -> Result<()> {
        signal(self.child.id(), rustix::process::Signal::TERM);
        if self.wait_until(Some(Instant::now() + Duration::from_secs(2)))?.is_none() {
            let _ = self.child.kill();
            self.child.wait().context("waiting for the killed child")?;
            self.reaped = true;
        }
        Ok(())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if !self.reaped {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let pid = self.child.id();
        if let Ok(mut pids) = CHILDREN.lock() {
            pids.retain(|&p| p != pid);
        }
    }
}

/// Where `setpriv` is, if it is.
fn setpriv() -> Option<PathBuf> {
    crate::prereq::find_program("setpriv")
}

/// Runs `program args...`, calling `sink` with its output as it comes, and
/// returns how it ended and when.
pub fn run(
    program: &str,
    args: &[String],
    opts: &RunOptions,
    mut sink: impl FnMut(Output<'_>),
) -> Result<(Exit, Duration)> {
    install_panic_hook();
    let mut cmd = match setpriv() {
        // The death signal is tied to the thread that forks, and this runs on
        // the thread that waits for the child, so it fires only if we go away.
        Some(setpriv) => {
            let mut c = Command::new(setpriv);
            c.args(["--pdeathsig", "KILL", "--", program]);
            c
        }
        None => Command::new(program),
    };
    cmd.args(args)
        .stdin(if opts.inherit_stdin { Stdio::inherit() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let child = cmd.spawn().with_context(|| format!("starting {program}"))?;
    if let Ok(mut pids) = CHILDREN.lock() {
        pids.push(child.id());
    }
    let mut running = Running { child, reaped: false };

    let (tx, rx) = mpsc::channel::<(Stream, Option<Vec<u8>>)>();
    let mut readers = Vec::new();
    let stdout = running.child.stdout.take().map(|s| (Stream::Stdout, Box::new(s) as Box<dyn Read + Send>));
    let stderr = running.child.stderr.take().map(|s| (Stream::Stderr, Box::new(s) as Box<dyn Read + Send>));
    for (stream, mut pipe) in [stdout, stderr].into_iter().flatten() {
        let tx = tx.clone();
        readers.push(thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                match pipe.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if tx.send((stream, Some(buf[..n].to_vec()))).is_err() {
                            break;
                        }
                    }
                }
            }
            let _ = tx.send((stream, None));
        }));
    }
    drop(tx);

    let deadline = opts.timeout.map(|t| start + t);
    let mut lines = [LineBuffer::default(), LineBuffer::default()];
    let mut open = readers.len();
    let mut timed_out = false;
    while open > 0 {
        let msg = match deadline {
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    timed_out = true;
                    break;
                }
                rx.recv_timeout(left)
            }
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match msg {
            Ok((stream, Some(bytes))) => {
                sink(Output::Chunk(stream, &bytes));
                let at = start.elapsed();
                for line in lines[stream as usize].push(&bytes) {
                    sink(Output::Line(stream, at, &line));
                }
            }
            Ok((_, None)) => open -= 1,
            Err(RecvTimeoutError::Timeout) => {
                timed_out = true;
                break;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }

    // Both pipes closed: QEMU is exiting; give it until the deadline.
    let status = if timed_out { None } else { running.wait_until(deadline)? };
    let exit = match status {
        Some(status) => exit_of(status),
        None => {
            running.terminate()?;
            Exit::TimedOut
        }
    };
    let ended = start.elapsed();
    // Whatever was still in the pipes when it ended.
    for (stream, bytes) in rx.try_iter() {
        if let Some(bytes) = bytes {
            sink(Output::Chunk(stream, &bytes));
            for line in lines[stream as usize].push(&bytes) {
                sink(Output::Line(stream, ended, &line));
            }
        }
    }
    for (stream, buffer) in [Stream::Stdout, Stream::Stderr].into_iter().zip(&mut lines) {
        if let Some(line) = buffer.rest() {
            sink(Output::Line(stream, ended, &line));
        }
    }
    drop(running);
    for reader in readers {
        let _ = reader.join();
    }
    Ok((exit, ended))
}

fn exit_of(status: ExitStatus) -> Exit {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => Exit::Code(code),
        (None, Some(sig)) => Exit::Signal(sig),
        (None, None) => Exit::Code(-1),
    }
}

/// Splits a byte stream into lines: `\n` ends a line, a `\r` before it is
/// dropped, invalid UTF-8 (firmware noise) is replaced.
#[derive(Debug, Default)]
pub struct LineBuffer {
    partial: Vec<u8>,
}

impl LineBuffer {
    /// Appends `bytes`; returns the lines they complete.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        for &b in bytes {
            if b == b'\n' {
                out.push(Self::finish(std::mem::take(&mut self.partial)));
            } else {
                self.partial.push(b);
            }
        }
        out
    }

    /// The unterminated last line, if any.
    pub fn rest(&mut self) -> Option<String> {
        (!self.partial.is_empty()).then(|| Self::finish(std::mem::take(&mut self.partial)))
    }

    fn finish(mut line: Vec<u8>) -> String {
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        String::from_utf8_lossy(&line).into_owned()
    }
}
