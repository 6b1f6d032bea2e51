//! May DEVICE be overwritten? It must be a whole disk that the kernel calls
//! removable, unused by any mount, swap area or device-mapper ([`in_use`]),
//! and large enough. Every fact is read below a [`SystemRoot`], so the host
//! tests can fake sysfs and /proc in a directory of their own.

use std::fmt;
use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::usb::dialog::human_size;
use crate::usb::in_use;

/// sysfs `size` files count 512-byte sectors, whatever the device's own
/// block size.
const SYSFS_SECTOR: u64 = 512;

const LIST_HINT: &str = "`lsblk -o NAME,TRAN,RM,SIZE,MODEL` lists the disks; a stick shows TRAN usb and RM 1";

/// Where the facts about block devices are read.
#[derive(Clone, Debug)]
pub struct SystemRoot {
    /// One entry per disk and per partition (`/sys/class/block`).
    pub class_block: PathBuf,
    /// The mounts, with device numbers (`/proc/self/mountinfo`).
    pub mountinfo: PathBuf,
    /// The active swap areas (`/proc/swaps`).
    pub swaps: PathBuf,
}

impl SystemRoot {
    /// This machine's.
    pub fn live() -> SystemRoot {
        SystemRoot::under(Path::new("/"))
    }

    /// `sys/class/block`, `proc/self/mountinfo` and `proc/swaps` below `root`.
    pub fn under(root: &Path) -> SystemRoot {
        SystemRoot {
            class_block: root.join("sys/class/block"),
            mountinfo: root.join("proc/self/mountinfo"),
            swaps: root.join("proc/swaps"),
        }
    }
}

/// A device number, written `major:minor` in sysfs and mountinfo.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DevNum {
    pub major: u32,
    pub minor: u32,
}

impl DevNum {
    pub fn parse(s: &str) -> Option<DevNum> {
        let (major, minor) = s.trim().split_once(':')?;
        Some(DevNum { major: major.parse().ok()?, minor: minor.parse().ok()? })
    }
}

impl fmt::Display for DevNum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.major, self.minor)
    }
}

/// A block special file.
#[derive(Clone, Debug)]
pub struct BlockDevice {
    /// As the user named it.
    pub given: PathBuf,
    /// Symlinks resolved: /dev/sdb for /dev/disk/by-id/usb-...
    pub path: PathBuf,
    pub dev: DevNum,
}

/// `given`, which must be (a symlink to) a block device.
pub fn block_device(given: &Path) -> Result<BlockDevice> {
    let path = match fs::canonicalize(given) {
        Ok(path) => path,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            bail!("{} does not exist: name the stick's device, e.g. /dev/sdb ({LIST_HINT})", given.display())
        }
        Err(e) => return Err(e).with_context(|| format!("resolving {}", given.display())),
    };
    let meta = fs::metadata(&path).with_context(|| format!("reading {}", path.display()))?;
    if !meta.file_type().is_block_device() {
        let via = if path == given { String::new() } else { format!(" (it is {})", path.display()) };
        bail!(
            "{}{via} is not a block device: name the stick's whole-disk device, e.g. /dev/sdb ({LIST_HINT})",
            given.display()
        );
    }
    let dev = DevNum { major: rustix::fs::major(meta.rdev()), minor: rustix::fs::minor(meta.rdev()) };
    Ok(BlockDevice { given: given.to_owned(), path, dev })
}

/// A whole disk that passed every check of [`check_disk`].
#[derive(Clone, Debug)]
pub struct Disk {
    /// The kernel's name, e.g. `sdb`.
    pub name: String,
    /// The device, symlinks resolved.
    pub path: PathBuf,
    pub vendor: Option<String>,
    pub model: Option<String>,
    pub bytes: u64,
}

/// A disk or partition as sysfs lists it.
#[derive(Clone, Debug)]
pub(super) struct Node {
    pub(super) name: String,
    pub(super) dev: DevNum,
    pub(super) dir: PathBuf,
}

impl Node {
    /// udev names the device node after the kernel's name.
    pub(super) fn dev_path(&self) -> String {
        format!("/dev/{}", self.name)
    }
}

/// Refuses `device` unless it is a removable whole disk that nothing uses.
pub fn check_disk(root: &SystemRoot, device: &BlockDevice) -> Result<Disk> {
    let shown = device.path.display();
    let disk = find_node(root, device)?;
    if disk.dir.join("partition").exists() {
        let whole = match parent_name(&disk.dir) {
            Some(parent) => format!(" of /dev/{parent}: name the whole disk, /dev/{parent}"),
            None => ": name the whole disk".to_owned(),
        };
        bail!("{shown} is a partition{whole} (the image brings its own partition table)");
    }
    let removable_file = disk.dir.join("removable");
    match fs::read_to_string(&removable_file) {
        Ok(flag) if flag.trim() == "1" => {}
        Ok(flag) => bail!(
            "{shown} is not a removable disk: {} reads `{}`, and only disks the kernel reports as \
             removable (1) are written, so that an internal disk never is",
            removable_file.display(),
            flag.trim()
        ),
        Err(e) => bail!("cannot tell whether {shown} is removable: reading {}: {e}", removable_file.display()),
    }
    let mut nodes = vec![disk.clone()];
    nodes.extend(partitions(&disk)?);
    in_use::check_holders(&nodes)?;
    in_use::check_mounts(root, &nodes)?;
    in_use::check_swaps(root, &nodes)?;
    let size_file = disk.dir.join("size");
    let sectors = read_trimmed(&size_file)?;
    let bytes = sectors
        .parse::<u64>()
        .ok()
        .and_then(|s| s.checked_mul(SYSFS_SECTOR))
        .with_context(|| format!("{} holds `{sectors}`, not a sector count", size_file.display()))?;
    let attr = |name: &str| read_trimmed(&disk.dir.join("device").join(name)).ok().filter(|s| !s.is_empty());
    Ok(Disk { name: disk.name.clone(), path: device.path.clone(), vendor: attr("vendor"), model: attr("model"), bytes })
}

/// Refuses an image that `disk` cannot hold.
pub fn check_fits(disk: &Disk, image_bytes: u64) -> Result<()> {
    let path = disk.path.display();
    if disk.bytes == 0 {
        bail!("{path} has a size of 0: no medium in it? (a card reader without a card)");
    }
    if image_bytes > disk.bytes {
        bail!(
            "the image ({}, {image_bytes} bytes) is larger than {path} ({}, {} bytes): use a bigger stick",
            human_size(image_bytes),
            human_size(disk.bytes),
            disk.bytes
        );
    }
    Ok(())
}

/// The sysfs entry whose `dev` is `device`'s number: names under /dev can
/// be anything, the number is what the kernel knows the disk by.
fn find_node(root: &SystemRoot, device: &BlockDevice) -> Result<Node> {
    let entries = fs::read_dir(&root.class_block)
        .with_context(|| format!("reading {} (is sysfs mounted?)", root.class_block.display()))?;
    for entry in entries.flatten() {
        let dir = entry.path();
        if read_dev(&dir) == Some(device.dev) {
            return Ok(Node { name: entry.file_name().to_string_lossy().into_owned(), dev: device.dev, dir });
        }
    }
    bail!(
        "{} (device {}) has no entry in {}: it is not a disk this kernel lists",
        device.path.display(),
        device.dev,
        root.class_block.display()
    )
}

/// The disk a partition's sysfs directory sits in.
fn parent_name(partition_dir: &Path) -> Option<String> {
    let real = fs::canonicalize(partition_dir).ok()?;
    Some(real.parent()?.file_name()?.to_string_lossy().into_owned())
}

/// `disk`'s partitions: its subdirectories named after it that are
/// partitions (sdb1 in sdb, nvme0n1p1 in nvme0n1).
fn partitions(disk: &Node) -> Result<Vec<Node>> {
    let entries = fs::read_dir(&disk.dir).with_context(|| format!("reading {}", disk.dir.display()))?;
    let mut parts: Vec<Node> = entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let dir = entry.path();
            if !name.starts_with(&disk.name) || !dir.join("partition").exists() {
                return None;
            }
            Some(Node { dev: read_dev(&dir)?, name, dir })
        })
        .collect();
    parts.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(parts)
}

fn read_dev(dir: &Path) -> Option<DevNum> {
    DevNum::parse(&fs::read_to_string(dir.join("dev")).ok()?)
}

fn read_trimmed(path: &Path) -> Result<String> {
    Ok(fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?.trim().to_owned())
}
