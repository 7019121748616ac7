//! Slaney mel filters (librosa's defaults) and the whisper.cpp log-mel normalisation.

use std::sync::OnceLock;

use rayon::prelude::*;

use super::stft::{N_BINS, N_FFT};
use crate::error::{CoreError, CoreResult};

const SAMPLE_RATE_HZ: f64 = 16_000.0;
/// Slaney scale: linear below 1 kHz (200/3 Hz per mel), logarithmic above.
const F_SP: f64 = 200.0 / 3.0;
const MIN_LOG_HZ: f64 = 1000.0;
const MIN_LOG_MEL: f64 = MIN_LOG_HZ / F_SP;

fn log_step() -> f64 {
    6.4f64.ln() / 27.0
}

fn hz_to_mel(hz: f64) -> f64 {
    if hz >= MIN_LOG_HZ {
        MIN_LOG_MEL + (hz / MIN_LOG_HZ).ln() / log_step()
    } else {
        hz / F_SP
    }
}

fn mel_to_hz(mel: f64) -> f64 {
    if mel >= MIN_LOG_MEL {
        MIN_LOG_HZ * (log_step() * (mel - MIN_LOG_MEL)).exp()
    } else {
        F_SP * mel
    }
}

/// Mel filterbank `[n_mels][201]` row-major, equal to
/// `librosa.filters.mel(sr=16000, n_fft=400, n_mels=n_mels)` (Slaney scale and norm), which is
/// what Whisper ships in `mel_filters.npz`.
pub fn mel_filters(n_mels: usize) -> Vec<f32> {
    let mut weights = vec![0.0f32; n_mels * N_BINS];
    if n_mels == 0 {
        return weights;
    }
    let (mel_lo, mel_hi) = (hz_to_mel(0.0), hz_to_mel(SAMPLE_RATE_HZ / 2.0));
    let edges: Vec<f64> = (0..n_mels + 2)
        .map(|i| mel_to_hz(mel_lo + (mel_hi - mel_lo) * i as f64 / (n_mels + 1) as f64))
        .collect();
    for (m, row) in weights.chunks_exact_mut(N_BINS).enumerate() {
        let (left, centre, right) = (edges[m], edges[m + 1], edges[m + 2]);
        let enorm = 2.0 / (right - left);
        for (k, w) in row.iter_mut().enumerate() {
            let freq = k as f64 * SAMPLE_RATE_HZ / N_FFT as f64;
            let lower = (freq - left) / (centre - left);
            let upper = (right - freq) / (right - centre);
            let tri = lower.min(upper).max(0.0);
            // librosa stores the triangle as float32 before scaling it: round the same way.
            *w = ((tri as f32) as f64 * enorm) as f32;
        }
    }
    weights
}

/// A filterbank stored as the non-zero run of each filter.
pub(crate) struct SparseFilters {
    pub n_mels: usize,
    rows: Vec<(usize, Vec<f64>)>,
}

impl SparseFilters {
    fn new(n_mels: usize) -> Self {
        let dense = mel_filters(n_mels);
        let rows = dense
            .chunks_exact(N_BINS)
            .map(|row| {
                let first = row.iter().position(|&w| w != 0.0).unwrap_or(0);
                let last = row.iter().rposition(|&w| w != 0.0).map_or(first, |l| l + 1);
                (first, row[first..last].iter().map(|&w| w as f64).collect())
            })
            .collect();
        SparseFilters { n_mels, rows }
    }

    /// log10 of each band's energy (floored at 1e-10) for four frames at once: `power` is
    /// bin-major `[201][4]` so the four independent sums run in one vector register.
    #[inline(always)]
    pub fn log10_bands4(&self, power: &[[f64; 4]], out: &mut [[f64; 4]]) {
        for ((start, w), o) in self.rows.iter().zip(out.iter_mut()) {
            let mut acc = [0.0; 4];
            for (p, w) in power[*start..*start + w.len()].iter().zip(w) {
                for l in 0..4 {
                    acc[l] += p[l] * w;
                }
            }
            *o = acc.map(|v| v.max(1e-10));
        }
        for o in out.iter_mut() {
            *o = o.map(log10_positive);
        }
    }
}

/// log10 of a positive normal number, branch-free so the loop above vectorises; absolute
/// error below 1e-13 (exponent from the bits, ln of the mantissa in [0.707, 1.414) by the
/// atanh series 2 (s + s^3/3 + ... + s^15/15), s = (m - 1) / (m + 1), |s| <= 0.172).
#[inline]
pub(crate) fn log10_positive(x: f64) -> f64 {
    const EXP_MASK: u64 = 0x000f_ffff_ffff_ffff;
    const TWO_52: f64 = 4_503_599_627_370_496.0;
    let bits = x.to_bits();
    // (2^52 + biased exponent) - 2^52 - 1023, without an integer-to-float conversion.
    let mut e = f64::from_bits(0x4330_0000_0000_0000 | (bits >> 52)) - (TWO_52 + 1023.0);
    let mut m = f64::from_bits((bits & EXP_MASK) | 0x3ff0_0000_0000_0000);
    let big = m > std::f64::consts::SQRT_2;
    m = if big { m * 0.5 } else { m };
    e += if big { 1.0 } else { 0.0 };
    let s = (m - 1.0) / (m + 1.0);
    let z = s * s;
    let series = 1.0
        + z * (1.0 / 3.0
            + z * (1.0 / 5.0
                + z * (1.0 / 7.0
                    + z * (1.0 / 9.0 + z * (1.0 / 11.0 + z * (1.0 / 13.0 + z / 15.0))))));
    (e * std::f64::consts::LN_2 + 2.0 * s * series) * std::f64::consts::LOG10_E
}

/// The cached filterbank for one of Whisper's two front ends (80 or 128 bands).
pub(crate) fn whisper_filters(n_mels: usize) -> CoreResult<&'static SparseFilters> {
    static MEL_80: OnceLock<SparseFilters> = OnceLock::new();
    static MEL_128: OnceLock<SparseFilters> = OnceLock::new();
    match n_mels {
        80 => Ok(MEL_80.get_or_init(|| SparseFilters::new(80))),
        128 => Ok(MEL_128.get_or_init(|| SparseFilters::new(128))),
        other => Err(CoreError::InvalidArgument(format!(
            "n_mels must be 80 or 128 (Whisper's front ends), got {other}"
        ))),
    }
}

/// whisper.cpp's normalisation: clamp at (global max - 8), then `(x + 4) / 4`.
///
/// `blocks` hold log10 band energies of consecutive chunks of frames, each band-major
/// (`[n_mels][frames of the chunk]`), for every frame that touches audio, and `max` is their
/// maximum. The global maximum also spans the all-zero padding frames whisper.cpp appends,
/// whose value is log10(1e-10) = -10; only the first `n_keep` frames are returned, as
/// `[n_mels][n_keep]`.
pub(crate) fn whisper_normalise(
    blocks: &[Vec<f32>],
    max: f32,
    n_mels: usize,
    n_keep: usize,
) -> Vec<f32> {
    let floor = max.max(-10.0) as f64 - 8.0;
    let mut out = vec![0.0f32; n_mels * n_keep];
    out.par_chunks_mut(n_keep.max(1))
        .enumerate()
        .for_each(|(m, row)| {
            let mut done = 0;
            for block in blocks {
                if done == n_keep {
                    break;
                }
                let len = block.len() / n_mels;
                let take = len.min(n_keep - done);
                let src = &block[m * len..m * len + take];
                for (o, &v) in row[done..done + take].iter_mut().zip(src) {
                    *o = (((v as f64).max(floor) + 4.0) / 4.0) as f32;
                }
                done += take;
            }
        });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_have_whisper_shape_and_slaney_area() {
        for n_mels in [80usize, 128] {
            let f = mel_filters(n_mels);
            assert_eq!(f.len(), n_mels * N_BINS);
            // Slaney norm: each triangle has area 1 in Hz (sum of weights * 40 Hz ~= 1
            // where the triangle is wide enough to be sampled well).
            let row = &f[(n_mels - 1) * N_BINS..];
            let area: f64 = row.iter().map(|&w| w as f64 * 40.0).sum();
            assert!((area - 1.0).abs() < 0.05, "area {area}");
            assert!(f.iter().all(|&w| w >= 0.0));
        }
    }

    #[test]
    fn fast_log10_is_accurate() {
        let mut x = 1e-10;
        while x < 1e12 {
            assert!((log10_positive(x) - x.log10()).abs() < 1e-13, "{x}");
            x *= 1.0137;
        }
        for x in [1.0, 2.0, std::f64::consts::SQRT_2, 10.0, 1e-10, 123.456] {
            assert!((log10_positive(x) - x.log10()).abs() < 1e-13, "{x}");
        }
    }

    #[test]
    fn mel_scale_round_trips() {
        for hz in [0.0, 100.0, 999.0, 1000.0, 4000.0, 8000.0] {
            assert!((mel_to_hz(hz_to_mel(hz)) - hz).abs() < 1e-9);
        }
    }

    #[test]
    fn unsupported_band_counts_are_rejected() {
        assert!(matches!(
            whisper_filters(64),
            Err(CoreError::InvalidArgument(_))
        ));
        assert_eq!(whisper_filters(128).unwrap().n_mels, 128);
    }
}
