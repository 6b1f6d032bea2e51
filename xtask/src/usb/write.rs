//! Writing the image and reading it back.

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::num::NonZeroU64;

/// Bytes per write and per sync: small enough that the progress shown is
/// what reached the stick, large enough that the syncs cost little.
pub const CHUNK: usize = 1 << 20;

/// What [`write_and_verify`] is doing when it reports progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Writing,
    Verifying,
}

/// Something to write an image to: the stick, or a regular file in tests.
pub trait Medium: Read + Write + Seek {
    /// Returns once everything written so far is on the medium.
    fn sync(&mut self) -> io::Result<()>;
    /// Forgets cached copies of the first `len` bytes, so that reading them
    /// reads the medium.
    fn forget_cache(&mut self, len: u64) -> io::Result<()>;
}

impl Medium for File {
    fn sync(&mut self) -> io::Result<()> {
        self.sync_all()
    }

    /// POSIX_FADV_DONTNEED rather than reading back with O_DIRECT: O_DIRECT
    /// wants buffers, offsets and lengths aligned to the device's block
    /// size, which the image's last chunk is not. DONTNEED drops only clean,
    /// unmapped pages; after [`Medium::sync`] every page is clean, and no one
    /// maps a device we hold with O_EXCL.
    fn forget_cache(&mut self, len: u64) -> io::Result<()> {
        // `None` means "to the end": also right for an empty image.
        rustix::fs::fadvise(&*self, 0, NonZeroU64::new(len), rustix::fs::Advice::DontNeed).map_err(io::Error::from)
    }
}

#[derive(Debug)]
pub enum WriteError {
    /// An I/O error while `doing` it at byte `offset`.
    Io { doing: &'static str, offset: u64, source: io::Error },
    /// The medium reads back `found` at `offset` where the image has `expected`.
    Mismatch { offset: u64, expected: u8, found: u8 },
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WriteError::Io { doing, offset, source } => write!(f, "{doing} at byte {offset}: {source}"),
            WriteError::Mismatch { offset, expected, found } => write!(
                f,
                "verification failed: byte {offset} ({offset:#x}) reads back as {found:#04x} where the image \
                 has {expected:#04x}; the stick does not keep what is written to it (failing, or smaller than \
                 it claims): use another one"
            ),
        }
    }
}

impl std::error::Error for WriteError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            WriteError::Io { source, .. } => Some(source),
            WriteError::Mismatch { .. } => None,
        }
    }
}

/// Writes the first `len` bytes of `image` to the start of `medium` in
/// [`CHUNK`]s, each synced, then reads them back from the medium (not from
/// the cache) and compares. `progress` hears the bytes done after every
/// chunk of either phase.
pub fn write_and_verify(
    image: &mut (impl Read + Seek),
    len: u64,
    medium: &mut impl Medium,
    mut progress: impl FnMut(Phase, u64),
) -> Result<(), WriteError> {
    let mut buf = vec![0; CHUNK];
    let mut back = vec![0; CHUNK];
    rewind(image, "reading the image")?;
    rewind(medium, "seeking the device")?;
    let mut done = 0;
    while done < len {
        let chunk = &mut buf[..chunk_len(done, len)];
        image.read_exact(chunk).map_err(io_at("reading the image", done))?;
        medium.write_all(chunk).map_err(io_at("writing the device", done))?;
        medium.sync().map_err(io_at("syncing the device", done))?;
        done += chunk.len() as u64;
        progress(Phase::Writing, done);
    }
    medium.forget_cache(len).map_err(io_at("dropping the device's cache", 0))?;
    rewind(image, "reading the image")?;
    rewind(medium, "seeking the device")?;
    let mut done = 0;
    while done < len {
        let n = chunk_len(done, len);
        let (expected, found) = (&mut buf[..n], &mut back[..n]);
        image.read_exact(expected).map_err(io_at("reading the image", done))?;
        medium.read_exact(found).map_err(io_at("reading back the device", done))?;
        if let Some(i) = expected.iter().zip(found.iter()).position(|(a, b)| a != b) {
            return Err(WriteError::Mismatch { offset: done + i as u64, expected: expected[i], found: found[i] });
        }
        done += n as u64;
        progress(Phase::Verifying, done);
    }
    Ok(())
}

fn chunk_len(done: u64, len: u64) -> usize {
    (len - done).min(CHUNK as u64) as usize
}

fn rewind(file: &mut impl Seek, doing: &'static str) -> Result<(), WriteError> {
    file.seek(SeekFrom::Start(0)).map(drop).map_err(io_at(doing, 0))
}

fn io_at(doing: &'static str, offset: u64) -> impl FnOnce(io::Error) -> WriteError {
    move |source| WriteError::Io { doing, offset, source }
}
