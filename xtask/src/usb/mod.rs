//! `cargo xtask usb`: the image on a USB stick, for booting real machines.
//!
//! Writing a disk is the one thing xtask does that can destroy someone's
//! data, so every part that decides is kept apart from the system it asks:
//! [`checks`] (with `in_use`) reads sysfs and /proc below a
//! [`checks::SystemRoot`] that the host tests fake, [`write`] writes to any
//! [`write::Medium`] (a regular file in the tests), and [`dialog`] shows
//! and asks through any reader and writer. [`open`] holds the device
//! exclusively; `crate::commands::usb` puts them in order.

pub mod args;
pub mod checks;
pub mod dialog;
mod in_use;
pub mod open;
pub mod write;

pub use args::UsbArgs;
