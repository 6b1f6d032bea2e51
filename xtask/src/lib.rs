//! `cargo xtask`: builds the kernels and their disk images, boots them in
//! QEMU, and runs the host and in-guest tests.
//!
//! The pure parts (protocol parsing, planning, judging, counting) are kept
//! apart from the parts that touch cargo, QEMU and the terminal, so that
//! `tests/tooling` can test them without booting anything.

pub mod backtrace;
pub mod bench;
pub mod bochs;
pub mod boot;
pub mod build;
pub mod cli;
pub mod commands;
pub mod configs;
pub mod gdb;
pub mod guest;
pub mod hosttest;
pub mod judge;
pub mod plan;
pub mod prereq;
pub mod process;
pub mod protocol;
pub mod qemu;
pub mod report;
pub mod strip;
pub mod symbols;
pub mod torture;
pub mod usb;
pub mod vm;
pub mod workspace;
