//! The PNG's drawing backend: plotters' bitmap backend, except that text is drawn and
//! measured with the embedded [`Typeface`] (plotters 0.3.7's own bitmap text leaves out
//! the glyphs' side bearings, which spaces letters unevenly).
use plotters::prelude::*;
use plotters_backend::text_anchor::{HPos, VPos};
use plotters_backend::{BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingErrorKind};

use super::typeface::Typeface;

pub struct GlyphBitmap<'a> {
    inner: BitMapBackend<'a>,
    face: &'static Typeface,
}

impl<'a> GlyphBitmap<'a> {
    /// Draws into `pixels` (8-bit RGB, `w * h * 3` bytes).
    pub fn new(pixels: &'a mut [u8], (w, h): (u32, u32), face: &'static Typeface) -> GlyphBitmap<'a> {
        GlyphBitmap {
            inner: BitMapBackend::with_buffer(pixels, (w, h)),
            face,
        }
    }
}

type Error = <BitMapBackend<'static> as DrawingBackend>::ErrorType;
type Drawn = Result<(), DrawingErrorKind<Error>>;

impl DrawingBackend for GlyphBitmap<'_> {
    type ErrorType = Error;

    fn get_size(&self) -> (u32, u32) {
        self.inner.get_size()
    }

    fn ensure_prepared(&mut self) -> Drawn {
        self.inner.ensure_prepared()
    }

    fn present(&mut self) -> Drawn {
        self.inner.present()
    }

    fn draw_pixel(&mut self, point: BackendCoord, color: BackendColor) -> Drawn {
        self.inner.draw_pixel(point, color)
    }

    fn draw_line<S: BackendStyle>(&mut self, from: BackendCoord, to: BackendCoord, style: &S) -> Drawn {
        self.inner.draw_line(from, to, style)
    }

    fn draw_rect<S: BackendStyle>(&mut self, upper_left: BackendCoord, bottom_right: BackendCoord, style: &S, fill: bool) -> Drawn {
        self.inner.draw_rect(upper_left, bottom_right, style, fill)
    }

    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(&mut self, path: I, style: &S) -> Drawn {
        self.inner.draw_path(path, style)
    }

    fn draw_circle<S: BackendStyle>(&mut self, center: BackendCoord, radius: u32, style: &S, fill: bool) -> Drawn {
        self.inner.draw_circle(center, radius, style, fill)
    }

    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(&mut self, vert: I, style: &S) -> Drawn {
        self.inner.fill_polygon(vert, style)
    }

    fn blit_bitmap(&mut self, pos: BackendCoord, size: (u32, u32), src: &[u8]) -> Drawn {
        self.inner.blit_bitmap(pos, size, src)
    }

    /// `text` with its anchor at `pos`, turned as the style says, clipped to the image.
    fn draw_text<T: BackendTextStyle>(&mut self, text: &str, style: &T, pos: BackendCoord) -> Drawn {
        let color = style.color();
        if color.alpha == 0.0 {
            return Ok(());
        }
        let (w, h) = self.face.size(text, style.size());
        let anchor = style.anchor();
        let dx = match anchor.h_pos {
            HPos::Left => 0,
            HPos::Center => -(w as i32) / 2,
            HPos::Right => -(w as i32),
        };
        let dy = match anchor.v_pos {
            VPos::Top => 0,
            VPos::Center => -(h as i32) / 2,
            VPos::Bottom => -(h as i32),
        };
        let turn = style.transform();
        let (width, height) = self.get_size();
        let inner = &mut self.inner;
        let mut result = Ok(());
        self.face.raster(text, style.size(), |x, y, coverage| {
            let (x, y) = turn.transform(x + dx, y + dy);
            let (x, y) = (pos.0 + x, pos.1 + y);
            if result.is_ok() && x >= 0 && y >= 0 && x < width as i32 && y < height as i32 {
                let pixel = BackendColor {
                    alpha: color.alpha * f64::from(coverage.clamp(0.0, 1.0)),
                    rgb: color.rgb,
                };
                result = inner.draw_pixel((x, y), pixel);
            }
        });
        result
    }

    fn estimate_text_size<T: BackendTextStyle>(&self, text: &str, style: &T) -> Result<(u32, u32), DrawingErrorKind<Error>> {
        Ok(self.face.size(text, style.size()))
    }
}
