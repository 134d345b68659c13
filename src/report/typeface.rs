//! The embedded font (DejaVu Sans, `assets/fonts/`, Bitstream Vera licence), measured and
//! rasterised with ab_glyph: glyphs on one baseline, placed by their advances, kerning and
//! side bearings. The layout measures with it and the PNG's text is drawn with it.
use std::sync::OnceLock;

use ab_glyph::{point, Font, FontRef, Glyph, PxScale, ScaleFont};

pub const FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

pub struct Typeface {
    font: FontRef<'static>,
}

impl Typeface {
    /// The embedded font, read once (`None` if it cannot be read).
    pub fn embedded() -> Option<&'static Typeface> {
        static FACE: OnceLock<Option<Typeface>> = OnceLock::new();
        FACE.get_or_init(|| FontRef::try_from_slice(FONT).ok().map(|font| Typeface { font }))
            .as_ref()
    }

    /// Width (advances and kerning) and height (ascent to descent) of `text` at `size`
    /// pixels (plotters' text size: the height of a line).
    pub fn size(&self, text: &str, size: f64) -> (u32, u32) {
        let (_, width) = self.layout(text, size);
        let scaled = self.font.as_scaled(scale(size));
        (width.ceil() as u32, (scaled.ascent() - scaled.descent()).ceil() as u32)
    }

    /// Calls `put(x, y, coverage)` for each pixel `text` covers, `(0, 0)` being the top left
    /// of its box.
    pub fn raster(&self, text: &str, size: f64, mut put: impl FnMut(i32, i32, f32)) {
        for glyph in self.layout(text, size).0 {
            if let Some(outline) = self.font.outline_glyph(glyph) {
                let bounds = outline.px_bounds();
                let (left, top) = (bounds.min.x as i32, bounds.min.y as i32);
                outline.draw(|x, y, c| put(left + x as i32, top + y as i32, c));
            }
        }
    }

    /// The glyphs of `text` on a baseline at the ascent, and the width they take.
    fn layout(&self, text: &str, size: f64) -> (Vec<Glyph>, f32) {
        let scaled = self.font.as_scaled(scale(size));
        let mut caret = 0.0f32;
        let mut previous = None;
        let mut glyphs = Vec::new();
        for c in text.chars() {
            let id = scaled.glyph_id(c);
            if let Some(p) = previous {
                caret += scaled.kern(p, id);
            }
            glyphs.push(id.with_scale_and_position(scaled.scale(), point(caret, scaled.ascent())));
            caret += scaled.h_advance(id);
            previous = Some(id);
        }
        (glyphs, caret)
    }
}

fn scale(size: f64) -> PxScale {
    PxScale::from(size.clamp(1.0, 1000.0) as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_measured_by_its_glyphs() {
        let face = Typeface::embedded().unwrap();
        let (w, h) = face.size("conv1", 15.0);
        assert!(w > 25 && w < 60 && (14..=20).contains(&h), "{w} x {h}");
        assert!(face.size("WWWW", 15.0).0 > face.size("iiii", 15.0).0);
        assert_eq!(face.size("", 15.0).0, 0);
        let long = face.size("CC: Jigsaw++ vgg16-small -> alexnet-small", 15.0).0;
        assert!(long > 8 * face.size("k=4", 15.0).0, "{long}");
    }

    #[test]
    fn raster_stays_inside_the_measured_box() {
        let face = Typeface::embedded().unwrap();
        let (w, h) = face.size("Hg → ±", 20.0);
        let mut inside = true;
        let mut covered = 0;
        face.raster("Hg → ±", 20.0, |x, y, c| {
            inside &= x >= -1 && x <= w as i32 + 1 && y >= -1 && y <= h as i32 + 1;
            covered += (c > 0.5) as usize;
        });
        assert!(inside && covered > 50, "{covered}");
    }
}
