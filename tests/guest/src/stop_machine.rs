//! Stop-machine's halting waiters (`kernel/src/smp/stop_machine.rs`,
//! `arch/x86_64/nmi_halt.rs`): a CPU that has acked a state halts until the
//! next one, and the CPU that advances the state wakes it with an NMI. The
//! lockstep itself is tested in `hotplug.rs`.

use core::sync::atomic::{AtomicBool, Ordering};

use crate::ktest::{Failure, Outcome, Test};
use crate::{kassert, kassert_eq, ktest};
use kernel::arch::x86_64::{nmi, nmi_halt};
use kernel::hooks::{self, Mode, Point, points};
use kernel::smp::{self, stop_machine};
use kernel::{CpuId, CpuSet, percpu, time};
use x86_64::VirtAddr;
use x86_64::structures::gdt::SegmentSelector;
use x86_64::structures::idt::InterruptStackFrame;
use x86_64::{PrivilegeLevel, registers::rflags::RFlags};

pub const TESTS: &[Test] = &[
    ktest!(halted_waiters_are_woken_by_every_state).min_cpus(2).params("stop_machine.spin_us=0"),
    ktest!(a_wake_up_taken_just_before_the_halt_ends_it)
        .min_cpus(3)
        .params("stop_machine.spin_us=0;stop_machine.timeout_ms=3000"),
    ktest!(an_nmi_in_the_stub_before_its_hlt_skips_the_hlt),
];

fn err(e: impl core::fmt::Debug) -> Failure {
    Failure(alloc::format!("{e:?}"))
}

fn other_online() -> alloc::vec::Vec<CpuId> {
    let me = percpu::current_cpu();
    smp::ONLINE.snapshot().iter().filter(|c| *c != me).collect()
}

/// With no spinning at all, every waiter halts after each ack, so every
/// state change must wake them: 100 stop-machines all finish, with the
/// others' interrupts off in RUN, and no wake-up NMI goes unclaimed.
fn halted_waiters_are_woken_by_every_state() -> Outcome {
    let (halts, unclaimed) = (stop_machine::halts(), nmi::unclaimed());
    for round in 0..100 {
        stop_machine::stop_machine(&CpuSet::single(CpuId::BOOT), &|_| ())
            .map_err(|e| Failure(alloc::format!("round {round}: {e:?}")))?;
    }
    for cpu in smp::ONLINE.snapshot().iter() {
        kassert!(stop_machine::irqs_were_off_in_run(cpu), "{cpu} had interrupts on in RUN");
    }
    kassert!(stop_machine::halts() > halts, "no waiter ever halted: the test proved nothing");
    kassert_eq!(nmi::unclaimed(), unclaimed);
    Ok(())
}

const BEFORE_HALT: Point = points::STOP_MACHINE_BEFORE_HALT;
const DISABLE_IRQ: Point = points::STOP_MACHINE_DISABLE_IRQ;

static WINDOW_REACHED: AtomicBool = AtomicBool::new(false);
static NMI_IN_WINDOW: AtomicBool = AtomicBool::new(false);

/// Runs on X at the hook between its last look and its halt: lets the held
/// CPU ack, so the state advances and X, whose flag is up, gets its wake-up
/// NMI here, before it halts.
fn take_the_wake_up_before_halting() {
    let me = percpu::current_cpu();
    WINDOW_REACHED.store(true, Ordering::SeqCst);
    let taken = stop_machine::wake_nmis_taken(me);
    hooks::release(DISABLE_IRQ);
    let got = time::wait_until(2_000_000, || stop_machine::wake_nmis_taken(me) != taken);
    NMI_IN_WINDOW.store(got, Ordering::SeqCst);
}

/// The lost wake-up: X has acked and looked a last time, and its wake-up
/// NMI arrives before its `hlt`. Y is held before acking DISABLE_IRQ, so X
/// is sure to halt in PREPARE or DISABLE_IRQ; at X's hook Y is let go, the
/// state advances and X takes its NMI there. The halt must then not happen
/// (the stub compares the wake count): a lost wake-up leaves X halted and
/// the controller names it after 3 s.
fn a_wake_up_taken_just_before_the_halt_ends_it() -> Outcome {
    let &[x, y, ..] = other_online().as_slice() else { return Err(err("needs two other online CPUs")) };
    WINDOW_REACHED.store(false, Ordering::SeqCst);
    NMI_IN_WINDOW.store(false, Ordering::SeqCst);
    hooks::arm(DISABLE_IRQ, Some(y), Mode::Pause);
    hooks::arm(BEFORE_HALT, Some(x), Mode::Call(take_the_wake_up_before_halting));
    let r = stop_machine::stop_machine(&CpuSet::single(CpuId::BOOT), &|_| ());
    hooks::release(DISABLE_IRQ);
    hooks::release(BEFORE_HALT);
    r.map_err(err)?;
    kassert!(WINDOW_REACHED.load(Ordering::SeqCst), "{x} never reached its halt: the test proved nothing");
    kassert!(
        NMI_IN_WINDOW.load(Ordering::SeqCst),
        "{x}'s wake-up NMI did not arrive while it was held before its halt"
    );
    Ok(())
}

fn frame_at(rip: u64) -> InterruptStackFrame {
    let cs = SegmentSelector::new(1, PrivilegeLevel::Ring0);
    InterruptStackFrame::new(VirtAddr::new(rip), cs, RFlags::empty(), VirtAddr::new(0x1000), cs)
}

/// An NMI in the stub's window (from the saved flags up to and including
/// the `hlt`) must return past the `hlt`; before the window, or after the
/// `hlt` (the normal wake-up), it returns where it was.
fn an_nmi_in_the_stub_before_its_hlt_skips_the_hlt() -> Outcome {
    let [entry, window, hlt, resume] = nmi_halt::stub_addresses();
    kassert!(entry < window && window < hlt && hlt < resume, "stub layout {entry:#x} {window:#x} {hlt:#x} {resume:#x}");
    for (rip, want) in [(entry, entry), (window, resume), (hlt, resume), (resume, resume), (entry - 1, entry - 1)] {
        let mut frame = frame_at(rip);
        nmi_halt::skip_halt_if_interrupted_in_stub(&mut frame);
        let got = frame.instruction_pointer.as_u64();
        kassert!(got == want, "an NMI at {rip:#x} returns to {got:#x}, not {want:#x}");
    }
    Ok(())
}
