//! Command-line arguments. Parsing only: the commands live in
//! [`crate::commands`].

use std::path::PathBuf;

use bootimage::{BootParams, Firmware};
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::configs::{self, Selection};
use crate::torture;

#[derive(Parser, Debug)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "Build, boot and test the SMP unikernel",
    long_about = "Build, boot and test the SMP unikernel.\n\n\
        Boots use QEMU (TCG; never KVM) with the kernel's serial port on the terminal. \
        Images, boot parameters and serial logs go to target/xtask/<run>/. \
        Missing QEMU/OVMF is installed with apt-get when running as root, otherwise \
        the command to install it is printed."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Measure every SMP operation under QEMU: tables, goals, JSON and SVG plots.
    #[command(long_about = "Boot the demonstration kernel (the one that ships, without test hooks) with \
        bench.run=1 (plus smp.fast_start=1 and smp.expect_cpus) once per CPU count of --smp and per \
        --runs, and read the figures it measures: the ping-pong floor, IPI round trip, synchronous \
        call to an idle and to a busy CPU, async throughput, call-all to idle and to busy CPUs, \
        stop-machine, hotplug down/up/cycle, bring-up one by one and in parallel.\n\n\
        Prints per CPU count each figure's median and p99 (µs) and its ratio to the floor of the \
        same boot, the scaling over the CPU counts, and the performance goals (against Linux 6.1 under \
        the same QEMU) as MET / NOT MET. Writes results.json, latency-smpN.svg and scaling.svg to \
        --out. Boots of one CPU count are combined by the median of their medians.\n\n\
        Exit status: 0 when every boot measured; 1 when a boot failed (the rest is still shown and \
        saved); 2 with --fail-on-regression when a figure is worse than --baseline by more than \
        --threshold percent.")]
    Bench(crate::bench::BenchArgs),
    /// Boot the test kernel under Bochs (BIOS image, headless), serial on the terminal.
    #[command(long_about = "Build the demo kernel (or the test kernel) and boot its BIOS image in \
        Bochs 2.7, headless (SDL2 with SDL_VIDEODRIVER=dummy), streaming the guest's serial line to \
        the terminal or to --serial FILE. Bochs models the local APIC and SMP start-up \
        independently of QEMU; it runs 1 to 15 CPUs, with x2APIC on request (--x2apic: CPU model \
        corei7_skylake_x). The run ends by itself when the kernel shuts down through Bochs's \
        shutdown port, or at --timeout.\n\n\
        Bochs is installed with apt-get when missing and running as root; otherwise the command \
        to install it is printed.\n\n\
        Exit status: 0 when the guest exits with success, 1 when it reports failure, 3 when Bochs \
        ends otherwise (triple fault, Bochs panic), 124 when it runs past --timeout and is killed.")]
    Bochs(BochsArgs),
    /// Build the kernel and its disk images, and print the images' paths.
    Image(ImageArgs),
    /// Build the demo kernel and boot it in QEMU with serial on the terminal.
    #[command(long_about = "Build the demo kernel (or the test kernel) and boot it in QEMU, \
        streaming the guest's serial output.\n\n\
        Exit status: 0 when the guest exits with success (QEMU status 33), 1 when it reports \
        failure (35), 3 when it resets or powers off on its own (triple fault?), 124 when it \
        runs past --timeout and is killed.\n\n\
        With --gdb, QEMU waits for a debugger before the first instruction; the command to attach \
        is printed (each vCPU is a gdb thread: `info threads`, `thread 2`).")]
    Qemu(QemuArgs),
    /// Run the in-guest tests over the machine matrix and print a table of verdicts.
    #[command(long_about = "Run the in-guest tests over the machine matrix: QEMU pc and q35 x \
        SeaBIOS and OVMF x 1, 2, 4, 7 and 8 CPUs x xAPIC and x2APIC CPU models, plus disabled MADT \
        entries (maxcpus > smp), 300 CPUs with x2APIC ids above 255, Bochs with and without \
        x2APIC, and booting from a USB stick on xHCI under SeaBIOS and OVMF. `--list` names every \
        cell and what it runs. Each cell shows its tests as they finish, then the time it took and \
        how many cells are done; every boot is bounded by a time limit. A table of cells x verdicts \
        with timings ends the run.\n\n\
        Cells the host cannot run (QEMU older than 8.1 for x2APIC, Bochs missing) are shown as \
        SKIP with the reason and the command that enables them.\n\n\
        Exit status: 0 when no test failed, 1 otherwise.")]
    Matrix(MatrixArgs),
    /// Run the host tests and the in-guest tests; print one line per guest test.
    #[command(long_about = "Run the host tests (`cargo test` on the workspace's default members, then \
        the loom models of the call queue, built with --cfg loom in target/loom) and the in-guest \
        tests (the guest-tests kernel under QEMU), then print `N passed, N failed[, N skipped]` \
        and exit non-zero on any failure.\n\n\
        Guest tests are listed by one boot with ktest.list=1, then grouped: tests that can share \
        a kernel run together in one boot, every fresh/expected-panic/parameterised test gets a \
        boot of its own, tests needing more CPUs than --smp are skipped. See the protocol \
        documentation in the protocol crate, kernel/protocol/src/lib.rs.\n\n\
        Configurations: the `default` one runs every test on the machine --smp, --machine, \
        --cpu and --firmware describe; then the CI subset of the machine matrix (--list-configs \
        names every cell; `cargo xtask matrix` runs them all) runs its part of the tests on \
        machines of their own, each under a `== configuration NAME (FIRMWARE): TESTS ==` header, \
        and a table of configurations and verdicts ends the run. --smp, --machine, --cpu and \
        --firmware shape the `default` configuration only; FILTER, -p, --examples, --memory \
        (unless the configuration sets its own) and the QEMU arguments after `--` apply to \
        every configuration. Configurations the host cannot run (QEMU too old, Bochs missing) \
        are reported as skipped, with the command that enables them.")]
    Test(TestArgs),
    /// Check formatting and run clippy (warnings denied) on the host crates and both kernels.
    #[command(long_about = "The one lint command, the one CI runs: `cargo fmt --all --check`, then \
        `cargo clippy -D warnings` on the host crates (all targets) and on the demo and test kernels \
        for x86_64-unknown-none (a plain `cargo clippy --workspace` cannot build the no_std kernels).\n\n\
        Exit status: 0 when every check is clean; 1 otherwise, naming the checks that failed.")]
    Lint(LintArgs),
    /// Run the cross-call stress with CPU hotplug for a while, showing its progress.
    #[command(long_about = "Boot the test kernel once and run its hotplug torture \
        (stress::hotplug_torture: every CPU sends a random mix of cross-calls while the boot CPU \
        takes random CPUs down and brings them back) for --duration seconds, or with --no-hotplug \
        the plain cross-call stress (stress::cross_call_stress). The guest's progress lines, its \
        final table and the hotplug latencies are shown as they come; --verbose shows all serial \
        output.\n\n\
        Exit status: 0 only when the guest reports the test passed; 1 otherwise (failure, panic, \
        hang past --duration + 120 s, reset).")]
    Torture(TortureArgs),
    /// Print a saved serial log with its backtraces (`@@BT` lines) symbolized.
    #[command(long_about = "Print a saved serial log (a file, or - for standard input) with every \
        backtrace line (`@@BT`, `@@BT-END`) replaced by `function at file:line` lines, inlined \
        frames included, innermost first; all other lines unchanged. For logs from real hardware \
        or from target/xtask/<run>/*.log.\n\n\
        The symbols come from --kernel ELF, or else from a build of the kernel that printed the \
        log: the test kernel (guest-tests) when the log has @@KTEST lines or --test-kernel is \
        given, else the demo kernel. The ELF must be the very one that ran.")]
    Symbolize(SymbolizeArgs),
    /// Write the image to a USB stick (Linux): checks the device, asks, writes, verifies.
    #[command(long_about = "Build the image as `cargo xtask image` does (the demo kernel, or \
        --test-kernel; one --firmware) and write it to the USB stick DEVICE, to boot a real machine \
        from it.\n\n\
        Before anything is built, DEVICE (symlinks such as /dev/disk/by-id/... resolved) must be a \
        block device; a whole disk, not a partition (no /sys/class/block/NAME/partition); removable \
        (/sys/class/block/NAME/removable reads 1, so an internal disk never qualifies); and neither \
        it nor a partition of it may be mounted (/proc/self/mountinfo), a swap area (/proc/swaps) or \
        held by device-mapper (holders/). It is then opened with O_EXCL, so nothing can mount it \
        meanwhile. The built image must fit (sysfs size x 512 bytes).\n\n\
        The device's vendor, model and size and the image's path and size are shown, and the write \
        starts only after `y` on the terminal, or with --yes. Without --yes and without a terminal \
        on standard input it refuses. The image goes out in 1 MiB chunks, each synced, with \
        progress; then the device's cache is dropped and the image read back and compared.\n\n\
        Writing needs permission on DEVICE: run as root, or build as yourself after \
        `sudo setfacl -m u:$USER:rw DEVICE` (lasts until the stick is unplugged).\n\n\
        Exit status: 0 when written and verified; 1 when nothing was written (a refused device, a \
        `no`, a failed build); 2 when writing or verification failed, leaving the stick's contents \
        undefined.")]
    Usb(crate::usb::UsbArgs),
}

/// Firmware of one boot.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FirmwareArg {
    /// Legacy BIOS (SeaBIOS), MBR image.
    Bios,
    /// UEFI (OVMF), GPT image.
    Uefi,
}

impl From<FirmwareArg> for Firmware {
    fn from(f: FirmwareArg) -> Firmware {
        match f {
            FirmwareArg::Bios => Firmware::Bios,
            FirmwareArg::Uefi => Firmware::Uefi,
        }
    }
}

/// One firmware or both.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FirmwareChoice {
    Bios,
    Uefi,
    /// BIOS, then UEFI.
    All,
}

impl FirmwareChoice {
    pub fn firmwares(self) -> Vec<Firmware> {
        match self {
            FirmwareChoice::Bios => vec![Firmware::Bios],
            FirmwareChoice::Uefi => vec![Firmware::Uefi],
            FirmwareChoice::All => Firmware::ALL.to_vec(),
        }
    }
}

/// QEMU machine type.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Machine {
    /// i440FX + PIIX, QEMU's default.
    Pc,
    /// Q35 + ICH9 (PCIe; needed for > 255 CPUs).
    Q35,
}

impl Machine {
    pub fn name(self) -> &'static str {
        match self {
            Machine::Pc => "pc",
            Machine::Q35 => "q35",
        }
    }
}

/// How the virtual machine looks.
#[derive(Args, Debug, Clone)]
pub struct VmArgs {
    /// Number of CPUs.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub smp: u32,
    /// QEMU machine type.
    #[arg(long, value_enum, default_value_t = Machine::Pc)]
    pub machine: Machine,
    /// Guest memory, as QEMU's -m takes it (a number with an optional K/M/G/T suffix).
    #[arg(long, default_value = "256M", value_parser = parse_memory)]
    pub memory: String,
    /// QEMU CPU model, e.g. `qemu64,x2apic=on` (x2APIC under TCG needs QEMU >= 8.1).
    #[arg(long, value_name = "MODEL")]
    pub cpu: Option<String>,
}

#[derive(Args, Debug)]
pub struct ImageArgs {
    /// Which images to build.
    #[arg(long, value_enum, default_value_t = FirmwareChoice::All)]
    pub firmware: FirmwareChoice,
    #[command(flatten)]
    pub kernel: KernelArgs,
}

/// Which kernel an image holds and the boot parameters in its ramdisk:
/// `image`, `qemu`, `bochs` and `usb` take them alike.
#[derive(Args, Debug, Clone)]
pub struct KernelArgs {
    /// Use the guest test kernel (guest-tests) instead of the demo (e.g. with -p ktest.run=NAME).
    #[arg(long)]
    pub test_kernel: bool,
    /// Use this kernel ELF instead of building one.
    #[arg(long, value_name = "ELF")]
    pub kernel: Option<PathBuf>,
    /// Boot parameter (repeatable), e.g. `-p smp.parallel=0`; it travels in the image's ramdisk.
    #[arg(short = 'p', long = "param", value_name = "KEY=VALUE", value_parser = parse_param)]
    pub params: Vec<(String, String)>,
}

#[derive(Args, Debug)]
pub struct QemuArgs {
    /// Firmware to boot with.
    #[arg(long, value_enum, default_value_t = FirmwareArg::Bios)]
    pub firmware: FirmwareArg,
    #[command(flatten)]
    pub vm: VmArgs,
    #[command(flatten)]
    pub kernel: KernelArgs,
    /// Ask the demo kernel to keep running (demo.keep_running=1) and wait without a time limit.
    #[arg(long)]
    pub keep_running: bool,
    /// Kill QEMU after this many seconds [default: 120, none with --keep-running or --gdb].
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: Option<u64>,
    /// Start QEMU's gdb stub, stopped at the first instruction, and print the gdb command
    /// that attaches with the kernel's symbols (no time limit).
    #[arg(long)]
    pub gdb: bool,
    /// The gdb stub's TCP port (on 127.0.0.1).
    #[arg(long, value_name = "PORT", default_value_t = crate::gdb::DEFAULT_PORT, requires = "gdb")]
    pub gdb_port: u16,
    /// Attach the image as a USB stick (usb-storage on an xHCI controller) instead of a disk.
    #[arg(long)]
    pub usb: bool,
    /// Extra arguments for QEMU, after `--`.
    #[arg(last = true, value_name = "QEMU ARGS")]
    pub qemu_args: Vec<String>,
}

/// `test --help`'s heading for the options that shape the `default`
/// configuration alone.
const DEFAULT_MACHINE: &str = "The `default` configuration's machine (--memory also the others', unless they set one)";

#[derive(Args, Debug)]
pub struct TestArgs {
    /// Configurations to run, separated by commas: `default` (every test on the machine the
    /// options below describe), `ci` (the matrix's CI subset), `matrix` (every cell), `all`,
    /// cell names or `*` patterns, e.g. `default,bochs-*,q35-uefi-smp7-x2apic`.
    #[arg(long, value_name = "LIST", default_value = configs::TEST_DEFAULT, value_parser = configs::parse_selection)]
    pub configs: Selection,
    /// Print the configurations' names, each with what it runs, and exit.
    #[arg(long)]
    pub list_configs: bool,
    /// Also run the example tests (demonstrations, some meant to fail).
    #[arg(long)]
    pub examples: bool,
    /// Skip the host tests.
    #[arg(long, conflicts_with = "no_guest")]
    pub no_host: bool,
    /// Skip the guest tests.
    #[arg(long)]
    pub no_guest: bool,
    /// Pass this filter to `cargo test` for the host tests, loom models included (FILTER applies
    /// to guest tests only).
    #[arg(long, value_name = "FILTER")]
    pub host_filter: Option<String>,
    /// Echo the guest's serial output (and all of cargo test's output).
    #[arg(short, long)]
    pub verbose: bool,
    /// Multiply every boot's time limit by this factor (for slow machines).
    #[arg(long, value_name = "FACTOR", default_value_t = 1.0, value_parser = parse_scale)]
    pub timeout_scale: f64,
    /// Use this test kernel ELF instead of building guest-tests.
    #[arg(long, value_name = "ELF")]
    pub kernel: Option<PathBuf>,
    /// Boot parameter for every guest boot (repeatable); `ktest.*` is the runner's own.
    #[arg(short = 'p', long = "param", value_name = "KEY=VALUE", value_parser = parse_user_param)]
    pub params: Vec<(String, String)>,
    /// Run only the guest tests whose name contains this text (in every configuration).
    #[arg(value_name = "FILTER")]
    pub filter: Option<String>,
    /// Extra arguments for QEMU, after `--`.
    #[arg(last = true, value_name = "QEMU ARGS")]
    pub qemu_args: Vec<String>,
    // Last: the heading holds for every option after it.
    /// Firmware(s) to run the guest tests with.
    #[arg(long, value_enum, default_value_t = FirmwareChoice::All, help_heading = DEFAULT_MACHINE)]
    pub firmware: FirmwareChoice,
    #[command(flatten, next_help_heading = DEFAULT_MACHINE)]
    pub vm: VmArgs,
}

#[derive(Args, Debug)]
pub struct BochsArgs {
    /// Number of CPUs.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=i64::from(crate::bochs::MAX_CPUS)))]
    pub cpus: u32,
    /// Give the CPUs x2APIC (Bochs's corei7_skylake_x model; the default model has none).
    #[arg(long)]
    pub x2apic: bool,
    /// Guest memory in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 256, value_parser = clap::value_parser!(u32).range(16..=2048))]
    pub memory: u32,
    #[command(flatten)]
    pub kernel: KernelArgs,
    /// Kill Bochs after this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: u64,
    /// Write the guest's serial output to this file instead of the terminal.
    #[arg(long, value_name = "FILE")]
    pub serial: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct MatrixArgs {
    /// Cells to run, separated by commas: names, `*` patterns (`bochs-*`, `*-smp7-*`), `ci`
    /// (the subset `cargo xtask test` runs) or `matrix` (every cell).
    #[arg(value_name = "CELLS", default_value = configs::MATRIX, value_parser = configs::parse_selection)]
    pub cells: Selection,
    /// Print every cell with what it runs, and exit.
    #[arg(long)]
    pub list: bool,
    /// Run only the guest tests whose name contains this text.
    #[arg(long, value_name = "TEXT")]
    pub filter: Option<String>,
    /// Boot parameter for every boot (repeatable); `ktest.*` is the runner's own.
    #[arg(short = 'p', long = "param", value_name = "KEY=VALUE", value_parser = parse_user_param)]
    pub params: Vec<(String, String)>,
    /// Echo the guest's serial output.
    #[arg(short, long)]
    pub verbose: bool,
    /// Multiply every boot's time limit by this factor (for slow machines).
    #[arg(long, value_name = "FACTOR", default_value_t = 1.0, value_parser = parse_scale)]
    pub timeout_scale: f64,
    /// Use this test kernel ELF instead of building guest-tests.
    #[arg(long, value_name = "ELF")]
    pub kernel: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct LintArgs {
    /// Skip the formatting check (clippy only).
    #[arg(long)]
    pub no_fmt: bool,
}

#[derive(Args, Debug)]
pub struct TortureArgs {
    /// How long the stress runs, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub duration: u64,
    /// Number of CPUs (the hotplug torture needs 3 or more, the plain stress 2).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub smp: u32,
    /// Weights of the call kinds: single, nowait, async, many, all, many-nowait.
    #[arg(long, value_name = "A,B,C,D,E,F", default_value = "1,1,1,1,1,1", value_parser = torture::parse_weights)]
    pub weights: torture::Weights,
    /// Milliseconds between two hotplug operations.
    #[arg(long, value_name = "MS", default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..))]
    pub hotplug_ms: u64,
    /// No hotplug: run the plain cross-call stress instead.
    #[arg(long, conflicts_with = "hotplug_ms")]
    pub no_hotplug: bool,
    /// Inject faults into every other hotplug operation (step failures both
    /// ways, CPUs held past the stop-machine, bring-up and park timeouts,
    /// CPUs that never answer their SIPI or stall with interrupts off), with
    /// short timeouts; the verdict also counts each kind of fault.
    #[arg(long, conflicts_with = "no_hotplug")]
    pub faults: bool,
    /// Firmware to boot with.
    #[arg(long, value_enum, default_value_t = FirmwareArg::Bios)]
    pub firmware: FirmwareArg,
    /// QEMU machine type (q35 for more than 255 CPUs).
    #[arg(long, value_enum, default_value_t = Machine::Pc)]
    pub machine: Machine,
    /// Guest memory, as QEMU's -m takes it.
    #[arg(long, default_value = "256M", value_parser = parse_memory)]
    pub memory: String,
    /// QEMU CPU model, e.g. `qemu64,x2apic=on`.
    #[arg(long, value_name = "MODEL")]
    pub cpu: Option<String>,
    /// Boot parameter (repeatable), applied after the torture's own.
    #[arg(short = 'p', long = "param", value_name = "KEY=VALUE", value_parser = parse_user_param)]
    pub params: Vec<(String, String)>,
    /// Use this test kernel ELF instead of building guest-tests.
    #[arg(long, value_name = "ELF")]
    pub kernel: Option<PathBuf>,
    /// Show all of the guest's serial output, not only the stress lines.
    #[arg(short, long)]
    pub verbose: bool,
    /// Extra arguments for QEMU, after `--`.
    #[arg(last = true, value_name = "QEMU ARGS")]
    pub qemu_args: Vec<String>,
}

impl TortureArgs {
    /// The torture's own knobs, for [`torture::plan`].
    pub fn request(&self) -> torture::Request {
        torture::Request {
            duration_s: self.duration,
            smp: self.smp,
            weights: self.weights,
            hotplug_ms: (!self.no_hotplug).then_some(self.hotplug_ms),
            faults: self.faults,
            user_params: self.params.clone(),
        }
    }

    /// The machine, as the other commands describe one.
    pub fn vm(&self) -> VmArgs {
        VmArgs { smp: self.smp, machine: self.machine, memory: self.memory.clone(), cpu: self.cpu.clone() }
    }
}

#[derive(Args, Debug)]
pub struct SymbolizeArgs {
    /// The serial log; `-` reads standard input.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The kernel ELF that printed the log.
    #[arg(long, value_name = "ELF")]
    pub kernel: Option<PathBuf>,
    /// The log is the test kernel's (guest-tests) [default when it has @@KTEST lines].
    #[arg(long, conflicts_with_all = ["kernel", "demo_kernel"])]
    pub test_kernel: bool,
    /// The log is the demo kernel's [default when it has no @@KTEST lines].
    #[arg(long, conflicts_with = "kernel")]
    pub demo_kernel: bool,
}

/// `key=value`, with the image builder's rules for names and values.
pub fn parse_param(s: &str) -> Result<(String, String), String> {
    BootParams::parse([s]).map_err(|e| e.to_string())?;
    let (k, v) = s.split_once('=').expect("checked by BootParams::parse");
    Ok((k.to_owned(), v.to_owned()))
}

/// A `-p` for `test`: the `ktest.` namespace is how the runner drives the
/// guest, so a user value there would make it wait for the wrong tests.
fn parse_user_param(s: &str) -> Result<(String, String), String> {
    let (k, v) = parse_param(s)?;
    if k.starts_with("ktest.") {
        return Err(format!(
            "`{k}` is set by the test runner; select tests with FILTER, or boot one by hand with \
             `cargo xtask qemu --test-kernel -p {k}=...`"
        ));
    }
    Ok((k, v))
}

/// QEMU's `-m` syntax: digits and an optional size suffix.
fn parse_memory(s: &str) -> Result<String, String> {
    let digits = s.trim_end_matches(['k', 'K', 'm', 'M', 'g', 'G', 't', 'T']);
    let suffixes = s.len() - digits.len();
    if digits.is_empty()
        || suffixes > 1
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || digits.parse::<u64>().ok() == Some(0)
    {
        return Err(format!("`{s}` is not a memory size like 256M or 2G"));
    }
    Ok(s.to_owned())
}

fn parse_scale(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(f) if f.is_finite() && f > 0.0 => Ok(f),
        _ => Err(format!("`{s}` is not a positive number")),
    }
}

/// The parameters as a [`BootParams`], later ones winning.
pub fn boot_params(list: &[(String, String)]) -> BootParams {
    let mut params = BootParams::default();
    for (k, v) in list {
        params.set(k, v).expect("validated by parse_param");
    }
    params
}
