//! Streaming parse and validation of a whisper.cpp model file.
//!
//! The file is read once, front to back, through a buffer: tensor data is skipped with a
//! relative seek, or read in chunks when the SHA-256 is wanted. Nothing is allocated in
//! proportion to a size read from the file before that size has been checked against the
//! real file length.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufReader, ErrorKind, Read};
use std::path::Path;

use sha2::{Digest, Sha256};

use super::schema::expected_tensors;
use super::{GgmlType, HParams, ModelInfo, TensorInfo, MAGIC};
use crate::error::{CoreError, CoreResult};

const CHUNK: usize = 1 << 20;
/// Longest vocabulary token accepted (GPT-2 tokens are at most a few dozen bytes).
pub const MAX_TOKEN_LEN: u32 = 1024;
/// Longest tensor name accepted (the longest real one has 38 bytes).
pub const MAX_NAME_LEN: i32 = 128;
const N_FFT: i32 = 201;

/// A bounded, optionally hashing reader that knows the file length.
struct Src {
    r: BufReader<File>,
    pos: u64,
    size: u64,
    hasher: Option<Sha256>,
    buf: Vec<u8>,
}

impl Src {
    fn ensure(&self, n: u64, what: &str) -> CoreResult<()> {
        if self.size.saturating_sub(self.pos) < n {
            return Err(CoreError::model(
                "truncated",
                format!(
                    "file ends inside {what}: needs {n} bytes at offset {}, file has {}",
                    self.pos, self.size
                ),
            ));
        }
        Ok(())
    }

    fn read_exact(&mut self, out: &mut [u8], what: &str) -> CoreResult<()> {
        self.ensure(out.len() as u64, what)?;
        self.r.read_exact(out).map_err(|e| io_err(e, what))?;
        if let Some(h) = self.hasher.as_mut() {
            h.update(&*out);
        }
        self.pos += out.len() as u64;
        Ok(())
    }

    fn read_i32(&mut self, what: &str) -> CoreResult<i32> {
        let mut b = [0u8; 4];
        self.read_exact(&mut b, what)?;
        Ok(i32::from_le_bytes(b))
    }

    fn skip(&mut self, n: u64, what: &str) -> CoreResult<()> {
        self.ensure(n, what)?;
        match self.hasher.as_mut() {
            None => self
                .r
                .seek_relative(n as i64)
                .map_err(|e| io_err(e, what))?,
            Some(h) => {
                let mut left = n;
                while left > 0 {
                    let take = left.min(self.buf.len() as u64) as usize;
                    self.r
                        .read_exact(&mut self.buf[..take])
                        .map_err(|e| io_err(e, what))?;
                    h.update(&self.buf[..take]);
                    left -= take as u64;
                }
            }
        }
        self.pos += n;
        Ok(())
    }
}

fn io_err(e: std::io::Error, what: &str) -> CoreError {
    if e.kind() == ErrorKind::UnexpectedEof {
        CoreError::model("truncated", format!("file ends inside {what}"))
    } else {
        CoreError::model("io", format!("read error in {what}: {e}"))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of a whole file, streamed, as lowercase hex.
pub fn sha256_file(path: &Path) -> CoreResult<String> {
    let mut f = File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

fn bad_hparams(detail: String) -> CoreError {
    CoreError::model("bad_hparams", detail)
}

/// Range checks of the header; the weight type comes back on success.
pub(super) fn check_hparams(h: &HParams) -> CoreResult<GgmlType> {
    if ![51864, 51865, 51866].contains(&h.n_vocab) {
        return Err(bad_hparams(format!(
            "n_vocab = {} (whisper.cpp handles only 51864, 51865 or 51866)",
            h.n_vocab
        )));
    }
    let ranges: [(&str, i32, i32, i32); 8] = [
        ("n_audio_ctx", h.n_audio_ctx, 1, 1500),
        ("n_text_ctx", h.n_text_ctx, 1, 1024),
        ("n_audio_state", h.n_audio_state, 1, 4096),
        ("n_text_state", h.n_text_state, 1, 4096),
        ("n_audio_head", h.n_audio_head, 1, 64),
        ("n_text_head", h.n_text_head, 1, 64),
        ("n_audio_layer", h.n_audio_layer, 1, 64),
        ("n_text_layer", h.n_text_layer, 1, 64),
    ];
    for (name, v, lo, hi) in ranges {
        if v < lo || v > hi {
            return Err(bad_hparams(format!("{name} = {v} is outside {lo}..={hi}")));
        }
    }
    if h.n_text_state != h.n_audio_state {
        return Err(bad_hparams(format!(
            "n_text_state = {} differs from n_audio_state = {}",
            h.n_text_state, h.n_audio_state
        )));
    }
    for (name, heads) in [
        ("n_audio_head", h.n_audio_head),
        ("n_text_head", h.n_text_head),
    ] {
        if h.n_audio_state % heads != 0 {
            return Err(bad_hparams(format!(
                "{name} = {heads} does not divide the state size {}",
                h.n_audio_state
            )));
        }
    }
    if h.n_mels != 80 && h.n_mels != 128 {
        return Err(bad_hparams(format!(
            "n_mels = {} (must be 80 or 128)",
            h.n_mels
        )));
    }
    GgmlType::from_header_ftype(h.ftype).ok_or_else(|| {
        CoreError::model(
            "bad_ftype",
            format!(
                "header ftype = {} (allowed: 0, 1, 2, 3, 7, 8, 9, optionally + 2000)",
                h.ftype
            ),
        )
    })
}

fn read_filters(src: &mut Src, h: &HParams) -> CoreResult<()> {
    let n_mel = src.read_i32("mel filter header")?;
    let n_fft = src.read_i32("mel filter header")?;
    if n_mel != h.n_mels || n_fft != N_FFT {
        return Err(CoreError::model(
            "bad_mel_filters",
            format!(
                "mel filters are {n_mel}x{n_fft}, expected {}x{N_FFT}",
                h.n_mels
            ),
        ));
    }
    let mut raw = vec![0u8; (n_mel * n_fft) as usize * 4];
    src.read_exact(&mut raw, "mel filters")?;
    if let Some(i) = raw
        .chunks_exact(4)
        .position(|c| !f32::from_le_bytes([c[0], c[1], c[2], c[3]]).is_finite())
    {
        return Err(CoreError::model(
            "bad_mel_filters",
            format!("mel filter value {i} is not finite"),
        ));
    }
    Ok(())
}

fn read_vocab(src: &mut Src, h: &HParams) -> CoreResult<u32> {
    let count = src.read_i32("vocabulary count")?;
    if count < 1 || count > h.n_vocab {
        return Err(CoreError::model(
            "bad_vocab",
            format!("vocabulary count {count} is outside 1..={}", h.n_vocab),
        ));
    }
    for i in 0..count {
        let len = src.read_i32("vocabulary")? as u32;
        if len > MAX_TOKEN_LEN {
            return Err(CoreError::model(
                "bad_vocab",
                format!("vocabulary token {i} claims {len} bytes (limit {MAX_TOKEN_LEN})"),
            ));
        }
        src.skip(u64::from(len), "vocabulary")?;
    }
    Ok(count as u32)
}

/// Parse and check a whole model file without loading it; see the module docs of
/// [`crate::ggml`] for what is checked. Each defect is a `ModelValidation` error.
pub fn validate_file(path: &Path, compute_sha256: bool) -> CoreResult<ModelInfo> {
    let file = File::open(path)?;
    let size = file.metadata()?.len();
    let mut src = Src {
        r: BufReader::with_capacity(CHUNK, file),
        pos: 0,
        size,
        hasher: compute_sha256.then(Sha256::new),
        buf: vec![0u8; if compute_sha256 { CHUNK } else { 0 }],
    };
    if size == 0 {
        return Err(CoreError::model("truncated", "the file is empty (0 bytes)"));
    }
    let mut m = [0u8; 4];
    src.read_exact(&mut m, "the magic number")?;
    let magic = u32::from_le_bytes(m);
    if magic != MAGIC {
        return Err(CoreError::model(
            "bad_magic",
            format!("magic is 0x{magic:08x}, not 0x{MAGIC:08x} (\"ggml\")"),
        ));
    }
    let mut hp = [0i32; 11];
    for v in hp.iter_mut() {
        *v = src.read_i32("the hyper-parameters")?;
    }
    let h = HParams::from_array(hp);
    let wtype = check_hparams(&h)?;
    read_filters(&mut src, &h)?;
    let n_vocab_stored = read_vocab(&mut src, &h)?;
    let tensors_offset = src.pos;

    let schema = expected_tensors(&h);
    let mut seen: HashSet<String> = HashSet::with_capacity(schema.len());
    let mut tensors = Vec::with_capacity(schema.len());
    while src.pos < size {
        if seen.len() == schema.len() {
            return Err(CoreError::model(
                "trailing_bytes",
                format!(
                    "{} bytes after the last tensor (offset {})",
                    size - src.pos,
                    src.pos
                ),
            ));
        }
        let t = read_tensor(&mut src, &schema, wtype, &seen)?;
        seen.insert(t.name.clone());
        tensors.push(t);
    }
    if seen.len() != schema.len() {
        let mut missing: Vec<&String> = schema.keys().filter(|k| !seen.contains(*k)).collect();
        missing.sort();
        let shown: Vec<&str> = missing.iter().take(3).map(|s| s.as_str()).collect();
        return Err(CoreError::model(
            "missing_tensor",
            format!(
                "{} tensor(s) missing, e.g. {}",
                missing.len(),
                shown.join(", ")
            ),
        ));
    }
    let sha256 = src.hasher.take().map(|h| hex(&h.finalize()));
    Ok(ModelInfo {
        path: path.to_string_lossy().into_owned(),
        file_size: size,
        sha256,
        hparams: h,
        ftype: wtype.name(),
        model_type: h.model_type(),
        multilingual: h.multilingual(),
        n_vocab_stored,
        n_tensors: tensors.len(),
        n_parameters: tensors.iter().map(TensorInfo::n_elements).sum(),
        tensors_offset,
        tensors,
    })
}

fn read_tensor(
    src: &mut Src,
    schema: &super::schema::Schema,
    wtype: GgmlType,
    seen: &HashSet<String>,
) -> CoreResult<TensorInfo> {
    let at = src.pos;
    let what = "a tensor record header";
    let n_dims = src.read_i32(what)?;
    let name_len = src.read_i32(what)?;
    let ttype = src.read_i32(what)?;
    if !(1..=4).contains(&n_dims) {
        return Err(CoreError::model(
            "bad_tensor_dims",
            format!("tensor record at offset {at} has n_dims = {n_dims} (must be 1..=4)"),
        ));
    }
    if !(1..=MAX_NAME_LEN).contains(&name_len) {
        return Err(CoreError::model(
            "bad_tensor_name",
            format!("tensor record at offset {at} has a name length of {name_len} (must be 1..={MAX_NAME_LEN})"),
        ));
    }
    let mut ne = [0i32; 4];
    for v in ne.iter_mut().take(n_dims as usize) {
        *v = src.read_i32(what)?;
    }
    let mut name_raw = vec![0u8; name_len as usize];
    src.read_exact(&mut name_raw, "a tensor name")?;
    let name = String::from_utf8(name_raw).map_err(|_| {
        CoreError::model(
            "bad_tensor_name",
            format!("tensor name at offset {at} is not UTF-8"),
        )
    })?;
    let Some((expected, kind)) = schema.get(&name) else {
        return Err(CoreError::model(
            "unknown_tensor",
            format!("unknown tensor {name:?} at offset {at}"),
        ));
    };
    if seen.contains(&name) {
        return Err(CoreError::model(
            "duplicate_tensor",
            format!("tensor {name:?} appears twice (again at offset {at})"),
        ));
    }
    let ne = &ne[..n_dims as usize];
    if let Some(bad) = ne.iter().find(|&&d| d <= 0) {
        return Err(CoreError::model(
            "bad_tensor_shape",
            format!("tensor {name:?} has a dimension of {bad}"),
        ));
    }
    let shape: Vec<u64> = ne.iter().rev().map(|&d| d as u64).collect();
    if &shape != expected {
        return Err(CoreError::model(
            "bad_tensor_shape",
            format!("tensor {name:?} has shape {shape:?}, expected {expected:?}"),
        ));
    }
    let want = kind.stored_type(wtype);
    let Some(ty) = GgmlType::from_ttype(ttype) else {
        return Err(CoreError::model(
            "bad_tensor_type",
            format!("tensor {name:?} has unknown ttype {ttype}"),
        ));
    };
    if ty != want {
        return Err(CoreError::model(
            "bad_tensor_type",
            format!(
                "tensor {name:?} is {} but a {} file stores it as {}",
                ty.name(),
                wtype.name(),
                want.name()
            ),
        ));
    }
    let rows: u64 = shape[..shape.len() - 1].iter().product();
    let nbytes = ty
        .row_bytes(shape[shape.len() - 1])
        .and_then(|r| r.checked_mul(rows))
        .ok_or_else(|| {
            CoreError::model(
                "bad_tensor_shape",
                format!(
                    "tensor {name:?}: row length {} is not a multiple of {} for {}",
                    shape[shape.len() - 1],
                    ty.block_size(),
                    ty.name()
                ),
            )
        })?;
    let offset = src.pos;
    src.skip(nbytes, &format!("the data of tensor {name:?}"))?;
    Ok(TensorInfo {
        name,
        shape,
        dtype: ty.name(),
        offset,
        nbytes,
        ggml_type: ty,
    })
}
