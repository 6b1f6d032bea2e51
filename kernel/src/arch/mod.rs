//! Architecture code. Only x86_64 exists; the split keeps generic code from
//! reaching into registers.
pub mod x86_64;
