//! Whisper's framing (n_fft 400, hop 160, periodic Hann, reflective pad of 200 samples at the
//! start, zeros after the end) and the single pass over frames that derives every per-frame
//! quantity from one real FFT.

use std::sync::{Arc, OnceLock};

use rayon::prelude::*;
use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};

use super::mel::SparseFilters;

pub const N_FFT: usize = 400;
pub const HOP: usize = 160;
pub const N_BINS: usize = N_FFT / 2 + 1;
/// Samples of padding before the signal (frame `i` is centred on sample `i * HOP`).
pub const PAD: usize = N_FFT / 2;
/// Hz between two FFT bins at 16 kHz.
pub const BIN_HZ: f64 = 16_000.0 / N_FFT as f64;
/// Band of the syllable envelope (bins of 40 Hz): 300 Hz ..= 3000 Hz.
const BAND_BINS: std::ops::RangeInclusive<usize> = 8..=75;
/// Frames handed to one rayon task.
const CHUNK: usize = 128;

/// Frames whisper.cpp treats as real audio (`n_len_org = 1 + (n + 200 - 400) / 160`), at
/// least one.
pub fn n_frames(n_samples: usize) -> usize {
    1 + n_samples.saturating_sub(PAD) / HOP
}

/// Frames that contain any audio at all (whisper.cpp computes the FFT for these only; every
/// later frame is pure padding).
pub fn n_frames_with_audio(n_samples: usize) -> usize {
    (n_samples + PAD) / HOP + 1
}

/// Everything measured on one frame.
#[derive(Debug, Clone, Copy, Default)]
pub struct FrameStats {
    /// Mean of x² over the raw (unwindowed) frame.
    pub mean_square: f64,
    /// Fraction of sample pairs whose sign differs (librosa's convention: |x| <= 1e-10 is 0,
    /// which counts as positive; divided by the frame length).
    pub zcr: f64,
    /// Magnitude-weighted mean frequency (Hz), 0 for a silent frame.
    pub centroid: f64,
    /// Magnitude-weighted standard deviation of frequency around the centroid (Hz).
    pub spread: f64,
    /// Geometric over arithmetic mean of the power spectrum (floored at 1e-10).
    pub flatness: f64,
    /// Power in 300..3000 Hz, the syllable envelope.
    pub band_energy: f64,
}

/// Per-frame results: stats for every frame with audio, and log10 mel energies frames-major.
pub struct FramePass {
    pub stats: Vec<FrameStats>,
    pub log_mel: Vec<f64>,
}

fn hann() -> &'static [f64; N_FFT] {
    static WINDOW: OnceLock<[f64; N_FFT]> = OnceLock::new();
    WINDOW.get_or_init(|| {
        let mut w = [0.0; N_FFT];
        for (i, v) in w.iter_mut().enumerate() {
            *v = 0.5 * (1.0 - (2.0 * std::f64::consts::PI * i as f64 / N_FFT as f64).cos());
        }
        w
    })
}

fn fft_plan() -> &'static Arc<dyn RealToComplex<f64>> {
    static PLAN: OnceLock<Arc<dyn RealToComplex<f64>>> = OnceLock::new();
    PLAN.get_or_init(|| RealFftPlanner::<f64>::new().plan_fft_forward(N_FFT))
}

/// Sample `j` of the padded signal: `x[PAD - j]` mirrored before the start, zeros after the end.
/// whisper.cpp reads past the end of signals shorter than 201 samples for the mirror; here
/// those missing samples are zeros.
#[inline]
fn padded(signal: &[f32], j: usize) -> f32 {
    if j < PAD {
        signal.get(PAD - j).copied().unwrap_or(0.0)
    } else {
        signal.get(j - PAD).copied().unwrap_or(0.0)
    }
}

struct Scratch {
    raw: Vec<f64>,
    input: Vec<f64>,
    spectrum: Vec<Complex<f64>>,
    fft_scratch: Vec<Complex<f64>>,
    power: Vec<f64>,
}

impl Scratch {
    fn new() -> Self {
        let plan = fft_plan();
        Scratch {
            raw: vec![0.0; N_FFT],
            input: plan.make_input_vec(),
            spectrum: plan.make_output_vec(),
            fft_scratch: plan.make_scratch_vec(),
            power: vec![0.0; N_BINS],
        }
    }
}

/// Mean of ln(v) for positive finite values, multiplying blocks before taking one log each.
fn mean_ln(values: &[f64]) -> f64 {
    let mut acc = 0.0;
    for block in values.chunks(8) {
        let product: f64 = block.iter().product();
        if product.is_normal() {
            acc += product.ln();
        } else {
            acc += block.iter().map(|v| v.ln()).sum::<f64>();
        }
    }
    acc / values.len() as f64
}

fn analyse_frame(
    signal: &[f32],
    index: usize,
    s: &mut Scratch,
    mel: Option<(&SparseFilters, &mut [f64])>,
) -> FrameStats {
    let offset = index * HOP;
    if offset >= PAD && offset + N_FFT <= signal.len() + PAD {
        for (r, &x) in s.raw.iter_mut().zip(&signal[offset - PAD..offset - PAD + N_FFT]) {
            *r = x as f64;
        }
    } else {
        for (j, r) in s.raw.iter_mut().enumerate() {
            *r = padded(signal, offset + j) as f64;
        }
    }

    let mut sum_sq = 0.0;
    let mut crossings = 0u32;
    let mut prev_negative = s.raw[0] < -1e-10;
    for &x in &s.raw {
        sum_sq += x * x;
        let negative = x < -1e-10;
        crossings += (negative != prev_negative) as u32;
        prev_negative = negative;
    }

    for ((i, r), w) in s.input.iter_mut().zip(&s.raw).zip(hann()) {
        *i = r * w;
    }
    fft_plan()
        .process_with_scratch(&mut s.input, &mut s.spectrum, &mut s.fft_scratch)
        .expect("buffers come from the plan");

    let (mut mag_sum, mut mag_f, mut mag_f2, mut pow_sum, mut band) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for (k, (c, p)) in s.spectrum.iter().zip(s.power.iter_mut()).enumerate() {
        let power = c.re * c.re + c.im * c.im;
        let mag = power.sqrt();
        let f = k as f64 * BIN_HZ;
        mag_sum += mag;
        mag_f += mag * f;
        mag_f2 += mag * f * f;
        if BAND_BINS.contains(&k) {
            band += power;
        }
        *p = power;
        pow_sum += power.max(1e-10);
    }
    let (centroid, spread) = if mag_sum > f64::MIN_POSITIVE {
        let c = mag_f / mag_sum;
        // E[(f - c)^2] = E[f^2] - c^2; clamp the rounding residue of a pure tone at zero.
        (c, (mag_f2 / mag_sum - c * c).max(0.0).sqrt())
    } else {
        (0.0, 0.0)
    };
    if let Some((filters, out)) = mel {
        filters.log10_bands(&s.power, out);
    }
    for p in s.power.iter_mut() {
        *p = p.max(1e-10);
    }
    let flatness = mean_ln(&s.power).exp() / (pow_sum / N_BINS as f64);

    FrameStats {
        mean_square: sum_sq / N_FFT as f64,
        zcr: crossings as f64 / N_FFT as f64,
        centroid,
        spread,
        flatness,
        band_energy: band,
    }
}

/// One pass over the frames `0..n_frames_with_audio`, in parallel chunks; the log-mel is
/// computed too when `mel` is given.
pub fn frame_pass(signal: &[f32], mel: Option<&SparseFilters>) -> FramePass {
    let n_all = n_frames_with_audio(signal.len());
    let n_mels = mel.map_or(0, |m| m.n_mels);
    let chunks: Vec<(Vec<FrameStats>, Vec<f64>)> = (0..n_all.div_ceil(CHUNK))
        .into_par_iter()
        .map(|c| {
            let frames = c * CHUNK..((c + 1) * CHUNK).min(n_all);
            let mut scratch = Scratch::new();
            let mut log_mel = vec![0.0; frames.len() * n_mels];
            let mut stats = Vec::with_capacity(frames.len());
            for (j, i) in frames.enumerate() {
                let out = mel.map(|m| (m, &mut log_mel[j * n_mels..(j + 1) * n_mels]));
                stats.push(analyse_frame(signal, i, &mut scratch, out));
            }
            (stats, log_mel)
        })
        .collect();
    let mut pass = FramePass {
        stats: Vec::with_capacity(n_all),
        log_mel: Vec::with_capacity(n_all * n_mels),
    };
    for (stats, log_mel) in chunks {
        pass.stats.extend(stats);
        pass.log_mel.extend(log_mel);
    }
    pass
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_counts_follow_whisper_cpp() {
        // n_len_org = 1 + (n + 200 - 400) / 160
        assert_eq!(n_frames(16_000), 99);
        assert_eq!(n_frames(480_000), 2999);
        assert_eq!(n_frames(1), 1);
        assert_eq!(n_frames_with_audio(16_000), 102);
    }

    #[test]
    fn padding_mirrors_the_start_and_zero_fills_the_end() {
        let x: Vec<f32> = (0..300).map(|v| v as f32).collect();
        assert_eq!(padded(&x, 0), 200.0);
        assert_eq!(padded(&x, 199), 1.0);
        assert_eq!(padded(&x, 200), 0.0);
        assert_eq!(padded(&x, 201), 1.0);
        assert_eq!(padded(&x, 499), 299.0);
        assert_eq!(padded(&x, 500), 0.0);
    }

    #[test]
    fn mean_ln_matches_direct_sum_even_for_tiny_values() {
        let v = [1e-10, 3.0, 1e-10, 1e-10, 1e-10, 1e-10, 1e-10, 1e-10, 1e-10, 2.5e300];
        let direct = v.iter().map(|x: &f64| x.ln()).sum::<f64>() / v.len() as f64;
        assert!((mean_ln(&v) - direct).abs() < 1e-9);
    }
}
