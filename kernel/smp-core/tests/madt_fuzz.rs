//! The MADT parser against hostile input: property tests on random bytes,
//! on random well-formed tables (checked against a model) and on mutated
//! real tables, plus hand-built tables for each rule.

use std::collections::HashSet;
use std::fs;
use std::path::PathBuf;
use std::sync::OnceLock;

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::Config;

use smp_core::madt::{self, FallbackReason, LapicNmi, MadtError, MadtInfo, MadtWarning, TopoCpu, TopologyWarning};
use smp_core::{ApicId, CpuId, CpuSet, MAX_CPUS};

// ---------------------------------------------------------------------------
// Table builder

const ENABLED: u32 = 1;
const ONLINE_CAPABLE: u32 = 2;

fn lapic(uid: u8, apic_id: u8, flags: u32) -> Vec<u8> {
    let mut e = vec![0, 8, uid, apic_id];
    e.extend_from_slice(&flags.to_le_bytes());
    e
}

fn x2apic(apic_id: u32, flags: u32, uid: u32) -> Vec<u8> {
    let mut e = vec![9, 16, 0, 0];
    e.extend_from_slice(&apic_id.to_le_bytes());
    e.extend_from_slice(&flags.to_le_bytes());
    e.extend_from_slice(&uid.to_le_bytes());
    e
}

fn io_apic(id: u8, address: u32, gsi_base: u32) -> Vec<u8> {
    let mut e = vec![1, 12, id, 0];
    e.extend_from_slice(&address.to_le_bytes());
    e.extend_from_slice(&gsi_base.to_le_bytes());
    e
}

fn lapic_nmi(uid: u8, flags: u16, lint: u8) -> Vec<u8> {
    let mut e = vec![4, 6, uid];
    e.extend_from_slice(&flags.to_le_bytes());
    e.push(lint);
    e
}

fn x2apic_nmi(uid: u32, flags: u16, lint: u8) -> Vec<u8> {
    let mut e = vec![10, 12];
    e.extend_from_slice(&flags.to_le_bytes());
    e.extend_from_slice(&uid.to_le_bytes());
    e.extend_from_slice(&[lint, 0, 0, 0]);
    e
}

fn address_override(address: u64) -> Vec<u8> {
    let mut e = vec![5, 12, 0, 0];
    e.extend_from_slice(&address.to_le_bytes());
    e
}

/// A whole MADT with a correct length and checksum.
fn table(revision: u8, entries: &[Vec<u8>]) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(b"APIC");
    t.extend_from_slice(&0u32.to_le_bytes()); // length, below
    t.push(revision);
    t.push(0); // checksum, below
    t.extend_from_slice(b"OEMID ");
    t.extend_from_slice(b"TABLEID ");
    t.extend_from_slice(&1u32.to_le_bytes());
    t.extend_from_slice(b"TEST");
    t.extend_from_slice(&1u32.to_le_bytes());
    t.extend_from_slice(&0xFEE0_0000u32.to_le_bytes());
    t.extend_from_slice(&1u32.to_le_bytes()); // PCAT_COMPAT
    assert_eq!(t.len(), madt::HEADER_LEN);
    for e in entries {
        t.extend_from_slice(e);
    }
    fix(&mut t);
    t
}

/// Sets the length field to the buffer's size and fixes the checksum.
fn fix(t: &mut [u8]) {
    let len = t.len() as u32;
    t[4..8].copy_from_slice(&len.to_le_bytes());
    t[9] = 0;
    let sum = t.iter().fold(0u8, |s, &b| s.wrapping_add(b));
    t[9] = sum.wrapping_neg();
}

fn apic_ids(topo: &madt::CpuTopology) -> Vec<u32> {
    topo.cpus.iter().map(|c| c.apic_id.0).collect()
}

fn cpu(i: usize) -> CpuId {
    CpuId::new(i).unwrap()
}

// ---------------------------------------------------------------------------
// Consistency of `enumerate`, for any accepted table and any BSP.

fn check_topology(info: &MadtInfo, bsp: ApicId) -> Result<(), TestCaseError> {
    let topo = madt::enumerate(info, bsp);
    let n = topo.cpus.len();
    prop_assert!((1..=MAX_CPUS).contains(&n), "{n} CPUs");
    prop_assert_eq!(topo.cpus[0].apic_id, bsp);
    prop_assert!(topo.cpus[0].present);
    prop_assert_eq!(topo.apic_id(CpuId::BOOT), Some(bsp));
    prop_assert_eq!(topo.cpu_of(bsp), Some(CpuId::BOOT));
    prop_assert_eq!(topo.possible, CpuSet::first_n(n));
    prop_assert!(topo.present.difference(&topo.possible).is_empty(), "present ⊄ possible");
    if let Some(past) = CpuId::new(n) {
        prop_assert_eq!(topo.apic_id(past), None);
    }
    let mut seen = HashSet::new();
    for (i, t) in topo.cpus.iter().enumerate() {
        prop_assert_eq!(t.cpu.index(), i, "ids not dense");
        prop_assert!(seen.insert(t.apic_id), "duplicate {}", t.apic_id);
        prop_assert_eq!(topo.cpu_of(t.apic_id), Some(t.cpu));
        prop_assert_eq!(topo.present.contains(t.cpu), t.present);
        if i > 0 {
            // Every other CPU comes from a possible entry with a valid id.
            let from = info.cpus.iter().find(|c| {
                c.apic_id == t.apic_id && c.acpi_uid == t.acpi_uid && c.is_possible() && c.has_valid_apic_id()
            });
            prop_assert!(from.is_some(), "{:?} is not from the table", t);
            prop_assert!(!t.present || from.unwrap().enabled);
        }
    }
    // And every possible entry with a valid id is there, unless over the limit.
    let over = topo.warnings.iter().any(|w| matches!(w, TopologyWarning::TooManyCpus { .. }));
    if !over {
        for c in info.cpus.iter().filter(|c| c.is_possible() && c.has_valid_apic_id()) {
            prop_assert!(seen.contains(&c.apic_id), "{:?} missing", c);
        }
    }
    for w in &topo.warnings {
        prop_assert!(!w.to_string().is_empty());
    }
    Ok(())
}

/// Parses and, if accepted, checks `enumerate` with a BSP taken from the
/// table (when `pick` says so and there is an entry) or `other`.
fn parse_and_check(bytes: &[u8], pick: Option<Index>, other: u32) -> Result<(), TestCaseError> {
    match madt::parse(bytes) {
        Err(e) => prop_assert!(!e.to_string().is_empty()),
        Ok(info) => {
            for w in &info.warnings {
                prop_assert!(!w.to_string().is_empty());
            }
            let bsp = match pick {
                Some(ix) if !info.cpus.is_empty() => ix.get(&info.cpus).apic_id,
                _ => ApicId(other),
            };
            check_topology(&info, bsp)?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Corpus, for mutation

fn corpus() -> &'static [Vec<u8>] {
    static CORPUS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    CORPUS.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/acpi-corpus/madt");
        let mut files: Vec<PathBuf> = fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "madt"))
            .collect();
        files.sort();
        assert!(files.len() >= 40, "only {} corpus tables in {}", files.len(), dir.display());
        files.iter().map(|p| fs::read(p).unwrap()).collect()
    })
}

/// Offsets of the subtables of a well-formed table.
fn entry_offsets(t: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut off = madt::HEADER_LEN;
    while off + 2 <= t.len() && t[off + 1] >= 2 {
        out.push(off);
        off += t[off + 1] as usize;
    }
    out
}

// ---------------------------------------------------------------------------
// Property tests

/// A subtable that is well-formed: length at least what its type needs.
fn well_formed_entry() -> impl Strategy<Value = Vec<u8>> {
    let ty = prop_oneof![
        4 => Just(0u8), 4 => Just(9u8), 1 => Just(1u8), 1 => Just(2u8), 1 => Just(4u8),
        1 => Just(5u8), 1 => Just(10u8), 1 => Just(0x7Fu8), 1 => Just(0xFFu8),
        1 => 0x11u8..=0xFF,
    ];
    (ty, 0usize..8, prop::collection::vec(any::<u8>(), 40)).prop_map(|(ty, extra, fill)| {
        let min = match ty {
            0 => 8,
            1 | 5 | 10 => 12,
            2 => 10,
            4 => 6,
            9 => 16,
            _ => 2,
        };
        let len = min + extra;
        let mut e = vec![ty, len as u8];
        e.extend_from_slice(&fill[..len - 2]);
        e
    })
}

/// 256 cases per property (well under a second in all), unless
/// `PROPTEST_CASES` asks for another number.
fn config() -> Config {
    let default = Config::default();
    let cases = if std::env::var_os("PROPTEST_CASES").is_some() { default.cases } else { 256 };
    Config { cases, failure_persistence: None, ..default }
}

proptest! {
    #![proptest_config(config())]

    /// (a) Any bytes at all.
    #[test]
    fn arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..600),
                       pick in any::<Option<Index>>(), other in any::<u32>()) {
        parse_and_check(&bytes, pick, other)?;
    }

    /// (a') Any bytes behind a valid signature and a length field that is
    /// random or matches, so that the entry walk is reached.
    #[test]
    fn arbitrary_body(body in prop::collection::vec(any::<u8>(), 0..600),
                      length in prop_oneof![Just(None), any::<u32>().prop_map(Some), (0u32..700).prop_map(Some)],
                      pick in any::<Option<Index>>(), other in any::<u32>()) {
        let mut t = b"APIC".to_vec();
        let len = length.unwrap_or(body.len() as u32 + 8);
        t.extend_from_slice(&len.to_le_bytes());
        t.extend_from_slice(&body);
        parse_and_check(&t, pick, other)?;
    }

    /// Well-formed tables with random contents are accepted, and what
    /// `parse` reports matches a simple model of the entries.
    #[test]
    fn well_formed_tables(revision in any::<u8>(),
                          entries in prop::collection::vec(well_formed_entry(), 0..40),
                          pick in any::<Option<Index>>(), other in any::<u32>()) {
        let t = table(revision, &entries);
        let info = madt::parse(&t).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let of = |ty: u8| entries.iter().filter(|e| e[0] == ty).count();
        prop_assert_eq!(info.revision, revision);
        prop_assert_eq!(info.cpus.len(), of(0) + of(9));
        prop_assert_eq!(info.cpus.iter().filter(|c| c.from_x2apic_entry).count(), of(9));
        prop_assert_eq!(info.io_apics, of(1));
        prop_assert_eq!(info.other_entries, entries.iter().filter(|e| e[0] >= 0x11).count());
        let valid_lint = |e: &&Vec<u8>| (e[0] == 4 && e[5] <= 1) || (e[0] == 10 && e[8] <= 1);
        prop_assert_eq!(info.lapic_nmis.len(), entries.iter().filter(valid_lint).count());
        // Table order and the decoded fields, entry by entry.
        let cpus: Vec<_> = entries.iter().filter(|e| e[0] == 0 || e[0] == 9).collect();
        for (c, e) in info.cpus.iter().zip(&cpus) {
            let le32 = |i: usize| u32::from_le_bytes(e[i..i + 4].try_into().unwrap());
            let (id, uid, flags) = if e[0] == 0 { (e[3] as u32, e[2] as u32, le32(4)) } else { (le32(4), le32(12), le32(8)) };
            prop_assert_eq!(c.apic_id, ApicId(id));
            prop_assert_eq!(c.acpi_uid, uid);
            prop_assert_eq!(c.enabled, flags & 1 != 0);
            prop_assert_eq!(c.online_capable, revision >= 5 && flags & 3 == 2);
        }
        let overrides: Vec<_> = entries.iter().filter(|e| e[0] == 5).collect();
        let want_addr = match overrides.first() {
            Some(e) => u64::from_le_bytes(e[4..12].try_into().unwrap()),
            None => 0xFEE0_0000,
        };
        prop_assert_eq!(info.local_apic_address, want_addr);
        prop_assert_eq!(info.warnings.is_empty(), overrides.len() <= 1 && info.lapic_nmis.len() == of(4) + of(10));
        parse_and_check(&t, pick, other)?;
    }

    /// (b) Real tables with random byte changes, truncation, and entry
    /// length bytes set to 0, 1, 255 or anything.
    #[test]
    fn mutated_corpus(which in any::<Index>(),
                      pokes in prop::collection::vec((any::<Index>(), any::<u8>()), 0..6),
                      entry_len in prop::option::of((any::<Index>(), prop_oneof![Just(0u8), Just(1u8), Just(255u8), any::<u8>()])),
                      truncate in prop::option::of(any::<Index>()),
                      refix in any::<bool>(),
                      pick in any::<Option<Index>>(), other in any::<u32>()) {
        let mut t = which.get(corpus()).clone();
        let offsets = entry_offsets(&t);
        if let Some((ix, len)) = entry_len {
            let off = *ix.get(&offsets);
            t[off + 1] = len;
        }
        for (ix, b) in pokes {
            let i = ix.index(t.len());
            t[i] = b;
        }
        if let Some(ix) = truncate {
            t.truncate(ix.index(t.len() + 1));
        }
        if refix && t.len() >= 10 {
            fix(&mut t);
        }
        parse_and_check(&t, pick, other)?;
    }

    /// A length byte of 0 or 1 anywhere is reported at its offset.
    #[test]
    fn short_entry_length_names_offset(which in any::<Index>(), ix in any::<Index>(), len in 0u8..2) {
        let mut t = which.get(corpus()).clone();
        let offsets = entry_offsets(&t);
        let off = *ix.get(&offsets);
        t[off + 1] = len;
        let err = madt::parse(&t).unwrap_err();
        prop_assert_eq!(&err, &MadtError::EntryLengthTooSmall { offset: off, entry_type: t[off], length: len });
        let offset_text = format!("offset {off:#x} has length {len}");
        prop_assert!(err.to_string().contains(&offset_text), "{}", err);
    }
}

// ---------------------------------------------------------------------------
// Hand-built tables

#[test]
fn online_capable_disabled_is_possible_not_present() {
    let entries = [
        lapic(0, 0, ENABLED),
        lapic(1, 2, ONLINE_CAPABLE),
        lapic(2, 4, 0),
        x2apic(300, ONLINE_CAPABLE, 3),
        lapic(4, 6, ENABLED | ONLINE_CAPABLE), // bit 1 is reserved when enabled
    ];
    let info = madt::parse(&table(5, &entries)).unwrap();
    let oc: Vec<bool> = info.cpus.iter().map(|c| c.online_capable).collect();
    assert_eq!(oc, [false, true, false, true, false]);
    let topo = madt::enumerate(&info, ApicId(0));
    assert_eq!(apic_ids(&topo), [0, 2, 300, 6]);
    assert_eq!(topo.possible, CpuSet::first_n(4));
    let present: Vec<usize> = topo.present.iter().map(CpuId::index).collect();
    assert_eq!(present, [0, 3]);
    assert!(!topo.cpus[1].present && !topo.cpus[2].present);
    assert!(topo.warnings.is_empty(), "{:?}", topo.warnings);

    // Before revision 5 (ACPI 6.3) bit 1 is reserved: not online-capable.
    let info = madt::parse(&table(4, &entries)).unwrap();
    assert!(info.cpus.iter().all(|c| !c.online_capable));
    assert_eq!(apic_ids(&madt::enumerate(&info, ApicId(0))), [0, 6]);
}

#[test]
fn x2apic_ids_above_255() {
    let entries = [
        lapic(0, 0, ENABLED),
        x2apic(0x100, ENABLED, 10),
        x2apic(0xFF, ENABLED, 11), // 0xFF is a valid x2APIC id
        x2apic(0x1_0000, ENABLED, 12),
        x2apic(u32::MAX, ENABLED, 13), // invalid
        lapic(14, 0xFF, ENABLED),      // invalid
        x2apic(u32::MAX, 0, 15),       // invalid but disabled: silent
    ];
    let info = madt::parse(&table(3, &entries)).unwrap();
    assert_eq!(info.cpus.len(), 7);
    assert!(info.cpus[1].from_x2apic_entry && !info.cpus[0].from_x2apic_entry);

    let topo = madt::enumerate(&info, ApicId(0x1_0000));
    assert_eq!(apic_ids(&topo), [0x1_0000, 0, 0x100, 0xFF]);
    assert_eq!(topo.cpus[0].acpi_uid, 12);
    assert_eq!(topo.cpu_of(ApicId(0x100)), Some(cpu(2)));
    assert_eq!(topo.apic_id(cpu(3)), Some(ApicId(0xFF)));
    assert_eq!(topo.present.len(), 4);
    assert_eq!(
        topo.warnings,
        [
            TopologyWarning::InvalidApicId { acpi_uid: 13, apic_id: ApicId(u32::MAX), from_x2apic_entry: true },
            TopologyWarning::InvalidApicId { acpi_uid: 14, apic_id: ApicId(0xFF), from_x2apic_entry: false },
        ]
    );
    assert!(topo.warnings[0].to_string().contains("0xffffffff"), "{}", topo.warnings[0]);
}

#[test]
fn bsp_is_matched_by_apic_id_not_position() {
    let entries = [lapic(0, 4, ENABLED), lapic(1, 0, ENABLED), lapic(2, 9, ENABLED), lapic(3, 1, ENABLED)];
    let info = madt::parse(&table(1, &entries)).unwrap();
    let topo = madt::enumerate(&info, ApicId(9));
    assert_eq!(apic_ids(&topo), [9, 4, 0, 1]);
    assert_eq!(topo.cpus[0].acpi_uid, 2);
    assert!(topo.warnings.is_empty());
}

#[test]
fn duplicate_apic_ids_keep_the_first() {
    let entries = [
        lapic(0, 3, ENABLED),
        lapic(1, 5, ENABLED),
        lapic(2, 3, ENABLED), // duplicate of the BSP
        lapic(3, 5, ENABLED), // duplicate of an AP
        lapic(4, 5, 0),       // disabled duplicate: silent
        x2apic(5, ENABLED, 5),
    ];
    let info = madt::parse(&table(1, &entries)).unwrap();
    let topo = madt::enumerate(&info, ApicId(3));
    assert_eq!(apic_ids(&topo), [3, 5]);
    assert_eq!(topo.cpus[1].acpi_uid, 1);
    assert_eq!(
        topo.warnings,
        [
            TopologyWarning::DuplicateApicId { apic_id: ApicId(3), acpi_uid: 2, kept_acpi_uid: 0 },
            TopologyWarning::DuplicateApicId { apic_id: ApicId(5), acpi_uid: 3, kept_acpi_uid: 1 },
            TopologyWarning::DuplicateApicId { apic_id: ApicId(5), acpi_uid: 5, kept_acpi_uid: 1 },
        ]
    );
}

#[test]
fn bsp_missing_or_disabled() {
    let entries = [lapic(0, 0, ENABLED), lapic(1, 1, 0), lapic(2, 2, ENABLED)];
    let info = madt::parse(&table(1, &entries)).unwrap();

    let topo = madt::enumerate(&info, ApicId(7));
    assert_eq!(apic_ids(&topo), [7, 0, 2]);
    assert_eq!(topo.cpus[0].acpi_uid, TopoCpu::UNKNOWN_UID);
    assert_eq!(topo.warnings, [TopologyWarning::BspNotInTable { bsp: ApicId(7) }]);

    let topo = madt::enumerate(&info, ApicId(1));
    assert_eq!(apic_ids(&topo), [1, 0, 2]);
    assert_eq!(topo.cpus[0].acpi_uid, 1);
    assert!(topo.present.contains(CpuId::BOOT));
    assert_eq!(topo.warnings, [TopologyWarning::BspEntryDisabled { bsp: ApicId(1), acpi_uid: 1 }]);

    // No CPU entries at all.
    let info = madt::parse(&table(1, &[io_apic(0, 0xFEC0_0000, 0)])).unwrap();
    let topo = madt::enumerate(&info, ApicId(0));
    assert_eq!(apic_ids(&topo), [0]);
    assert_eq!(topo.possible, CpuSet::single(CpuId::BOOT));
}

#[test]
fn more_cpus_than_max() {
    let extra = 10;
    let entries: Vec<Vec<u8>> = (0..(MAX_CPUS + extra) as u32).map(|i| x2apic(i * 2, ENABLED, i)).collect();
    let info = madt::parse(&table(3, &entries)).unwrap();
    let topo = madt::enumerate(&info, ApicId(100));
    assert_eq!(topo.cpus.len(), MAX_CPUS);
    assert_eq!(topo.possible.len(), MAX_CPUS);
    assert_eq!(topo.cpus[0].apic_id, ApicId(100));
    // The BSP (i = 50) is cpu0, so the last one kept is i = MAX_CPUS - 1.
    assert_eq!(topo.cpus[MAX_CPUS - 1].apic_id, ApicId(2 * (MAX_CPUS as u32 - 1)));
    assert_eq!(
        topo.warnings,
        [TopologyWarning::TooManyCpus { ignored: extra, first_ignored: ApicId(2 * MAX_CPUS as u32) }]
    );
}

#[test]
fn lapic_address_override() {
    let info = madt::parse(&table(1, &[lapic(0, 0, ENABLED)])).unwrap();
    assert_eq!(info.local_apic_address, 0xFEE0_0000);
    assert!(info.pcat_compat);

    let entries = [lapic(0, 0, ENABLED), address_override(0x1_2345_6000), address_override(0xDEAD_0000)];
    let t = table(1, &entries);
    let info = madt::parse(&t).unwrap();
    assert_eq!(info.local_apic_address, 0x1_2345_6000);
    assert_eq!(info.warnings, [MadtWarning::ExtraAddressOverride { offset: 0x2c + 8 + 12 }]);
}

#[test]
fn lapic_nmi_entries() {
    let entries = [
        lapic_nmi(0xFF, 0x5, 1),
        lapic_nmi(3, 0xD, 0),
        x2apic_nmi(255, 0, 1), // UID 255, not "all"
        x2apic_nmi(u32::MAX, 0, 1),
        lapic_nmi(1, 0, 2), // no LINT2
    ];
    let info = madt::parse(&table(1, &entries)).unwrap();
    assert_eq!(
        info.lapic_nmis,
        [
            LapicNmi { acpi_uid: LapicNmi::ALL_CPUS, lint: 1, flags: 0x5 },
            LapicNmi { acpi_uid: 3, lint: 0, flags: 0xD },
            LapicNmi { acpi_uid: 255, lint: 1, flags: 0 },
            LapicNmi { acpi_uid: LapicNmi::ALL_CPUS, lint: 1, flags: 0 },
        ]
    );
    assert!(info.lapic_nmis[0].applies_to(17));
    assert!(!info.lapic_nmis[2].applies_to(17) && info.lapic_nmis[2].applies_to(255));
    let off = 0x2c + 6 + 6 + 12 + 12;
    assert_eq!(info.warnings, [MadtWarning::InvalidNmiLint { offset: off, lint: 2 }]);
}

#[test]
fn unknown_entry_types_are_counted_and_skipped() {
    let entries = [
        vec![0x7F, 12, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
        lapic(0, 0, ENABLED),
        vec![0xFF, 2],
        vec![0x11, 3, 0],
        lapic(1, 1, ENABLED),
        io_apic(2, 0xFEC0_0000, 0),
    ];
    let info = madt::parse(&table(1, &entries)).unwrap();
    assert_eq!(info.other_entries, 3);
    assert_eq!(info.io_apics, 1);
    assert_eq!(info.cpus.len(), 2);
}

#[test]
fn zero_length_entry_is_an_error_naming_the_offset() {
    let mut t = table(1, &[vec![0, 0, 0, 0, 0, 0, 0, 0]]);
    let err = madt::parse(&t).unwrap_err();
    assert_eq!(err, MadtError::EntryLengthTooSmall { offset: 0x2c, entry_type: 0, length: 0 });
    assert!(err.to_string().starts_with("MADT entry at offset 0x2c has length 0"), "{err}");

    t = table(1, &[lapic(0, 0, ENABLED), vec![9, 0]]);
    let err = madt::parse(&t).unwrap_err();
    assert!(err.to_string().starts_with("MADT entry at offset 0x34 has length 0"), "{err}");
}

#[test]
fn malformed_entries() {
    // Runs past the end of the table.
    let mut e = lapic(0, 0, ENABLED);
    e[1] = 20;
    let err = madt::parse(&table(1, &[e])).unwrap_err();
    assert_eq!(err, MadtError::EntryOverrunsTable { offset: 0x2c, entry_type: 0, length: 20, remaining: 8 });
    assert!(err.to_string().contains("offset 0x2c"), "{err}");

    // A known type shorter than its structure.
    let err = madt::parse(&table(1, &[vec![0, 6, 0, 0, 1, 0], lapic(1, 1, ENABLED)])).unwrap_err();
    assert_eq!(err, MadtError::EntryTooShortForType { offset: 0x2c, entry_type: 0, length: 6, needed: 8 });
    assert!(err.to_string().contains("Local APIC"), "{err}");
    let err = madt::parse(&table(1, &[vec![9, 8, 0, 0, 1, 0, 0, 0]])).unwrap_err();
    assert!(matches!(err, MadtError::EntryTooShortForType { entry_type: 9, needed: 16, .. }), "{err}");

    // One stray byte after the last entry.
    let err = madt::parse(&table(1, &[lapic(0, 0, ENABLED), vec![0]])).unwrap_err();
    assert_eq!(err, MadtError::TruncatedEntryHeader { offset: 0x34, remaining: 1 });
}

#[test]
fn table_shorter_than_its_header() {
    let mut t = table(1, &[]);
    t[4..8].copy_from_slice(&30u32.to_le_bytes());
    let err = madt::parse(&t).unwrap_err();
    assert_eq!(err, MadtError::LengthBelowHeader { length: 30 });
    assert_eq!(err.to_string(), "MADT length 30 is shorter than its 44-byte header");

    // Fewer bytes than the length field claims.
    let t = table(1, &[lapic(0, 0, ENABLED)]);
    let err = madt::parse(&t[..40]).unwrap_err();
    assert_eq!(err, MadtError::LengthBeyondData { length: 52, available: 40 });
    assert!(matches!(madt::parse(&t[..3]), Err(MadtError::Truncated { available: 3 })));
    assert!(matches!(madt::parse(b"FACP\x2c\0\0\0"), Err(MadtError::BadSignature(s)) if &s == b"FACP"));
    assert!(madt::parse(b"FACP").unwrap_err().to_string().contains("FACP"));
}

#[test]
fn bad_checksum_is_only_a_warning() {
    let good = table(1, &[lapic(0, 0, ENABLED), lapic(1, 1, ENABLED)]);
    let mut bad = good.clone();
    bad[9] = bad[9].wrapping_add(3);
    let g = madt::parse(&good).unwrap();
    let b = madt::parse(&bad).unwrap();
    assert!(g.warnings.is_empty());
    assert_eq!(b.warnings, [MadtWarning::BadChecksum { sum: 3 }]);
    assert_eq!(b.cpus, g.cpus);
    assert!(b.warnings[0].to_string().contains("checksum"));
}

#[test]
fn trailing_bytes_are_ignored() {
    let t = table(1, &[lapic(0, 0, ENABLED)]);
    let mut padded = t.clone();
    padded.extend_from_slice(&[0, 0, 0]); // would be a zero-length entry
    assert_eq!(madt::parse(&padded), madt::parse(&t));
}

#[test]
fn unaligned_input() {
    // The table need not start at an aligned address.
    let t = table(5, &[x2apic(0x1234, ENABLED, 1), lapic_nmi(0xFF, 0, 1)]);
    let mut buf = vec![0u8; t.len() + 1];
    buf[1..].copy_from_slice(&t);
    let info = madt::parse(&buf[1..]).unwrap();
    assert_eq!(info.cpus[0].apic_id, ApicId(0x1234));
    assert_eq!(info, madt::parse(&t).unwrap());
}

#[test]
fn single_cpu_fallback() {
    let err = madt::parse(&[]).unwrap_err();
    let topo = madt::single_cpu(ApicId(5), FallbackReason::Malformed(err));
    assert_eq!(apic_ids(&topo), [5]);
    assert_eq!(topo.cpu_of(ApicId(5)), Some(CpuId::BOOT));
    assert_eq!(topo.apic_id(cpu(1)), None);
    assert_eq!(topo.possible, CpuSet::single(CpuId::BOOT));
    assert_eq!(topo.present, topo.possible);
    let msg = topo.warnings[0].to_string();
    assert!(msg.contains("apic#5") && msg.contains("MADT is only 0 bytes"), "{msg}");
    let msg = madt::single_cpu(ApicId(0), FallbackReason::NoRsdp).warnings[0].to_string();
    assert!(msg.contains("RSDP"), "{msg}");
}
