//! xtask's tests: its pure parts (protocol reading, planning, judging,
//! counting, the matrix, the CLI's parsing) tested without booting anything,
//! from inside the crate so that its modules need not be public.

mod backtrace;
mod bench;
mod bochs;
mod cli;
mod configs;
mod host_side;
mod judge;
mod plan;
mod protocol;
mod stdin_feed;
mod torture;
mod usb_checks;
mod usb_cli;
mod usb_write;
