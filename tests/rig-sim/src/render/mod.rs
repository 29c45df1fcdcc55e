//! Rendering: the static background of each camera once, then the moving objects per frame.
//!
//! Colours are sRGB bytes; each camera's gain (exposure × white balance) is applied as colours
//! are drawn. Every drawn pixel of an object also writes the object's id into an id buffer, so
//! that visibility under occlusion is counted exactly.

pub mod background;
pub mod figures;

/// Sample positions inside a pixel for anti-aliased polygons (a rotated 2×2 grid).
const SAMPLES: [[f64; 2]; 4] = [
    [0.375, 0.125],
    [0.875, 0.375],
    [0.125, 0.625],
    [0.625, 0.875],
];

/// An RGBA image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// Width, pixels.
    pub width: u32,
    /// Height, pixels.
    pub height: u32,
    /// Rows of RGBA bytes, top row first.
    pub rgba: Vec<u8>,
}

impl Image {
    /// A black, opaque image.
    pub fn new(width: u32, height: u32) -> Self {
        let mut rgba = vec![0u8; width as usize * height as usize * 4];
        rgba.chunks_exact_mut(4).for_each(|p| p[3] = 255);
        Image {
            width,
            height,
            rgba,
        }
    }

    /// Writes the image as an 8-bit RGB PNG.
    pub fn write_png(&self, path: &std::path::Path) -> std::io::Result<()> {
        let file = std::io::BufWriter::new(std::fs::File::create(path)?);
        let mut enc = png::Encoder::new(file, self.width, self.height);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let rgb: Vec<u8> = self
            .rgba
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect();
        enc.write_header()
            .and_then(|mut w| w.write_image_data(&rgb))
            .map_err(std::io::Error::other)
    }
}

/// What to draw with: a colour (already through the camera's gain), an opacity, and the id of
/// the object it belongs to (0 for things that are not objects, such as shadows).
#[derive(Debug, Clone, Copy)]
pub struct Paint {
    /// sRGB colour, 0–255.
    pub colour: [f32; 3],
    /// Opacity, 0–1.
    pub alpha: f32,
    /// Object id, or 0.
    pub id: u16,
}

/// Where a frame's objects are drawn: an optional colour image and the id buffer.
pub struct Canvas<'a> {
    /// Width, pixels.
    pub width: usize,
    /// Height, pixels.
    pub height: usize,
    /// RGBA bytes, or `None` when only ids are needed (the panorama's truth).
    pub rgba: Option<&'a mut [u8]>,
    /// One id per pixel: the nearest object covering at least half of the pixel.
    pub ids: &'a mut [u16],
}

impl Canvas<'_> {
    fn put(&mut self, x: usize, y: usize, coverage: f32, paint: &Paint) -> bool {
        let i = y * self.width + x;
        if let Some(rgba) = self.rgba.as_deref_mut() {
            let a = coverage * paint.alpha;
            let px = &mut rgba[i * 4..i * 4 + 3];
            for (c, v) in px.iter_mut().zip(paint.colour) {
                *c = (*c as f32 * (1.0 - a) + v * a + 0.5) as u8;
            }
        }
        if paint.id != 0 && coverage >= 0.5 {
            self.ids[i] = paint.id;
            return true;
        }
        false
    }

    fn pixel_range(&self, lo: f64, hi: f64, len: usize) -> std::ops::Range<usize> {
        let a = lo.floor().max(0.0) as usize;
        let b = (hi.ceil().max(0.0) as usize).min(len);
        a..b.max(a)
    }

    /// Fills a convex polygon with anti-aliased edges; returns the number of pixels given to
    /// the paint's id.
    pub fn fill_convex(&mut self, pts: &[[f64; 2]], paint: &Paint) -> u32 {
        if pts.len() < 3 || pts.iter().any(|p| !p[0].is_finite() || !p[1].is_finite()) {
            return 0;
        }
        let area: f64 = (0..pts.len())
            .map(|i| {
                let (a, b) = (pts[i], pts[(i + 1) % pts.len()]);
                a[0] * b[1] - a[1] * b[0]
            })
            .sum();
        if area.abs() < 1e-9 {
            return 0;
        }
        let sign = area.signum();
        // Edge functions e(x, y) = A·x + B·y + C, non-negative inside.
        let edges: Vec<[f64; 3]> = (0..pts.len())
            .map(|i| {
                let (a, b) = (pts[i], pts[(i + 1) % pts.len()]);
                let (ea, eb) = (-(b[1] - a[1]) * sign, (b[0] - a[0]) * sign);
                [ea, eb, -(ea * a[0] + eb * a[1])]
            })
            .collect();
        let (x0, x1) = pts
            .iter()
            .fold((f64::MAX, f64::MIN), |(l, h), p| (l.min(p[0]), h.max(p[0])));
        let (y0, y1) = pts
            .iter()
            .fold((f64::MAX, f64::MIN), |(l, h), p| (l.min(p[1]), h.max(p[1])));
        let mut owned = 0;
        for y in self.pixel_range(y0, y1, self.height) {
            for x in self.pixel_range(x0, x1, self.width) {
                let inside = SAMPLES
                    .iter()
                    .filter(|s| {
                        let (sx, sy) = (x as f64 + s[0], y as f64 + s[1]);
                        edges.iter().all(|e| e[0] * sx + e[1] * sy + e[2] >= 0.0)
                    })
                    .count();
                if inside > 0 && self.put(x, y, inside as f32 / 4.0, paint) {
                    owned += 1;
                }
            }
        }
        owned
    }

    /// Fills a disc with an anti-aliased edge; returns the pixels given to the paint's id.
    pub fn fill_disc(&mut self, centre: [f64; 2], radius: f64, paint: &Paint) -> u32 {
        if !(centre[0].is_finite() && centre[1].is_finite() && radius.is_finite()) {
            return 0;
        }
        let r = radius.max(0.35);
        let mut owned = 0;
        for y in self.pixel_range(centre[1] - r - 1.0, centre[1] + r + 1.0, self.height) {
            for x in self.pixel_range(centre[0] - r - 1.0, centre[0] + r + 1.0, self.width) {
                let d = (x as f64 + 0.5 - centre[0]).hypot(y as f64 + 0.5 - centre[1]);
                // Small discs keep their area: scale coverage down instead of vanishing.
                let coverage = ((r - d + 0.5).clamp(0.0, 1.0) * (radius / r).min(1.0)) as f32;
                if coverage > 0.0 && self.put(x, y, coverage, paint) {
                    owned += 1;
                }
            }
        }
        owned
    }

    /// Blends a coverage map (values 0–1, row-major over the rectangle at `origin`) with a
    /// paint; returns the pixels given to the paint's id.
    pub fn fill_coverage(
        &mut self,
        origin: [usize; 2],
        width: usize,
        coverage: &[f32],
        paint: &Paint,
    ) -> u32 {
        let mut owned = 0;
        for (k, c) in coverage.iter().enumerate() {
            let (x, y) = (origin[0] + k % width, origin[1] + k / width);
            if *c > 0.0 && x < self.width && y < self.height && self.put(x, y, c.min(1.0), paint) {
                owned += 1;
            }
        }
        owned
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polygon_fill_covers_its_area() {
        let (w, h) = (64, 64);
        let mut rgba = vec![0u8; w * h * 4];
        let mut ids = vec![0u16; w * h];
        let mut canvas = Canvas {
            width: w,
            height: h,
            rgba: Some(&mut rgba),
            ids: &mut ids,
        };
        let paint = Paint {
            colour: [255.0; 3],
            alpha: 1.0,
            id: 7,
        };
        let owned = canvas.fill_convex(
            &[[10.0, 10.0], [30.0, 10.0], [30.0, 40.0], [10.0, 40.0]],
            &paint,
        );
        assert_eq!(owned, 600);
        let sum: f64 = rgba.chunks_exact(4).map(|p| p[0] as f64 / 255.0).sum();
        assert!((sum - 600.0).abs() < 1.0, "{sum}");
        let disc = canvas_disc_area(5.0);
        assert!((disc - std::f64::consts::PI * 25.0).abs() < 2.0, "{disc}");
    }

    fn canvas_disc_area(r: f64) -> f64 {
        let (w, h) = (32, 32);
        let mut rgba = vec![0u8; w * h * 4];
        let mut ids = vec![0u16; w * h];
        let mut canvas = Canvas {
            width: w,
            height: h,
            rgba: Some(&mut rgba),
            ids: &mut ids,
        };
        canvas.fill_disc(
            [16.2, 15.7],
            r,
            &Paint {
                colour: [255.0; 3],
                alpha: 1.0,
                id: 1,
            },
        );
        rgba.chunks_exact(4).map(|p| p[0] as f64 / 255.0).sum()
    }
}
