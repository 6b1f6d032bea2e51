//! Symbols from an ELF's DWARF, with the `addr2line` crate: an address
//! becomes its function (demangled), file and line, inlined frames included.

use std::fmt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use anyhow::{Result, anyhow};

use crate::backtrace::{SourceFrame, Symbols, no_symbols};
use crate::workspace;

/// An ELF loaded once (the debug info is parsed lazily, per compilation
/// unit, as addresses ask for it).
pub struct Symbolizer {
    loader: addr2line::Loader,
    /// Files below this are shown relative to it.
    root: PathBuf,
}

impl fmt::Debug for Symbolizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Symbolizer").field("root", &self.root).finish_non_exhaustive()
    }
}

impl Symbolizer {
    /// Loads `elf`; paths inside the workspace come out relative to it.
    pub fn load(elf: &Path) -> Result<Symbolizer> {
        Self::load_relative_to(elf, &workspace::root())
    }

    /// Loads `elf`; paths below `root` come out relative to it.
    pub fn load_relative_to(elf: &Path, root: &Path) -> Result<Symbolizer> {
        // addr2line's error is a plain `Box<dyn Error>`, not `Send`.
        let loader = addr2line::Loader::new(elf).map_err(|e| anyhow!("reading symbols from {}: {e}", elf.display()))?;
        Ok(Symbolizer { loader, root: root.to_owned() })
    }

    fn relative(&self, file: &str) -> String {
        match Path::new(file).strip_prefix(&self.root) {
            Ok(rel) => rel.display().to_string(),
            Err(_) => file.to_owned(),
        }
    }
}

impl Symbols for Symbolizer {
    fn lookup(&self, elf_address: u64) -> Vec<SourceFrame> {
        let mut out = Vec::new();
        if let Ok(mut frames) = self.loader.find_frames(elf_address) {
            while let Ok(Some(frame)) = frames.next() {
                let function = frame.function.as_ref().and_then(|f| f.demangle().ok()).map(|n| n.into_owned());
                let (file, line) = match &frame.location {
                    Some(loc) => (loc.file.map(|f| self.relative(f)), loc.line),
                    None => (None, None),
                };
                out.push(SourceFrame { function, file, line });
            }
        }
        // No debug info there (assembly, a stripped object): the symbol
        // table still names the function.
        if out.iter().all(|f| f.function.is_none())
            && let Some(name) = self.loader.find_symbol(elf_address)
        {
            let function = addr2line::demangle_auto(name.into(), None).into_owned();
            match out.first_mut() {
                Some(first) => first.function = Some(function),
                None => out.push(SourceFrame { function: Some(function), file: None, line: None }),
            }
        }
        out
    }
}

/// The symbols of `elf`, or none (with a warning) when they cannot be read:
/// a run must not fail because its backtraces stay raw.
pub fn load_or_warn(elf: &Path) -> Rc<dyn Symbols> {
    match Symbolizer::load(elf) {
        Ok(symbolizer) => Rc::new(symbolizer),
        Err(e) => {
            eprintln!("xtask: warning: backtraces will not be symbolized: {e:#}");
            no_symbols()
        }
    }
}
