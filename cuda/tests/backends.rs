//! One test suite, run once per backend: the CPU references always, CUDA where a GPU is present
//! (`cargo test -- --ignored`, which `cuda/gpu-check.sh` runs).
//!
//! Every backend is held to an independent, per-channel statement of the arithmetic (written
//! here, not shared with the implementations), bit for bit. With `POLYVISION_KERNEL_FIXTURES`
//! set to a folder holding `stitch.table` (or `calibration.json`), `left.png` and `right.png` (a
//! rendered frame pair), the
//! stitch is checked on it too.

use polyvision_calibration::StitchTable;
use polyvision_calibration::png_io;
use polyvision_cuda::gpu::{GpuDevice, ModuleKind};
use polyvision_cuda::image::pixels_of;
use polyvision_cuda::preprocess::{Normalisation, TensorOut, TilePlacement};
use polyvision_cuda::stitch::{NOT_SEEN, StitchPlan};
use polyvision_cuda::{Backend, KernelError, Nv12, Preference, Rgba, YuvMatrix};
use std::sync::Arc;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 16) as u32
    }
    fn below(&mut self, n: u32) -> u32 {
        self.next() % n
    }
}

fn frame(rng: &mut Rng, w: u32, h: u32) -> Vec<u32> {
    (0..w * h).map(|_| rng.next()).collect()
}

/// A table with every kind of pixel: one camera, the other, a blend, unseen, positions at the
/// image edges, all fractions.
fn random_table(rng: &mut Rng, size: [u32; 2], left: [u32; 2], right: [u32; 2]) -> StitchTable {
    let n = (size[0] * size[1]) as usize;
    let pos = |rng: &mut Rng, [w, h]: [u32; 2]| {
        let x = rng.below((w - 1) * 16 + 1);
        let y = rng.below((h - 1) * 16 + 1);
        x | (y << 16)
    };
    let mut t = StitchTable {
        panorama_size: size,
        left_size: left,
        right_size: right,
        band_px: 8,
        left: Vec::with_capacity(n),
        right: Vec::with_capacity(n),
        weight_left: Vec::with_capacity(n),
    };
    for _ in 0..n {
        let kind = rng.below(10);
        let (l, r, a) = match kind {
            0..=3 => (pos(rng, left), NOT_SEEN, 255),
            4..=6 => (NOT_SEEN, pos(rng, right), 0),
            7 | 8 => (pos(rng, left), pos(rng, right), rng.below(256) as u8),
            _ => (NOT_SEEN, NOT_SEEN, 0),
        };
        t.left.push(l);
        t.right.push(r);
        t.weight_left.push(a);
    }
    t
}

/// Per-channel statement of one bilinear tap on 8-bit samples.
fn tap(entry: u32, [w, h]: [u32; 2], at: &dyn Fn(u32, u32) -> u32) -> u32 {
    let (x, y) = (entry & 0xFFFF, entry >> 16);
    let (x0, y0) = ((x / 16).min(w - 1), (y / 16).min(h - 1));
    let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
    let (fx, fy) = (x % 16, y % 16);
    let s = at(x0, y0) * (16 - fx) * (16 - fy)
        + at(x1, y0) * fx * (16 - fy)
        + at(x0, y1) * (16 - fx) * fy
        + at(x1, y1) * fx * fy;
    (s + 128) / 256
}

fn blend_channel(l: u32, r: u32, a: u32) -> u32 {
    ((l * a + r * (255 - a)) as f64 / 255.0).round() as u32
}

fn definition_rgba(t: &StitchTable, left: &[u32], right: &[u32]) -> Vec<u32> {
    let sample = |img: &[u32], size: [u32; 2], entry: u32, c: u32| {
        if entry == NOT_SEEN {
            return 0;
        }
        tap(entry, size, &|x, y| {
            (img[(y * size[0] + x) as usize] >> (8 * c)) & 255
        })
    };
    (0..t.left.len())
        .map(|i| {
            let a = t.weight_left[i] as u32;
            (0..3).fold(0xFF00_0000, |acc, c| {
                let l = sample(left, t.left_size, t.left[i], c);
                let r = sample(right, t.right_size, t.right[i], c);
                acc | (blend_channel(l, r, a) << (8 * c))
            })
        })
        .collect()
}

struct Yuv420 {
    size: [u32; 2],
    luma: Vec<u8>,
    chroma: Vec<u8>,
}

fn definition_nv12(t: &StitchTable, left: &Yuv420, right: &Yuv420, k: YuvMatrix) -> Vec<u32> {
    let sample = |img: &Yuv420, entry: u32| -> u32 {
        if entry == NOT_SEEN {
            return 0;
        }
        let [w, h] = img.size;
        let y = tap(entry, img.size, &|x, y| {
            img.luma[(y * w + x) as usize] as u32
        });
        let cx = (entry & 0xFFFF) / 2;
        let cy = ((entry >> 16) as i32 - 8).max(0) as u32 / 2;
        let centry = cx | (cy << 16);
        let u = tap(centry, [w / 2, h / 2], &|x, y| {
            img.chroma[(y * w + 2 * x) as usize] as u32
        });
        let v = tap(centry, [w / 2, h / 2], &|x, y| {
            img.chroma[(y * w + 2 * x + 1) as usize] as u32
        });
        let (yy, uu, vv) = (k.cy * (y as i32 - 16), u as i32 - 128, v as i32 - 128);
        let c = |v: i32| (v >> 10).clamp(0, 255) as u32;
        c(yy + k.crv * vv + 512)
            | (c(yy + k.cgu * uu + k.cgv * vv + 512) << 8)
            | (c(yy + k.cbu * uu + 512) << 16)
    };
    (0..t.left.len())
        .map(|i| {
            let (l, r, a) = (
                sample(left, t.left[i]),
                sample(right, t.right[i]),
                t.weight_left[i] as u32,
            );
            (0..3).fold(0xFF00_0000, |acc, c| {
                acc | (blend_channel((l >> (8 * c)) & 255, (r >> (8 * c)) & 255, a) << (8 * c))
            })
        })
        .collect()
}

fn definition_preprocess(
    img: &Rgba<'_>,
    t: &TilePlacement,
    n: &Normalisation,
    ox: i32,
    oy: i32,
) -> [f32; 3] {
    let [px, py, pw, ph] = t.placed;
    if ox < px || ox >= px + pw || oy < py || oy >= py + ph {
        return n.pad;
    }
    let coord = |o: i32, start: i32, step: f32, extent: i32| {
        let s = (((o - start) as f32 + 0.5) * step - 0.5)
            .max(0.0)
            .min((extent - 1) as f32);
        let i0 = s as i32;
        (i0, (i0 + 1).min(extent - 1), s - i0 as f32)
    };
    let (x0, x1, fx) = coord(ox, px, t.step[0], t.crop[2]);
    let (y0, y1, fy) = coord(oy, py, t.step[1], t.crop[3]);
    let at = |x: i32, y: i32| {
        img.pixels[((t.crop[1] + y) as u32 * img.stride + (t.crop[0] + x) as u32) as usize]
    };
    std::array::from_fn(|c| {
        let ch = |p: u32| ((p >> (8 * c)) & 255) as f32;
        let top = ch(at(x0, y0)) * (1.0 - fx) + ch(at(x1, y0)) * fx;
        let bottom = ch(at(x0, y1)) * (1.0 - fx) + ch(at(x1, y1)) * fx;
        let v = top * (1.0 - fy) + bottom * fy;
        (v * (1.0f32 / 255.0) - n.mean[c]) * n.inv_std[c]
    })
}

fn yuv(rng: &mut Rng, [w, h]: [u32; 2]) -> Yuv420 {
    Yuv420 {
        size: [w, h],
        luma: (0..w * h).map(|_| (16 + rng.below(220)) as u8).collect(),
        chroma: (0..w * h / 2)
            .map(|_| (16 + rng.below(225)) as u8)
            .collect(),
    }
}

fn nv12(f: &Yuv420) -> Nv12<'_> {
    Nv12 {
        width: f.size[0],
        height: f.size[1],
        luma_stride: f.size[0],
        chroma_stride: f.size[0],
        luma: &f.luma,
        chroma: &f.chroma,
    }
}

/// A frame's pixels and size.
type Frame = (Vec<u32>, [u32; 2]);

fn fixtures() -> Option<(Arc<StitchTable>, Frame, Frame)> {
    let dir = std::path::PathBuf::from(std::env::var_os("POLYVISION_KERNEL_FIXTURES")?);
    // A table file, or the calibration to build one from (smaller to carry to a GPU machine).
    let table = match StitchTable::load(&dir.join("stitch.table")) {
        Ok(t) => t,
        Err(_) => {
            let cal = polyvision_calibration::CalibrationFile::load(&dir.join("calibration.json"))
                .expect("fixture stitch.table or calibration.json");
            StitchTable::build(&cal, 32).expect("table from the fixture calibration")
        }
    };
    let read = |name: &str| {
        let (bytes, size) = png_io::read_png(&dir.join(name)).expect("fixture frame");
        (pixels_of(&bytes).into_owned(), size)
    };
    Some((Arc::new(table), read("left.png"), read("right.png")))
}

/// The suite every backend passes.
fn suite(backend: &Backend) {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    // Stitch, RGBA, odd sizes, every pixel kind.
    let (ls, rs, ps) = ([37, 29], [41, 23], [157, 61]);
    let table = Arc::new(random_table(&mut rng, ps, ls, rs));
    let (l, r) = (frame(&mut rng, ls[0], ls[1]), frame(&mut rng, rs[0], rs[1]));
    let mut s = backend
        .stitcher(StitchPlan::new(table.clone()).expect("plan"))
        .expect("stitcher");
    let mut out = vec![0u32; (ps[0] * ps[1]) as usize];
    s.stitch_rgba(
        &Rgba::packed(ls[0], ls[1], &l),
        &Rgba::packed(rs[0], rs[1], &r),
        &mut out,
    )
    .expect("stitch");
    assert_eq!(
        out,
        definition_rgba(&table, &l, &r),
        "{}: RGBA stitch",
        backend.name()
    );

    // The same frames with padded rows.
    let pad = |img: &[u32], [w, h]: [u32; 2]| -> Vec<u32> {
        (0..h)
            .flat_map(|y| {
                img[(y * w) as usize..((y + 1) * w) as usize]
                    .iter()
                    .copied()
                    .chain([0xDEAD_BEEF; 3])
            })
            .collect()
    };
    let (lp, rp) = (pad(&l, ls), pad(&r, rs));
    let mut strided = vec![0u32; out.len()];
    s.stitch_rgba(
        &Rgba {
            width: ls[0],
            height: ls[1],
            stride: ls[0] + 3,
            pixels: &lp,
        },
        &Rgba {
            width: rs[0],
            height: rs[1],
            stride: rs[0] + 3,
            pixels: &rp,
        },
        &mut strided,
    )
    .expect("strided stitch");
    assert_eq!(strided, out, "{}: strided sources", backend.name());

    // NV12.
    let (ly, ry) = (yuv(&mut rng, [38, 30]), yuv(&mut rng, [42, 24]));
    let table12 = Arc::new(random_table(&mut rng, ps, [38, 30], [42, 24]));
    let mut s12 = backend
        .stitcher(StitchPlan::new(table12.clone()).expect("plan"))
        .expect("stitcher");
    for k in [YuvMatrix::BT601, YuvMatrix::BT709] {
        s12.stitch_nv12(&nv12(&ly), &nv12(&ry), k, &mut out)
            .expect("nv12");
        assert_eq!(
            out,
            definition_nv12(&table12, &ly, &ry, k),
            "{}: NV12 stitch",
            backend.name()
        );
    }

    // Wrong sizes are refused with the frame named.
    let err = s
        .stitch_rgba(
            &Rgba::packed(rs[0], rs[1], &r),
            &Rgba::packed(rs[0], rs[1], &r),
            &mut out,
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            KernelError::Shape {
                what: "camera L",
                ..
            }
        ),
        "{err}"
    );
    let err = s
        .stitch_rgba(
            &Rgba::packed(ls[0], ls[1], &l),
            &Rgba::packed(rs[0], rs[1], &r),
            &mut out[1..],
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            KernelError::BufferSize {
                what: "panorama",
                ..
            }
        ),
        "{err}"
    );

    // Preprocessing: tiles of every shape, both precisions.
    let (w, h) = (203u32, 97u32);
    let img_pixels = frame(&mut rng, w, h);
    let img = Rgba::packed(w, h, &img_pixels);
    let tiles = [
        TilePlacement::letterbox([0, 0, 97, 97], 48),
        TilePlacement::letterbox([50, 10, 153, 60], 48),
        TilePlacement::letterbox([190, 0, 13, 97], 48),
        TilePlacement::letterbox([3, 4, 20, 20], 48),
    ];
    let norm = Normalisation::new([0.485, 0.456, 0.406], [0.229, 0.224, 0.225], 114);
    let mut p = backend.preprocessor();
    let len = tiles.len() * 3 * 48 * 48;
    let (mut f32s, mut f16s) = (vec![0.0f32; len], vec![0u16; len]);
    p.run(&img, &tiles, &norm, 48, TensorOut::F32(&mut f32s))
        .expect("f32");
    p.run(&img, &tiles, &norm, 48, TensorOut::F16(&mut f16s))
        .expect("f16");
    for (n, t) in tiles.iter().enumerate() {
        for oy in 0..48 {
            for ox in 0..48 {
                let want = definition_preprocess(&img, t, &norm, ox, oy);
                for (c, v) in want.iter().enumerate() {
                    let i = ((n * 3 + c) * 48 + oy as usize) * 48 + ox as usize;
                    assert_eq!(
                        f32s[i].to_bits(),
                        v.to_bits(),
                        "{}: f32 tile {n} ({ox}, {oy}) c{c}",
                        backend.name()
                    );
                    assert_eq!(
                        f16s[i],
                        half::f16::from_f32(*v).to_bits(),
                        "{}: f16 tile {n} ({ox}, {oy})",
                        backend.name()
                    );
                }
            }
        }
    }
    let err = p
        .run(
            &img,
            &[TilePlacement::letterbox([200, 0, 10, 10], 48)],
            &norm,
            48,
            TensorOut::F32(&mut f32s[..3 * 48 * 48]),
        )
        .unwrap_err();
    assert!(err.to_string().contains("tiles[0]"), "{err}");

    // A rendered frame pair through the rig's real table.
    if let Some((table, (l, ls), (r, rs))) = fixtures() {
        let [w, h] = table.panorama_size;
        let mut s = backend
            .stitcher(StitchPlan::new(table.clone()).expect("plan"))
            .expect("stitcher");
        let mut out = vec![0u32; (w * h) as usize];
        s.stitch_rgba(
            &Rgba::packed(ls[0], ls[1], &l),
            &Rgba::packed(rs[0], rs[1], &r),
            &mut out,
        )
        .expect("stitch");
        assert_eq!(
            out,
            definition_rgba(&table, &l, &r),
            "{}: rendered frames",
            backend.name()
        );
        println!(
            "{}: rendered {w}×{h} panorama equals the definition",
            backend.name()
        );
    }
}

#[test]
fn cpu_backend_passes_the_suite() {
    suite(&Backend::Cpu { threads: Some(3) });
    // One thread and many give the same bytes (bands never overlap or leave gaps).
    suite(&Backend::Cpu { threads: Some(1) });
    suite(&Backend::Cpu { threads: Some(7) });
}

#[test]
fn auto_selection_never_panics() {
    let backend = Backend::select(Preference::Auto, Some(2)).expect("auto always gives a backend");
    assert!(["cpu", "cuda"].contains(&backend.name()));
}

#[test]
#[ignore = "requires CUDA"]
fn cuda_backend_passes_the_suite() {
    suite(&Backend::select(Preference::Cuda, None).expect("a CUDA GPU"));
}

#[test]
#[ignore = "requires CUDA"]
fn every_compiled_form_of_the_kernels_passes_the_suite() {
    let probe = GpuDevice::open(0, None).expect("a CUDA GPU");
    let cc = probe.compute_capability;
    let mut kinds = vec![ModuleKind::Ptx75];
    if cc >= (8, 7) {
        kinds.push(ModuleKind::Ptx87);
    }
    if cc == (8, 7) {
        kinds.push(ModuleKind::Cubin87);
    }
    for kind in kinds {
        let device = GpuDevice::open(0, Some(kind)).expect("module loads");
        println!("{} (compute {}.{}): {kind:?}", device.name, cc.0, cc.1);
        suite(&Backend::Cuda(device));
    }
}
