//! The 8254 PIT, used once: as the known-rate clock the TSC is calibrated
//! against.

use x86_64::instructions::port::Port;

use super::ports::{NMI_STATUS_CONTROL, PIT_CHANNEL2, PIT_COMMAND};

/// The PIT's input clock, Hz.
const PIT_HZ: u64 = 1_193_182;
/// Command: channel 2, access lobyte/hibyte, mode 0 (interrupt on terminal count), binary.
const CMD_CH2_LOHI_MODE0: u8 = 0b1011_0000;
const PORTB_GATE2: u8 = 1 << 0;
const PORTB_SPEAKER: u8 = 1 << 1;
const PORTB_OUT2: u8 = 1 << 5;

/// How long to wait for the PIT's terminal count before calling it absent.
const MAX_SPINS: u64 = 50_000_000;

/// Counts TSC ticks during `us` microseconds of PIT channel 2 and returns
/// ticks per microsecond; `None` if the PIT never reached its count.
pub fn measure_tsc_per_us(us: u64) -> Option<u64> {
    let count = (PIT_HZ * us / 1_000_000).clamp(1, 0xFFFF) as u16;
    let mut portb: Port<u8> = Port::new(NMI_STATUS_CONTROL);
    let mut cmd: Port<u8> = Port::new(PIT_COMMAND);
    let mut ch2: Port<u8> = Port::new(PIT_CHANNEL2);
    // SAFETY: the PIT and port B are standard PC devices; channel 2 drives
    // only the (here disabled) speaker, so reprogramming it disturbs nothing.
    unsafe {
        let b = portb.read();
        portb.write((b & !PORTB_SPEAKER) | PORTB_GATE2);
        cmd.write(CMD_CH2_LOHI_MODE0);
        ch2.write(count as u8);
        ch2.write((count >> 8) as u8);
        let start = crate::time::rdtsc();
        // OUT2 rises at terminal count. Bounded in case the PIT is absent.
        let mut spins: u64 = 0;
        while portb.read() & PORTB_OUT2 == 0 {
            spins += 1;
            if spins == MAX_SPINS {
                return None;
            }
        }
        let ticks = crate::time::rdtsc() - start;
        let actual_us = count as u64 * 1_000_000 / PIT_HZ;
        Some(ticks / actual_us.max(1))
    }
}
