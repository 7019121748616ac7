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
    if (-2_147_483_648.0..2_147_483_648.0).contains(&v) {
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

/// `if v < m { v } else { m }` over 8 lanes (maps to `minps`), then across lanes.
#[inline(always)]
fn lanes_min(x: &[f32]) -> f32 {
    let mut m = [f32::MAX; 8];
    for c in x.chunks_exact(8) {
        for k in 0..8 {
            m[k] = if c[k] < m[k] { c[k] } else { m[k] };
        }
    }
    m.into_iter()
        .fold(f32::MAX, |a, v| if v < a { v } else { a })
}

#[inline(always)]
fn lanes_max(x: &[f32]) -> f32 {
    let mut m = [-f32::MAX; 8];
    for c in x.chunks_exact(8) {
        for k in 0..8 {
            m[k] = if c[k] > m[k] { c[k] } else { m[k] };
        }
    }
    m.into_iter()
        .fold(-f32::MAX, |a, v| if v > a { v } else { a })
}

#[inline(always)]
fn lanes_absmax(x: &[f32]) -> f32 {
    let mut m = [0f32; 8];
    for c in x.chunks_exact(8) {
        for k in 0..8 {
            let a = c[k].abs();
            m[k] = if a > m[k] { a } else { m[k] };
        }
    }
    m.into_iter().fold(0.0, |a, v| if v > a { v } else { a })
}

/// Element of largest magnitude with its sign; the first one wins ties, as in ggml
/// (whose running maximum starts at +0, so an all-zero block gives +0).
#[inline(always)]
fn signed_absmax(x: &[f32]) -> f32 {
    let amax = lanes_absmax(x);
    if amax == 0.0 {
        return 0.0;
    }
    x.iter().copied().find(|v| v.abs() == amax).unwrap_or(0.0)
}

/// ggml's sequential minimum and maximum. Order only matters for the sign of a zero result:
/// the sequential scan keeps the first zero it meets.
#[inline(always)]
fn min_max(x: &[f32]) -> (f32, f32) {
    let first_zero = || x.iter().copied().find(|&v| v == 0.0).unwrap_or(0.0);
    let mut min = lanes_min(x);
    let mut max = lanes_max(x);
    if min == 0.0 {
        min = first_zero();
    }
    if max == 0.0 {
        max = first_zero();
    }
    (min, max)
}

#[inline(always)]
fn inv(d: f32) -> f32 {
    if d != 0.0 {
        1.0 / d
    } else {
        0.0
    }
}

/// Levels `cvtt(x·id + bias)` (or of `(x - min)·id + bias`) as ggml's narrowing cast keeps them.
#[inline(always)]
fn levels(x: &[f32], sub: f32, id: f32, bias: f32, cap: i8) -> [u8; QK] {
    let mut l = [0u8; QK];
    for (o, &v) in l.iter_mut().zip(x) {
        *o = (cvtt((v - sub) * id + bias) as i8).min(cap) as u8;
    }
    l
}

/// `qs[j] = lo | hi << 4`; q5 masks the low level to 4 bits, q4 does not (ggml's q4 code
/// ORs the whole byte, which differs only for degenerate blocks).
#[inline(always)]
fn pack_nibbles(l: &[u8; QK], qs: &mut [u8], mask_low: bool) {
    let m = if mask_low { 0x0f } else { 0xff };
    for j in 0..16 {
        qs[j] = (l[j] & m) | (l[j + 16] << 4);
    }
}

#[inline(always)]
fn high_bits(l: &[u8; QK]) -> [u8; 4] {
    let mut qh = 0u32;
    for (j, &v) in l.iter().enumerate() {
        qh |= u32::from((v >> 4) & 1) << j;
    }
    qh.to_le_bytes()
}

#[inline(always)]
fn block_q8_0(x: &[f32], y: &mut [u8]) {
    let d = lanes_absmax(x) / 127.0;
    let id = inv(d);
    put_f16(&mut y[..2], d);
    for (q, &v) in y[2..34].iter_mut().zip(x) {
        *q = round_away(v * id) as i8 as u8;
    }
}

#[inline(always)]
fn block_q4_0(x: &[f32], y: &mut [u8]) {
    let d = signed_absmax(x) / -8.0;
    let id = inv(d);
    put_f16(&mut y[..2], d);
    // x - 0.0 is exactly x, so the shared level function serves the symmetric types too
    pack_nibbles(&levels(x, 0.0, id, 8.5, 15), &mut y[2..18], false);
}

#[inline(always)]
fn block_q4_1(x: &[f32], y: &mut [u8]) {
    let (min, max) = min_max(x);
    let d = (max - min) / 15.0;
    let id = inv(d);
    put_f16(&mut y[..2], d);
    put_f16(&mut y[2..4], min);
    pack_nibbles(&levels(x, min, id, 0.5, 15), &mut y[4..20], false);
}

#[inline(always)]
fn block_q5_0(x: &[f32], y: &mut [u8]) {
    let d = signed_absmax(x) / -16.0;
    let id = inv(d);
    put_f16(&mut y[..2], d);
    let l = levels(x, 0.0, id, 16.5, 31);
    y[2..6].copy_from_slice(&high_bits(&l));
    pack_nibbles(&l, &mut y[6..22], true);
}

#[inline(always)]
fn block_q5_1(x: &[f32], y: &mut [u8]) {
    let (min, max) = min_max(x);
    let d = (max - min) / 31.0;
    let id = inv(d);
    put_f16(&mut y[..2], d);
    put_f16(&mut y[2..4], min);
    // ggml casts to uint8 without a cap: keep the low byte, as `as i8` does before `as u8`
    let l = levels(x, min, id, 0.5, i8::MAX);
    y[4..8].copy_from_slice(&high_bits(&l));
    pack_nibbles(&l, &mut y[8..24], true);
}

#[inline(always)]
fn quantize_blocks_generic(x: &[f32], t: GgmlType, out: &mut [u8]) {
    let bs = t.type_size();
    let blocks = x.chunks_exact(QK).zip(out.chunks_exact_mut(bs));
    match t {
        GgmlType::Q8_0 => blocks.for_each(|(a, b)| block_q8_0(a, b)),
        GgmlType::Q4_0 => blocks.for_each(|(a, b)| block_q4_0(a, b)),
        GgmlType::Q4_1 => blocks.for_each(|(a, b)| block_q4_1(a, b)),
        GgmlType::Q5_0 => blocks.for_each(|(a, b)| block_q5_0(a, b)),
        GgmlType::Q5_1 => blocks.for_each(|(a, b)| block_q5_1(a, b)),
        GgmlType::F32 | GgmlType::F16 => unreachable!("float types are not block-quantized"),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn quantize_blocks_avx2(x: &[f32], t: GgmlType, out: &mut [u8]) {
    // The same code compiled for AVX2 (no FMA: results stay bit-identical).
    quantize_blocks_generic(x, t, out)
}

/// Quantize whole blocks serially: `x.len()` is a multiple of 32 and `out` has room for
/// exactly that many blocks of a quantized type `t`.
pub(super) fn quantize_blocks(x: &[f32], t: GgmlType, out: &mut [u8]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        unsafe { quantize_blocks_avx2(x, t, out) };
        return;
    }
    quantize_blocks_generic(x, t, out)
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
