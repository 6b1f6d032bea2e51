//! Boot parameters: `key=value` lines in the loader's ramdisk (written by
//! `bootimage`), so they reach the kernel the same way under every firmware
//! and emulator.

use spin::Once;

static TEXT: Once<&'static str> = Once::new();

/// Records the ramdisk's text. Invalid UTF-8 or no ramdisk means no
/// parameters (with a warning), never a failed boot.
pub fn init(ramdisk: Option<&'static [u8]>) {
    let text = match ramdisk.map(core::str::from_utf8) {
        Some(Ok(t)) => t,
        Some(Err(e)) => {
            log::warn!("boot parameters are not UTF-8 ({e}); ignoring them");
            ""
        }
        None => "",
    };
    TEXT.call_once(|| text);
}

/// Every `(key, value)` pair, in order.
pub fn all() -> impl Iterator<Item = (&'static str, &'static str)> {
    TEXT.get()
        .copied()
        .unwrap_or("")
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
}

/// The last value given for `key`.
pub fn get(key: &str) -> Option<&'static str> {
    all().filter(|(k, _)| *k == key).map(|(_, v)| v).last()
}

/// `key` as a number, or `default` (a malformed value is reported).
pub fn get_u64(key: &str, default: u64) -> u64 {
    match get(key) {
        None => default,
        Some(v) => v.parse().unwrap_or_else(|_| {
            log::warn!("boot parameter {key}={v} is not a number; using {default}");
            default
        }),
    }
}

/// `key` as a flag: `1`/`true`/`yes`/`on` are true.
pub fn get_bool(key: &str, default: bool) -> bool {
    match get(key) {
        None => default,
        Some(v) => matches!(v, "1" | "true" | "yes" | "on"),
    }
}
