//! Whisper's framing (n_fft 400, hop 160, periodic Hann, reflective pad of 200 samples at the
//! start, zeros after the end) and the single pass over frames that derives every per-frame
//! quantity from one FFT. Two real frames share each complex FFT (one as the real part, one as
//! the imaginary part), and a chunk's FFTs run as one batch.

use std::sync::{Arc, OnceLock};

use rayon::prelude::*;
use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};

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

/// Per-frame results: stats for every frame with audio, and log10 mel energies frames-major
/// (float32, as whisper.cpp stores them).
pub struct FramePass {
    pub stats: Vec<FrameStats>,
    pub log_mel: Vec<f32>,
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

fn fft_plan() -> &'static Arc<dyn Fft<f64>> {
    static PLAN: OnceLock<Arc<dyn Fft<f64>>> = OnceLock::new();
    PLAN.get_or_init(|| FftPlanner::<f64>::new().plan_fft_forward(N_FFT))
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
    raw: [f64; N_FFT],
    /// `CHUNK / 2` complex frames of `N_FFT`: frame `2p` in the real parts, `2p + 1` imaginary.
    pairs: Vec<Complex<f64>>,
    fft_scratch: Vec<Complex<f64>>,
    power: [f64; N_BINS],
    mag: [f64; N_BINS],
    dev: [f64; N_BINS],
    /// Power spectra of four consecutive frames, bin-major, for the mel filterbank.
    power4: [[f64; 4]; N_BINS],
    mel4: Vec<[f64; 4]>,
}

impl Scratch {
    fn new(n_mels: usize) -> Self {
        Scratch {
            raw: [0.0; N_FFT],
            pairs: vec![Complex::default(); CHUNK / 2 * N_FFT],
            fft_scratch: vec![Complex::default(); fft_plan().get_inplace_scratch_len()],
            power: [0.0; N_BINS],
            mag: [0.0; N_BINS],
            dev: [0.0; N_BINS],
            power4: [[0.0; 4]; N_BINS],
            mel4: vec![[0.0; 4]; n_mels],
        }
    }
}

fn bin_freqs() -> &'static [f64; N_BINS] {
    static FREQS: OnceLock<[f64; N_BINS]> = OnceLock::new();
    FREQS.get_or_init(|| std::array::from_fn(|k| k as f64 * BIN_HZ))
}

/// Dot product with four independent accumulators (lets the compiler vectorise it).
#[inline]
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let (ca, cb) = (a.chunks_exact(4), b.chunks_exact(4));
    let tail: f64 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    let mut acc = [0.0; 4];
    for (x, y) in ca.zip(cb) {
        for l in 0..4 {
            acc[l] += x[l] * y[l];
        }
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

#[inline]
fn sum(a: &[f64]) -> f64 {
    let chunks = a.chunks_exact(4);
    let tail: f64 = chunks.remainder().iter().sum();
    let mut acc = [0.0; 4];
    for x in chunks {
        for l in 0..4 {
            acc[l] += x[l];
        }
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

/// Mean of ln(v) for positive finite values, multiplying blocks before taking one log each.
fn mean_ln(values: &[f64]) -> f64 {
    let mut acc = 0.0;
    for block in values.chunks(16) {
        let product: f64 = block.iter().product();
        if product.is_normal() {
            acc += product.ln();
        } else {
            acc += block.iter().map(|v| v.ln()).sum::<f64>();
        }
    }
    acc / values.len() as f64
}

/// Loads frame `index` into `raw` and returns its (mean square, zero-crossing rate).
#[inline(always)]
fn time_stats(signal: &[f32], index: usize, raw: &mut [f64; N_FFT]) -> (f64, f64) {
    let offset = index * HOP;
    if offset >= PAD && offset + N_FFT <= signal.len() + PAD {
        for (r, &x) in raw
            .iter_mut()
            .zip(&signal[offset - PAD..offset - PAD + N_FFT])
        {
            *r = x as f64;
        }
    } else {
        for (j, r) in raw.iter_mut().enumerate() {
            *r = padded(signal, offset + j) as f64;
        }
    }
    let negative = |x: f64| (x < -1e-10) as u32;
    let crossings: u32 = raw
        .windows(2)
        .map(|w| negative(w[0]) ^ negative(w[1]))
        .sum();
    (
        dot(raw, raw) / N_FFT as f64,
        crossings as f64 / N_FFT as f64,
    )
}

/// Power spectrum of one of the two real frames packed in `z`: with `Z` the FFT of
/// `a + i b`, `A[k] = (Z[k] + conj Z[N-k]) / 2` and `B[k] = (Z[k] - conj Z[N-k]) / 2i`.
#[inline(always)]
fn unpack_power(z: &[Complex<f64>], imaginary: bool, power: &mut [f64; N_BINS]) {
    for (k, p) in power.iter_mut().enumerate() {
        let zk = z[k];
        let zn = z[(N_FFT - k) % N_FFT].conj();
        let d = if imaginary { zk - zn } else { zk + zn };
        *p = 0.25 * (d.re * d.re + d.im * d.im);
    }
}

/// Spectral statistics of the power spectrum in `s.power` (which is floored afterwards).
#[inline(always)]
fn spectral_stats(s: &mut Scratch, st: &mut FrameStats) {
    for (m, p) in s.mag.iter_mut().zip(&s.power) {
        *m = p.sqrt();
    }
    let freqs = bin_freqs();
    let mag_sum = sum(&s.mag);
    (st.centroid, st.spread) = if mag_sum > f64::MIN_POSITIVE {
        let c = dot(&s.mag, freqs) / mag_sum;
        for (d, f) in s.dev.iter_mut().zip(freqs) {
            *d = (f - c) * (f - c);
        }
        (c, (dot(&s.mag, &s.dev) / mag_sum).sqrt())
    } else {
        (0.0, 0.0)
    };
    st.band_energy = sum(&s.power[BAND_BINS]);
    for p in s.power.iter_mut() {
        *p = p.max(1e-10);
    }
    st.flatness = mean_ln(&s.power).exp() / (sum(&s.power) / N_BINS as f64);
}

/// Analyses the frames of one chunk, writing log10 mel energies frames-major into `log_mel`;
/// with AVX2 code for the per-bin arithmetic where the CPU has it.
fn analyse_chunk(
    signal: &[f32],
    first: usize,
    stats: &mut [FrameStats],
    log_mel: &mut [f32],
    mel: Option<&SparseFilters>,
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        unsafe { analyse_chunk_avx2(signal, first, stats, log_mel, mel) };
        return;
    }
    analyse_chunk_generic(signal, first, stats, log_mel, mel);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn analyse_chunk_avx2(
    signal: &[f32],
    first: usize,
    stats: &mut [FrameStats],
    log_mel: &mut [f32],
    mel: Option<&SparseFilters>,
) {
    analyse_chunk_generic(signal, first, stats, log_mel, mel);
}

#[inline(always)]
fn analyse_chunk_generic(
    signal: &[f32],
    first: usize,
    stats: &mut [FrameStats],
    log_mel: &mut [f32],
    mel: Option<&SparseFilters>,
) {
    let n_mels = mel.map_or(0, |m| m.n_mels);
    let mut s = Scratch::new(n_mels);
    let n_pairs = stats.len().div_ceil(2);
    let window = hann();
    for (j, st) in stats.iter_mut().enumerate() {
        (st.mean_square, st.zcr) = time_stats(signal, first + j, &mut s.raw);
        let slot = &mut s.pairs[(j / 2) * N_FFT..(j / 2 + 1) * N_FFT];
        if j % 2 == 0 {
            for ((z, r), w) in slot.iter_mut().zip(&s.raw).zip(window) {
                *z = Complex::new(r * w, 0.0);
            }
        } else {
            for ((z, r), w) in slot.iter_mut().zip(&s.raw).zip(window) {
                z.im = r * w;
            }
        }
    }
    let buffer = &mut s.pairs[..n_pairs * N_FFT];
    fft_plan().process_with_scratch(buffer, &mut s.fft_scratch);
    let n_frames = stats.len();
    for (j, st) in stats.iter_mut().enumerate() {
        let z = &s.pairs[(j / 2) * N_FFT..(j / 2 + 1) * N_FFT];
        if st.mean_square == 0.0 {
            // All-zero frame: exactly zero spectrum, not the rounding residue of its partner.
            s.power.fill(0.0);
        } else {
            unpack_power(z, j % 2 == 1, &mut s.power);
        }
        if mel.is_some() {
            for (p4, &p) in s.power4.iter_mut().zip(&s.power) {
                p4[j % 4] = p;
            }
        }
        spectral_stats(&mut s, st);
        let group_done = j % 4 == 3 || j + 1 == n_frames;
        if let (Some(filters), true) = (mel, group_done) {
            filters.log10_bands4(&s.power4, &mut s.mel4);
            let group = j - j % 4;
            for lane in 0..=j % 4 {
                let out = &mut log_mel[(group + lane) * n_mels..(group + lane + 1) * n_mels];
                for (o, v) in out.iter_mut().zip(&s.mel4) {
                    *o = v[lane] as f32;
                }
            }
        }
    }
}

/// One pass over the frames `0..n_frames_with_audio`, in parallel chunks; the log-mel is
/// computed too when `mel` is given.
pub fn frame_pass(signal: &[f32], mel: Option<&SparseFilters>) -> FramePass {
    let n_all = n_frames_with_audio(signal.len());
    let mut stats = vec![FrameStats::default(); n_all];
    let mut log_mel = Vec::new();
    match mel {
        Some(filters) => {
            let n_mels = filters.n_mels;
            log_mel = vec![0.0f32; n_all * n_mels];
            stats
                .par_chunks_mut(CHUNK)
                .zip(log_mel.par_chunks_mut(CHUNK * n_mels))
                .enumerate()
                .for_each(|(c, (st, lm))| analyse_chunk(signal, c * CHUNK, st, lm, mel));
        }
        None => stats
            .par_chunks_mut(CHUNK)
            .enumerate()
            .for_each(|(c, st)| analyse_chunk(signal, c * CHUNK, st, &mut [], None)),
    }
    FramePass { stats, log_mel }
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
    fn a_silent_frame_sharing_an_fft_with_a_loud_one_stays_silent() {
        // Frame 0 sees only zeros, frame 1 (its FFT partner) a loud tone.
        let signal: Vec<f32> = (0..2000)
            .map(|i| {
                if i <= 200 {
                    0.0
                } else {
                    (i as f32 * 0.7).sin()
                }
            })
            .collect();
        let pass = frame_pass(&signal, None);
        assert_eq!(pass.stats[0].mean_square, 0.0);
        assert_eq!(pass.stats[0].centroid, 0.0);
        assert_eq!(pass.stats[0].spread, 0.0);
        assert_eq!(pass.stats[0].band_energy, 0.0);
        assert!(pass.stats[1].centroid > 1000.0);
    }

    #[test]
    fn mean_ln_matches_direct_sum_even_for_tiny_values() {
        let v = [
            1e-10, 3.0, 1e-10, 1e-10, 1e-10, 1e-10, 1e-10, 1e-10, 1e-10, 2.5e300,
        ];
        let direct = v.iter().map(|x: &f64| x.ln()).sum::<f64>() / v.len() as f64;
        assert!((mean_ln(&v) - direct).abs() < 1e-9);
    }
}
