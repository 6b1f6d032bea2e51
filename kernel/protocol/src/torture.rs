//! The torture's call kinds, in the order `stress.weights` weighs them and
//! the torture's report names them.

pub const CALL_KINDS: [&str; 6] = ["single", "nowait", "async", "many", "all", "many-nowait"];
