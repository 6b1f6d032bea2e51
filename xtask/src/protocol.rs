//! The guest protocol, as xtask uses it. It is defined once, in the
//! `protocol` crate (`kernel/protocol`, whose comment is the reference),
//! which the kernels write their lines with; this module names what xtask
//! needs and adds the one check only the host can make: a test's `params`
//! must be valid boot parameters.

pub use protocol::bt::{Line as BtLine, PREFIX as BT_PREFIX, parse_line as parse_backtrace_line};
pub use protocol::exit::{QEMU_FAILURE as EXIT_FAILURE, QEMU_SUCCESS as EXIT_SUCCESS};
pub use protocol::ktest::{Event, Expect, TestInfo};
pub use protocol::{CONSOLE_READY, ProtocolError, clean_line};

/// Parses one serial line (see `protocol::ktest::parse_line`), and checks a
/// listed test's `params` with the same rules as `-p`.
pub fn parse_line(raw: &str) -> Result<Option<Event>, ProtocolError> {
    let event = protocol::ktest::parse_line(raw)?;
    if let Some(Event::List(test)) = &event {
        let words: Vec<String> = test.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        bootimage::BootParams::parse(words.iter().map(String::as_str))
            .map_err(|e| ProtocolError { line: clean_line(raw).to_owned(), reason: format!("params: {e}") })?;
    }
    Ok(event)
}
