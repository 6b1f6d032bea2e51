//! Line editing for the console: typed bytes in (from COM1 or the PS/2
//! keyboard, interleaved as they come), whole command lines out.

use alloc::string::String;

const CR: u8 = b'\r';
const LF: u8 = b'\n';
const BACKSPACE: u8 = 0x08;
/// What many serial terminals send for the backspace key.
const DELETE: u8 = 0x7F;
/// Longer input is cut here: no command comes near it, and a stuck key or
/// line noise must not grow the heap without bound.
const MAX_LINE: usize = 256;

/// The line being typed.
#[derive(Default)]
pub struct LineEditor {
    line: String,
}

impl LineEditor {
    pub const fn new() -> LineEditor {
        LineEditor { line: String::new() }
    }

    /// Takes one typed byte; returns the whole line when it ends (CR or LF).
    /// Backspace and delete remove the last character; other control bytes
    /// and non-ASCII are ignored.
    pub fn feed(&mut self, byte: u8) -> Option<String> {
        match byte {
            CR | LF => return Some(core::mem::take(&mut self.line)),
            BACKSPACE | DELETE => {
                self.line.pop();
            }
            b if (b.is_ascii_graphic() || b == b' ') && self.line.len() < MAX_LINE => self.line.push(b as char),
            _ => {}
        }
        None
    }
}
