//! MADT interpretation: which CPUs exist, and which one we are.
//!
//! Two steps, both pure functions of their inputs so that the host tests can
//! drive them with real and hostile tables:
//!
//! 1. [`parse`] takes the MADT bytes (header included). It first walks the
//!    table itself and rejects anything that could make a decoder read out of
//!    bounds or loop (bad signature or length, a subtable shorter than 2 bytes
//!    or running past the end, a known subtable shorter than its structure).
//!    Only then does it decode the entries through the `acpi` crate, whose
//!    iterator trusts the length bytes blindly. A bad checksum is only a
//!    warning, as in Linux.
//! 2. [`enumerate`] turns the CPU entries into dense [`CpuId`]s. The boot CPU
//!    is the entry whose APIC id equals the id the boot CPU reads from its
//!    own local APIC, not the first entry, and it always gets `CpuId(0)`.
//!
//! When the table is missing or [`parse`] fails, [`single_cpu`] gives the
//! fallback topology: the boot CPU alone, with a warning saying why.

use alloc::vec::Vec;
use core::fmt;
use core::mem::{align_of, size_of};
use core::pin::Pin;

use acpi::madt::{self as am, Madt, MadtEntry};

use crate::cpu::{ApicId, CpuId, CpuSet, MAX_CPUS};

/// Size of the fixed part of the MADT: the 36-byte SDT header, the local
/// APIC address and the flags.
pub const HEADER_LEN: usize = 44;

// `Madt` must be exactly the fixed header, and byte-aligned, for the cast in
// `decode` to be sound on any byte slice.
const _: () = assert!(size_of::<Madt>() == HEADER_LEN);
const _: () = assert!(align_of::<Madt>() == 1);

/// MADT flags bit 0: the system also has dual 8259 PICs.
const PCAT_COMPAT: u32 = 1 << 0;
/// Local APIC / x2APIC flags bit 0.
const LAPIC_ENABLED: u32 = 1 << 0;
/// Local APIC / x2APIC flags bit 1 (ACPI 6.3, MADT revision 5).
const LAPIC_ONLINE_CAPABLE: u32 = 1 << 1;
/// First MADT revision (ACPI 6.3) that defines the Online Capable bit.
const ONLINE_CAPABLE_MIN_REVISION: u8 = 5;

/// The subtable types the `acpi` crate decodes, with a name for messages and
/// the number of bytes the crate's structure for it covers. The crate makes a
/// reference to that many bytes for every entry of the type, so an entry of
/// a known type that is shorter is rejected. For the x86 types this is
/// exactly the size the ACPI specification defines; the ARM GICC is 82 bytes
/// in the crate, so pre-6.5 GICC entries (76 or 80 bytes) are rejected, which
/// cannot matter on x86.
fn known_type(entry_type: u8) -> Option<(&'static str, usize)> {
    Some(match entry_type {
        0x0 => ("Local APIC", size_of::<am::LocalApicEntry>()),
        0x1 => ("I/O APIC", size_of::<am::IoApicEntry>()),
        0x2 => ("Interrupt Source Override", size_of::<am::InterruptSourceOverrideEntry>()),
        0x3 => ("NMI Source", size_of::<am::NmiSourceEntry>()),
        0x4 => ("Local APIC NMI", size_of::<am::LocalApicNmiEntry>()),
        0x5 => ("Local APIC Address Override", size_of::<am::LocalApicAddressOverrideEntry>()),
        0x6 => ("I/O SAPIC", size_of::<am::IoSapicEntry>()),
        0x7 => ("Local SAPIC", size_of::<am::LocalSapicEntry>()),
        0x8 => ("Platform Interrupt Source", size_of::<am::PlatformInterruptSourceEntry>()),
        0x9 => ("Local x2APIC", size_of::<am::LocalX2ApicEntry>()),
        0xa => ("Local x2APIC NMI", size_of::<am::X2ApicNmiEntry>()),
        0xb => ("GICC", size_of::<am::GiccEntry>()),
        0xc => ("GICD", size_of::<am::GicdEntry>()),
        0xd => ("GIC MSI Frame", size_of::<am::GicMsiFrameEntry>()),
        0xe => ("GIC Redistributor", size_of::<am::GicRedistributorEntry>()),
        0xf => ("GIC ITS", size_of::<am::GicInterruptTranslationServiceEntry>()),
        0x10 => ("Multiprocessor Wakeup", size_of::<am::MultiprocessorWakeupEntry>()),
        _ => return None,
    })
}

// The sizes the ACPI specification gives the entries we interpret.
const _: () = assert!(size_of::<am::LocalApicEntry>() == 8);
const _: () = assert!(size_of::<am::IoApicEntry>() == 12);
const _: () = assert!(size_of::<am::LocalApicNmiEntry>() == 6);
const _: () = assert!(size_of::<am::LocalApicAddressOverrideEntry>() == 12);
const _: () = assert!(size_of::<am::LocalX2ApicEntry>() == 16);
const _: () = assert!(size_of::<am::X2ApicNmiEntry>() == 12);

fn type_name(entry_type: u8) -> &'static str {
    match known_type(entry_type) {
        Some((name, _)) => name,
        None if entry_type < 0x80 => "reserved",
        None => "OEM",
    }
}

/// Why a MADT was rejected. Each variant names the offending offset or
/// value; `Display` gives a one-line message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MadtError {
    /// Fewer bytes than it takes to read the signature and length.
    Truncated { available: usize },
    /// The first four bytes are not `APIC`.
    BadSignature([u8; 4]),
    /// The header's length field is below the 44-byte fixed header.
    LengthBelowHeader { length: u32 },
    /// The header's length field runs past the bytes we were given.
    LengthBeyondData { length: u32, available: usize },
    /// Fewer than 2 bytes (a subtable header) left at `offset`.
    TruncatedEntryHeader { offset: usize, remaining: usize },
    /// A subtable's length byte is 0 or 1.
    EntryLengthTooSmall { offset: usize, entry_type: u8, length: u8 },
    /// A subtable runs past the table's length.
    EntryOverrunsTable { offset: usize, entry_type: u8, length: u8, remaining: usize },
    /// A subtable of a known type is shorter than its structure.
    EntryTooShortForType { offset: usize, entry_type: u8, length: u8, needed: usize },
}

impl fmt::Display for MadtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            MadtError::Truncated { available } => {
                write!(f, "MADT is only {available} bytes, too short to hold its {HEADER_LEN}-byte header")
            }
            MadtError::BadSignature(sig) => {
                write!(f, "MADT signature is \"{}\", not \"APIC\"", sig.escape_ascii())
            }
            MadtError::LengthBelowHeader { length } => {
                write!(f, "MADT length {length} is shorter than its {HEADER_LEN}-byte header")
            }
            MadtError::LengthBeyondData { length, available } => {
                write!(f, "MADT length field says {length} bytes but only {available} bytes are available")
            }
            MadtError::TruncatedEntryHeader { offset, remaining } => write!(
                f,
                "MADT entry at offset {offset:#x} is cut off: {remaining} byte(s) left before \
                 the end of the table, an entry header needs 2"
            ),
            MadtError::EntryLengthTooSmall { offset, entry_type, length } => write!(
                f,
                "MADT entry at offset {offset:#x} has length {length} (type {entry_type}, {}); \
                 an entry is at least 2 bytes",
                type_name(entry_type)
            ),
            MadtError::EntryOverrunsTable { offset, entry_type, length, remaining } => write!(
                f,
                "MADT entry at offset {offset:#x} has length {length} (type {entry_type}, {}) \
                 but only {remaining} bytes remain in the table",
                type_name(entry_type)
            ),
            MadtError::EntryTooShortForType { offset, entry_type, length, needed } => write!(
                f,
                "MADT entry at offset {offset:#x} has length {length}, shorter than the \
                 {needed} bytes of a {} entry (type {entry_type})",
                type_name(entry_type)
            ),
        }
    }
}

impl core::error::Error for MadtError {}

/// Something odd in a table that [`parse`] still accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MadtWarning {
    /// The bytes do not sum to 0 mod 256. Linux only warns about this too.
    BadChecksum { sum: u8 },
    /// A Local APIC NMI entry names a LINT pin other than 0 or 1; ignored.
    InvalidNmiLint { offset: usize, lint: u8 },
    /// A second Local APIC Address Override; ignored, the first one wins.
    ExtraAddressOverride { offset: usize },
}

impl fmt::Display for MadtWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            MadtWarning::BadChecksum { sum } => {
                write!(f, "MADT checksum is wrong (bytes sum to {sum:#04x}, not 0); using the table anyway")
            }
            MadtWarning::InvalidNmiLint { offset, lint } => write!(
                f,
                "MADT Local APIC NMI entry at offset {offset:#x} names LINT{lint}, which does \
                 not exist; entry ignored"
            ),
            MadtWarning::ExtraAddressOverride { offset } => write!(
                f,
                "MADT has a second Local APIC Address Override at offset {offset:#x}; ignored, \
                 keeping the first"
            ),
        }
    }
}

/// One Local APIC (type 0) or Local x2APIC (type 9) entry, as the table says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MadtCpu {
    pub apic_id: ApicId,
    /// ACPI Processor UID (type 0: the 8-bit ACPI Processor ID).
    pub acpi_uid: u32,
    /// Flags bit 0.
    pub enabled: bool,
    /// Flags bit 1, taken only where ACPI gives it a meaning: MADT revision
    /// 5 or later (ACPI 6.3) and Enabled = 0. Always false otherwise.
    pub online_capable: bool,
    /// From a type-9 Local x2APIC entry rather than a type-0 Local APIC one.
    pub from_x2apic_entry: bool,
}

impl MadtCpu {
    /// The firmware can bring this CPU up (now or at runtime).
    pub fn is_possible(&self) -> bool {
        self.enabled || self.online_capable
    }

    /// False for the "no such processor" ids: 0xFF in a type-0 entry,
    /// 0xFFFFFFFF in a type-9 entry.
    pub fn has_valid_apic_id(&self) -> bool {
        if self.from_x2apic_entry { self.apic_id.0 != u32::MAX } else { self.apic_id.0 != 0xFF }
    }
}

/// A Local APIC NMI (type 4) or Local x2APIC NMI (type 10) entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LapicNmi {
    /// The ACPI Processor UID it applies to, or [`LapicNmi::ALL_CPUS`]. The
    /// type-4 "all processors" value 0xFF is stored as `ALL_CPUS` too, so
    /// that it cannot be mistaken for a type-10 entry naming UID 255.
    pub acpi_uid: u32,
    /// The LINT pin: 0 or 1.
    pub lint: u8,
    /// MPS INTI flags (polarity, trigger mode).
    pub flags: u16,
}

impl LapicNmi {
    pub const ALL_CPUS: u32 = u32::MAX;

    pub fn applies_to(&self, acpi_uid: u32) -> bool {
        self.acpi_uid == Self::ALL_CPUS || self.acpi_uid == acpi_uid
    }
}

/// What [`parse`] found in an accepted MADT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MadtInfo {
    /// Header byte 8.
    pub revision: u8,
    /// Physical address of the local APIC, after any type-5 override.
    pub local_apic_address: u64,
    /// Flags bit 0: dual 8259 PICs present (mask them before using APICs).
    pub pcat_compat: bool,
    /// Type 0 and type 9 entries, in table order.
    pub cpus: Vec<MadtCpu>,
    pub lapic_nmis: Vec<LapicNmi>,
    /// Number of I/O APIC (type 1) entries.
    pub io_apics: usize,
    /// Number of entries of types ACPI reserves or leaves to OEMs (0x11 and
    /// up), which are skipped.
    pub other_entries: usize,
    pub warnings: Vec<MadtWarning>,
}

/// Result of our own walk over the raw bytes.
struct Validated {
    length: usize,
    other_entries: usize,
    checksum: u8,
}

/// Checks everything the decoder relies on, touching only in-bounds bytes.
/// Every iteration advances by at least 2, so the walk ends.
fn validate(table: &[u8]) -> Result<Validated, MadtError> {
    let truncated = MadtError::Truncated { available: table.len() };
    let Some(sig) = table.get(0..4) else {
        return Err(truncated);
    };
    if sig != b"APIC" {
        let mut s = [0; 4];
        s.copy_from_slice(sig);
        return Err(MadtError::BadSignature(s));
    }
    let Some(len_bytes) = table.get(4..8) else {
        return Err(truncated);
    };
    let length = u32::from_le_bytes([len_bytes[0], len_bytes[1], len_bytes[2], len_bytes[3]]);
    if (length as usize) < HEADER_LEN {
        return Err(MadtError::LengthBelowHeader { length });
    }
    let Some(table) = table.get(..length as usize) else {
        return Err(MadtError::LengthBeyondData { length, available: table.len() });
    };

    let mut other_entries = 0;
    let mut offset = HEADER_LEN;
    while offset < table.len() {
        let remaining = table.len() - offset;
        let [entry_type, length, ..] = table[offset..] else {
            return Err(MadtError::TruncatedEntryHeader { offset, remaining });
        };
        if length < 2 {
            return Err(MadtError::EntryLengthTooSmall { offset, entry_type, length });
        }
        if usize::from(length) > remaining {
            return Err(MadtError::EntryOverrunsTable { offset, entry_type, length, remaining });
        }
        match known_type(entry_type) {
            Some((_, needed)) if usize::from(length) < needed => {
                return Err(MadtError::EntryTooShortForType { offset, entry_type, length, needed });
            }
            Some(_) => {}
            None => other_entries += 1,
        }
        offset += usize::from(length);
    }

    let checksum = table.iter().fold(0u8, |s, &b| s.wrapping_add(b));
    Ok(Validated { length: table.len(), other_entries, checksum })
}

/// Validates and decodes a whole MADT (`table` starts at the signature).
/// Bytes past the header's length field are ignored. Never panics and never
/// reads outside `table`, whatever it holds.
pub fn parse(table: &[u8]) -> Result<MadtInfo, MadtError> {
    let v = validate(table)?;
    let table = &table[..v.length];

    let mut warnings = Vec::new();
    if v.checksum != 0 {
        warnings.push(MadtWarning::BadChecksum { sum: v.checksum });
    }

    // SAFETY: `table` holds at least `HEADER_LEN` = size_of::<Madt>() bytes
    // (checked by `validate`) and `Madt` is `repr(C, packed)`, so alignment 1
    // (asserted above): any address, however unaligned, is fine. Every field
    // is an integer or byte array (and a zero-sized PhantomPinned), so any
    // bytes are a valid `Madt`. The reference lives no longer than the
    // borrow of `table`, which nobody can mutate meanwhile. `Pin` is sound
    // because the bytes stay where they are for that borrow and `Madt` has
    // no destructor. `entries()` then reads `header.length` bytes from the
    // start of the `Madt`, through a raw pointer derived from this reference
    // (the crate's own design, as with its `PhysicalMapping`); `validate`
    // checked that `header.length` bytes are in `table`, that every subtable
    // header is within them, that every subtable ends within them (so the
    // iterator's `remaining_length` never underflows and it always moves
    // forward), and that every subtable of a type the crate turns into a
    // reference is at least as long as that reference's target. (Reading
    // past the 44 bytes through a pointer derived from `&Madt` is what the
    // crate's API requires; Miri accepts it under Tree Borrows, which the
    // host tests pass, while its older Stacked Borrows model rejects it.)
    let madt: Pin<&Madt> = unsafe { Pin::new_unchecked(&*table.as_ptr().cast::<Madt>()) };

    let revision = madt.header.revision;
    let flags = madt.flags;
    let mut info = MadtInfo {
        revision,
        local_apic_address: u64::from(madt.local_apic_address),
        pcat_compat: flags & PCAT_COMPAT != 0,
        cpus: Vec::new(),
        lapic_nmis: Vec::new(),
        io_apics: 0,
        other_entries: v.other_entries,
        warnings,
    };

    let base = table.as_ptr().addr();
    let offset_of = |p: *const u8| p.addr() - base;
    let cpu_flags = |flags: u32| {
        let enabled = flags & LAPIC_ENABLED != 0;
        let online_capable = !enabled && revision >= ONLINE_CAPABLE_MIN_REVISION && flags & LAPIC_ONLINE_CAPABLE != 0;
        (enabled, online_capable)
    };
    let mut address_override_seen = false;

    // The crate's iterator skips types 0x11..=0xFF itself (by their length
    // byte, which `validate` checked), so those are counted in `validate`.
    for entry in madt.entries() {
        match entry {
            MadtEntry::LocalApic(e) => {
                let (enabled, online_capable) = cpu_flags(e.flags);
                info.cpus.push(MadtCpu {
                    apic_id: ApicId(u32::from(e.apic_id)),
                    acpi_uid: u32::from(e.processor_id),
                    enabled,
                    online_capable,
                    from_x2apic_entry: false,
                });
            }
            MadtEntry::LocalX2Apic(e) => {
                let (enabled, online_capable) = cpu_flags(e.flags);
                info.cpus.push(MadtCpu {
                    apic_id: ApicId(e.x2apic_id),
                    acpi_uid: e.processor_uid,
                    enabled,
                    online_capable,
                    from_x2apic_entry: true,
                });
            }
            MadtEntry::LocalApicNmi(e) => {
                let acpi_uid = if e.processor_id == 0xFF { LapicNmi::ALL_CPUS } else { u32::from(e.processor_id) };
                let offset = offset_of((e as *const am::LocalApicNmiEntry).cast());
                push_nmi(&mut info, offset, acpi_uid, e.nmi_line, e.flags);
            }
            MadtEntry::X2ApicNmi(e) => {
                let offset = offset_of((e as *const am::X2ApicNmiEntry).cast());
                push_nmi(&mut info, offset, e.processor_uid, e.nmi_line, e.flags);
            }
            MadtEntry::LocalApicAddressOverride(e) => {
                if address_override_seen {
                    let offset = offset_of((e as *const am::LocalApicAddressOverrideEntry).cast());
                    info.warnings.push(MadtWarning::ExtraAddressOverride { offset });
                } else {
                    address_override_seen = true;
                    info.local_apic_address = e.local_apic_address;
                }
            }
            MadtEntry::IoApic(_) => info.io_apics += 1,
            _ => {}
        }
    }
    Ok(info)
}

fn push_nmi(info: &mut MadtInfo, offset: usize, acpi_uid: u32, lint: u8, flags: u16) {
    if lint > 1 {
        info.warnings.push(MadtWarning::InvalidNmiLint { offset, lint });
    } else {
        info.lapic_nmis.push(LapicNmi { acpi_uid, lint, flags });
    }
}

/// Why [`single_cpu`] was used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FallbackReason {
    /// The boot loader gave no RSDP.
    NoRsdp,
    /// The ACPI tables have no MADT.
    NoMadt,
    /// The MADT was found but [`parse`] rejected it.
    Malformed(MadtError),
    /// Any other failure on the way to the table (e.g. from the `acpi` crate).
    Other(&'static str),
}

impl fmt::Display for FallbackReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FallbackReason::NoRsdp => f.write_str("the boot loader gave no RSDP"),
            FallbackReason::NoMadt => f.write_str("the ACPI tables have no MADT"),
            FallbackReason::Malformed(e) => write!(f, "{e}"),
            FallbackReason::Other(why) => f.write_str(why),
        }
    }
}

/// Something [`enumerate`] skipped or patched up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TopologyWarning {
    /// A possible CPU entry with the "no such processor" id; skipped.
    InvalidApicId { acpi_uid: u32, apic_id: ApicId, from_x2apic_entry: bool },
    /// A possible CPU whose APIC id an earlier possible CPU already has;
    /// skipped, the earlier one (ACPI UID `kept_acpi_uid`) is kept.
    DuplicateApicId { apic_id: ApicId, acpi_uid: u32, kept_acpi_uid: u32 },
    /// More possible CPUs than [`MAX_CPUS`]; the rest are ignored.
    TooManyCpus { ignored: usize, first_ignored: ApicId },
    /// No entry has the boot CPU's APIC id; it was added as `CpuId(0)`.
    BspNotInTable { bsp: ApicId },
    /// The boot CPU's entry says it is disabled; it plainly is not.
    BspEntryDisabled { bsp: ApicId, acpi_uid: u32 },
    /// No usable MADT: the system runs on the boot CPU alone.
    SingleCpuFallback { bsp: ApicId, reason: FallbackReason },
}

impl fmt::Display for TopologyWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TopologyWarning::InvalidApicId { acpi_uid, apic_id, from_x2apic_entry } => write!(
                f,
                "MADT {} entry for ACPI processor {acpi_uid} has the invalid APIC id {:#x}; \
                 CPU ignored",
                if *from_x2apic_entry { "Local x2APIC" } else { "Local APIC" },
                apic_id.0
            ),
            TopologyWarning::DuplicateApicId { apic_id, acpi_uid, kept_acpi_uid } => write!(
                f,
                "MADT entry for ACPI processor {acpi_uid} repeats {apic_id}, already used by \
                 ACPI processor {kept_acpi_uid}; CPU ignored"
            ),
            TopologyWarning::TooManyCpus { ignored, first_ignored } => write!(
                f,
                "MADT lists more than {MAX_CPUS} possible CPUs; {ignored} ignored, from \
                 {first_ignored} on"
            ),
            TopologyWarning::BspNotInTable { bsp } => {
                write!(f, "the boot CPU ({bsp}) has no usable MADT entry; added as cpu0 anyway")
            }
            TopologyWarning::BspEntryDisabled { bsp, acpi_uid } => write!(
                f,
                "the MADT entry of the boot CPU ({bsp}, ACPI processor {acpi_uid}) is marked \
                 disabled; using it as cpu0 anyway"
            ),
            TopologyWarning::SingleCpuFallback { bsp, reason } => {
                write!(f, "no usable MADT ({reason}); booting on the boot CPU ({bsp}) alone")
            }
        }
    }
}

/// One CPU the kernel may manage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TopoCpu {
    pub cpu: CpuId,
    pub apic_id: ApicId,
    /// ACPI Processor UID, or [`TopoCpu::UNKNOWN_UID`] for a boot CPU that
    /// has no entry in the table.
    pub acpi_uid: u32,
    /// Enabled in the MADT (always true for the boot CPU). A possible CPU
    /// that is not present is online-capable: hot-pluggable later.
    pub present: bool,
}

impl TopoCpu {
    pub const UNKNOWN_UID: u32 = u32::MAX;
}

/// The CPUs of this machine with their dense ids: `cpus[i].cpu == CpuId(i)`,
/// and `cpus[0]` is the boot CPU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CpuTopology {
    pub cpus: Vec<TopoCpu>,
    /// Every CPU in `cpus`.
    pub possible: CpuSet,
    /// The CPUs in `cpus` that are `present`. A subset of `possible`.
    pub present: CpuSet,
    pub warnings: Vec<TopologyWarning>,
}

impl CpuTopology {
    pub fn apic_id(&self, cpu: CpuId) -> Option<ApicId> {
        self.cpus.get(cpu.index()).map(|c| c.apic_id)
    }

    pub fn cpu_of(&self, apic_id: ApicId) -> Option<CpuId> {
        self.cpus.iter().find(|c| c.apic_id == apic_id).map(|c| c.cpu)
    }

    /// The boot CPU's APIC id (that of `CpuId(0)`).
    pub fn bsp_apic_id(&self) -> ApicId {
        self.cpus[0].apic_id
    }
}

/// Assigns dense CPU ids: the boot CPU (the one whose APIC id is `bsp`, read
/// from its own local APIC) is `CpuId(0)`, the other possible CPUs follow in
/// table order. Possible means enabled or online-capable; present means
/// enabled. Disabled entries that are not online-capable are left out
/// silently (firmware lists them by the dozen); invalid ids, duplicates and
/// CPUs beyond [`MAX_CPUS`] are left out with a warning. Never fails: the
/// result always holds at least the boot CPU.
pub fn enumerate(info: &MadtInfo, bsp: ApicId) -> CpuTopology {
    let mut warnings = Vec::new();
    let bsp_index = info.cpus.iter().position(|c| c.apic_id == bsp && c.is_possible() && c.has_valid_apic_id());
    let bsp_uid = match bsp_index {
        Some(i) => info.cpus[i].acpi_uid,
        None => match info.cpus.iter().find(|c| c.apic_id == bsp && c.has_valid_apic_id()) {
            Some(c) => {
                warnings.push(TopologyWarning::BspEntryDisabled { bsp, acpi_uid: c.acpi_uid });
                c.acpi_uid
            }
            None => {
                warnings.push(TopologyWarning::BspNotInTable { bsp });
                TopoCpu::UNKNOWN_UID
            }
        },
    };

    let mut cpus = Vec::new();
    cpus.push(TopoCpu { cpu: CpuId::BOOT, apic_id: bsp, acpi_uid: bsp_uid, present: true });
    let mut ignored = 0;
    let mut first_ignored = None;
    for (i, c) in info.cpus.iter().enumerate() {
        if Some(i) == bsp_index || !c.is_possible() {
            continue;
        }
        if !c.has_valid_apic_id() {
            warnings.push(TopologyWarning::InvalidApicId {
                acpi_uid: c.acpi_uid,
                apic_id: c.apic_id,
                from_x2apic_entry: c.from_x2apic_entry,
            });
            continue;
        }
        if let Some(kept) = cpus.iter().find(|t| t.apic_id == c.apic_id) {
            warnings.push(TopologyWarning::DuplicateApicId {
                apic_id: c.apic_id,
                acpi_uid: c.acpi_uid,
                kept_acpi_uid: kept.acpi_uid,
            });
            continue;
        }
        let Some(cpu) = CpuId::new(cpus.len()) else {
            ignored += 1;
            first_ignored.get_or_insert(c.apic_id);
            continue;
        };
        cpus.push(TopoCpu { cpu, apic_id: c.apic_id, acpi_uid: c.acpi_uid, present: c.enabled });
    }
    if let Some(first_ignored) = first_ignored {
        warnings.push(TopologyWarning::TooManyCpus { ignored, first_ignored });
    }

    let possible = CpuSet::first_n(cpus.len());
    let mut present = CpuSet::EMPTY;
    for c in cpus.iter().filter(|c| c.present) {
        present.insert(c.cpu);
    }
    CpuTopology { cpus, possible, present, warnings }
}

/// The fallback when there is no usable MADT: the boot CPU alone, as
/// `CpuId(0)`, with a warning saying why.
pub fn single_cpu(bsp: ApicId, why: FallbackReason) -> CpuTopology {
    CpuTopology {
        cpus: alloc::vec![TopoCpu { cpu: CpuId::BOOT, apic_id: bsp, acpi_uid: TopoCpu::UNKNOWN_UID, present: true }],
        possible: CpuSet::single(CpuId::BOOT),
        present: CpuSet::single(CpuId::BOOT),
        warnings: alloc::vec![TopologyWarning::SingleCpuFallback { bsp, reason: why }],
    }
}
