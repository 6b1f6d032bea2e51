//! `cargo xtask usb`'s write and read-back, on regular files and in memory.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Cursor, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use crate::usb::write::{CHUNK, Medium, Phase, WriteError, write_and_verify};

fn temp_file(name: &str, contents: &[u8]) -> PathBuf {
    let path = std::env::temp_dir().join(format!("xtask-usb-write-{}-{name}", std::process::id()));
    fs::write(&path, contents).unwrap();
    path
}

/// Two and a half chunks: a short last chunk, and no two chunks alike.
fn image_bytes() -> Vec<u8> {
    (0..CHUNK * 5 / 2).map(|i| (i % 251) as u8).collect()
}

fn open_rw(path: &PathBuf) -> File {
    OpenOptions::new().read(true).write(true).open(path).unwrap()
}

#[test]
fn the_image_is_written_synced_and_verified_chunk_by_chunk() {
    let image = image_bytes();
    let len = image.len() as u64;
    let image_path = temp_file("image", &image);
    // The stick is larger than the image, and what lies past the image stays.
    let stick_path = temp_file("stick", &vec![0xaa; CHUNK * 4]);
    let mut steps = Vec::new();
    write_and_verify(&mut File::open(&image_path).unwrap(), len, &mut open_rw(&stick_path), |phase, done| {
        steps.push((phase, done))
    })
    .unwrap();
    let stick = fs::read(&stick_path).unwrap();
    assert!(stick[..image.len()] == image[..], "the image is on the stick");
    assert!(stick[image.len()..].iter().all(|&b| b == 0xaa), "nothing past the image is touched");
    let c = CHUNK as u64;
    let expected: Vec<(Phase, u64)> = [Phase::Writing, Phase::Verifying]
        .into_iter()
        .flat_map(|phase| [c, 2 * c, len].map(|done| (phase, done)))
        .collect();
    assert_eq!(steps, expected);
    let _ = fs::remove_file(image_path);
    let _ = fs::remove_file(stick_path);
}

/// A stick that loses bytes: what the cache held was right, the medium is not.
struct Lossy {
    file: File,
    lost: Vec<u64>,
    syncs: usize,
}

impl Read for Lossy {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.file.read(buf)
    }
}

impl Write for Lossy {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Seek for Lossy {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.file.seek(pos)
    }
}

impl Medium for Lossy {
    fn sync(&mut self) -> io::Result<()> {
        self.syncs += 1;
        self.file.sync()
    }
    fn forget_cache(&mut self, len: u64) -> io::Result<()> {
        for &offset in &self.lost {
            let mut byte = [0];
            self.file.read_exact_at(&mut byte, offset)?;
            self.file.write_all_at(&[!byte[0]], offset)?;
        }
        self.file.forget_cache(len)
    }
}

#[test]
fn a_corrupt_read_back_names_the_first_differing_byte() {
    let image = image_bytes();
    let image_path = temp_file("image-lossy", &image);
    let stick_path = temp_file("stick-lossy", &[]);
    let first = 2 * CHUNK as u64 + 12_345;
    let mut stick = Lossy { file: open_rw(&stick_path), lost: vec![first + 7, first], syncs: 0 };
    let mut verified = 0;
    let err = write_and_verify(&mut File::open(&image_path).unwrap(), image.len() as u64, &mut stick, |phase, done| {
        if phase == Phase::Verifying {
            verified = done;
        }
    })
    .unwrap_err();
    let msg = err.to_string();
    let WriteError::Mismatch { offset, expected, found } = err else { panic!("expected a mismatch, got {err}") };
    assert_eq!(offset, first);
    assert_eq!((expected, found), (image[first as usize], !image[first as usize]));
    assert_eq!(verified, 2 * CHUNK as u64, "the chunks before the bad one were verified");
    assert_eq!(stick.syncs, 3, "one sync per chunk written");
    assert!(
        msg.contains(&format!("byte {first} ({first:#x}) reads back as")) && msg.contains("use another one"),
        "{msg}"
    );
    let _ = fs::remove_file(image_path);
    let _ = fs::remove_file(stick_path);
}

/// A medium of fixed size, in memory.
struct Fixed(Cursor<Box<[u8]>>);

impl Read for Fixed {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl Write for Fixed {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for Fixed {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.0.seek(pos)
    }
}

impl Medium for Fixed {
    fn sync(&mut self) -> io::Result<()> {
        Ok(())
    }
    fn forget_cache(&mut self, _len: u64) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_medium_that_ends_early_fails_where_it_ends() {
    let image = image_bytes();
    let mut medium = Fixed(Cursor::new(vec![0; CHUNK + 10].into_boxed_slice()));
    let err = write_and_verify(&mut Cursor::new(&image), image.len() as u64, &mut medium, |_, _| {}).unwrap_err();
    let WriteError::Io { doing, offset, .. } = &err else { panic!("expected an I/O error, got {err}") };
    assert_eq!((*doing, *offset), ("writing the device", CHUNK as u64));
    assert!(err.to_string().starts_with(&format!("writing the device at byte {CHUNK}: ")), "{err}");
}

#[test]
fn an_image_shorter_than_announced_is_an_error_not_a_short_write() {
    let image = vec![7; 100];
    let mut medium = Fixed(Cursor::new(vec![0; 1000].into_boxed_slice()));
    let err = write_and_verify(&mut Cursor::new(&image), 200, &mut medium, |_, _| {}).unwrap_err();
    assert!(err.to_string().starts_with("reading the image at byte 0"), "{err}");
}
