//! Running a child process (QEMU) with its output streamed line by line and a
//! time limit, without ever leaving it behind.
//!
//! Orphans are prevented three ways: the child is killed when the [`Running`]
//! guard is dropped (early returns, errors); a panic hook kills every child
//! still registered (the workspace builds with `panic = "abort"`, where no
//! destructor runs); and where util-linux's `setpriv` exists the child is
//! started through it with a parent-death signal, which covers xtask itself
//! being killed.

use std::io::{IsTerminal, Read};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Condvar, Mutex, Once};
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
#[derive(Debug, Default)]
pub struct RunOptions {
    /// Kill the child after this long.
    pub timeout: Option<Duration>,
    /// Give the child our stdin (interactive runs); otherwise /dev/null, so
    /// that QEMU leaves the terminal's settings alone. A stdin that is no
    /// terminal (a file, a pipe) is fed through a pipe of ours that stays
    /// open until the child ends, as a terminal would.
    pub inherit_stdin: bool,
    /// With a fed stdin: hold it back until the child's stdout has shown a
    /// line containing this (a console's prompt), so nothing is typed into
    /// a guest that is still booting.
    pub stdin_after: Option<&'static str>,
    /// The guest's serial line comes over a TCP connection the child makes
    /// to this listener (Bochs, whose file output is buffered until exit),
    /// and is reported as [`Stream::Stdout`]; the child's own stdout is then
    /// reported as [`Stream::Stderr`].
    pub serial: Option<TcpListener>,
    /// Environment variables set for the child.
    pub env: Vec<(&'static str, &'static str)>,
}

/// A one-way latch: shut until [`open`](Gate::open), waited on by a thread.
#[derive(Clone, Debug)]
pub struct Gate(Arc<(Mutex<bool>, Condvar)>);

impl Gate {
    pub fn new(open: bool) -> Gate {
        Gate(Arc::new((Mutex::new(open), Condvar::new())))
    }

    pub fn open(&self) {
        if let Ok(mut open) = self.0.0.lock() {
            *open = true;
            self.0.1.notify_all();
        }
    }

    fn wait(&self) {
        let Ok(mut open) = self.0.0.lock() else { return };
        while !*open {
            let Ok(next) = self.0.1.wait(open) else { return };
            open = next;
        }
    }
}

/// Once `gate` opens, copies `input` into `pipe` on a thread of its own,
/// then keeps the pipe open in the returned slot until the caller drops it:
/// the child never sees an end of input. A thread still waiting (for the
/// gate or for input) when the child ends is left to end with us.
pub fn feed_input(
    mut input: impl Read + Send + 'static,
    mut pipe: ChildStdin,
    gate: Gate,
) -> Arc<Mutex<Option<ChildStdin>>> {
    let slot = Arc::new(Mutex::new(None));
    let keep = slot.clone();
    thread::spawn(move || {
        gate.wait();
        let _ = std::io::copy(&mut input, &mut pipe);
        if let Ok(mut slot) = keep.lock() {
            *slot = Some(pipe);
        }
    });
    slot
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
    let feed_stdin = opts.inherit_stdin && !std::io::stdin().is_terminal();
    cmd.args(args)
        .envs(opts.env.iter().copied())
        .stdin(match (opts.inherit_stdin, feed_stdin) {
            (true, false) => Stdio::inherit(),
            (true, true) => Stdio::piped(),
            (false, _) => Stdio::null(),
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let child = cmd.spawn().with_context(|| format!("starting {program}"))?;
    if let Ok(mut pids) = CHILDREN.lock() {
        pids.push(child.id());
    }
    let mut running = Running { child, reaped: false };
    let stdin_gate = Gate::new(opts.stdin_after.is_none());
    // Dropped when this function returns, that is after the child ended.
    let _held_stdin = running.child.stdin.take().map(|pipe| feed_input(std::io::stdin(), pipe, stdin_gate.clone()));

    // Messages name their source: two sources may share a stream.
    let (tx, rx) = mpsc::channel::<(usize, Stream, Option<Vec<u8>>)>();
    let mut readers = Vec::new();
    let child_stream = if opts.serial.is_some() { Stream::Stderr } else { Stream::Stdout };
    let stdout = running.child.stdout.take().map(|s| (child_stream, Box::new(s) as Box<dyn Read + Send>));
    let stderr = running.child.stderr.take().map(|s| (Stream::Stderr, Box::new(s) as Box<dyn Read + Send>));
    let pipes = [stdout, stderr].into_iter().flatten().collect::<Vec<_>>();
    let child_pipes = pipes.len();
    // Each source's stream, by source number: the pipes, then the socket.
    let mut streams: Vec<Stream> = pipes.iter().map(|(stream, _)| *stream).collect();
    for (source, (stream, pipe)) in pipes.into_iter().enumerate() {
        let tx = tx.clone();
        readers.push(thread::spawn(move || forward(source, stream, pipe, &tx)));
    }
    let child_gone = Arc::new(AtomicBool::new(false));
    if let Some(listener) = &opts.serial {
        let listener = listener.try_clone().context("sharing the serial listener")?;
        let (tx, gone) = (tx.clone(), child_gone.clone());
        streams.push(Stream::Stdout);
        readers.push(thread::spawn(move || match accept_unless(&listener, &gone) {
            Some(conn) => forward(child_pipes, Stream::Stdout, Box::new(conn), &tx),
            None => {
                let _ = tx.send((child_pipes, Stream::Stdout, None));
            }
        }));
    }
    drop(tx);

    let deadline = opts.timeout.map(|t| start + t);
    let mut lines: Vec<LineBuffer> = streams.iter().map(|_| LineBuffer::default()).collect();
    let mut open = readers.len();
    let mut pipes_open = child_pipes;
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
            Ok((source, stream, Some(bytes))) => {
                sink(Output::Chunk(stream, &bytes));
                let at = start.elapsed();
                for line in lines[source].push(&bytes) {
                    if stream == Stream::Stdout && opts.stdin_after.is_some_and(|t| line.contains(t)) {
                        stdin_gate.open();
                    }
                    sink(Output::Line(stream, at, &line));
                }
            }
            Ok((source, _, None)) => {
                open -= 1;
                if source < child_pipes {
                    pipes_open -= 1;
                    // A child that never connected will not now.
                    child_gone.store(pipes_open == 0, Ordering::Relaxed);
                }
            }
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
    for (source, stream, bytes) in rx.try_iter() {
        if let Some(bytes) = bytes {
            sink(Output::Chunk(stream, &bytes));
            for line in lines[source].push(&bytes) {
                sink(Output::Line(stream, ended, &line));
            }
        }
    }
    for (&stream, buffer) in streams.iter().zip(&mut lines) {
        if let Some(line) = buffer.rest() {
            sink(Output::Line(stream, ended, &line));
        }
    }
    drop(running);
    child_gone.store(true, Ordering::Relaxed);
    for reader in readers {
        let _ = reader.join();
    }
    Ok((exit, ended))
}

/// Sends what `pipe` yields as `source`'s, then its end.
fn forward(
    source: usize,
    stream: Stream,
    mut pipe: Box<dyn Read + Send>,
    tx: &Sender<(usize, Stream, Option<Vec<u8>>)>,
) {
    let mut buf = [0u8; 4096];
    loop {
        match pipe.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if tx.send((source, stream, Some(buf[..n].to_vec()))).is_err() {
                    break;
                }
            }
        }
    }
    let _ = tx.send((source, stream, None));
}

/// The child's connection to `listener`, or `None` once `gone` says the
/// child has closed its pipes without connecting.
fn accept_unless(listener: &TcpListener, gone: &AtomicBool) -> Option<std::net::TcpStream> {
    listener.set_nonblocking(true).ok()?;
    loop {
        match listener.accept() {
            Ok((conn, _)) => return conn.set_nonblocking(false).ok().map(|()| conn),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && !gone.load(Ordering::Relaxed) => {
                thread::sleep(Duration::from_millis(10));
            }
            Err(_) => return None,
        }
    }
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
