//! The exact tensor set whisper.cpp expects for given hyper-parameters, with the type each
//! tensor must have in a file of a given weight type.

use std::collections::HashMap;

use super::{GgmlType, HParams};

/// What a tensor is, which decides its stored type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TensorKind {
    /// 2-D Linear weight or the token embedding: stored in the file's weight type and the
    /// only tensors quantization touches.
    Weight,
    /// 3-D convolution weight: f16, or f32 in an all-f32 file.
    Conv,
    /// Biases, LayerNorm, conv biases (`[n, 1]`) and positional embeddings: always f32.
    Float32,
}

impl TensorKind {
    /// The only ttype whisper.cpp accepts for this kind in a file with weight type `wtype`.
    pub fn stored_type(self, wtype: GgmlType) -> GgmlType {
        match self {
            TensorKind::Weight => wtype,
            TensorKind::Conv if wtype == GgmlType::F32 => GgmlType::F32,
            TensorKind::Conv => GgmlType::F16,
            TensorKind::Float32 => GgmlType::F32,
        }
    }
}

/// Expected shape (PyTorch order) and kind for a tensor name.
pub type Schema = HashMap<String, (Vec<u64>, TensorKind)>;

/// Every tensor name of a model with these (already range-checked) hyper-parameters.
pub fn expected_tensors(h: &HParams) -> Schema {
    let n = h.n_audio_state as u64;
    let mut s = Schema::new();
    let mut add = |name: String, shape: Vec<u64>, kind: TensorKind| {
        s.insert(name, (shape, kind));
    };
    let mels = h.n_mels as u64;
    add(
        "encoder.conv1.weight".into(),
        vec![n, mels, 3],
        TensorKind::Conv,
    );
    add("encoder.conv1.bias".into(), vec![n, 1], TensorKind::Float32);
    add(
        "encoder.conv2.weight".into(),
        vec![n, n, 3],
        TensorKind::Conv,
    );
    add("encoder.conv2.bias".into(), vec![n, 1], TensorKind::Float32);
    add(
        "encoder.positional_embedding".into(),
        vec![h.n_audio_ctx as u64, n],
        TensorKind::Float32,
    );
    add(
        "encoder.ln_post.weight".into(),
        vec![n],
        TensorKind::Float32,
    );
    add("encoder.ln_post.bias".into(), vec![n], TensorKind::Float32);
    add(
        "decoder.token_embedding.weight".into(),
        vec![h.n_vocab as u64, n],
        TensorKind::Weight,
    );
    add(
        "decoder.positional_embedding".into(),
        vec![h.n_text_ctx as u64, n],
        TensorKind::Float32,
    );
    add("decoder.ln.weight".into(), vec![n], TensorKind::Float32);
    add("decoder.ln.bias".into(), vec![n], TensorKind::Float32);

    let mut block = |prefix: String, attns: &[&str], lns: &[&str]| {
        for ln in lns {
            add(
                format!("{prefix}.{ln}.weight"),
                vec![n],
                TensorKind::Float32,
            );
            add(format!("{prefix}.{ln}.bias"), vec![n], TensorKind::Float32);
        }
        for attn in attns {
            for proj in ["query", "key", "value", "out"] {
                add(
                    format!("{prefix}.{attn}.{proj}.weight"),
                    vec![n, n],
                    TensorKind::Weight,
                );
                if proj != "key" {
                    add(
                        format!("{prefix}.{attn}.{proj}.bias"),
                        vec![n],
                        TensorKind::Float32,
                    );
                }
            }
        }
        add(
            format!("{prefix}.mlp.0.weight"),
            vec![4 * n, n],
            TensorKind::Weight,
        );
        add(
            format!("{prefix}.mlp.0.bias"),
            vec![4 * n],
            TensorKind::Float32,
        );
        add(
            format!("{prefix}.mlp.2.weight"),
            vec![n, 4 * n],
            TensorKind::Weight,
        );
        add(format!("{prefix}.mlp.2.bias"), vec![n], TensorKind::Float32);
    };
    for i in 0..h.n_audio_layer {
        block(
            format!("encoder.blocks.{i}"),
            &["attn"],
            &["attn_ln", "mlp_ln"],
        );
    }
    for i in 0..h.n_text_layer {
        block(
            format!("decoder.blocks.{i}"),
            &["attn", "cross_attn"],
            &["attn_ln", "cross_attn_ln", "mlp_ln"],
        );
    }
    s
}

/// Whether whisper.cpp's quantize tool quantizes this tensor (2-D weights only).
pub fn is_quantizable(kind: TensorKind) -> bool {
    kind == TensorKind::Weight
}
