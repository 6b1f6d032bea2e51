//! Interrupt vectors the kernel uses, named by purpose. Priority class is the
//! high nibble (SDM vol. 3, 11.8.3); the IPIs sit in the top class so nothing
//! the kernel uses can block them.

/// The legacy 8259 PICs are remapped here (and masked) so a stray IRQ can
/// never alias a CPU exception vector.
pub const PIC_BASE: u8 = 0x20;
/// Local APIC timer: masked but for a halted waiter's alarm (`apic::alarm`).
pub const LAPIC_TIMER: u8 = 0xEC;
/// A cross-call doorbell: "your call queue became non-empty".
pub const CALL_FUNCTION: u8 = 0xF0;
/// A bare IPI whose handler only acknowledges (bring-up checks, benchmarks).
pub const PING: u8 = 0xF1;
/// The maskable STOP IPI of send-stop's first attempt.
pub const STOP: u8 = 0xF2;
/// "Join the stop-machine in progress".
pub const STOP_MACHINE: u8 = 0xF3;
/// "The call you halted for has run": wakes a halted call waiter.
pub const WAKE: u8 = 0xF4;
/// Local APIC error interrupt (LVT Error).
pub const LAPIC_ERROR: u8 = 0xFE;
/// Spurious-interrupt vector (SVR); its low nibble must be all ones on old APICs.
pub const SPURIOUS: u8 = 0xFF;

/// The IPIs the kernel sends, as a type rather than raw vector numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IpiKind {
    CallFunction,
    Ping,
    Stop,
    StopMachine,
    Wake,
}

impl IpiKind {
    pub const fn vector(self) -> u8 {
        match self {
            IpiKind::CallFunction => CALL_FUNCTION,
            IpiKind::Ping => PING,
            IpiKind::Stop => STOP,
            IpiKind::StopMachine => STOP_MACHINE,
            IpiKind::Wake => WAKE,
        }
    }
}
