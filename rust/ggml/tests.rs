//! Tests of the ggml module against tiny models built here, byte by byte.

use std::path::PathBuf;

use super::*;
use crate::error::CoreError;

/// A model file as editable parts.
struct Rec {
    n_dims: i32,
    name: Vec<u8>,
    ttype: i32,
    ne: Vec<i32>,
    data: Vec<u8>,
}

struct Build {
    magic: u32,
    hp: [i32; 11],
    filters: (i32, i32, Vec<f32>),
    vocab_count: Option<i32>,
    vocab: Vec<Vec<u8>>,
    recs: Vec<Rec>,
    tail: Vec<u8>,
}

fn tiny_hparams() -> HParams {
    HParams::from_array([51864, 8, 32, 4, 1, 8, 32, 4, 1, 80, 1])
}

impl Build {
    fn valid() -> Self {
        let h = tiny_hparams();
        let wtype = GgmlType::F16;
        let mut names: Vec<_> = expected_tensors(&h).into_iter().collect();
        names.sort_by(|a, b| a.0.cmp(&b.0));
        let recs = names
            .into_iter()
            .enumerate()
            .map(|(i, (name, (shape, kind)))| {
                let ty = kind.stored_type(wtype);
                let n: u64 = shape.iter().product();
                let vals: Vec<f32> = (0..n)
                    .map(|k| ((k + i as u64) % 13) as f32 * 0.01)
                    .collect();
                Rec {
                    n_dims: shape.len() as i32,
                    name: name.into_bytes(),
                    ttype: ty.ttype(),
                    ne: shape.iter().rev().map(|&d| d as i32).collect(),
                    data: quantize_row(&vals, ty).unwrap(),
                }
            })
            .collect();
        Build {
            magic: MAGIC,
            hp: h.to_array(),
            filters: (80, 201, vec![0.5; 80 * 201]),
            vocab_count: None,
            vocab: (0..100u32)
                .map(|i| format!("tok{i}").into_bytes())
                .collect(),
            recs,
            tail: Vec::new(),
        }
    }

    fn bytes(&self) -> Vec<u8> {
        let mut b = Vec::new();
        let i = |b: &mut Vec<u8>, v: i32| b.extend_from_slice(&v.to_le_bytes());
        b.extend_from_slice(&self.magic.to_le_bytes());
        for &v in &self.hp {
            i(&mut b, v);
        }
        i(&mut b, self.filters.0);
        i(&mut b, self.filters.1);
        for v in &self.filters.2 {
            b.extend_from_slice(&v.to_le_bytes());
        }
        i(&mut b, self.vocab_count.unwrap_or(self.vocab.len() as i32));
        for t in &self.vocab {
            i(&mut b, t.len() as i32);
            b.extend_from_slice(t);
        }
        for r in &self.recs {
            i(&mut b, r.n_dims);
            i(&mut b, r.name.len() as i32);
            i(&mut b, r.ttype);
            for &d in &r.ne {
                i(&mut b, d);
            }
            b.extend_from_slice(&r.name);
            b.extend_from_slice(&r.data);
        }
        b.extend_from_slice(&self.tail);
        b
    }

    fn rec(&mut self, name: &str) -> &mut Rec {
        self.recs
            .iter_mut()
            .find(|r| r.name == name.as_bytes())
            .unwrap()
    }
}

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("wc-ggml-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn write(tag: &str, bytes: &[u8]) -> PathBuf {
    let p = tmpdir(tag).join("model.bin");
    std::fs::write(&p, bytes).unwrap();
    p
}

fn code_of(tag: &str, bytes: &[u8]) -> &'static str {
    match validate_file(&write(tag, bytes), true) {
        Err(CoreError::ModelValidation { code, .. }) => code,
        other => panic!("{tag}: expected a validation error, got {other:?}"),
    }
}

#[test]
fn valid_model_parses_with_all_fields() {
    let b = Build::valid();
    let bytes = b.bytes();
    let p = write("valid", &bytes);
    let info = validate_file(&p, true).unwrap();
    assert_eq!(info.file_size, bytes.len() as u64);
    assert_eq!(info.n_tensors, 11 + 15 + 24);
    assert_eq!(info.ftype, "f16");
    assert_eq!(info.model_type, "unknown");
    assert!(!info.multilingual);
    assert_eq!(info.n_vocab_stored, 100);
    assert_eq!(
        info.sha256.as_deref(),
        Some(sha256_file(&p).unwrap().as_str())
    );
    let emb = info
        .tensors
        .iter()
        .find(|t| t.name == "decoder.token_embedding.weight")
        .unwrap();
    assert_eq!(emb.shape, vec![51864, 32]);
    assert_eq!(emb.nbytes, 51864 * 32 * 2);
    let bias = info
        .tensors
        .iter()
        .find(|t| t.name == "encoder.conv1.bias")
        .unwrap();
    assert_eq!((bias.shape.clone(), bias.dtype), (vec![32, 1], "f32"));
    let n: u64 = info.tensors.iter().map(|t| t.n_elements()).sum();
    assert_eq!(info.n_parameters, n);
    assert!(validate_file(&p, false).unwrap().sha256.is_none());
}

#[test]
fn each_defect_has_its_code() {
    type Edit = fn(&mut Build);
    let cases: Vec<(&str, Edit, &str)> = vec![
        ("magic", |b| b.magic = 0x1234_5678, "bad_magic"),
        ("vocab50300", |b| b.hp[0] = 50300, "bad_hparams"),
        ("state", |b| b.hp[6] = 64, "bad_hparams"),
        ("heads", |b| b.hp[3] = 5, "bad_hparams"),
        ("layers", |b| b.hp[4] = 1000, "bad_hparams"),
        ("mels", |b| b.hp[9] = 81, "bad_hparams"),
        ("ftype", |b| b.hp[10] = 5, "bad_ftype"),
        ("ftype1007", |b| b.hp[10] = 1007, "bad_ftype"),
        ("filters", |b| b.filters.1 = 200, "bad_mel_filters"),
        ("nan", |b| b.filters.2[7] = f32::NAN, "bad_mel_filters"),
        ("vocabcount", |b| b.vocab_count = Some(1 << 30), "bad_vocab"),
        ("toklen", |b| b.vocab[3] = vec![b'a'; 5000], "bad_vocab"),
        ("dims0", |b| b.recs[0].n_dims = 0, "bad_tensor_dims"),
        ("dims6", |b| b.recs[0].n_dims = 6, "bad_tensor_dims"),
        (
            "namelen",
            |b| b.recs[0].name = vec![b'x'; 300],
            "bad_tensor_name",
        ),
        (
            "unknown",
            |b| b.recs[0].name = b"decoder.blocks.1.mlp.0.bias".to_vec(),
            "unknown_tensor",
        ),
        (
            "dup",
            |b| b.recs[1].name = b"decoder.blocks.0.attn.key.weight".to_vec(),
            "duplicate_tensor",
        ),
        (
            "missing",
            |b| {
                b.recs.pop();
            },
            "missing_tensor",
        ),
        (
            "neg",
            |b| b.rec("decoder.ln.bias").ne[0] = -32,
            "bad_tensor_shape",
        ),
        (
            "huge",
            |b| b.rec("decoder.ln.bias").ne[0] = 1 << 30,
            "bad_tensor_shape",
        ),
        (
            "shape",
            |b| b.rec("encoder.positional_embedding").ne = vec![32, 9],
            "bad_tensor_shape",
        ),
        (
            "ttype",
            |b| b.rec("decoder.ln.bias").ttype = 1,
            "bad_tensor_type",
        ),
        (
            "ttype99",
            |b| b.rec("decoder.ln.bias").ttype = 99,
            "bad_tensor_type",
        ),
        ("trailing", |b| b.tail = vec![0; 5], "trailing_bytes"),
        (
            "midtensor",
            |b| {
                b.recs.last_mut().unwrap().data.truncate(3);
            },
            "truncated",
        ),
    ];
    for (tag, edit, code) in cases {
        let mut b = Build::valid();
        edit(&mut b);
        assert_eq!(code_of(tag, &b.bytes()), code, "case {tag}");
    }
}

#[test]
fn truncation_anywhere_is_reported() {
    let bytes = Build::valid().bytes();
    assert_eq!(code_of("empty", &[]), "truncated");
    for cut in [2, 20, 60, 200, 70_000, bytes.len() - 1] {
        assert_eq!(code_of("cut", &bytes[..cut]), "truncated", "cut at {cut}");
    }
}

#[test]
fn missing_file_is_an_io_error() {
    let r = validate_file(std::path::Path::new("/nonexistent/model.bin"), true);
    assert!(matches!(r, Err(CoreError::Io(_))));
}

#[test]
fn known_byte_vectors() {
    let x: Vec<f32> = (0..32).map(|i| i as f32 - 16.0).collect();
    let q8 = quantize_row(&x, GgmlType::Q8_0).unwrap();
    // d = 16/127 as f16 = 0x3008; q = round(x * 127 / 16)
    assert_eq!(&q8[..2], &half::f16::from_f32(16.0 / 127.0).to_le_bytes());
    assert_eq!(q8[2] as i8, -127);
    assert_eq!(q8[2 + 8] as i8, -64); // -8 * 7.9375 = -63.5 → away from zero
    assert_eq!(q8[2 + 16], 0);
    let q4 = quantize_row(&x, GgmlType::Q4_0).unwrap();
    // signed absmax is -16 → d = 2, q = trunc(x/2 + 8.5)
    assert_eq!(&q4[..2], &half::f16::from_f32(2.0).to_le_bytes());
    assert_eq!(q4[2], 0x80); // x=-16 → 0, x=0 → 8
    assert_eq!(q4[17], 0xf8); // x=-1 → trunc(-0.5 + 8.5) = 8; x=15 → min(15, 16)
    let zeros = quantize_row(&[0.0; 32], GgmlType::Q4_0).unwrap();
    assert_eq!(&zeros[..2], &[0x00, 0x80]); // d = 0/-8 = -0.0
    assert!(zeros[2..].iter().all(|&q| q == 0x88));
    let q41 = quantize_row(&x, GgmlType::Q4_1).unwrap();
    assert_eq!(&q41[..2], &half::f16::from_f32(31.0 / 15.0).to_le_bytes());
    assert_eq!(&q41[2..4], &[0x00, 0xcc]); // m = -16
    assert_eq!((q41[4], q41[19]), (0x80, 0xf7)); // x=0 → 8.24 → 8; x=-1 → 7; x=15 → 15
}

#[test]
fn round_trip_error_is_bounded() {
    let x: Vec<f32> = (0..32 * 257)
        .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
        .collect();
    for (t, rel) in [
        (GgmlType::Q8_0, 1.0 / 127.0),
        (GgmlType::Q4_0, 1.0 / 8.0),
        (GgmlType::Q4_1, 1.0 / 15.0),
        (GgmlType::Q5_0, 1.0 / 16.0),
        (GgmlType::Q5_1, 1.0 / 31.0),
        (GgmlType::F16, 1e-3),
    ] {
        let q = quantize_row(&x, t).unwrap();
        assert_eq!(q.len() as u64, t.row_bytes(x.len() as u64).unwrap());
        let y = dequantize_row(&q, t, x.len()).unwrap();
        let err = x
            .iter()
            .zip(&y)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        // range is [-1, 1]: at most one step (2·range/levels for the offset types)
        assert!(err <= 2.0 * rel * 1.01, "{}: max error {err}", t.name());
    }
    assert!(quantize_row(&x[..31], GgmlType::Q8_0).is_err());
    assert!(dequantize_row(&[0; 33], GgmlType::Q8_0, 32).is_err());
}

#[test]
fn quantize_file_matches_row_quantizer_and_validates() {
    let b = Build::valid();
    let src = write("qsrc", &b.bytes());
    for t in GgmlType::QUANTIZED {
        let dst = tmpdir("qdst").join(format!("m-{}.bin", t.name()));
        let rep = quantize_file(&src, &dst, t).unwrap();
        assert_eq!(rep.tensors_quantized, 1 + 6 + 10);
        assert_eq!(rep.tensors_quantized + rep.tensors_copied, 50);
        let info = validate_file(&dst, false).unwrap();
        assert_eq!(info.ftype, t.name());
        assert_eq!(info.hparams.ftype, 2000 + t.header_ftype());
        let bytes = std::fs::read(&dst).unwrap();
        let emb = info
            .tensors
            .iter()
            .find(|x| x.name == "decoder.token_embedding.weight")
            .unwrap();
        let src_vals = dequantize_row(
            &b.recs
                .iter()
                .find(|r| r.name == emb.name.as_bytes())
                .unwrap()
                .data,
            GgmlType::F16,
            emb.n_elements() as usize,
        )
        .unwrap();
        let want = quantize_row(&src_vals, t).unwrap();
        let start = emb.offset as usize;
        assert_eq!(&bytes[start..start + want.len()], &want[..]);
        let conv = info
            .tensors
            .iter()
            .find(|x| x.name == "encoder.conv1.weight")
            .unwrap();
        assert_eq!(conv.dtype, "f16");
    }
    let dst = tmpdir("qdst").join("again.bin");
    let q8 = tmpdir("qdst").join("m-q8_0.bin");
    assert!(matches!(
        quantize_file(&q8, &dst, GgmlType::Q4_0),
        Err(CoreError::InvalidArgument(_))
    ));
    assert!(!dst.exists());
    assert!(matches!(
        quantize_file(&src, &dst, GgmlType::F16),
        Err(CoreError::InvalidArgument(_))
    ));
    let mut bad = Build::valid();
    bad.magic = 0;
    let bad_src = write("qbad", &bad.bytes());
    assert!(matches!(
        quantize_file(&bad_src, &dst, GgmlType::Q8_0),
        Err(CoreError::ModelValidation {
            code: "bad_magic",
            ..
        })
    ));
    assert!(!dst.exists());
}

#[test]
fn type_numbering_round_trips() {
    for t in GgmlType::ALL {
        assert_eq!(GgmlType::from_ttype(t.ttype()), Some(t));
        assert_eq!(GgmlType::from_name(t.name()), Some(t));
        assert_eq!(GgmlType::from_header_ftype(t.header_ftype()), Some(t));
        assert_eq!(
            GgmlType::from_header_ftype(2000 + t.header_ftype()),
            Some(t)
        );
    }
    assert_eq!(GgmlType::from_header_ftype(4), None);
    assert_eq!(GgmlType::from_header_ftype(-1), None);
    assert_eq!(GgmlType::from_ttype(5), None);
}
