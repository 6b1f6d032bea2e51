//! `cargo xtask bench`: the measured speed of every SMP operation.
//!
//! The guest does the measuring (kernel/diag/src/bench/run.rs, boot parameter
//! `bench.run=1`); this side parses its lines ([`parse`]), combines the
//! boots ([`results`]), checks the performance goals ([`goals`]), compares with
//! a baseline ([`compare`]), and shows it all as tables ([`table`]), SVG
//! plots ([`plot`]) and a JSON file. The boots themselves are driven by
//! `crate::commands::bench`. All of this but the host facts ([`host`]) is
//! pure, for the host tests in xtask/src/tests/bench.rs.

pub mod args;
pub mod compare;
pub mod goals;
pub mod host;
pub mod parse;
pub mod plot;
pub mod results;
pub mod table;

pub use args::BenchArgs;
