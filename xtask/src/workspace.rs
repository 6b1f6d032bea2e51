//! Where things are: the workspace, cargo's target directory, and this run's
//! output directory.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use rustix::fs::{FlockOperation, flock};

use anyhow::{Context, Result};

/// How many old run directories to keep under target/xtask: their logs are
/// worth a look after the fact, their images are not worth gigabytes.
const RUNS_KEPT: usize = 10;

/// Each run holds a lock on this file in its directory while it lives, so
/// that another run's pruning leaves a long run (the matrix) alone.
const IN_USE: &str = ".in-use";

/// The locks of this process's run directories, held until it exits.
static HELD: Mutex<Vec<File>> = Mutex::new(Vec::new());

/// The workspace root (xtask lives one level below it).
pub fn root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_owned()
}

/// Cargo's target directory, honouring `CARGO_TARGET_DIR`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => root().join(dir),
        None => root().join("target"),
    }
}

/// A directory of its own for this invocation, `target/xtask/<UTC time>-<pid>`,
/// so that concurrent runs never share files.
pub fn new_run_dir() -> Result<PathBuf> {
    let base = target_dir().join("xtask");
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let dir = base.join(format!("{}-{}", timestamp(now), std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    HELD.lock().unwrap_or_else(|e| e.into_inner()).push(hold(&dir)?);
    prune(&base);
    Ok(dir)
}

/// Marks `dir` as in use for as long as the returned lock is open.
pub fn hold(dir: &Path) -> Result<File> {
    let path = dir.join(IN_USE);
    let lock = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    flock(&lock, FlockOperation::LockShared).with_context(|| format!("locking {}", path.display()))?;
    Ok(lock)
}

/// Whether a live run holds `dir` (its lock cannot be taken exclusively).
fn in_use(dir: &Path) -> bool {
    File::open(dir.join(IN_USE)).is_ok_and(|f| flock(&f, FlockOperation::NonBlockingLockExclusive).is_err())
}

/// Removes all but the newest [`RUNS_KEPT`] run directories, except those a
/// live run holds. Best effort: another run may be removing the same ones.
pub fn prune(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    let mut runs: Vec<PathBuf> = entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect();
    // Names start with a zero-padded UTC time, so they sort by age.
    runs.sort();
    let excess = runs.len().saturating_sub(RUNS_KEPT);
    for old in runs[..excess].iter().filter(|d| !in_use(d)) {
        let _ = std::fs::remove_dir_all(old);
    }
}

/// `YYYYMMDD-HHMMSS` (UTC) for seconds since the epoch.
pub fn timestamp(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}{month:02}{day:02}-{:02}{:02}{:02}", rem / 3600, rem / 60 % 60, rem % 60)
}

/// `path` relative to the current directory when it is below it: shorter
/// to read and to paste.
pub fn display(path: &Path) -> String {
    let rel = std::env::current_dir().ok().and_then(|cwd| path.strip_prefix(cwd).ok().map(Path::to_owned));
    rel.unwrap_or_else(|| path.to_owned()).display().to_string()
}
