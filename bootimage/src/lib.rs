//! Turns a kernel ELF into bootable BIOS (MBR) and UEFI (GPT) disk images.
//!
//! Boot parameters travel as the loader's *ramdisk*: a small `key=value` text
//! file that the loader copies into memory and announces in `BootInfo`. Unlike
//! QEMU's `-append` or fw_cfg it works the same under SeaBIOS, OVMF, Bochs and
//! on hardware booted from a USB stick.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use bootloader::{BootConfig, DiskImageBuilder};

/// Firmware an image is made for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Firmware {
    /// Legacy BIOS: an MBR disk image (SeaBIOS, Bochs, CSM).
    Bios,
    /// UEFI: a GPT disk image with an EFI system partition (OVMF).
    Uefi,
}

impl Firmware {
    pub const ALL: [Firmware; 2] = [Firmware::Bios, Firmware::Uefi];

    pub fn name(self) -> &'static str {
        match self {
            Firmware::Bios => "bios",
            Firmware::Uefi => "uefi",
        }
    }
}

impl std::str::FromStr for Firmware {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "bios" => Ok(Firmware::Bios),
            "uefi" => Ok(Firmware::Uefi),
            other => bail!("unknown firmware `{other}` (expected `bios` or `uefi`)"),
        }
    }
}

/// Boot parameters, in the order given, as `key=value` lines.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BootParams(Vec<(String, String)>);

impl BootParams {
    /// Parses `key=value` words such as `ktest.run=boot::heap`.
    pub fn parse<'a>(words: impl IntoIterator<Item = &'a str>) -> Result<Self> {
        let mut params = BootParams::default();
        for word in words {
            let Some((key, value)) = word.split_once('=') else {
                bail!("boot parameter `{word}` is not of the form key=value");
            };
            params.set(key, value)?;
        }
        Ok(params)
    }

    /// Sets `key` to `value`, replacing an earlier value.
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        if key.is_empty() || key.contains(['=', '\n', ' ']) {
            bail!("boot parameter name `{key}` must be non-empty, without `=`, spaces or newlines");
        }
        if value.contains('\n') {
            bail!("boot parameter `{key}` has a newline in its value");
        }
        match self.0.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value.to_owned(),
            None => self.0.push((key.to_owned(), value.to_owned())),
        }
        Ok(())
    }

    /// The `(key, value)` pairs, in order.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// The ramdisk file's contents. Never empty: both loaders fail to load
    /// an empty ramdisk (UEFI: "Failed to allocate memory for the file";
    /// BIOS: a silent hang), so a comment line always leads.
    pub fn to_file_contents(&self) -> String {
        let mut text = String::from("# boot parameters: one key and value per line\n");
        for (k, v) in &self.0 {
            text.push_str(&format!("{k}={v}\n"));
        }
        text
    }
}

/// Builds the disk image for `firmware` from `kernel`, with `params` as the
/// ramdisk, writing it (and the ramdisk) into `out_dir`. Returns the image path.
pub fn build_image(kernel: &Path, firmware: Firmware, params: &BootParams, out_dir: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let ramdisk = out_dir.join("bootparams.txt");
    std::fs::write(&ramdisk, params.to_file_contents()).with_context(|| format!("writing {}", ramdisk.display()))?;

    let mut builder = DiskImageBuilder::new(kernel.to_path_buf());
    builder.set_ramdisk(ramdisk);
    builder.set_boot_config(&quiet_loader());
    let image = out_dir.join(format!("{}.img", firmware.name()));
    match firmware {
        Firmware::Bios => builder.create_bios_image(&image),
        Firmware::Uefi => builder.create_uefi_image(&image),
    }
    .with_context(|| format!("building the {} image of {}", firmware.name(), kernel.display()))?;
    Ok(image)
}

/// The loader's own log costs ~0.3 s per boot under QEMU and clutters the
/// serial protocol the test runner parses, so it is off.
fn quiet_loader() -> BootConfig {
    let mut config = BootConfig::default();
    config.serial_logging = false;
    config.frame_buffer_logging = false;
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_round_trip_and_override() {
        let mut p = BootParams::parse(["a=1", "b=x y"]).unwrap();
        p.set("a", "2").unwrap();
        assert!(p.to_file_contents().ends_with("\na=2\nb=x y\n"));
        assert_eq!(p.get("b"), Some("x y"));
    }

    #[test]
    fn ramdisk_is_never_empty() {
        let text = BootParams::default().to_file_contents();
        assert!(!text.is_empty() && text.lines().all(|l| l.starts_with('#')));
    }

    #[test]
    fn params_reject_malformed_words() {
        assert!(BootParams::parse(["novalue"]).is_err());
        assert!(BootParams::parse(["=v"]).is_err());
        assert!(BootParams::parse(["a b=v"]).is_err());
    }

    #[test]
    fn firmware_names_parse() {
        assert_eq!("bios".parse::<Firmware>().unwrap(), Firmware::Bios);
        assert!("coreboot".parse::<Firmware>().is_err());
    }
}
