//! Images of known text for the text-recognition tests and benchmarks: lines rendered with a
//! CJK font (WenQuanYi Zen Hei, which `scripts/browser-up` and `scripts/ocr-up` install), clean
//! or scan-like (turned a few degrees, speckled, at 150 DPI), as PNG, BMP or an image-only PDF.

use ab_glyph::{Font, FontVec, PxScale, ScaleFont};

use crate::samples::Rng;

/// Natural sentences to render, English and Chinese by turns (a recogniser's language model
/// expects words, not word salad): the OCR tests and `lore bench parse --ocr-pages` read them.
pub const TEXTS: &[&[&str]] = &[
    &[
        "Quarterly maintenance of the cooling towers is due in March.",
        "Inspectors must record the water temperature, the pump pressure",
        "and any corrosion found on the intake valves before signing off.",
    ],
    &[
        "合同双方应当按照约定全面履行自己的义务。",
        "当事人一方不履行合同义务或者履行合同义务不符合约定的，",
        "应当承担继续履行、采取补救措施或者赔偿损失等违约责任。",
    ],
    &[
        "The committee approved the budget for the new library wing,",
        "including shelving for twelve thousand volumes and a reading room",
        "that stays open until ten in the evening during examinations.",
    ],
    &[
        "本公司将于下月起调整员工差旅报销标准，",
        "住宿费用按照城市等级分别核定，交通费用凭票据实报销，",
        "请各部门负责人及时传达并监督执行。",
    ],
];

/// Where the CJK font is looked for, first found wins.
pub const FONT_PATHS: &[&str] =
    &["/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"];

/// The CJK font, or `None` when none of [`FONT_PATHS`] is installed.
pub fn font() -> Option<FontVec> {
    FONT_PATHS.iter().find_map(|p| std::fs::read(p).ok()).and_then(|data| FontVec::try_from_vec_and_index(data, 0).ok())
}

/// Whether text recognition can be tested here (Tesseract with its languages, and the font).
/// With `LORE_REQUIRE_OCR=1` (as `scripts/test` sets) a missing part fails the test instead of
/// skipping it.
pub fn ocr_ready() -> bool {
    let missing = match (crate::ocr::engine(), font()) {
        (Err(e), _) => e.message,
        (_, None) => format!("no CJK font at {FONT_PATHS:?}"),
        _ => return true,
    };
    assert!(std::env::var("LORE_REQUIRE_OCR").as_deref() != Ok("1"), "LORE_REQUIRE_OCR=1: {missing}");
    eprintln!("skipped: {missing} (scripts/ocr-up installs it)");
    false
}

/// An 8-bit grey image, 0 black and 255 white.
#[derive(Clone)]
pub struct Gray {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<u8>,
    pub dpi: u32,
}

/// How a page is made to look scanned.
#[derive(Debug, Clone, Copy)]
pub struct ScanLike {
    pub degrees: f32,
    /// The share of pixels flipped to a random grey (speckle).
    pub noise: f64,
    pub seed: u64,
}

/// `lines` set in black on white at `points` size, as a page of `dpi` dots per inch with an inch
/// of margin; a line wider than the page is wrapped (at spaces, or anywhere in CJK text).
pub fn render(font: &FontVec, lines: &[&str], points: f32, dpi: u32) -> Gray {
    let px = points * dpi as f32 / 72.0;
    let scaled = font.as_scaled(PxScale::from(px));
    let margin = dpi as f32 * 0.75;
    let width = (dpi as f32 * 8.27) as usize;
    let text_width = width as f32 - 2.0 * margin;
    let advance = |s: &str| s.chars().map(|c| scaled.h_advance(font.glyph_id(c))).sum::<f32>();
    let mut wrapped: Vec<String> = Vec::new();
    for line in lines {
        let mut current = String::new();
        for piece in pieces(line) {
            if !current.is_empty() && advance(&format!("{current}{piece}")) > text_width {
                wrapped.push(current.trim_end().to_string());
                current = piece.trim_start().to_string();
            } else {
                current.push_str(&piece);
            }
        }
        wrapped.push(current);
    }
    let line_height = px * 1.6;
    let height = (2.0 * margin + line_height * wrapped.len() as f32) as usize;
    let mut image = Gray { width, height, pixels: vec![255; width * height], dpi };
    for (i, line) in wrapped.iter().enumerate() {
        let baseline = margin + line_height * i as f32 + scaled.ascent();
        image.draw(font, line, margin, baseline, px);
    }
    image
}

/// A title line, then `rows` set as a table in aligned columns (each as wide as its widest cell
/// and two ems), with no ruling lines: only the text's geometry says it is a table.
pub fn render_table(font: &FontVec, title: &str, rows: &[Vec<String>], points: f32, dpi: u32) -> Gray {
    let px = points * dpi as f32 / 72.0;
    let scaled = font.as_scaled(PxScale::from(px));
    let advance = |s: &str| s.chars().map(|c| scaled.h_advance(font.glyph_id(c))).sum::<f32>();
    let margin = dpi as f32 * 0.75;
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut x = vec![margin];
    for c in 0..columns {
        let widest = rows.iter().filter_map(|r| r.get(c)).map(|t| advance(t)).fold(0.0, f32::max);
        let last = x[x.len() - 1];
        x.push(last + widest + 2.0 * px);
    }
    let width = (x[columns].max(dpi as f32 * 8.27) + margin) as usize;
    let line_height = px * 1.6;
    let height = (2.0 * margin + line_height * (rows.len() + 2) as f32) as usize;
    let mut image = Gray { width, height, pixels: vec![255; width * height], dpi };
    image.draw(font, title, margin, margin + scaled.ascent(), px);
    for (r, row) in rows.iter().enumerate() {
        let baseline = margin + line_height * (r + 2) as f32 + scaled.ascent();
        for (c, cell) in row.iter().enumerate() {
            image.draw(font, cell, x[c], baseline, px);
        }
    }
    image
}

/// Words with the space before them, and CJK characters one by one: where a line may break.
fn pieces(line: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for c in line.chars() {
        let cjk = (c as u32) >= 0x2E80;
        match out.last_mut() {
            Some(last) if !cjk && c != ' ' && last.chars().last().is_none_or(|l| (l as u32) < 0x2E80) => last.push(c),
            _ => out.push(c.to_string()),
        }
    }
    out
}

impl Gray {
    /// Sets `text` in black from `x` on the `baseline`, at `px` pixels an em.
    fn draw(&mut self, font: &FontVec, text: &str, mut x: f32, baseline: f32, px: f32) {
        let scaled = font.as_scaled(PxScale::from(px));
        let (width, height) = (self.width as i64, self.height as i64);
        for c in text.chars() {
            let id = font.glyph_id(c);
            let glyph = id.with_scale_and_position(px, ab_glyph::point(x, baseline));
            x += scaled.h_advance(id);
            let Some(outline) = font.outline_glyph(glyph) else { continue };
            let bounds = outline.px_bounds();
            outline.draw(|gx, gy, coverage| {
                let (x, y) = (bounds.min.x as i64 + gx as i64, bounds.min.y as i64 + gy as i64);
                if (0..width).contains(&x) && (0..height).contains(&y) {
                    let p = &mut self.pixels[y as usize * self.width + x as usize];
                    *p = (*p as f32 * (1.0 - coverage.clamp(0.0, 1.0))) as u8;
                }
            });
        }
    }

    /// The page as a scanner might give it: at `dpi` (resampled), turned, speckled.
    pub fn scanned(&self, dpi: u32, look: ScanLike) -> Gray {
        let scale = dpi as f32 / self.dpi as f32;
        let (width, height) = ((self.width as f32 * scale) as usize, (self.height as f32 * scale) as usize);
        let (sin, cos) = look.degrees.to_radians().sin_cos();
        let (cx, cy) = (width as f32 / 2.0, height as f32 / 2.0);
        let mut rng = Rng(look.seed | 1);
        let mut pixels = vec![255u8; width * height];
        for y in 0..height {
            for x in 0..width {
                // The source point this pixel shows, turned about the centre and scaled back.
                let (dx, dy) = (x as f32 - cx, y as f32 - cy);
                let sx = (cos * dx + sin * dy + cx) / scale;
                let sy = (-sin * dx + cos * dy + cy) / scale;
                let mut v = self.sample(sx, sy);
                if rng.unit() < look.noise {
                    v = rng.below(256) as f32;
                }
                pixels[y * width + x] = v as u8;
            }
        }
        Gray { width, height, pixels, dpi }
    }

    /// Bilinear sample; white outside the page.
    fn sample(&self, x: f32, y: f32) -> f32 {
        let at = |x: i64, y: i64| {
            if x < 0 || y < 0 || x >= self.width as i64 || y >= self.height as i64 {
                255.0
            } else {
                self.pixels[y as usize * self.width + x as usize] as f32
            }
        };
        let (x0, y0) = (x.floor(), y.floor());
        let (fx, fy) = (x - x0, y - y0);
        let (x0, y0) = (x0 as i64, y0 as i64);
        let top = at(x0, y0) * (1.0 - fx) + at(x0 + 1, y0) * fx;
        let bottom = at(x0, y0 + 1) * (1.0 - fx) + at(x0 + 1, y0 + 1) * fx;
        top * (1.0 - fy) + bottom * fy
    }

    pub fn png(&self) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut encoder = png::Encoder::new(&mut out, self.width as u32, self.height as u32);
            encoder.set_color(png::ColorType::Grayscale);
            encoder.set_depth(png::BitDepth::Eight);
            let per_metre = (self.dpi as f64 / 0.0254).round() as u32;
            encoder.set_pixel_dims(Some(png::PixelDimensions {
                xppu: per_metre,
                yppu: per_metre,
                unit: png::Unit::Meter,
            }));
            let mut writer = encoder.write_header().expect("png header");
            writer.write_image_data(&self.pixels).expect("png data");
        }
        out
    }

    /// Bars of ink on white, with no font needed: the fuzzer's seed images.
    pub fn bars(width: usize, height: usize) -> Gray {
        let pixels = (0..width * height)
            .map(|i| if ((i % width) / 4).is_multiple_of(3) && (i / width) % 8 < 6 { 0 } else { 255 })
            .collect();
        Gray { width, height, pixels, dpi: 72 }
    }

    /// An uncompressed 8-bit grey TIFF (little-endian, one strip).
    pub fn tiff(&self) -> Vec<u8> {
        let entries: [(u16, u16, u32); 9] = [
            (256, 4, self.width as u32),        // ImageWidth
            (257, 4, self.height as u32),       // ImageLength
            (258, 3, 8),                        // BitsPerSample
            (259, 3, 1),                        // Compression: none
            (262, 3, 1),                        // PhotometricInterpretation: black is zero
            (273, 4, 8 + 2 + 9 * 12 + 4),       // StripOffsets: just after the directory
            (277, 3, 1),                        // SamplesPerPixel
            (278, 4, self.height as u32),       // RowsPerStrip
            (279, 4, self.pixels.len() as u32), // StripByteCounts
        ];
        let mut out = b"II*\0".to_vec();
        out.extend(8u32.to_le_bytes());
        out.extend((entries.len() as u16).to_le_bytes());
        for (tag, kind, value) in entries {
            out.extend(tag.to_le_bytes());
            out.extend(kind.to_le_bytes());
            out.extend(1u32.to_le_bytes());
            match kind {
                3 => out.extend([(value as u16).to_le_bytes(), [0, 0]].concat()),
                _ => out.extend(value.to_le_bytes()),
            }
        }
        out.extend(0u32.to_le_bytes());
        out.extend(&self.pixels);
        out
    }

    /// An uncompressed 8-bit BMP with a grey palette.
    pub fn bmp(&self) -> Vec<u8> {
        let row = self.width.div_ceil(4) * 4;
        let offset = 14 + 40 + 256 * 4;
        let size = offset + row * self.height;
        let mut out = Vec::with_capacity(size);
        out.extend(b"BM");
        out.extend((size as u32).to_le_bytes());
        out.extend([0u8; 4]);
        out.extend((offset as u32).to_le_bytes());
        out.extend(40u32.to_le_bytes());
        out.extend((self.width as i32).to_le_bytes());
        out.extend((self.height as i32).to_le_bytes());
        out.extend(1u16.to_le_bytes());
        out.extend(8u16.to_le_bytes());
        out.extend([0u8; 4]);
        out.extend(((row * self.height) as u32).to_le_bytes());
        let per_metre = (self.dpi as f64 / 0.0254).round() as u32;
        out.extend(per_metre.to_le_bytes());
        out.extend(per_metre.to_le_bytes());
        out.extend(256u32.to_le_bytes());
        out.extend(0u32.to_le_bytes());
        for v in 0..=255u8 {
            out.extend([v, v, v, 0]);
        }
        for y in (0..self.height).rev() {
            out.extend(&self.pixels[y * self.width..(y + 1) * self.width]);
            out.extend(std::iter::repeat_n(0u8, row - self.width));
        }
        out
    }
}

/// A PDF whose pages are these images and nothing else: no text layer, as a scanner makes.
pub fn image_pdf(pages: &[Gray]) -> Vec<u8> {
    use std::io::Write;
    let mut objects: Vec<Vec<u8>> = Vec::new();
    objects.push(b"<< /Type /Catalog /Pages 2 0 R >>".to_vec());
    let kids: Vec<String> = (0..pages.len()).map(|i| format!("{} 0 R", 3 + 3 * i)).collect();
    objects.push(format!("<< /Type /Pages /Kids [{}] /Count {} >>", kids.join(" "), pages.len()).into_bytes());
    for (i, page) in pages.iter().enumerate() {
        let (w, h) = (page.width as f64 * 72.0 / page.dpi as f64, page.height as f64 * 72.0 / page.dpi as f64);
        let first = 3 + 3 * i;
        objects.push(
            format!(
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {w:.2} {h:.2}] /Resources << /XObject << /Im0 {} 0 R >> >> /Contents {} 0 R >>",
                first + 1,
                first + 2
            )
            .into_bytes(),
        );
        let mut deflate = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        deflate.write_all(&page.pixels).expect("deflate");
        let data = deflate.finish().expect("deflate");
        let mut image = format!(
            "<< /Type /XObject /Subtype /Image /Width {} /Height {} /ColorSpace /DeviceGray /BitsPerComponent 8 /Filter /FlateDecode /Length {} >>\nstream\n",
            page.width,
            page.height,
            data.len()
        )
        .into_bytes();
        image.extend(data);
        image.extend(b"\nendstream");
        objects.push(image);
        let content = format!("q {w:.2} 0 0 {h:.2} 0 0 cm /Im0 Do Q");
        objects.push(format!("<< /Length {} >>\nstream\n{content}\nendstream", content.len()).into_bytes());
    }
    crate::samples::pdf_from_objects(&objects)
}

/// Character accuracy of `recognised` against `truth`: one less the edit distance over the
/// truth's length, both without white space (where Tesseract puts spaces is not the text).
pub fn character_accuracy(truth: &str, recognised: &str) -> f64 {
    let a: Vec<char> = truth.chars().filter(|c| !c.is_whitespace()).collect();
    let b: Vec<char> = recognised.chars().filter(|c| !c.is_whitespace()).collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            current[j + 1] = (previous[j] + usize::from(ca != cb)).min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    1.0 - previous[b.len()] as f64 / a.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accuracy_counts_edits_against_the_truth() {
        assert_eq!(character_accuracy("知识库 search", "知识库search"), 1.0);
        assert!((character_accuracy("abcd", "abxd") - 0.75).abs() < 1e-9);
        assert_eq!(character_accuracy("ab", ""), 0.0);
    }

    #[test]
    fn renders_and_scans_a_page() {
        if !ocr_ready() {
            return;
        }
        let font = font().expect("font");
        let page = render(&font, &["Lore 知识库"], 12.0, 100);
        assert!(page.pixels.iter().any(|p| *p < 128), "some ink");
        let scan = page.scanned(50, ScanLike { degrees: 2.0, noise: 0.01, seed: 7 });
        assert_eq!(scan.width, page.width / 2);
        assert!(page.png().starts_with(b"\x89PNG"));
        assert!(page.bmp().starts_with(b"BM"));
        for image in [page.png(), page.bmp(), page.tiff()] {
            let size = imagesize::blob_size(&image).expect("a header imagesize reads");
            assert_eq!((size.width, size.height), (page.width, page.height));
        }
        assert!(image_pdf(&[scan]).starts_with(b"%PDF-"));
    }
}
