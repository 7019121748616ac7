//! Quantize a whole f16 model file the way whisper.cpp's `quantize` tool does.

use std::fs::{self, File};
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use half::f16;
use half::slice::{HalfBitsSliceExt, HalfFloatSliceExt};
use rayon::prelude::*;
use serde::Serialize;

use super::quantize::quantize_blocks;
use super::schema::{expected_tensors, is_quantizable};
use super::{validate_file, GgmlType, ModelInfo, QK, QNT_VERSION, QNT_VERSION_FACTOR};
use crate::error::{CoreError, CoreResult};

/// Byte offset of the header `ftype` field (magic + 10 hparams).
const FTYPE_OFFSET: usize = 4 + 10 * 4;
const BLOCKS_PER_TASK: usize = 2048;

/// What [`quantize_file`] did.
#[derive(Debug, Clone, Serialize)]
pub struct QuantizeReport {
    pub src: String,
    pub dst: String,
    pub qtype: &'static str,
    pub tensors_quantized: usize,
    pub tensors_copied: usize,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Wall time of the whole job: validation of both files included.
    pub seconds: f64,
    /// Source megabytes (1e6 bytes) per second of `seconds`.
    pub mb_per_s: f64,
}

/// Quantize the 2-D weights (Linear weights and the token embedding) of the f16 model `src`
/// to `t` and write `dst` atomically (temporary file in the same folder, then rename). Both
/// files are validated; on any failure no file is left at `dst`.
pub fn quantize_file(src: &Path, dst: &Path, t: GgmlType) -> CoreResult<QuantizeReport> {
    if !t.is_quantized() {
        return Err(CoreError::InvalidArgument(format!(
            "{} is not a quantized type (use q8_0, q4_0, q4_1, q5_0 or q5_1)",
            t.name()
        )));
    }
    let start = Instant::now();
    let info = validate_file(src, false)?;
    if info.ftype != GgmlType::F16.name() {
        return Err(CoreError::InvalidArgument(format!(
            "only f16 model files can be quantized; {} is {} (an f32 file would keep f32 conv \
             weights, which whisper.cpp rejects in a quantized file)",
            src.display(),
            info.ftype
        )));
    }
    if info.hparams.n_audio_state as usize % QK != 0 {
        return Err(CoreError::InvalidArgument(format!(
            "state size {} is not a multiple of {QK}: rows cannot be quantized",
            info.hparams.n_audio_state
        )));
    }
    if dst.exists() && fs::canonicalize(dst)? == fs::canonicalize(src)? {
        return Err(CoreError::InvalidArgument(
            "destination is the source file".into(),
        ));
    }
    let tmp = temp_path(dst)?;
    let written = write_quantized(&info, src, &tmp, t).and_then(|counts| {
        fs::rename(&tmp, dst)?;
        Ok(counts)
    });
    let (tensors_quantized, tensors_copied) = match written {
        Ok(c) => c,
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
    };
    let out = match validate_file(dst, false) {
        Ok(out) => out,
        Err(e) => {
            let _ = fs::remove_file(dst);
            return Err(e);
        }
    };
    let seconds = start.elapsed().as_secs_f64();
    Ok(QuantizeReport {
        src: src.to_string_lossy().into_owned(),
        dst: dst.to_string_lossy().into_owned(),
        qtype: t.name(),
        tensors_quantized,
        tensors_copied,
        bytes_in: info.file_size,
        bytes_out: out.file_size,
        seconds,
        mb_per_s: info.file_size as f64 / 1e6 / seconds.max(1e-9),
    })
}

fn temp_path(dst: &Path) -> CoreResult<PathBuf> {
    let name = dst.file_name().ok_or_else(|| {
        CoreError::InvalidArgument(format!("{} is not a file path", dst.display()))
    })?;
    let dir = match dst.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok(dir.join(format!(
        ".{}.partial-{}",
        name.to_string_lossy(),
        std::process::id()
    )))
}

/// Quantize a tensor of f16 values (a whole number of blocks) into `out`.
fn quantize_f16(data: &[u8], t: GgmlType, out: &mut [u8]) {
    let in_per_task = BLOCKS_PER_TASK * QK * 2;
    let out_per_task = BLOCKS_PER_TASK * t.type_size();
    data.par_chunks(in_per_task)
        .zip(out.par_chunks_mut(out_per_task))
        .for_each_init(
            || {
                (
                    vec![0u16; BLOCKS_PER_TASK * QK],
                    vec![0f32; BLOCKS_PER_TASK * QK],
                )
            },
            |(bits, vals), (inp, outp)| {
                let n = inp.len() / 2;
                for (b, c) in bits[..n].iter_mut().zip(inp.chunks_exact(2)) {
                    *b = u16::from_le_bytes([c[0], c[1]]);
                }
                let halves: &[f16] = bits[..n].reinterpret_cast();
                halves.convert_to_f32_slice(&mut vals[..n]);
                quantize_blocks(&vals[..n], t, outp);
            },
        );
}

fn write_quantized(
    info: &ModelInfo,
    src: &Path,
    tmp: &Path,
    t: GgmlType,
) -> CoreResult<(usize, usize)> {
    let mut r = BufReader::with_capacity(1 << 20, File::open(src)?);
    let file = File::create(tmp)?;
    let mut w = BufWriter::with_capacity(4 << 20, file);

    let mut header = vec![0u8; info.tensors_offset as usize];
    r.read_exact(&mut header)?;
    let ftype = QNT_VERSION * QNT_VERSION_FACTOR + t.header_ftype();
    header[FTYPE_OFFSET..FTYPE_OFFSET + 4].copy_from_slice(&ftype.to_le_bytes());
    w.write_all(&header)?;

    let schema = expected_tensors(&info.hparams);
    let (mut quantized, mut copied) = (0, 0);
    let mut data = Vec::new();
    let mut out = Vec::new();
    for ti in &info.tensors {
        let quantize = is_quantizable(schema[&ti.name].1);
        let ty = if quantize { t } else { ti.ggml_type };
        w.write_all(&(ti.shape.len() as i32).to_le_bytes())?;
        w.write_all(&(ti.name.len() as i32).to_le_bytes())?;
        w.write_all(&ty.ttype().to_le_bytes())?;
        for &d in ti.shape.iter().rev() {
            w.write_all(&(d as i32).to_le_bytes())?;
        }
        w.write_all(ti.name.as_bytes())?;
        r.seek(SeekFrom::Start(ti.offset))?;
        data.resize(ti.nbytes as usize, 0);
        r.read_exact(&mut data)?;
        if quantize {
            let n = ti.n_elements() as usize;
            out.resize(n / QK * t.type_size(), 0);
            quantize_f16(&data, t, &mut out);
            w.write_all(&out)?;
            quantized += 1;
        } else {
            w.write_all(&data)?;
            copied += 1;
        }
    }
    let file = w.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    Ok((quantized, copied))
}
