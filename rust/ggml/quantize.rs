//! Row quantization and dequantization, bit-exact with ggml's reference kernels
//! (`quantize_row_*_ref`, `dequantize_row_*`).
//!
//! Blocks of 32 values; scales are computed in f32, `id = 1/d` from the unrounded `d`, and
//! stored as IEEE f16 rounded to nearest even.

use half::f16;
use rayon::prelude::*;

use super::{GgmlType, QK};
use crate::error::{CoreError, CoreResult};

/// Blocks per parallel task: large enough that scheduling is noise.
const BLOCKS_PER_TASK: usize = 4096;

#[inline]
fn put_f16(out: &mut [u8], v: f32) {
    out.copy_from_slice(&f16::from_f32(v).to_le_bytes());
}

#[inline]
fn get_f16(b: &[u8]) -> f32 {
    f16::from_le_bytes([b[0], b[1]]).to_f32()
}

/// Float to int truncation as C compilers emit it on x86 (`cvttss2si`): out-of-range and
/// NaN give `i32::MIN`. ggml's narrowing casts then keep the low byte, which only matters
/// for degenerate blocks (subnormal scales whose inverse overflows), but keeps them exact.
#[inline]
fn cvtt(v: f32) -> i32 {
    if v >= -2_147_483_648.0 && v < 2_147_483_648.0 {
        v as i32
    } else {
        i32::MIN
    }
}

/// `roundf` (halves away from zero) without a libm call: adding the largest float below
/// 0.5 and truncating is exact for every f32.
#[inline]
fn round_away(v: f32) -> i32 {
    cvtt(v + 0.499_999_97_f32.copysign(v))
}

/// Element of largest magnitude with its sign; the first one wins ties, as in ggml.
#[inline]
fn signed_absmax(x: &[f32]) -> f32 {
    let mut amax = 0.0f32;
    let mut max = 0.0f32;
    for &v in x {
        let a = v.abs();
        if amax < a {
            amax = a;
            max = v;
        }
    }
    max
}

#[inline]
fn min_max(x: &[f32]) -> (f32, f32) {
    let mut min = f32::MAX;
    let mut max = -f32::MAX;
    for &v in x {
        if v < min {
            min = v;
        }
        if v > max {
            max = v;
        }
    }
    (min, max)
}

#[inline]
fn inv(d: f32) -> f32 {
    if d != 0.0 {
        1.0 / d
    } else {
        0.0
    }
}

fn block_q8_0(x: &[f32], y: &mut [u8]) {
    let amax = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let d = amax / 127.0;
    let id = inv(d);
    put_f16(&mut y[..2], d);
    for (q, &v) in y[2..34].iter_mut().zip(x) {
        *q = round_away(v * id) as i8 as u8;
    }
}

fn block_q4_0(x: &[f32], y: &mut [u8]) {
    let d = signed_absmax(x) / -8.0;
    let id = inv(d);
    put_f16(&mut y[..2], d);
    for j in 0..16 {
        let a = (cvtt(x[j] * id + 8.5) as i8).min(15) as u8;
        let b = (cvtt(x[j + 16] * id + 8.5) as i8).min(15) as u8;
        y[2 + j] = a | (b << 4);
    }
}

fn block_q4_1(x: &[f32], y: &mut [u8]) {
    let (min, max) = min_max(x);
    let d = (max - min) / 15.0;
    let id = inv(d);
    put_f16(&mut y[..2], d);
    put_f16(&mut y[2..4], min);
    for j in 0..16 {
        let a = (cvtt((x[j] - min) * id + 0.5) as i8).min(15) as u8;
        let b = (cvtt((x[j + 16] - min) * id + 0.5) as i8).min(15) as u8;
        y[4 + j] = a | (b << 4);
    }
}

fn block_q5_0(x: &[f32], y: &mut [u8]) {
    let d = signed_absmax(x) / -16.0;
    let id = inv(d);
    put_f16(&mut y[..2], d);
    let mut qh = 0u32;
    for j in 0..16 {
        let a = (cvtt(x[j] * id + 16.5) as i8).min(31) as u8;
        let b = (cvtt(x[j + 16] * id + 16.5) as i8).min(31) as u8;
        y[6 + j] = (a & 0x0f) | ((b & 0x0f) << 4);
        qh |= u32::from((a & 0x10) >> 4) << j;
        qh |= u32::from((b & 0x10) >> 4) << (j + 16);
    }
    y[2..6].copy_from_slice(&qh.to_le_bytes());
}

fn block_q5_1(x: &[f32], y: &mut [u8]) {
    let (min, max) = min_max(x);
    let d = (max - min) / 31.0;
    let id = inv(d);
    put_f16(&mut y[..2], d);
    put_f16(&mut y[2..4], min);
    let mut qh = 0u32;
    for j in 0..16 {
        let a = cvtt((x[j] - min) * id + 0.5) as u8;
        let b = cvtt((x[j + 16] - min) * id + 0.5) as u8;
        y[8 + j] = (a & 0x0f) | ((b & 0x0f) << 4);
        qh |= u32::from((a & 0x10) >> 4) << j;
        qh |= u32::from((b & 0x10) >> 4) << (j + 16);
    }
    y[4..8].copy_from_slice(&qh.to_le_bytes());
}

/// Quantize whole blocks serially: `x.len()` is a multiple of 32 and `out` has room for
/// exactly that many blocks of a quantized type `t`.
pub(super) fn quantize_blocks(x: &[f32], t: GgmlType, out: &mut [u8]) {
    let bs = t.type_size();
    let kernel: fn(&[f32], &mut [u8]) = match t {
        GgmlType::Q8_0 => block_q8_0,
        GgmlType::Q4_0 => block_q4_0,
        GgmlType::Q4_1 => block_q4_1,
        GgmlType::Q5_0 => block_q5_0,
        GgmlType::Q5_1 => block_q5_1,
        GgmlType::F32 | GgmlType::F16 => unreachable!("float types are not block-quantized"),
    };
    for (xb, yb) in x.chunks_exact(QK).zip(out.chunks_exact_mut(bs)) {
        kernel(xb, yb);
    }
}

/// Encode `x` as type `t` (f32 and f16 too); quantized types need `x.len() % 32 == 0`.
pub fn quantize_row(x: &[f32], t: GgmlType) -> CoreResult<Vec<u8>> {
    let nbytes = t.row_bytes(x.len() as u64).ok_or_else(|| {
        CoreError::InvalidArgument(format!(
            "{} needs a length that is a multiple of {}, got {}",
            t.name(),
            t.block_size(),
            x.len()
        ))
    })? as usize;
    let mut out = vec![0u8; nbytes];
    match t {
        GgmlType::F32 => {
            for (o, v) in out.chunks_exact_mut(4).zip(x) {
                o.copy_from_slice(&v.to_le_bytes());
            }
        }
        GgmlType::F16 => {
            for (o, &v) in out.chunks_exact_mut(2).zip(x) {
                put_f16(o, v);
            }
        }
        _ => {
            let per = BLOCKS_PER_TASK * QK;
            x.par_chunks(per)
                .zip(out.par_chunks_mut(BLOCKS_PER_TASK * t.type_size()))
                .for_each(|(xs, ys)| quantize_blocks(xs, t, ys));
        }
    }
    Ok(out)
}

/// `q·d`, plus `m` for the types with an offset (adding 0 would turn -0 into +0).
#[inline]
fn scale(q: i32, d: f32, m: Option<f32>) -> f32 {
    match m {
        Some(m) => q as f32 * d + m,
        None => q as f32 * d,
    }
}

fn dequant_block(t: GgmlType, b: &[u8], y: &mut [f32]) {
    match t {
        GgmlType::Q8_0 => {
            let d = get_f16(b);
            for (o, &q) in y.iter_mut().zip(&b[2..34]) {
                *o = f32::from(q as i8) * d;
            }
        }
        GgmlType::Q4_0 | GgmlType::Q4_1 => {
            let d = get_f16(b);
            let (qs, m, off) = if t == GgmlType::Q4_0 {
                (&b[2..18], None, 8)
            } else {
                (&b[4..20], Some(get_f16(&b[2..4])), 0)
            };
            for j in 0..16 {
                let lo = i32::from(qs[j] & 0x0f) - off;
                let hi = i32::from(qs[j] >> 4) - off;
                y[j] = scale(lo, d, m);
                y[j + 16] = scale(hi, d, m);
            }
        }
        GgmlType::Q5_0 | GgmlType::Q5_1 => {
            let d = get_f16(b);
            let (qh_at, m, off) = if t == GgmlType::Q5_0 {
                (2, None, 16)
            } else {
                (4, Some(get_f16(&b[2..4])), 0)
            };
            let qh = u32::from_le_bytes([b[qh_at], b[qh_at + 1], b[qh_at + 2], b[qh_at + 3]]);
            let qs = &b[qh_at + 4..qh_at + 20];
            for j in 0..16 {
                let h0 = ((qh >> j) << 4) & 0x10;
                let h1 = (qh >> (j + 12)) & 0x10;
                let lo = ((u32::from(qs[j] & 0x0f) | h0) as i32) - off;
                let hi = ((u32::from(qs[j] >> 4) | h1) as i32) - off;
                y[j] = scale(lo, d, m);
                y[j + 16] = scale(hi, d, m);
            }
        }
        GgmlType::F32 | GgmlType::F16 => unreachable!("float types have no blocks"),
    }
}

/// Decode `n` values of type `t` from `data`, which must be exactly their encoded size.
pub fn dequantize_row(data: &[u8], t: GgmlType, n: usize) -> CoreResult<Vec<f32>> {
    let want = t.row_bytes(n as u64).ok_or_else(|| {
        CoreError::InvalidArgument(format!(
            "{} needs a count that is a multiple of {}, got {n}",
            t.name(),
            t.block_size()
        ))
    })?;
    if data.len() as u64 != want {
        return Err(CoreError::InvalidArgument(format!(
            "{n} values of {} take {want} bytes, got {}",
            t.name(),
            data.len()
        )));
    }
    let mut y = vec![0f32; n];
    match t {
        GgmlType::F32 => {
            for (o, c) in y.iter_mut().zip(data.chunks_exact(4)) {
                *o = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            }
        }
        GgmlType::F16 => {
            for (o, c) in y.iter_mut().zip(data.chunks_exact(2)) {
                *o = get_f16(c);
            }
        }
        _ => {
            y.par_chunks_mut(QK * BLOCKS_PER_TASK)
                .zip(data.par_chunks(t.type_size() * BLOCKS_PER_TASK))
                .for_each(|(ys, bs)| {
                    for (yb, b) in ys.chunks_exact_mut(QK).zip(bs.chunks_exact(t.type_size())) {
                        dequant_block(t, b, yb);
                    }
                });
        }
    }
    Ok(y)
}
