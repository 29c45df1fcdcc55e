//! The inference backends on a tiny detector-shaped network with fixed weights
//! (`models/make-test-model.py`): layout, batching and output shape, checked against the
//! network's arithmetic done here by hand.

use polyvision_edge::detect::backend::{InferenceBackend, TractBackend};
use polyvision_edge::detect::card::ModelCard;
use polyvision_edge::detect::decode::decode;
use std::path::Path;

const W: [[f32; 3]; 6] = [
    [2.0, 0.0, 0.0],
    [0.0, 2.0, 0.0],
    [0.5, 0.5, 0.5],
    [0.25, 0.5, 0.25],
    [1.0, -1.0, 0.0],
    [-1.0, 0.0, 1.0],
];
const B: [f32; 6] = [10.0, 20.0, 5.0, 8.0, 0.0, 0.1];

/// 16×16 average pooling, 1×1 convolution, reshape to [N, 6, 16].
fn by_hand(input: &[f32], n: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; n * 6 * 16];
    for b in 0..n {
        for cell in 0..16 {
            let (cy, cx) = (cell / 4, cell % 4);
            let mut pooled = [0.0f32; 3];
            for (c, p) in pooled.iter_mut().enumerate() {
                let mut sum = 0.0f32;
                for y in cy * 16..cy * 16 + 16 {
                    for x in cx * 16..cx * 16 + 16 {
                        sum += input[((b * 3 + c) * 64 + y) * 64 + x];
                    }
                }
                *p = sum / 256.0;
            }
            for k in 0..6 {
                out[(b * 6 + k) * 16 + cell] =
                    B[k] + (0..3).map(|c| W[k][c] * pooled[c]).sum::<f32>();
            }
        }
    }
    out
}

#[test]
fn tract_runs_a_batch_with_the_yolo_layout() {
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-yolo.onnx");
    let (_, card) = ModelCard::for_model(&model).expect("card");
    let mut backend = TractBackend::load(&model, &card, 3, 2).expect("load");
    assert_eq!(backend.batch(), 3);
    let input: Vec<f32> = (0..3 * 3 * 64 * 64)
        .map(|i| ((i * 7919) % 1000) as f32 / 1000.0)
        .collect();
    let (out, shape) = backend.run(&input).expect("run");
    assert_eq!(shape, [3, 6, 16]);
    let want = by_hand(&input, 3);
    for (i, (a, b)) in out.iter().zip(&want).enumerate() {
        assert!((a - b).abs() < 1e-4, "value {i}: tract {a}, by hand {b}");
    }
    // The head decodes: scores (channels 4, 5) of the first image.
    let first = &out[..6 * 16];
    let boxes = decode(first, &[1, 6, 16], card.classes.len(), -10.0).expect("decode");
    assert_eq!(boxes.len(), 16);
}

#[test]
fn a_model_that_does_not_match_its_card_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = dir.path().join("m.onnx");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-yolo.onnx"),
        &model,
    )
    .expect("copy");
    std::fs::write(
        dir.path().join("m.card.json"),
        r#"{"name":"m","input_size":640,"classes":["player","ball"]}"#,
    )
    .expect("card");
    let (_, card) = ModelCard::for_model(&model).expect("card");
    let err = TractBackend::load(&model, &card, 1, 1)
        .err()
        .expect("refused");
    assert!(err.contains("height is 64, its card says 640"), "{err}");
    std::fs::remove_file(dir.path().join("m.card.json")).expect("rm");
    let err = ModelCard::for_model(&model).unwrap_err();
    assert!(
        err.contains("m.card.json") && err.contains("every model needs its card"),
        "{err}"
    );
    // A missing model is named as the model, not blamed on its card.
    let err = ModelCard::for_model(&dir.path().join("absent.onnx")).unwrap_err();
    assert!(
        err.contains("absent.onnx: no such model file") && !err.contains("card"),
        "{err}"
    );
}
