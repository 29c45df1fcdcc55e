//! The pitch drawn back over an image: its markings as polylines in the image's pixels.

use crate::homography::Homography;
use crate::lens::LensModel;
use crate::pitch::PitchSize;

/// Every marking of `pitch` as polylines in sensor pixels of an image of `image_size`, given
/// the image's field homography and lens. Lines are cut where they leave the image or pass
/// behind the camera, so each polyline can be drawn as is.
pub fn pitch_overlay(
    pitch: &PitchSize,
    pitch_from_image: &Homography,
    lens: Option<&LensModel>,
    image_size: [u32; 2],
) -> Vec<Vec<[f64; 2]>> {
    let m = pitch_from_image.inverse().rows();
    let (w, h) = (image_size[0] as f64, image_size[1] as f64);
    // Generous bounds: a segment may start a little outside and still cross the image.
    let margin = 0.25 * w.max(h);
    let project = |p: [f64; 2]| -> Option<[f64; 2]> {
        let z = m[2][0] * p[0] + m[2][1] * p[1] + m[2][2];
        if z <= 1e-9 {
            return None;
        }
        let u = [
            (m[0][0] * p[0] + m[0][1] * p[1] + m[0][2]) / z,
            (m[1][0] * p[0] + m[1][1] * p[1] + m[1][2]) / z,
        ];
        let d = match lens {
            Some(l) => l.distort_pixel(u),
            None => u,
        };
        (d[0] > -margin && d[1] > -margin && d[0] < w + margin && d[1] < h + margin).then_some(d)
    };
    let mut out = Vec::new();
    for marking in pitch.markings() {
        let mut current: Vec<[f64; 2]> = Vec::new();
        for p in marking.polyline(0.5) {
            match project(p) {
                Some(q) => current.push(q),
                None => {
                    if current.len() > 1 {
                        out.push(std::mem::take(&mut current));
                    }
                    current.clear();
                }
            }
        }
        if current.len() > 1
            || (current.len() == 1 && matches!(marking, crate::Marking::Spot { .. }))
        {
            out.push(current);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_top_down_view_draws_the_touchline_where_it_is() {
        // 10 px per metre, centre spot at (600, 400), y up on the pitch = up in the image.
        let h = Homography::from_rows([[0.1, 0.0, -60.0], [0.0, -0.1, 40.0], [0.0, 0.0, 1.0]])
            .expect("valid");
        let lines = pitch_overlay(&PitchSize::default(), &h, None, [1200, 800]);
        // The near touchline y = -34 m is the row 400 + 340 = 740.
        assert!(
            lines
                .iter()
                .any(|l| l.len() > 100 && l.iter().all(|p| (p[1] - 740.0).abs() < 1e-6)),
            "no touchline at row 740"
        );
    }
}
