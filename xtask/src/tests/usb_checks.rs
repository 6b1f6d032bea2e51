//! `cargo xtask usb`'s device checks, against fake sysfs and /proc trees
//! built the way the kernel lays them out: each disk's directory under
//! devices/ with its partitions inside, a symlink per disk and partition in
//! class/block.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use crate::usb::checks::{BlockDevice, DevNum, Disk, SystemRoot, block_device, check_disk, check_fits};

const SWAPS_HEADING: &str = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n";

/// A 16 GB stick.
const STICK_SECTORS: u64 = 31_266_816;

struct FakeSystem {
    dir: PathBuf,
}

impl FakeSystem {
    /// A machine with a mounted internal disk (vda) and an unused stick
    /// (sdb, 8:16) with one partition (sdb1, 8:17).
    fn new(name: &str) -> FakeSystem {
        let dir = temp_dir(&format!("sys-{name}"));
        fs::create_dir_all(dir.join("sys/class/block")).unwrap();
        fs::create_dir_all(dir.join("proc/self")).unwrap();
        fs::write(
            dir.join("proc/self/mountinfo"),
            "22 26 0:21 / /proc rw,nosuid - proc proc rw\n\
             26 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw\n",
        )
        .unwrap();
        fs::write(dir.join("proc/swaps"), format!("{SWAPS_HEADING}/dev/vda2  partition\t1048572\t0\t-2\n")).unwrap();
        let sys = FakeSystem { dir };
        sys.disk("vda", "254:0", "0", 536_870_912);
        sys.partition("vda", "vda1", "254:1");
        sys.partition("vda", "vda2", "254:2");
        sys.disk("sdb", "8:16", "1", STICK_SECTORS);
        sys.partition("sdb", "sdb1", "8:17");
        sys
    }

    fn disk(&self, name: &str, dev: &str, removable: &str, sectors: u64) {
        let dir = self.dir.join("sys/devices").join(name);
        fs::create_dir_all(dir.join("device")).unwrap();
        fs::create_dir_all(dir.join("holders")).unwrap();
        fs::write(dir.join("dev"), format!("{dev}\n")).unwrap();
        fs::write(dir.join("removable"), format!("{removable}\n")).unwrap();
        fs::write(dir.join("size"), format!("{sectors}\n")).unwrap();
        // sysfs pads SCSI vendor and model with blanks.
        fs::write(dir.join("device/vendor"), "SanDisk \n").unwrap();
        fs::write(dir.join("device/model"), "Cruzer Blade    \n").unwrap();
        symlink(&dir, self.dir.join("sys/class/block").join(name)).unwrap();
    }

    fn partition(&self, disk: &str, name: &str, dev: &str) {
        let dir = self.dir.join("sys/devices").join(disk).join(name);
        fs::create_dir_all(dir.join("holders")).unwrap();
        fs::write(dir.join("dev"), format!("{dev}\n")).unwrap();
        fs::write(dir.join("partition"), "1\n").unwrap();
        fs::write(dir.join("size"), "2048\n").unwrap();
        symlink(&dir, self.dir.join("sys/class/block").join(name)).unwrap();
    }

    fn sysfs(&self, relative: &str) -> PathBuf {
        self.dir.join("sys/devices").join(relative)
    }

    fn append(&self, file: &str, line: &str) {
        let path = self.dir.join(file);
        let mut text = fs::read_to_string(&path).unwrap();
        text.push_str(line);
        text.push('\n');
        fs::write(path, text).unwrap();
    }

    fn check(&self, path: &str, dev: &str) -> Result<Disk, String> {
        let device = BlockDevice { given: path.into(), path: path.into(), dev: DevNum::parse(dev).unwrap() };
        check_disk(&SystemRoot::under(&self.dir), &device).map_err(|e| format!("{e:#}"))
    }

    fn refusal(&self, path: &str, dev: &str) -> String {
        self.check(path, dev).expect_err("should be refused")
    }
}

impl Drop for FakeSystem {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("xtask-usb-test-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

// ---- what passes ----

#[test]
fn an_unused_removable_disk_passes_with_its_description() {
    let sys = FakeSystem::new("pass");
    let disk = sys.check("/dev/sdb", "8:16").unwrap();
    assert_eq!(disk.name, "sdb");
    assert_eq!(disk.path, Path::new("/dev/sdb"));
    assert_eq!(disk.vendor.as_deref(), Some("SanDisk"));
    assert_eq!(disk.model.as_deref(), Some("Cruzer Blade"));
    assert_eq!(disk.bytes, STICK_SECTORS * 512, "sysfs counts 512-byte sectors");
}

#[test]
fn the_disk_is_found_by_number_not_by_name() {
    // udev may name the node anything; the kernel knows the disk by 8:16.
    let sys = FakeSystem::new("by-number");
    assert_eq!(sys.check("/dev/my-stick", "8:16").unwrap().name, "sdb");
    let msg = sys.refusal("/dev/sdz", "8:240");
    assert!(msg.contains("/dev/sdz (device 8:240) has no entry in") && msg.contains("sys/class/block"), "{msg}");
}

#[test]
fn missing_vendor_and_model_are_none() {
    let sys = FakeSystem::new("no-model");
    fs::remove_file(sys.sysfs("sdb/device/vendor")).unwrap();
    fs::write(sys.sysfs("sdb/device/model"), "  \n").unwrap();
    let disk = sys.check("/dev/sdb", "8:16").unwrap();
    assert_eq!((disk.vendor, disk.model), (None, None));
}

// ---- what is refused ----

#[test]
fn a_partition_is_refused_naming_its_disk() {
    let sys = FakeSystem::new("partition");
    let msg = sys.refusal("/dev/sdb1", "8:17");
    assert!(msg.contains("/dev/sdb1 is a partition of /dev/sdb: name the whole disk, /dev/sdb"), "{msg}");
}

#[test]
fn a_fixed_disk_is_refused_naming_the_file_read() {
    let sys = FakeSystem::new("fixed");
    let msg = sys.refusal("/dev/vda", "254:0");
    assert!(msg.contains("/dev/vda is not a removable disk"), "{msg}");
    assert!(msg.contains("sys/class/block/vda/removable reads `0`"), "{msg}");
}

#[test]
fn an_unreadable_removable_flag_is_a_refusal() {
    let sys = FakeSystem::new("no-flag");
    fs::remove_file(sys.sysfs("sdb/removable")).unwrap();
    let msg = sys.refusal("/dev/sdb", "8:16");
    assert!(msg.contains("cannot tell whether /dev/sdb is removable"), "{msg}");
}

#[test]
fn a_mounted_partition_is_refused_by_its_number() {
    let sys = FakeSystem::new("mounted");
    // The kernel escapes the blank in the mount point; the message shows it.
    sys.append("proc/self/mountinfo", "40 26 8:17 / /media/u/USB\\040STICK rw,nosuid shared:5 - vfat /dev/sdb1 rw");
    let msg = sys.refusal("/dev/sdb", "8:16");
    assert!(msg.contains("/dev/sdb is in use: /dev/sdb1 is mounted on /media/u/USB STICK"), "{msg}");
    assert!(msg.contains("`sudo umount /dev/sdb1`"), "{msg}");
}

#[test]
fn a_mount_with_an_anonymous_number_is_refused_by_its_source() {
    // btrfs shows 0:N in mountinfo; only the source names the partition.
    let sys = FakeSystem::new("btrfs");
    sys.append("proc/self/mountinfo", "41 26 0:52 / /mnt rw - btrfs /dev/sdb1 rw,space_cache=v2");
    let msg = sys.refusal("/dev/sdb", "8:16");
    assert!(msg.contains("/dev/sdb1 is mounted on /mnt"), "{msg}");
}

#[test]
fn a_mounted_whole_disk_is_refused() {
    // A "superfloppy": a file system on the disk itself, no partition table.
    let sys = FakeSystem::new("superfloppy");
    sys.append("proc/self/mountinfo", "42 26 8:16 / /media/u/STICK rw - vfat /dev/sdb rw");
    sys.append("proc/self/mountinfo", "43 26 8:16 /sub /srv/bind rw - vfat /dev/sdb rw");
    let msg = sys.refusal("/dev/sdb", "8:16");
    assert!(msg.contains("/dev/sdb is mounted on /media/u/STICK; /dev/sdb is mounted on /srv/bind"), "{msg}");
    assert!(msg.contains("`sudo umount /dev/sdb`"), "{msg}");
}

#[test]
fn a_swap_partition_is_refused() {
    let sys = FakeSystem::new("swap");
    sys.append("proc/swaps", "/dev/sdb1                               partition\t1048572\t0\t-3");
    let msg = sys.refusal("/dev/sdb", "8:16");
    assert!(msg.contains("/dev/sdb1 is a swap area") && msg.contains("`sudo swapoff /dev/sdb1`"), "{msg}");
}

#[test]
fn a_disk_held_by_device_mapper_is_refused() {
    // An open LUKS volume on sdb1, mounted only as /dev/mapper/... (dm-0).
    let sys = FakeSystem::new("held");
    fs::create_dir_all(sys.sysfs("sdb/sdb1/holders/dm-0")).unwrap();
    let msg = sys.refusal("/dev/sdb", "8:16");
    assert!(msg.contains("/dev/sdb is in use: /dev/sdb1 is held by dm-0"), "{msg}");
}

#[test]
fn another_disk_in_use_does_not_matter() {
    // vda1 is mounted and vda2 is swap in every fake; sdb passes anyway.
    let sys = FakeSystem::new("others");
    assert!(sys.check("/dev/sdb", "8:16").is_ok());
    // ... and the same rules do see vda's use once it is removable.
    fs::write(sys.sysfs("vda/removable"), "1\n").unwrap();
    let msg = sys.refusal("/dev/vda", "254:0");
    assert!(msg.contains("/dev/vda1 is mounted on /"), "{msg}");
}

#[test]
fn an_image_larger_than_the_disk_is_refused() {
    let sys = FakeSystem::new("fits");
    let disk = sys.check("/dev/sdb", "8:16").unwrap();
    assert!(check_fits(&disk, disk.bytes).is_ok(), "an image may fill the stick");
    let msg = format!("{:#}", check_fits(&disk, disk.bytes + 1).unwrap_err());
    assert!(msg.contains("is larger than /dev/sdb (16.0 GB, 16008609792 bytes)"), "{msg}");
    let empty = Disk { bytes: 0, ..disk };
    let msg = format!("{:#}", check_fits(&empty, 1).unwrap_err());
    assert!(msg.contains("no medium"), "{msg}");
}

// ---- the device file itself ----

#[test]
fn a_missing_device_is_refused() {
    let msg = format!("{:#}", block_device(Path::new("/dev/xtask-no-such-disk")).unwrap_err());
    assert!(msg.contains("/dev/xtask-no-such-disk does not exist") && msg.contains("lsblk"), "{msg}");
}

#[test]
fn a_file_that_is_not_a_block_device_is_refused() {
    let dir = temp_dir("not-block");
    let file = dir.join("disk.img");
    fs::write(&file, b"not a disk").unwrap();
    let link = dir.join("usb-stick");
    symlink(&file, &link).unwrap();
    for (path, shown) in [(&file, file.display().to_string()), (&link, format!("(it is {})", file.display()))] {
        let msg = format!("{:#}", block_device(path).unwrap_err());
        assert!(msg.contains("is not a block device") && msg.contains(&shown), "{msg}");
    }
    // A character device is not a block device either.
    let msg = format!("{:#}", block_device(Path::new("/dev/null")).unwrap_err());
    assert!(msg.contains("/dev/null is not a block device"), "{msg}");
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn a_real_block_device_has_the_number_sysfs_gives() {
    // Whatever block devices this host has (none in some containers).
    let Ok(entries) = fs::read_dir("/sys/class/block") else { return };
    for entry in entries.flatten() {
        let node = Path::new("/dev").join(entry.file_name());
        let Ok(sysfs_dev) = fs::read_to_string(entry.path().join("dev")) else { continue };
        if let Ok(device) = block_device(&node) {
            assert_eq!(Some(device.dev), DevNum::parse(&sysfs_dev), "{}", node.display());
        }
    }
}

#[test]
fn device_numbers() {
    assert_eq!(DevNum::parse("8:16\n"), Some(DevNum { major: 8, minor: 16 }));
    assert_eq!(DevNum::parse("259:0").map(|d| d.to_string()).as_deref(), Some("259:0"));
    assert_eq!(DevNum::parse("8"), None);
    assert_eq!(DevNum::parse("a:b"), None);
}
