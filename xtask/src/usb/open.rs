//! Opening the device for writing, exclusively.

use std::fs::File;
use std::io;
use std::path::Path;

use anyhow::{Context, Result, bail};
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

/// Opens the block device `path` read-write with O_EXCL. On a block device
/// that makes the kernel refuse (EBUSY) while anything has it mounted or
/// held, and refuse mounts while we hold it: the checks read before cannot
/// go stale between asking and writing.
pub fn open_exclusive(path: &Path) -> Result<File> {
    let shown = path.display();
    match rustix::fs::open(path, OFlags::RDWR | OFlags::EXCL | OFlags::CLOEXEC, Mode::empty()) {
        Ok(fd) => Ok(File::from(fd)),
        Err(Errno::BUSY) => bail!(
            "{shown} is busy: something has it open exclusively (a mount, swap, device-mapper, or another \
             program writing it); close that and try again"
        ),
        Err(Errno::ACCESS | Errno::PERM) => bail!(
            "no permission to write {shown}: run as root, or give yourself access until the stick is \
             unplugged: `sudo setfacl -m u:$USER:rw {shown}`"
        ),
        Err(Errno::ROFS) => bail!("{shown} is read-only: is its write-protect switch on?"),
        Err(Errno::NOMEDIUM) => bail!("{shown} has no medium: insert the card or stick"),
        Err(e) => Err(io::Error::from(e)).with_context(|| format!("opening {shown} for writing")),
    }
}
