//! The serial console (COM1 through `uart_16550`) behind the `log` facade.
//!
//! Every line is formatted on the stack first and written whole under a lock
//! that records its owner CPU. The lock never deadlocks a crashing kernel:
//! the owner re-entering (a panic or NMI in the middle of a line) writes
//! straight through, and a CPU that sees no line finished for a bound breaks
//! the lock.

use core::cell::UnsafeCell;
use core::fmt::{self, Write};

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use uart_16550::backend::PioBackend;
use uart_16550::spec::registers::LSR;
use uart_16550::{BaudRate, Config, LoopbackError, Uart16550, Uart16550Tty};

use crate::arch::x86_64::ports::COM1;
use crate::percpu;
use crate::time;

const NO_OWNER: u32 = u32::MAX;
/// How long a CPU waits for the console to finish a line before breaking
/// the lock: this, plus [`LOCK_BREAK_US_PER_CPU`] for every CPU there may
/// be. Under an emulator with far more vCPUs than host cores, the owner may
/// sit descheduled by the host mid-line for a long time and only looks stuck.
const LOCK_BREAK_US: u64 = 200_000;
const LOCK_BREAK_US_PER_CPU: u64 = 1_000;

fn lock_break_us() -> u64 {
    LOCK_BREAK_US + LOCK_BREAK_US_PER_CPU * smp_core::percpu::possible() as u64
}
const LINE_MAX: usize = 1024;

struct Serial(UnsafeCell<Option<Uart16550Tty<PioBackend>>>);

// SAFETY: the UART is only touched by the holder of `OWNER` (or, when the
// lock is broken after a bounded wait, by a CPU that is going down anyway).
unsafe impl Sync for Serial {}

static SERIAL: Serial = Serial(UnsafeCell::new(None));
static OWNER: AtomicU32 = AtomicU32::new(NO_OWNER);
/// Lines written so far: a waiter breaks the lock only when no line has
/// been finished for `lock_break_us()`.
static LINES: AtomicU64 = AtomicU64::new(0);
static READY: AtomicBool = AtomicBool::new(false);

/// Opens COM1. Without a working port (hardware with no serial) the log is
/// silently dropped rather than stopping the boot.
pub fn init() {
    let (tty, input_during_test) = open_com1();
    if let Some(tty) = tty {
        // SAFETY: single-threaded early boot, nobody else holds the port yet.
        unsafe { *SERIAL.0.get() = Some(tty) };
        READY.store(true, Ordering::Release);
    }
    log::set_logger(&LOGGER).ok();
    log::set_max_level(log::LevelFilter::Info);
    if input_during_test {
        log::warn!("COM1: input arrived during the UART's loop-back self-test; what was typed that early is lost");
    }
}

/// COM1 initialised and self-tested, and whether input from the line got
/// into the self-test. The crate's loop-back test reads back what it sent,
/// and a byte typed (or piped) before boot arrives in the same receive
/// FIFO: the test then fails on a port that works. That case keeps the
/// port; only a port that cannot even send, or an address with nothing
/// behind it, is given up.
fn open_com1() -> (Option<Uart16550Tty<PioBackend>>, bool) {
    // 115200 rather than the crate's 9600: emulators that pace the line
    // (Bochs) and real serial consoles would otherwise take 12x as long.
    let config = Config { baud_rate: BaudRate::Baud115200, ..Config::DEFAULT };
    // SAFETY: COM1 at 0x3F8 is the standard PC serial port; only this module
    // touches it, and init runs once on the boot CPU before other CPUs exist.
    let Ok(mut uart) = (unsafe { Uart16550::new_port(COM1) }) else { return (None, false) };
    if uart.init(config).is_err() {
        return (None, false);
    }
    match uart.test_loopback() {
        Ok(()) => (Some(Uart16550Tty::from_inner(uart)), false),
        Err(LoopbackError::UnexpectedLoopbackByte { .. } | LoopbackError::UnexpectedLoopbackMsg { .. }) => {
            // What the test left behind (its own bytes among the input) is
            // garbage to the console. Bounded: a line that keeps sending
            // would refill the FIFO for ever.
            for _ in 0..2 * uart_16550::spec::FIFO_SIZE {
                if uart.try_receive_byte().is_err() {
                    break;
                }
            }
            (Some(Uart16550Tty::from_inner(uart)), true)
        }
        Err(LoopbackError::SendError(_)) => (None, false),
    }
}

/// Sets the most verbose level printed.
pub fn set_level(level: log::LevelFilter) {
    log::set_max_level(level);
}

struct LineBuf {
    buf: [u8; LINE_MAX],
    len: usize,
}

impl Write for LineBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let n = s.len().min(LINE_MAX - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// Writes one whole line (a newline is added), never interleaved with
/// another CPU's line.
pub fn write_line(args: fmt::Arguments<'_>) {
    let mut line = LineBuf { buf: [0; LINE_MAX], len: 0 };
    let _ = line.write_fmt(args);
    if line.len == LINE_MAX {
        line.len -= 1;
    }
    line.buf[line.len] = b'\n';
    line.len += 1;
    write_bytes(&line.buf[..line.len]);
}

fn write_bytes(bytes: &[u8]) {
    // Without a serial port the lines still go to the framebuffer.
    let me = percpu::current_cpu().index() as u32;
    let irq_were_on = x86_64::instructions::interrupts::are_enabled();
    x86_64::instructions::interrupts::disable();
    let reentered = OWNER.load(Ordering::Relaxed) == me;
    if !reentered {
        // The bound runs from the last line anyone finished: with a thousand
        // CPUs logging at once a CPU may wait far longer than the bound for
        // its turn, and breaking a lock that is still moving would mix the
        // lines byte by byte.
        let mut seen = (OWNER.load(Ordering::Relaxed), LINES.load(Ordering::Relaxed));
        let mut deadline = time::Deadline::after_us(lock_break_us());
        while OWNER.compare_exchange(NO_OWNER, me, Ordering::Acquire, Ordering::Relaxed).is_err() {
            let now = (OWNER.load(Ordering::Relaxed), LINES.load(Ordering::Relaxed));
            if now != seen {
                seen = now;
                deadline = time::Deadline::after_us(lock_break_us());
            } else if deadline.expired() {
                // The owner is stuck (halted mid-line or spinning with the
                // lock): a late log line beats a hung machine.
                OWNER.store(me, Ordering::Relaxed);
                break;
            }
            core::hint::spin_loop();
        }
    }
    // Test hook: hold this CPU here, console lock taken, to show that a
    // panic elsewhere still gets its report out.
    if !reentered {
        let _ = crate::hooks::point(crate::hooks::points::CONSOLE_LOCKED, percpu::current_cpu());
    }
    // SAFETY: we own the console lock (or re-entered our own line, or broke
    // the lock of a CPU that is stuck), so nobody else writes the UART now.
    // SAFETY: as above, the console lock is ours.
    unsafe { crate::fbcon::write_line(bytes) };
    // SAFETY: as above.
    if let Some(tty) = unsafe { &mut *SERIAL.0.get() } {
        // Raw bytes (UTF-8 passes through); terminals want CR LF.
        for chunk in bytes.split_inclusive(|&b| b == b'\n') {
            match chunk.split_last() {
                Some((b'\n', body)) => {
                    tty.inner_mut().send_bytes_exact(body);
                    tty.inner_mut().send_bytes_exact(b"\r\n");
                }
                _ => tty.inner_mut().send_bytes_exact(chunk),
            }
        }
    }
    if !reentered {
        LINES.fetch_add(1, Ordering::Relaxed);
        OWNER.store(NO_OWNER, Ordering::Release);
    }
    if irq_were_on {
        x86_64::instructions::interrupts::enable();
    }
}

/// Runs `f` on the UART with the console lock held and interrupts off.
fn with_uart<R>(f: impl FnOnce(&mut Uart16550Tty<PioBackend>) -> R) -> Option<R> {
    if !READY.load(Ordering::Acquire) {
        return None;
    }
    let me = percpu::current_cpu().index() as u32;
    x86_64::instructions::interrupts::without_interrupts(|| {
        let deadline = time::Deadline::after_us(lock_break_us());
        while OWNER.compare_exchange(NO_OWNER, me, Ordering::Acquire, Ordering::Relaxed).is_err() {
            if deadline.expired() {
                return None;
            }
            core::hint::spin_loop();
        }
        // SAFETY: the console lock is ours.
        let r = unsafe { &mut *SERIAL.0.get() }.as_mut().map(f);
        OWNER.store(NO_OWNER, Ordering::Release);
        r
    })
}

/// One byte typed on COM1, if any.
pub fn try_read_byte() -> Option<u8> {
    with_uart(|tty| tty.inner_mut().try_receive_byte().ok()).flatten()
}

/// Modem control register (16550 offset 4) and its loop-back bit.
const MCR: u16 = COM1 + 4;
const MCR_LOOP_BACK: u8 = 1 << 4;

/// Sends `bytes` through COM1 in loop-back mode and returns what the
/// receiver got: the console's input path, exercised through the real
/// device. (The crate has no setter for MCR, hence the port write.)
pub fn loopback(bytes: &[u8]) -> alloc::vec::Vec<u8> {
    with_uart(|tty| {
        let mut port = x86_64::instructions::port::Port::<u8>::new(MCR);
        // SAFETY: COM1's MCR; the console lock keeps every other writer
        // away while the line is looped back, and it is restored below.
        let saved = unsafe { port.read() };
        // SAFETY: as above.
        unsafe { port.write(saved | MCR_LOOP_BACK) };
        let mut got = alloc::vec::Vec::new();
        for &b in bytes {
            tty.inner_mut().send_bytes_exact(&[b]);
            let d = time::Deadline::after_us(10_000);
            loop {
                if let Ok(r) = tty.inner_mut().try_receive_byte() {
                    got.push(r);
                    break;
                }
                if d.expired() {
                    break;
                }
            }
        }
        // SAFETY: as above.
        unsafe { port.write(saved) };
        got
    })
    .unwrap_or_default()
}

/// Prints a line with no prefix (the test protocol's `@@KTEST` lines).
#[macro_export]
macro_rules! println_raw {
    ($($arg:tt)*) => { $crate::console::write_line(format_args!($($arg)*)) };
}

struct Logger;
static LOGGER: Logger = Logger;

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let us = time::uptime_us();
        write_line(format_args!(
            "[{:5}.{:06} {}] {:5} {}: {}",
            us / 1_000_000,
            us % 1_000_000,
            percpu::current_cpu(),
            record.level(),
            record.target(),
            record.args()
        ));
    }

    fn flush(&self) {}
}

/// Longest wait for COM1 to send what it still holds: its 16-byte FIFO
/// takes ~1.4 ms at 115200 baud; a line held up by flow control never goes.
const DRAIN_US: u64 = 20_000;

/// Waits until COM1 has sent every byte it holds. Before a shutdown or a
/// reset: emulators that pace the line (Bochs) and real UARTs would
/// otherwise lose the last line's tail; QEMU sends at once.
pub fn drain() {
    with_uart(|tty| {
        let deadline = time::Deadline::after_us(DRAIN_US);
        while !tty.inner_mut().lsr().contains(LSR::TRANSMITTER_EMPTY) && !deadline.expired() {
            core::hint::spin_loop();
        }
    });
}
