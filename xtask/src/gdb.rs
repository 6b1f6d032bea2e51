//! `cargo xtask qemu --gdb`: QEMU's gdb stub, and the gdb command line that
//! attaches to it with the kernel's symbols where the kernel really is.

use std::path::Path;

/// Where the loader maps the kernel (`kernel/src/boot.rs` `KERNEL_BASE`, a
/// fixed mapping in the loader's config). The ELF is linked at 0, so gdb
/// needs its symbols moved by exactly this much.
pub const KERNEL_BASE: u64 = 0xffff_8000_0000_0000;

/// The gdb stub's port when none is given (QEMU's `-s`).
pub const DEFAULT_PORT: u16 = 1234;

/// QEMU arguments: the gdb stub on `port`, and no CPU running until gdb
/// says so (`-S`), so that even the first instruction can be debugged.
/// Loopback only: the stub gives whoever connects the whole machine.
pub fn qemu_args(port: u16) -> Vec<String> {
    vec!["-gdb".into(), format!("tcp:127.0.0.1:{port}"), "-S".into()]
}

/// The gdb command that attaches: 64-bit x86 from the start (the CPU is
/// still in real mode at the first instruction, and gdb would guess from
/// it), the kernel's symbols at [`KERNEL_BASE`], then the connection.
pub fn attach_command(elf: &Path, port: u16) -> String {
    let elf = shell_word(&elf.display().to_string());
    format!(
        "gdb -ex 'set architecture i386:x86-64' -ex 'symbol-file {elf} -o {KERNEL_BASE:#x}' -ex 'target remote :{port}'"
    )
}

/// `word` as it can stand inside the single-quoted `-ex '...'` argument
/// and, for gdb, as one file name.
fn shell_word(word: &str) -> String {
    if word.chars().all(|c| c.is_ascii_alphanumeric() || "-_./+@%,:=".contains(c)) {
        word.to_owned()
    } else {
        // gdb takes a double-quoted file name; the shell's single quotes
        // need closing and reopening around a literal quote.
        format!("\"{}\"", word.replace('\\', "\\\\").replace('"', "\\\"").replace('\'', "'\\''"))
    }
}
