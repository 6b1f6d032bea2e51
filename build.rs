//! `cargo build` at the top of the workspace: the demonstration kernel,
//! built for `x86_64-unknown-none` as an artifact dependency, packed into a
//! BIOS and a UEFI disk image with no boot parameters (the kernel's
//! defaults). The images' paths reach `src/main.rs` (`cargo run`) as
//! `BIOS_IMAGE` and `UEFI_IMAGE`, and are printed as warnings so that a
//! plain `cargo build` says where they are.
//!
//! Everything per boot (parameters, the test kernel, the machine matrix)
//! stays with `cargo xtask`, which builds its own images for every boot.

use std::path::PathBuf;

use bootimage::{BootParams, Firmware};

fn main() {
    // Cargo sets this for the `demo` binary of the artifact dependency.
    let kernel = PathBuf::from(std::env::var_os("CARGO_BIN_FILE_DEMO_demo").expect("cargo names the demo kernel"));
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let defaults = BootParams::parse([]).expect("no parameters are valid parameters");
    for (firmware, var) in [(Firmware::Bios, "BIOS_IMAGE"), (Firmware::Uefi, "UEFI_IMAGE")] {
        let image = bootimage::build_image(&kernel, firmware, &defaults, &out.join(firmware.name()))
            .unwrap_or_else(|e| panic!("building the {} image: {e:#}", firmware.name()));
        println!("cargo:rustc-env={var}={}", image.display());
        println!("cargo:warning={} image: {}", firmware.name(), image.display());
    }
    println!("cargo:rerun-if-env-changed=CARGO_BIN_FILE_DEMO_demo");
}
