//! The PS/2 keyboard as console input: bytes from the i8042, decoded by
//! `pc-keyboard` as scancode set 1 (what the controller delivers with
//! translation on) on a US layout, handed to the shell as ASCII.
//!
//! The controller is probed on first use. Without one (hardware with no
//! legacy PS/2) that is said once in the log and every later read returns
//! at once, without touching the ports again.

use pc_keyboard::layouts::Us104Key;
use pc_keyboard::{DecodedKey, HandleControl, PS2Keyboard, ScancodeSet1};
use spin::Mutex;

use crate::arch::x86_64::i8042::{self, I8042};

type Decoder = PS2Keyboard<Us104Key, ScancodeSet1>;

enum State {
    Unprobed,
    Absent,
    Ready(I8042, Decoder),
}

static STATE: Mutex<State> = Mutex::new(State::Unprobed);

/// Runs `f` on the controller and decoder, probing them the first time.
/// `None` when there is no usable controller.
fn with_keyboard<R>(f: impl FnOnce(&mut I8042, &mut Decoder) -> R) -> Option<R> {
    let mut state = STATE.lock();
    if matches!(*state, State::Unprobed) {
        *state = probe();
    }
    match &mut *state {
        State::Ready(ctrl, decoder) => Some(f(ctrl, decoder)),
        State::Unprobed | State::Absent => None,
    }
}

fn probe() -> State {
    // SAFETY: this is the only `I8042` ever made: `STATE` holds it from now
    // on, and every use goes through `STATE`'s lock.
    let mut ctrl = unsafe { I8042::new() };
    match ctrl.init() {
        Ok(()) => {
            log::info!("console: PS/2 keyboard input on");
            let decoder = PS2Keyboard::new(ScancodeSet1::new(), Us104Key, HandleControl::Ignore);
            State::Ready(ctrl, decoder)
        }
        Err(i8042::Error::Absent) => {
            log::info!("console: no PS/2 controller; keyboard input off");
            State::Absent
        }
        Err(e) => {
            log::warn!("console: PS/2 controller does not answer ({e:?}); keyboard input off");
            State::Absent
        }
    }
}

/// Whether a PS/2 keyboard is there (probing it if need be).
pub fn present() -> bool {
    with_keyboard(|_, _| ()).is_some()
}

/// Reads at most one byte from the keyboard and decodes it: the ASCII
/// character a key press produced, if this byte completed one. Key
/// releases, modifiers and keys with no ASCII meaning give `None`.
pub fn try_read_byte() -> Option<u8> {
    with_keyboard(|ctrl, decoder| {
        let byte = ctrl.try_read_keyboard()?;
        let event = decoder.add_byte(byte).ok()??;
        match decoder.process_keyevent(event)? {
            DecodedKey::Unicode(c) if c.is_ascii() => Some(c as u8),
            DecodedKey::Unicode(_) | DecodedKey::RawKey(_) => None,
        }
    })
    .flatten()
}

/// Makes the controller deliver `scancode` as if a key had sent it, for the
/// in-guest test of the keyboard path (see `i8042::write_keyboard_output`).
pub fn inject_scancode(scancode: u8) -> Result<(), i8042::Error> {
    with_keyboard(|ctrl, _| ctrl.write_keyboard_output(scancode)).unwrap_or(Err(i8042::Error::Absent))
}
