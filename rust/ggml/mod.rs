//! whisper.cpp model files (legacy ggml): types, the expected tensor layout, streaming
//! validation and quantization.
//!
//! The layout facts are those of `docs/ggml-whisper-format.md`: a little-endian header, mel
//! filters, vocabulary, then tensor records. Every check exists because whisper.cpp itself
//! crashes or misbehaves on the corresponding defect.

mod quantize;
mod quantize_file;
mod reader;
mod schema;
#[cfg(test)]
mod tests;

use serde::Serialize;

pub use quantize::{dequantize_row, quantize_row};
pub use quantize_file::{quantize_file, QuantizeReport};
pub use reader::{sha256_file, validate_file};
pub use schema::{expected_tensors, TensorKind};

/// `"ggml"` as the little-endian u32 that opens every file.
pub const MAGIC: u32 = 0x6767_6d6c;
/// Elements per block of every quantized type.
pub const QK: usize = 32;
/// Header ftype offset of quantized files (quantization version 2).
pub const QNT_VERSION_FACTOR: i32 = 1000;
pub const QNT_VERSION: i32 = 2;

/// Tensor element types whisper.cpp files use, with ggml's tensor type numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GgmlType {
    F32,
    F16,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
}

impl GgmlType {
    pub const ALL: [GgmlType; 7] = [
        GgmlType::F32,
        GgmlType::F16,
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q5_0,
        GgmlType::Q5_1,
        GgmlType::Q8_0,
    ];
    pub const QUANTIZED: [GgmlType; 5] = [
        GgmlType::Q8_0,
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q5_0,
        GgmlType::Q5_1,
    ];

    /// The per-tensor `ttype` number (ggml's `enum ggml_type`).
    pub fn ttype(self) -> i32 {
        match self {
            GgmlType::F32 => 0,
            GgmlType::F16 => 1,
            GgmlType::Q4_0 => 2,
            GgmlType::Q4_1 => 3,
            GgmlType::Q5_0 => 6,
            GgmlType::Q5_1 => 7,
            GgmlType::Q8_0 => 8,
        }
    }

    /// The header `ftype` number (mod 1000) of a file whose weights have this type.
    pub fn header_ftype(self) -> i32 {
        match self {
            GgmlType::F32 => 0,
            GgmlType::F16 => 1,
            GgmlType::Q4_0 => 2,
            GgmlType::Q4_1 => 3,
            GgmlType::Q8_0 => 7,
            GgmlType::Q5_0 => 8,
            GgmlType::Q5_1 => 9,
        }
    }

    pub fn from_ttype(v: i32) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.ttype() == v)
    }

    /// Weight type from a header ftype, quantization version included (e.g. 2007 → q8_0).
    pub fn from_header_ftype(ftype: i32) -> Option<Self> {
        let version = ftype.div_euclid(QNT_VERSION_FACTOR);
        if ftype < 0 || !(version == 0 || version == QNT_VERSION) {
            return None;
        }
        let base = ftype % QNT_VERSION_FACTOR;
        Self::ALL.into_iter().find(|t| t.header_ftype() == base)
    }

    pub fn name(self) -> &'static str {
        match self {
            GgmlType::F32 => "f32",
            GgmlType::F16 => "f16",
            GgmlType::Q4_0 => "q4_0",
            GgmlType::Q4_1 => "q4_1",
            GgmlType::Q5_0 => "q5_0",
            GgmlType::Q5_1 => "q5_1",
            GgmlType::Q8_0 => "q8_0",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }

    pub fn is_quantized(self) -> bool {
        !matches!(self, GgmlType::F32 | GgmlType::F16)
    }

    /// Elements per block (1 for the float types).
    pub fn block_size(self) -> usize {
        if self.is_quantized() {
            QK
        } else {
            1
        }
    }

    /// Bytes per block.
    pub fn type_size(self) -> usize {
        match self {
            GgmlType::F32 => 4,
            GgmlType::F16 => 2,
            GgmlType::Q4_0 => 18,
            GgmlType::Q4_1 => 20,
            GgmlType::Q5_0 => 22,
            GgmlType::Q5_1 => 24,
            GgmlType::Q8_0 => 34,
        }
    }

    /// Bytes of a row of `n` elements; `None` when `n` is not a whole number of blocks.
    pub fn row_bytes(self, n: u64) -> Option<u64> {
        let bs = self.block_size() as u64;
        if n % bs != 0 {
            return None;
        }
        (n / bs).checked_mul(self.type_size() as u64)
    }
}

/// The eleven header fields, in file order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct HParams {
    pub n_vocab: i32,
    pub n_audio_ctx: i32,
    pub n_audio_state: i32,
    pub n_audio_head: i32,
    pub n_audio_layer: i32,
    pub n_text_ctx: i32,
    pub n_text_state: i32,
    pub n_text_head: i32,
    pub n_text_layer: i32,
    pub n_mels: i32,
    pub ftype: i32,
}

impl HParams {
    pub fn to_array(&self) -> [i32; 11] {
        [
            self.n_vocab,
            self.n_audio_ctx,
            self.n_audio_state,
            self.n_audio_head,
            self.n_audio_layer,
            self.n_text_ctx,
            self.n_text_state,
            self.n_text_head,
            self.n_text_layer,
            self.n_mels,
            self.ftype,
        ]
    }

    pub fn from_array(v: [i32; 11]) -> Self {
        HParams {
            n_vocab: v[0],
            n_audio_ctx: v[1],
            n_audio_state: v[2],
            n_audio_head: v[3],
            n_audio_layer: v[4],
            n_text_ctx: v[5],
            n_text_state: v[6],
            n_text_head: v[7],
            n_text_layer: v[8],
            n_mels: v[9],
            ftype: v[10],
        }
    }

    /// Model size name whisper.cpp infers from the encoder depth.
    pub fn model_type(&self) -> &'static str {
        match self.n_audio_layer {
            4 => "tiny",
            6 => "base",
            12 => "small",
            24 => "medium",
            32 => "large",
            _ => "unknown",
        }
    }

    pub fn multilingual(&self) -> bool {
        self.n_vocab >= 51865
    }
}

/// One tensor record as found in the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TensorInfo {
    pub name: String,
    /// Shape in PyTorch order (the reverse of ggml's `ne`).
    pub shape: Vec<u64>,
    /// Type name (`"f16"`, `"q8_0"`, ...).
    pub dtype: &'static str,
    /// Byte offset of the tensor data in the file.
    pub offset: u64,
    pub nbytes: u64,
    #[serde(skip)]
    pub ggml_type: GgmlType,
}

impl TensorInfo {
    pub fn n_elements(&self) -> u64 {
        self.shape.iter().product()
    }
}

/// Everything validation learned about a model file.
#[derive(Debug, Clone, Serialize)]
pub struct ModelInfo {
    pub path: String,
    pub file_size: u64,
    pub sha256: Option<String>,
    pub hparams: HParams,
    /// Weight type name from the header ftype.
    pub ftype: &'static str,
    pub model_type: &'static str,
    pub multilingual: bool,
    /// Number of vocabulary entries stored in the file (whisper.cpp names the rest).
    pub n_vocab_stored: u32,
    pub n_tensors: usize,
    pub n_parameters: u64,
    /// Offset of the first tensor record (end of header, filters and vocabulary).
    pub tensors_offset: u64,
    /// Tensors in file order.
    pub tensors: Vec<TensorInfo>,
}
