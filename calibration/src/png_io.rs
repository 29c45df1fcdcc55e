//! RGBA frames to and from PNG files, for the tools that stitch and register stills.

use std::path::Path;

/// Reads an RGB or RGBA PNG as RGBA; returns the pixels and `[width, height]`. Errors do not
/// repeat the path: callers put it in front.
pub fn read_png(path: &Path) -> Result<(Vec<u8>, [u32; 2]), String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder.read_info().map_err(|e| format!("not a PNG: {e}"))?;
    let mut buf = vec![0; reader.output_buffer_size().unwrap_or(0)];
    let info = reader.next_frame(&mut buf).map_err(|e| e.to_string())?;
    let pixels = info.width as usize * info.height as usize;
    let rgba = match info.color_type {
        png::ColorType::Rgba => buf[..pixels * 4].to_vec(),
        png::ColorType::Rgb => buf[..pixels * 3]
            .chunks_exact(3)
            .flat_map(|p| [p[0], p[1], p[2], 255])
            .collect(),
        other => {
            return Err(format!("{other:?} PNGs are not supported; use RGB or RGBA"));
        }
    };
    Ok((rgba, [info.width, info.height]))
}

/// Encodes RGBA pixels as PNG (fast compression: callers want it now, not small).
pub fn encode_png(rgba: &[u8], size: [u32; 2]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, size[0], size[1]);
        encoder.set_color(png::ColorType::Rgba);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_compression(png::Compression::Fast);
        let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
        writer.write_image_data(rgba).map_err(|e| e.to_string())?;
    }
    Ok(out)
}
