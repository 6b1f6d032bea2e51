//! Is anything using the disk or its partitions: device-mapper, a mount, a
//! swap area? Writing below any of them corrupts what they hold.

use std::fs;

use anyhow::{Context, Result, bail};

use crate::usb::checks::{DevNum, Node, SystemRoot};

/// Device-mapper (LVM, RAID, dm-crypt) holds the disks under it, mounted
/// or not: writing below an open LUKS volume corrupts it all the same.
pub(super) fn check_holders(nodes: &[Node]) -> Result<()> {
    let mut held = Vec::new();
    for node in nodes {
        let Ok(entries) = fs::read_dir(node.dir.join("holders")) else {
            continue;
        };
        let mut holders: Vec<String> =
            entries.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
        holders.sort();
        if !holders.is_empty() {
            held.push(format!("{} is held by {}", node.dev_path(), holders.join(", ")));
        }
    }
    if !held.is_empty() {
        bail!(
            "{} is in use: {} (device-mapper: LVM, RAID or encryption); close it first, e.g. \
             `sudo cryptsetup close NAME` or `sudo vgchange -an VG`",
            nodes[0].dev_path(),
            held.join("; ")
        );
    }
    Ok(())
}

pub(super) fn check_mounts(root: &SystemRoot, nodes: &[Node]) -> Result<()> {
    let text = fs::read_to_string(&root.mountinfo).with_context(|| format!("reading {}", root.mountinfo.display()))?;
    let mut mounted = Vec::new();
    for line in text.lines() {
        let Some(mount) = parse_mountinfo_line(line) else {
            continue;
        };
        // btrfs reports an anonymous 0:N device number, so only the
        // source names its disk; bind mounts show no /dev source, so only
        // the number does.
        if let Some(node) = nodes.iter().find(|n| mount.dev == Some(n.dev) || mount.source == n.dev_path()) {
            mounted.push((node.dev_path(), unescape(mount.point)));
        }
    }
    if !mounted.is_empty() {
        let list: Vec<String> = mounted.iter().map(|(dev, point)| format!("{dev} is mounted on {point}")).collect();
        let mut devs: Vec<&str> = mounted.iter().map(|(dev, _)| dev.as_str()).collect();
        devs.sort_unstable();
        devs.dedup();
        bail!(
            "{} is in use: {}; unmount first (`sudo umount {}`, or eject it in the file manager)",
            nodes[0].dev_path(),
            list.join("; "),
            devs.join(" ")
        );
    }
    Ok(())
}

struct Mount<'a> {
    dev: Option<DevNum>,
    point: &'a str,
    source: &'a str,
}

/// `36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw`: the
/// number is field 3, the mount point field 5, the source the second field
/// after the lone `-` (optional fields come before it).
fn parse_mountinfo_line(line: &str) -> Option<Mount<'_>> {
    let fields: Vec<&str> = line.split(' ').collect();
    let separator = fields.iter().skip(6).position(|f| *f == "-")? + 6;
    Some(Mount { dev: DevNum::parse(fields.get(2)?), point: fields.get(4)?, source: fields.get(separator + 2)? })
}

pub(super) fn check_swaps(root: &SystemRoot, nodes: &[Node]) -> Result<()> {
    let text = fs::read_to_string(&root.swaps).with_context(|| format!("reading {}", root.swaps.display()))?;
    // The first line is the column heading.
    for line in text.lines().skip(1) {
        let Some(file) = line.split_whitespace().next() else {
            continue;
        };
        let file = unescape(file);
        if nodes.iter().any(|n| file == n.dev_path()) {
            bail!(
                "{} is in use: {file} is a swap area; turn it off first (`sudo swapoff {file}`)",
                nodes[0].dev_path()
            );
        }
    }
    Ok(())
}

/// The kernel writes space, tab, newline and backslash in mount points and
/// swap file names as `\040`-style octal escapes.
fn unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        // Three digits from \000 to \377: one byte.
        let octal = bytes.get(i + 1..i + 4).filter(|d| {
            bytes[i] == b'\\' && (b'0'..=b'3').contains(&d[0]) && d[1..].iter().all(|b| (b'0'..=b'7').contains(b))
        });
        match octal {
            Some(d) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
