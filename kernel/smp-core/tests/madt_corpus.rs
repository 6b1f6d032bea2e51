//! Every real-machine MADT of the corpus against the facts ACPICA's
//! disassembler decoded from it (`INDEX.tsv`, an independent ground truth),
//! then `enumerate` on it with the boot CPU at the start, in the middle and
//! at the end of the table, and absent from it.
//!
//! All rows are checked and every failure is reported with its file name.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

use smp_core::madt::{self, CpuTopology, MadtInfo, TopologyWarning};
use smp_core::{ApicId, CpuId, CpuSet};

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/acpi-corpus")
}

/// One row of INDEX.tsv.
struct Row {
    file: String,
    madt_revision: u8,
    length: usize,
    n_lapic: usize,
    n_lapic_enabled: usize,
    n_x2apic: usize,
    n_x2apic_enabled: usize,
    n_online_capable_disabled: usize,
    /// type -> count, for the types other than 0 and 9.
    other_types: BTreeMap<u8, usize>,
    enabled_apic_ids: Vec<u32>,
}

fn read_index() -> Vec<Row> {
    let path = corpus_dir().join("INDEX.tsv");
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("INDEX.tsv is empty").split('\t').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap_or_else(|| panic!("INDEX.tsv has no {name}"));
    let (file, rev, len) = (col("file"), col("madt_revision"), col("length"));
    let (nl, nle) = (col("n_lapic"), col("n_lapic_enabled"));
    let (nx, nxe) = (col("n_x2apic"), col("n_x2apic_enabled"));
    let (noc, other, ids) = (col("n_online_capable_disabled"), col("other_subtable_types"), col("enabled_apic_ids"));

    lines
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            let num = |i: usize| -> usize {
                f.get(i)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or_else(|| panic!("INDEX.tsv: bad column {} in {line:?}", header[i]))
            };
            let other_types = f[other]
                .split(',')
                .filter(|s| !s.is_empty())
                .map(|kv| {
                    let (t, n) = kv.split_once(':').expect("type:count");
                    (t.parse().expect("type"), n.parse().expect("count"))
                })
                .collect();
            let enabled_apic_ids = f
                .get(ids)
                .copied()
                .unwrap_or("")
                .split(',')
                .filter(|s| !s.is_empty())
                .map(|s| s.parse().expect("apic id"))
                .collect();
            Row {
                file: f[file].to_string(),
                madt_revision: num(rev) as u8,
                length: num(len),
                n_lapic: num(nl),
                n_lapic_enabled: num(nle),
                n_x2apic: num(nx),
                n_x2apic_enabled: num(nxe),
                n_online_capable_disabled: num(noc),
                other_types,
                enabled_apic_ids,
            }
        })
        .collect()
}

/// The fixture copies are named `.madt` instead of INDEX's `.bin`.
fn load(row: &Row) -> Result<Vec<u8>, String> {
    let rel = row.file.strip_suffix(".bin").map(|s| format!("{s}.madt")).unwrap_or(row.file.clone());
    let path = corpus_dir().join(rel);
    fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// Collects failures instead of stopping at the first.
struct Check<'a> {
    file: &'a str,
    failures: &'a mut Vec<String>,
}

impl Check<'_> {
    fn eq<T: PartialEq + std::fmt::Debug>(&mut self, what: &str, got: T, want: T) {
        if got != want {
            self.failures.push(format!("{}: {what}: got {got:?}, INDEX/expected {want:?}", self.file));
        }
    }

    fn ok(&mut self, what: &str, cond: bool) {
        if !cond {
            self.failures.push(format!("{}: {what}", self.file));
        }
    }
}

fn check_table(row: &Row, bytes: &[u8], info: &MadtInfo, c: &mut Check) {
    let count = |f: &dyn Fn(&madt::MadtCpu) -> bool| info.cpus.iter().filter(|x| f(x)).count();
    let other = |t: u8| row.other_types.get(&t).copied().unwrap_or(0);

    c.eq("file size", bytes.len(), row.length);
    c.eq("revision", info.revision, row.madt_revision);
    c.eq("n_lapic", count(&|x| !x.from_x2apic_entry), row.n_lapic);
    c.eq("n_lapic_enabled", count(&|x| !x.from_x2apic_entry && x.enabled), row.n_lapic_enabled);
    c.eq("n_x2apic", count(&|x| x.from_x2apic_entry), row.n_x2apic);
    c.eq("n_x2apic_enabled", count(&|x| x.from_x2apic_entry && x.enabled), row.n_x2apic_enabled);
    c.eq("n_online_capable_disabled", count(&|x| x.online_capable && !x.enabled), row.n_online_capable_disabled);
    c.ok("online_capable set on an enabled entry", count(&|x| x.online_capable && x.enabled) == 0);
    c.eq("I/O APIC entries (type 1)", info.io_apics, other(1));
    c.eq("LAPIC NMI entries (types 4 and 10)", info.lapic_nmis.len(), other(4) + other(10));
    let unknown: usize = row.other_types.range(0x11..).map(|(_, n)| n).sum();
    c.eq("unknown-type entries (0x11 and up)", info.other_entries, unknown);
    let enabled: Vec<u32> = info.cpus.iter().filter(|x| x.enabled).map(|x| x.apic_id.0).collect();
    c.eq("enabled APIC ids in table order", enabled, row.enabled_apic_ids.clone());
    // The README: every table in the corpus uses the default address.
    c.eq("local APIC address", info.local_apic_address, 0xFEE0_0000);
    c.eq("parse warnings", info.warnings.iter().map(|w| w.to_string()).collect(), Vec::<String>::new());

    // Bytes past the header's length are ignored.
    let mut padded = bytes.to_vec();
    padded.extend_from_slice(&[0xFF, 0, 0x01, 0x02, 0x03]);
    c.ok("trailing bytes change the result", madt::parse(&padded).as_ref() == Ok(info));
}

/// `enumerate` with `bsp`, which must be one of the enabled ids, against the
/// INDEX list: the BSP first, then the other enabled ids in table order,
/// without repeats.
fn check_enumerate(row: &Row, info: &MadtInfo, bsp: u32, c: &mut Check) {
    let topo = madt::enumerate(info, ApicId(bsp));
    let mut want = vec![bsp];
    for &id in &row.enabled_apic_ids {
        if !want.contains(&id) {
            want.push(id);
        }
    }
    let what = |s: &str| format!("enumerate(bsp={bsp}): {s}");
    let got: Vec<u32> = topo.cpus.iter().map(|t| t.apic_id.0).collect();
    c.eq(&what("APIC ids by CpuId"), got, want.clone());
    check_invariants(&topo, ApicId(bsp), &what(""), c);
    c.eq(&what("present count"), topo.present.len(), want.len());
    // No online-capable entries in the corpus, so possible == present.
    c.eq(&what("possible"), topo.possible, topo.present);
    c.eq(&what("warnings"), topo.warnings.iter().map(|w| w.to_string()).collect(), Vec::<String>::new());
}

fn check_invariants(topo: &CpuTopology, bsp: ApicId, what: &str, c: &mut Check) {
    c.eq(&format!("{what} CpuId 0's APIC id"), topo.apic_id(CpuId::BOOT), Some(bsp));
    c.eq(&format!("{what} cpu_of(bsp)"), topo.cpu_of(bsp), Some(CpuId::BOOT));
    c.ok(&format!("{what} BSP not present"), topo.present.contains(CpuId::BOOT));
    for (i, t) in topo.cpus.iter().enumerate() {
        c.eq(&format!("{what} dense id of entry {i}"), t.cpu.index(), i);
        c.eq(&format!("{what} cpu_of({})", t.apic_id), topo.cpu_of(t.apic_id), Some(t.cpu));
        c.eq(&format!("{what} present bit of {}", t.cpu), topo.present.contains(t.cpu), t.present);
    }
    c.eq(&format!("{what} possible"), topo.possible, CpuSet::first_n(topo.cpus.len()));
    c.ok(&format!("{what} present not within possible"), topo.present.difference(&topo.possible).is_empty());
}

#[test]
fn corpus_matches_index() {
    let rows = read_index();
    assert!(rows.len() >= 40, "INDEX.tsv has only {} rows", rows.len());
    let mut failures = Vec::new();

    for row in &rows {
        let mut c = Check { file: &row.file, failures: &mut failures };
        let bytes = match load(row) {
            Ok(b) => b,
            Err(e) => {
                c.ok(&e, false);
                continue;
            }
        };
        let info = match madt::parse(&bytes) {
            Ok(info) => info,
            Err(e) => {
                c.ok(&format!("parse failed: {e}"), false);
                continue;
            }
        };
        check_table(row, &bytes, &info, &mut c);

        let ids = &row.enabled_apic_ids;
        if ids.is_empty() {
            c.ok("no enabled CPU in INDEX", false);
            continue;
        }
        // First, middle and last enabled entry as the boot CPU: the BSP is
        // the one whose id matches, wherever it sits in the table.
        for bsp in [ids[0], ids[ids.len() / 2], ids[ids.len() - 1]] {
            check_enumerate(row, &info, bsp, &mut c);
        }
        if ids.len() >= 3 {
            let topo = madt::enumerate(&info, ApicId(ids[ids.len() / 2]));
            c.eq("middle BSP: CpuId 1's APIC id", topo.apic_id(CpuId::new(1).unwrap()), Some(ApicId(ids[0])));
        }

        // A boot CPU the table does not list is still CpuId 0, with a warning.
        let absent = ApicId(0x7FFF_0000);
        let topo = madt::enumerate(&info, absent);
        check_invariants(&topo, absent, "enumerate(absent bsp)", &mut c);
        c.eq("enumerate(absent bsp): count", topo.cpus.len(), distinct(ids) + 1);
        c.ok(
            "enumerate(absent bsp): no BspNotInTable warning",
            topo.warnings == [TopologyWarning::BspNotInTable { bsp: absent }],
        );

        // A boot CPU whose entry is disabled (with a valid id not used by an
        // enabled CPU) is taken anyway, with a warning.
        let disabled = info.cpus.iter().find(|x| !x.enabled && x.has_valid_apic_id() && !ids.contains(&x.apic_id.0));
        if let Some(d) = disabled {
            let topo = madt::enumerate(&info, d.apic_id);
            check_invariants(&topo, d.apic_id, "enumerate(disabled bsp)", &mut c);
            c.eq("enumerate(disabled bsp): count", topo.cpus.len(), distinct(ids) + 1);
            c.eq("enumerate(disabled bsp): uid", topo.cpus[0].acpi_uid, d.acpi_uid);
            c.ok(
                "enumerate(disabled bsp): no BspEntryDisabled warning",
                matches!(topo.warnings[..], [TopologyWarning::BspEntryDisabled { .. }]),
            );
        }
    }

    assert!(failures.is_empty(), "{} corpus check(s) failed:\n{}", failures.len(), failures.join("\n"));
}

fn distinct(ids: &[u32]) -> usize {
    let mut v = ids.to_vec();
    v.sort_unstable();
    v.dedup();
    v.len()
}

/// Spot checks of corpus facts the README calls out, so that a loop that
/// silently checked nothing would still be caught.
#[test]
fn corpus_highlights() {
    let rows = read_index();
    let get = |prefix: &str| {
        let row = rows.iter().find(|r| r.file.contains(prefix)).unwrap_or_else(|| panic!("no {prefix}"));
        madt::parse(&load(row).unwrap()).unwrap_or_else(|e| panic!("{}: {e}", row.file))
    };

    // 04: 128 Local APIC entries, 48 enabled, 80 disabled all with APIC id 0.
    let info = get("madt/04-");
    assert_eq!(info.cpus.len(), 128);
    assert_eq!(info.cpus.iter().filter(|c| !c.enabled && c.apic_id == ApicId(0)).count(), 80);
    let topo = madt::enumerate(&info, ApicId(0));
    assert_eq!(topo.cpus.len(), 48, "disabled id-0 duplicates must not become CPUs");

    // 07: 28 subtables of undefined type 0x7F, x2APIC entries all disabled
    // with id 0xFFFFFFFF, which are neither CPUs nor warnings.
    let info = get("madt/07-");
    assert_eq!(info.other_entries, 28);
    assert!(info.cpus.iter().filter(|c| c.from_x2apic_entry).all(|c| c.apic_id == ApicId(u32::MAX)));
    let topo = madt::enumerate(&info, info.cpus.iter().find(|c| c.enabled).unwrap().apic_id);
    assert_eq!(topo.cpus.len(), 20);
    assert!(topo.warnings.is_empty(), "{:?}", topo.warnings);

    // 08: one subtable of type 0xFF.
    assert_eq!(get("madt/08-").other_entries, 1);

    // 13: x2APIC only, ids 0,8,16,24,64,66,68,70; BSP 64 is cpu0, 0 is cpu1.
    let info = get("madt/13-");
    assert!(info.cpus.iter().all(|c| c.from_x2apic_entry));
    let topo = madt::enumerate(&info, ApicId(64));
    assert_eq!(topo.cpu_of(ApicId(64)), Some(CpuId::BOOT));
    assert_eq!(topo.cpu_of(ApicId(0)), CpuId::new(1));
    assert_eq!(topo.cpu_of(ApicId(70)), CpuId::new(7));
}
