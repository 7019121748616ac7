//! Whisper's framing (n_fft 400, hop 160, periodic Hann, reflective pad of 200 samples at the
//! start, zeros after the end) and the single pass over frames that derives every per-frame
//! quantity from one FFT. Two real frames share each complex FFT (one as the real part, one as
//! the imaginary part); each pair is windowed, transformed and analysed in one small buffer.

use std::cell::RefCell;
use std::sync::{Arc, OnceLock};

use rayon::prelude::*;
use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};

use super::mel::SparseFilters;
use super::spectrum::{add4, spectral_stats, unpack_pair};

pub const N_FFT: usize = 400;
pub const HOP: usize = 160;
pub const N_BINS: usize = N_FFT / 2 + 1;
/// Samples of padding before the signal (frame `i` is centred on sample `i * HOP`).
pub const PAD: usize = N_FFT / 2;
/// Hz between two FFT bins at 16 kHz.
pub const BIN_HZ: f64 = 16_000.0 / N_FFT as f64;
/// Frames handed to one rayon task.
const CHUNK: usize = 128;
/// Below this many frames (10 s) the pass runs in the calling thread: handing a few chunks to
/// rayon's workers costs more than it saves when they have gone to sleep between files (the
/// usual case in a cascade, where the analysis runs once between model calls).
pub const PARALLEL_MIN_FRAMES: usize = 1000;

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

/// Per-frame results: stats for every frame with audio and, when asked for, the log10 mel
/// energies of each chunk of [`CHUNK`] frames, band-major (`[n_mels][frames of the chunk]`,
/// float32 as whisper.cpp stores them), with their maximum.
pub struct FramePass {
    pub stats: Vec<FrameStats>,
    pub mel_blocks: Vec<Vec<f32>>,
    pub mel_max: f32,
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

/// Per-thread work space: everything stays in L1/L2 while a chunk is analysed.
struct Scratch {
    raw: [[f64; N_FFT]; 2],
    /// One complex FFT buffer holding two windowed frames (real and imaginary parts).
    pair: Vec<Complex<f64>>,
    fft_scratch: Vec<Complex<f64>>,
    power: [[f64; N_BINS]; 2],
    /// Power spectra of four consecutive frames, bin-major, for the mel filterbank.
    power4: [[f64; 4]; N_BINS],
    mel4: Vec<[f64; 4]>,
}

impl Scratch {
    fn new(n_mels: usize) -> Self {
        Scratch {
            raw: [[0.0; N_FFT]; 2],
            pair: vec![Complex::default(); N_FFT],
            fft_scratch: vec![Complex::default(); fft_plan().get_inplace_scratch_len()],
            power: [[0.0; N_BINS]; 2],
            power4: [[0.0; 4]; N_BINS],
            mel4: vec![[0.0; 4]; n_mels],
        }
    }
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
    let mut acc = [0.0; 4];
    for x in raw.chunks_exact(4) {
        for l in 0..4 {
            acc[l] += x[l] * x[l];
        }
    }
    let negative = |x: f64| (x < -1e-10) as u32;
    let crossings: u32 = raw
        .windows(2)
        .map(|w| negative(w[0]) ^ negative(w[1]))
        .sum();
    (add4(acc) / N_FFT as f64, crossings as f64 / N_FFT as f64)
}

thread_local! {
    static SCRATCH: RefCell<Option<Box<Scratch>>> = const { RefCell::new(None) };
}

/// Analyses the frames of one chunk; returns its log10 mel energies band-major (empty
/// without `mel`). With AVX2 code for the per-bin arithmetic where the CPU has it.
fn analyse_chunk(
    signal: &[f32],
    first: usize,
    stats: &mut [FrameStats],
    mel: Option<&SparseFilters>,
) -> Vec<f32> {
    let n_mels = mel.map_or(0, |m| m.n_mels);
    SCRATCH.with(|cell| {
        let mut slot = cell.borrow_mut();
        let s = slot.get_or_insert_with(|| Box::new(Scratch::new(n_mels)));
        if s.mel4.len() != n_mels {
            s.mel4.resize(n_mels, [0.0; 4]);
        }
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU supports AVX2 and FMA, checked just above.
            return unsafe { analyse_chunk_avx2(signal, first, stats, mel, s) };
        }
        analyse_chunk_generic(signal, first, stats, mel, s)
    })
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn analyse_chunk_avx2(
    signal: &[f32],
    first: usize,
    stats: &mut [FrameStats],
    mel: Option<&SparseFilters>,
    s: &mut Scratch,
) -> Vec<f32> {
    analyse_chunk_generic(signal, first, stats, mel, s)
}

#[inline(always)]
fn analyse_chunk_generic(
    signal: &[f32],
    first: usize,
    stats: &mut [FrameStats],
    mel: Option<&SparseFilters>,
    s: &mut Scratch,
) -> Vec<f32> {
    let n_mels = mel.map_or(0, |m| m.n_mels);
    let n_frames = stats.len();
    let mut log_mel = vec![0.0f32; n_mels * n_frames];
    let window = hann();
    for (pair, sts) in stats.chunks_mut(2).enumerate() {
        let j0 = 2 * pair;
        for (h, st) in sts.iter_mut().enumerate() {
            (st.mean_square, st.zcr) = time_stats(signal, first + j0 + h, &mut s.raw[h]);
        }
        if sts.len() == 1 {
            s.raw[1].fill(0.0);
        }
        for (((z, a), b), w) in s.pair.iter_mut().zip(&s.raw[0]).zip(&s.raw[1]).zip(window) {
            *z = Complex::new(a * w, b * w);
        }
        fft_plan().process_with_scratch(&mut s.pair, &mut s.fft_scratch);
        unpack_pair(&s.pair, &mut s.power);
        for (h, st) in sts.iter_mut().enumerate() {
            let j = j0 + h;
            let power = &mut s.power[h];
            if st.mean_square == 0.0 {
                // All-zero frame: exactly zero spectrum, not the rounding residue of its
                // partner.
                power.fill(0.0);
            }
            spectral_stats(power, st);
            let Some(filters) = mel else { continue };
            for (p4, &p) in s.power4.iter_mut().zip(power.iter()) {
                p4[j % 4] = p;
            }
            if j % 4 == 3 || j + 1 == n_frames {
                filters.log10_bands4(&s.power4, &mut s.mel4);
                let group = j - j % 4;
                for (m, v) in s.mel4.iter().enumerate() {
                    let row = &mut log_mel[m * n_frames + group..m * n_frames + j + 1];
                    for (o, x) in row.iter_mut().zip(v) {
                        *o = *x as f32;
                    }
                }
            }
        }
    }
    log_mel
}

/// One pass over the frames `0..n_frames_with_audio`, in chunks (in parallel from
/// [`PARALLEL_MIN_FRAMES`] on; the results do not depend on it); the log-mel is computed too
/// when `mel` is given.
pub fn frame_pass(signal: &[f32], mel: Option<&SparseFilters>) -> FramePass {
    let parallel = n_frames_with_audio(signal.len()) >= PARALLEL_MIN_FRAMES;
    frame_pass_in(signal, mel, parallel)
}

fn frame_pass_in(signal: &[f32], mel: Option<&SparseFilters>, parallel: bool) -> FramePass {
    let n_all = n_frames_with_audio(signal.len());
    let mut stats = vec![FrameStats::default(); n_all];
    let block_max = |b: &Vec<f32>| b.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let (mel_blocks, mel_max) = if !parallel {
        let blocks: Vec<Vec<f32>> = stats
            .chunks_mut(CHUNK)
            .enumerate()
            .map(|(c, st)| analyse_chunk(signal, c * CHUNK, st, mel))
            .collect();
        let max = blocks
            .iter()
            .map(block_max)
            .fold(f32::NEG_INFINITY, f32::max);
        (blocks, max)
    } else {
        let blocks: Vec<Vec<f32>> = stats
            .par_chunks_mut(CHUNK)
            .enumerate()
            .map(|(c, st)| analyse_chunk(signal, c * CHUNK, st, mel))
            .collect();
        let max = blocks
            .par_iter()
            .map(block_max)
            .reduce(|| f32::NEG_INFINITY, f32::max);
        (blocks, max)
    };
    FramePass {
        stats,
        mel_blocks,
        mel_max,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_and_sequential_passes_agree_bit_for_bit() {
        let x: Vec<f32> = (0..40_000)
            .map(|i| (i as f32 * 0.37).sin() * 0.3 + ((i * 7919) % 101) as f32 * 1e-3)
            .collect();
        let filters = crate::features::mel::whisper_filters(80).unwrap();
        let (a, b) = (
            frame_pass_in(&x, Some(filters), true),
            frame_pass_in(&x, Some(filters), false),
        );
        assert_eq!(a.mel_blocks, b.mel_blocks);
        assert_eq!(a.mel_max.to_bits(), b.mel_max.to_bits());
        let bits = |p: &FramePass| -> Vec<[u64; 6]> {
            p.stats
                .iter()
                .map(|s| {
                    [
                        s.mean_square,
                        s.zcr,
                        s.centroid,
                        s.spread,
                        s.flatness,
                        s.band_energy,
                    ]
                    .map(f64::to_bits)
                })
                .collect()
        };
        assert_eq!(bits(&a), bits(&b));
    }

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
}
