//! The machine a boot runs on: which emulator, firmware, CPUs and boot
//! medium. [`crate::qemu`] and [`crate::bochs`] turn it into their command
//! lines.

use std::time::Duration;

use bootimage::Firmware;

use crate::cli::Machine;
use crate::prereq::Host;

/// The emulator a boot runs under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Emulator {
    /// QEMU with TCG: every machine, firmware and CPU count.
    Qemu,
    /// Bochs 2.7: a BIOS machine of at most [`crate::bochs::MAX_CPUS`] CPUs;
    /// an independent model of the APIC and of SMP start-up.
    Bochs,
}

impl Emulator {
    pub fn name(self) -> &'static str {
        match self {
            Emulator::Qemu => "qemu",
            Emulator::Bochs => "bochs",
        }
    }
}

/// Where the image is attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Medium {
    /// The machine's own disk controller (IDE, or AHCI on q35).
    Disk,
    /// A USB stick: `usb-storage` on an xHCI controller, as on hardware
    /// booted from a stick.
    UsbStick,
}

/// Everything that shapes a boot except the image.
#[derive(Clone, Debug)]
pub struct VmConfig {
    /// The named test configuration this is (see [`crate::configs`]);
    /// `None` for the one the command-line options describe.
    pub name: Option<String>,
    pub emulator: Emulator,
    pub firmware: Firmware,
    pub medium: Medium,
    /// QEMU's machine type (Bochs has one machine: an i440FX PC).
    pub machine: Machine,
    /// More `-machine` options, e.g. `kernel-irqchip=split`.
    pub machine_opts: Option<String>,
    /// CPUs present at boot: `-smp`'s leading number.
    pub smp: u32,
    /// More `-smp` options, e.g. `maxcpus=4`.
    pub smp_opts: Option<String>,
    /// As QEMU's `-m` takes it, e.g. `256M`.
    pub memory: String,
    /// CPU model as the emulator names it: QEMU's `-cpu qemu64,x2apic=on`,
    /// Bochs's `corei7_skylake_x`.
    pub cpu: Option<String>,
    /// Passed to QEMU after ours.
    pub extra: Vec<String>,
    /// Time from power-on to the first test, when the firmware's usual
    /// [`boot_allowance`](crate::plan::boot_allowance) is not enough.
    pub boot_allowance: Option<Duration>,
}

impl VmConfig {
    /// A QEMU `pc` with `smp` CPUs booting from its disk, 256 MiB, default CPU.
    pub fn qemu(firmware: Firmware, smp: u32) -> VmConfig {
        VmConfig {
            name: None,
            emulator: Emulator::Qemu,
            firmware,
            medium: Medium::Disk,
            machine: Machine::Pc,
            machine_opts: None,
            smp,
            smp_opts: None,
            memory: "256M".into(),
            cpu: None,
            extra: Vec::new(),
            boot_allowance: None,
        }
    }

    /// Short label for reports: the configuration's name, or `bios/smp4`
    /// for the machine the command line describes.
    pub fn label(&self) -> String {
        match &self.name {
            Some(name) => name.clone(),
            None => format!("{}/smp{}", self.firmware.name(), self.smp),
        }
    }

    /// QEMU's `-machine` value, e.g. `q35,kernel-irqchip=split`.
    pub fn machine_arg(&self) -> String {
        with_opts(self.machine.name().to_owned(), self.machine_opts.as_deref())
    }

    /// QEMU's `-smp` value, e.g. `2,maxcpus=4`.
    pub fn smp_arg(&self) -> String {
        with_opts(self.smp.to_string(), self.smp_opts.as_deref())
    }

    /// Time from power-on to the first test.
    pub fn boot_allowance(&self) -> Duration {
        self.boot_allowance.unwrap_or_else(|| crate::plan::boot_allowance(self.emulator, self.firmware))
    }

    /// Why this machine cannot run on `host`, with the way to fix it;
    /// `None` when it can.
    pub fn unmet_requirement(&self, host: &Host) -> Option<String> {
        match self.emulator {
            Emulator::Qemu => crate::qemu::unmet_requirement(self, host.version),
            Emulator::Bochs => crate::bochs::unmet_requirement(self, host.bochs.as_deref()),
        }
    }
}

fn with_opts(value: String, opts: Option<&str>) -> String {
    match opts {
        Some(opts) => format!("{value},{opts}"),
        None => value,
    }
}
