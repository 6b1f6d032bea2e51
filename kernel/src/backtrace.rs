//! Stack traces by frame-pointer walk (the kernel is built with frame
//! pointers). Bounded in depth and never faulting: every frame is checked to
//! be mapped, aligned and above the previous one before it is read. Lines
//! carry raw addresses plus the kernel's load offset, so the host
//! (`cargo xtask`) can turn them into `function at file:line`.

use core::sync::atomic::{AtomicU64, Ordering};

use x86_64::VirtAddr;

use protocol::bt::Line;

use crate::println_raw;

/// Frames printed at most.
pub const MAX_DEPTH: usize = 32;

static KERNEL_BASE: AtomicU64 = AtomicU64::new(0);

/// Records where the loader put the kernel image (boot CPU, once).
pub fn set_kernel_base(base: u64) {
    KERNEL_BASE.store(base, Ordering::Relaxed);
}

/// The kernel's load offset: ELF address = runtime address − this.
pub fn kernel_base() -> u64 {
    KERNEL_BASE.load(Ordering::Relaxed)
}

/// Why a walk ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// The outermost frame (frame pointer 0).
    Bottom,
    /// The chain pointed somewhere a frame cannot be: a corrupt stack.
    Corrupt(u64),
    /// `MAX_DEPTH` frames printed.
    Depth,
}

fn readable(addr: u64) -> bool {
    addr % 8 == 0
        && VirtAddr::try_new(addr).is_ok()
        && crate::mem::wx::translate(VirtAddr::new(addr)).is_some()
        && crate::mem::wx::translate(VirtAddr::new(addr + 8)).is_some()
}

/// Times a chain may step to a lower address: an interrupt on an IST stack
/// (NMI, double fault) links back to the stack it interrupted.
const STACK_SWITCHES: usize = 2;

/// Walks the frame chain from `rbp`, calling `frame` with each return
/// address (innermost first).
pub fn walk(mut rbp: u64, mut frame: impl FnMut(usize, u64)) -> End {
    let mut switches = 0;
    for depth in 0..MAX_DEPTH {
        if rbp == 0 {
            return End::Bottom;
        }
        if !readable(rbp) {
            return End::Corrupt(rbp);
        }
        // SAFETY: `readable` checked that both words are mapped.
        let (next, ret) = unsafe { ((rbp as *const u64).read(), ((rbp + 8) as *const u64).read()) };
        if ret == 0 {
            return End::Bottom;
        }
        frame(depth, ret);
        if next != 0 && next <= rbp {
            // Within one stack frames only go up; a step down is a switch
            // back to an interrupted stack, allowed a bounded number of times.
            switches += 1;
            if next == rbp || switches > STACK_SWITCHES {
                return End::Corrupt(next);
            }
        }
        rbp = next;
    }
    End::Depth
}

/// The current frame pointer.
#[inline(always)]
pub fn current_rbp() -> u64 {
    let rbp: u64;
    // SAFETY: reads RBP only.
    unsafe { core::arch::asm!("mov {}, rbp", out(reg) rbp, options(nomem, nostack, preserves_flags)) };
    rbp
}

/// Prints the backtrace starting at `rbp` for `cpu`, one line per frame:
/// `@@BT <cpu> <depth> <address> <kernel base>`, then how the walk ended.
pub fn print_from(cpu: usize, rbp: u64) {
    let base = kernel_base();
    let end = walk(rbp, |depth, ret| {
        // A return address points after the call; `- 1` lands inside it.
        let frame: Line<&str> =
            Line::Frame { cpu: cpu as u32, depth: depth as u32, address: ret.saturating_sub(1), base };
        println_raw!("{frame}");
    });
    let cpu = cpu as u32;
    match end {
        End::Bottom => println_raw!("{}", Line::End { cpu, why: "bottom of the stack" }),
        End::Depth => println_raw!("{}", Line::End { cpu, why: format_args!("stopped after {MAX_DEPTH} frames") }),
        End::Corrupt(at) => {
            println_raw!("{}", Line::End { cpu, why: format_args!("frame chain corrupt at {at:#x}; walk stopped") })
        }
    }
}

/// Prints the calling code's backtrace.
#[inline(always)]
pub fn print_here() {
    print_from(crate::percpu::current_cpu().index(), current_rbp());
}
