//! Bochs: its configuration, the disk geometry it needs, when it cannot
//! run, and how its ending stands for QEMU's exit status.

use std::path::Path;

use crate::bochs::{self, ExitWatch, MAX_CPUS, SHUTDOWN_MESSAGE, X2APIC_MODEL};
use crate::judge::Exit;
use crate::protocol::{EXIT_FAILURE, EXIT_SUCCESS};
use crate::vm::{Emulator, Medium, VmConfig};
use bootimage::Firmware;

fn cfg(cpus: u32) -> VmConfig {
    VmConfig { emulator: Emulator::Bochs, ..VmConfig::qemu(Firmware::Bios, cpus) }
}

#[test]
fn configuration_boots_the_disk_headless_with_serial_on_a_socket() {
    let text = bochs::config_text(&cfg(4), Path::new("/t/bios.img"), 7, 40123, Path::new("/t/bochs.log"));
    for needle in [
        "megs: 256\n",
        "cpu: count=4, ips=10000000, reset_on_triple_fault=0\n",
        "romimage: file=/usr/share/bochs/BIOS-bochs-latest, options=fastboot\n",
        "display_library: sdl2\n",
        "ata0-master: type=disk, path=/t/bios.img, mode=flat, cylinders=7, heads=16, spt=63\n",
        "boot: disk\n",
        "com1: enabled=1, mode=socket-client, dev=127.0.0.1:40123\n",
        "clock: sync=none\n",
        "log: /t/bochs.log\n",
    ] {
        assert!(text.contains(needle), "{needle:?} missing:\n{text}");
    }
    let x2 = VmConfig { cpu: Some(X2APIC_MODEL.into()), memory: "1G".into(), ..cfg(2) };
    let text = bochs::config_text(&x2, Path::new("/t/bios.img"), 7, 1, Path::new("/t/l"));
    assert!(text.contains("cpu: count=2, ips=10000000, reset_on_triple_fault=0, model=corei7_skylake_x\n"), "{text}");
    assert!(text.contains("megs: 1024\n"), "{text}");
}

#[test]
fn images_are_padded_to_whole_cylinders() {
    let dir = std::env::temp_dir().join(format!("bochs-pad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let image = dir.join("disk.img");
    let cylinder = 16 * 63 * 512;
    for (len, cylinders) in [(1u64, 1u64), (cylinder, 1), (cylinder + 1, 2), (5 * cylinder - 7, 5)] {
        std::fs::write(&image, vec![0xA5u8; len as usize]).unwrap();
        assert_eq!(bochs::pad_to_cylinders(&image).unwrap(), cylinders, "{len}");
        let data = std::fs::read(&image).unwrap();
        assert_eq!(data.len() as u64, cylinders * cylinder);
        assert!(data[..len as usize].iter().all(|&b| b == 0xA5), "the image itself is untouched");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn what_bochs_cannot_run_is_named_with_the_way_out() {
    let bin = Path::new("/usr/bin/bochs");
    let uefi = VmConfig { firmware: Firmware::Uefi, ..cfg(4) };
    assert!(bochs::unmet_requirement(&uefi, Some(bin)).unwrap().contains("BIOS image only"));
    let usb = VmConfig { medium: Medium::UsbStick, ..cfg(4) };
    assert!(bochs::unmet_requirement(&usb, Some(bin)).is_some());
    let big = bochs::unmet_requirement(&cfg(MAX_CPUS + 1), Some(bin)).unwrap();
    assert!(big.contains("at most 15"), "{big}");
    let missing = bochs::unmet_requirement(&cfg(4), None).unwrap();
    assert!(missing.contains("not installed") && missing.contains("apt-get install bochs bochsbios vgabios bochs-sdl"));
}

#[test]
fn a_shutdown_after_the_exit_line_is_the_guests_verdict() {
    let mut ok = ExitWatch::default();
    ok.serial("@@KTEST DONE\t3\t0\t0");
    ok.serial("@@EXIT\tsuccess");
    ok.emulator(&format!("[UNMAP ] {SHUTDOWN_MESSAGE}"));
    assert_eq!(ok.exit(Exit::Code(1)), Exit::Code(EXIT_SUCCESS));
    assert_eq!(ok.exit(Exit::TimedOut), Exit::TimedOut, "a kill is a kill");

    let mut failed = ExitWatch::default();
    failed.serial("@@EXIT\tfailure\r");
    failed.emulator(SHUTDOWN_MESSAGE);
    assert_eq!(failed.exit(Exit::Code(1)), Exit::Code(EXIT_FAILURE));

    // Bochs ending for its own reasons (a triple fault panics it) is a reset.
    let mut panic = ExitWatch::default();
    panic.emulator(">>PANIC<< exception(): 3rd (13) exception with no resolution");
    assert_eq!(panic.exit(Exit::Code(1)), Exit::Code(1));
    // The line alone, without the port (a guest that printed it and hung),
    // and the port alone (a guest that never said), are not a verdict.
    let mut said = ExitWatch::default();
    said.serial("@@EXIT\tsuccess");
    assert_eq!(said.exit(Exit::Code(1)), Exit::Code(1));
    let mut port = ExitWatch::default();
    port.emulator(SHUTDOWN_MESSAGE);
    assert_eq!(port.exit(Exit::Code(1)), Exit::Code(1));
    // Only the guest's own line counts: a log line quoting it does not.
    let mut quoted = ExitWatch::default();
    quoted.serial("[ 1.0 cpu0] INFO  the kernel prints @@EXIT\tsuccess");
    quoted.emulator(SHUTDOWN_MESSAGE);
    assert_eq!(quoted.exit(Exit::Code(1)), Exit::Code(1));
}
