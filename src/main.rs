//! `cargo run` at the top of the workspace: boots the demonstration kernel's
//! BIOS image (built by `build.rs`) in QEMU, serial on this terminal, and
//! exits with the kernel's verdict. The UEFI image is built beside it
//! (`cargo run -- --paths` prints both); booting it needs OVMF and its
//! variable store, which `cargo xtask qemu --firmware uefi` sets up, as it
//! does everything else (CPU counts, machines, parameters, the tests).

use std::process::{Command, ExitCode};

use protocol::exit::{QEMU_FAILURE, QEMU_SUCCESS};

const BIOS_IMAGE: &str = env!("BIOS_IMAGE");
const UEFI_IMAGE: &str = env!("UEFI_IMAGE");

fn main() -> ExitCode {
    match std::env::args().nth(1).as_deref() {
        None => {}
        Some("--paths") => {
            println!("bios: {BIOS_IMAGE}\nuefi: {UEFI_IMAGE}");
            return ExitCode::SUCCESS;
        }
        Some(other) => {
            eprintln!("usage: cargo run [-- --paths]   (got `{other}`; for more, see `cargo xtask qemu --help`)");
            return ExitCode::FAILURE;
        }
    }
    eprintln!("booting {BIOS_IMAGE} (quit QEMU with Ctrl-A X)");
    let status = Command::new("qemu-system-x86_64")
        .args(["-machine", "pc", "-cpu", "max", "-smp", "4", "-m", "256M", "-display", "none", "-no-reboot"])
        .args(["-serial", "stdio", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"])
        .arg("-drive")
        .arg(format!("format=raw,file={BIOS_IMAGE}"))
        .status();
    match status {
        Ok(s) if s.code() == Some(QEMU_SUCCESS) => ExitCode::SUCCESS,
        Ok(s) if s.code() == Some(QEMU_FAILURE) => {
            eprintln!("the kernel reported a failure");
            ExitCode::FAILURE
        }
        Ok(s) => {
            eprintln!("QEMU ended without the kernel's verdict ({s}): a reset, or QEMU's own error");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!(
                "cannot start qemu-system-x86_64 ({e}): install QEMU, or run `cargo xtask qemu`, which offers to"
            );
            ExitCode::FAILURE
        }
    }
}
