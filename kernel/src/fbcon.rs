//! The log on the loader's framebuffer, for machines without a serial port.
//! Text is drawn with `noto-sans-mono-bitmap` (the loader's own font).
//! Instead of scrolling the whole screen (megabytes per line, slow under
//! emulation) the cursor wraps to the top and clears the next line, so the
//! newest line is always just above a blank one. Called only from the
//! console, under its lock.

use core::cell::UnsafeCell;

use bootloader_api::info::{FrameBuffer, FrameBufferInfo, PixelFormat};
use noto_sans_mono_bitmap::{FontWeight, RasterHeight, get_raster, get_raster_width};

const HEIGHT: RasterHeight = RasterHeight::Size16;
const WEIGHT: FontWeight = FontWeight::Regular;
const CHAR_W: usize = get_raster_width(WEIGHT, HEIGHT);
const LINE_H: usize = HEIGHT as usize + 2;
const MARGIN: usize = 4;

struct Screen {
    buf: &'static mut [u8],
    info: FrameBufferInfo,
    row: usize,
}

struct Slot(UnsafeCell<Option<Screen>>);

// SAFETY: only the console touches it, under its lock (see `console`).
unsafe impl Sync for Slot {}

static SCREEN: Slot = Slot(UnsafeCell::new(None));

/// Takes over the framebuffer (boot CPU, before other CPUs run).
pub fn init(fb: &'static mut FrameBuffer) {
    let info = fb.info();
    let buf = fb.buffer_mut();
    buf.fill(0);
    // SAFETY: single-threaded early boot; nobody else uses the slot yet.
    unsafe { *SCREEN.0.get() = Some(Screen { buf, info, row: 0 }) };
}

/// Draws one line of text.
///
/// # Safety
/// The caller holds the console lock (no other CPU draws at the same time).
pub unsafe fn write_line(text: &[u8]) {
    // SAFETY: per the contract, this CPU has exclusive use of the screen.
    let Some(screen) = (unsafe { &mut *SCREEN.0.get() }) else { return };
    let rows = screen.rows();
    let cols = (screen.info.width.saturating_sub(2 * MARGIN) / CHAR_W).max(1);
    let text = core::str::from_utf8(text).unwrap_or("<not UTF-8>").trim_end();
    let mut chars = text.chars();
    loop {
        let y = MARGIN + screen.row * LINE_H;
        screen.clear_row((screen.row + 1) % rows);
        screen.clear_row(screen.row);
        let mut x = MARGIN;
        let mut drawn = 0;
        for c in chars.by_ref() {
            screen.draw_char(c, x, y);
            x += CHAR_W;
            drawn += 1;
            if drawn == cols {
                break;
            }
        }
        screen.row = (screen.row + 1) % rows;
        if drawn < cols || chars.as_str().is_empty() {
            break;
        }
    }
}

impl Screen {
    fn rows(&self) -> usize {
        (self.info.height.saturating_sub(2 * MARGIN) / LINE_H).max(2)
    }

    fn clear_row(&mut self, row: usize) {
        let (stride, bpp) = (self.info.stride, self.info.bytes_per_pixel);
        let y0 = MARGIN + row * LINE_H;
        for y in y0..(y0 + LINE_H).min(self.info.height) {
            let start = y * stride * bpp;
            let end = (start + self.info.width * bpp).min(self.buf.len());
            self.buf[start.min(end)..end].fill(0);
        }
    }

    fn draw_char(&mut self, c: char, x: usize, y: usize) {
        let glyph = get_raster(c, WEIGHT, HEIGHT).or_else(|| get_raster('?', WEIGHT, HEIGHT));
        let Some(glyph) = glyph else { return };
        for (dy, row) in glyph.raster().iter().enumerate() {
            for (dx, &intensity) in row.iter().enumerate() {
                self.put(x + dx, y + dy, intensity);
            }
        }
    }

    fn put(&mut self, x: usize, y: usize, v: u8) {
        if x >= self.info.width || y >= self.info.height {
            return;
        }
        let bpp = self.info.bytes_per_pixel;
        let at = (y * self.info.stride + x) * bpp;
        let px: [u8; 4] = match self.info.pixel_format {
            PixelFormat::Rgb | PixelFormat::Bgr => [v, v, v / 2 + v / 4, 0],
            PixelFormat::U8 => [v, 0, 0, 0],
            _ => [v, v, v, 0],
        };
        if let Some(dst) = self.buf.get_mut(at..at + bpp.min(4)) {
            dst.copy_from_slice(&px[..dst.len()]);
        }
    }
}

/// Whether `(x, y)` holds a lit pixel (tests read the screen back).
pub fn pixel_lit(x: usize, y: usize) -> Option<bool> {
    // SAFETY: a read of bytes the console may be writing; a torn read only
    // misreports one pixel, and tests read after the console is quiet.
    let screen = unsafe { &*SCREEN.0.get() }.as_ref()?;
    let at = (y * screen.info.stride + x) * screen.info.bytes_per_pixel;
    screen.buf.get(at).map(|&b| b != 0)
}

/// The text row the next line goes to, the number of rows, and the row height.
pub fn cursor() -> Option<(usize, usize, usize)> {
    // SAFETY: as in `pixel_lit`.
    let screen = unsafe { &*SCREEN.0.get() }.as_ref()?;
    Some((screen.row, screen.rows(), LINE_H))
}

/// Where text row `row` begins, in pixels.
pub fn row_origin(row: usize) -> (usize, usize) {
    (MARGIN, MARGIN + row * LINE_H)
}
