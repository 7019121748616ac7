//! Audio features of a 16 kHz mono signal, all derived from ONE short-time Fourier transform
//! with Whisper's framing (n_fft 400, hop 160, periodic Hann; see [`stft`]), plus the
//! whisper.cpp-compatible log-mel spectrogram from that same transform.
//!
//! Frames: frame `i` is centred on sample `160 i` of the signal, which is mirrored over its
//! first 200 samples and zero-padded after its end (whisper.cpp's padding). The statistics use
//! the `1 + (n - 200) / 160` frames whisper.cpp considers real audio (`n_len_org`, at least 1).

mod activity;
mod mel;
mod spectrum;
mod stft;

use rayon::prelude::*;
use serde::Serialize;

use crate::error::{CoreError, CoreResult};
pub use activity::{SNR_MAX_DB, SNR_MIN_DB};
pub use mel::mel_filters;
pub use stft::{HOP, N_BINS, N_FFT};

/// The only sample rate accepted (Whisper's).
pub const SAMPLE_RATE: u32 = 16_000;

/// Summary features of one signal. Means and standard deviations (population) are over frames.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AudioFeatures {
    pub duration_s: f64,
    /// Root mean square of each raw frame.
    pub rms_mean: f64,
    pub rms_std: f64,
    /// Zero-crossing rate per frame (crossings / frame length).
    pub zcr_mean: f64,
    pub zcr_std: f64,
    /// Magnitude-weighted mean frequency (Hz).
    pub spectral_centroid_mean: f64,
    pub spectral_centroid_std: f64,
    /// Magnitude-weighted standard deviation around the centroid (Hz).
    pub spectral_spread_mean: f64,
    pub spectral_spread_std: f64,
    /// Geometric / arithmetic mean of the power spectrum: ~0 for tones, e^-γ ≈ 0.56 for
    /// white noise (the power of one frame's bins is exponentially distributed, so not 1).
    pub spectral_flatness_mean: f64,
    pub spectral_flatness_std: f64,
    /// Largest absolute sample.
    pub peak: f64,
    /// Speech segments `(start_s, end_s)` from the energy-based activity detector.
    pub speech_segments: Vec<(f64, f64)>,
    /// Seconds of speech over the duration.
    pub speech_ratio: f64,
    /// Speech vs pause energy in dB, in `[SNR_MIN_DB, SNR_MAX_DB]`: `SNR_MIN_DB` when no
    /// speech is found, `SNR_MAX_DB` when there is no pause to measure the noise on.
    pub snr_db: f64,
    /// Syllable nuclei per second of speech (0 without speech).
    pub speech_rate: f64,
    /// How hard the clip probably is to transcribe, in `[0, 1]`; see [`complexity`].
    pub complexity: f64,
}

/// Transcription difficulty in `[0, 1]`, a weighted sum of four terms each in `[0, 1]`:
/// `0.35 noise + 0.25 rate + 0.2 flatness + 0.2 brevity` with
/// `noise = clamp((30 - snr_db) / 40)` (30 dB or better is clean, -10 dB is hopeless),
/// `rate = clamp(speech_rate / 8)` (8 syllables/s is very fast speech),
/// `flatness = clamp(spectral_flatness_mean / 0.56)` (0.56 is white noise) and
/// `brevity = exp(-speech_seconds / 2)` (little speech gives the model little context).
pub fn complexity(snr_db: f64, speech_rate: f64, flatness_mean: f64, speech_seconds: f64) -> f64 {
    let noise = ((30.0 - snr_db) / 40.0).clamp(0.0, 1.0);
    let rate = (speech_rate / 8.0).clamp(0.0, 1.0);
    let flatness = (flatness_mean / 0.56).clamp(0.0, 1.0);
    let brevity = (-speech_seconds / 2.0).exp();
    (0.35 * noise + 0.25 * rate + 0.2 * flatness + 0.2 * brevity).clamp(0.0, 1.0)
}

/// Largest absolute sample of a block and whether it holds a non-finite one, with eight lanes
/// (the loop vectorises).
fn block_peak(block: &[f32]) -> (f32, bool) {
    let (mut lanes, mut bad) = ([0.0f32; 8], [false; 8]);
    let chunks = block.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for l in 0..8 {
            let a = c[l].abs();
            // NaN compares false everywhere: `bad` catches it and infinities.
            bad[l] |= !a.is_finite();
            lanes[l] = if a > lanes[l] { a } else { lanes[l] };
        }
    }
    let peak = rest
        .iter()
        .chain(&lanes)
        .fold(0.0f32, |m, x| m.max(x.abs()));
    let bad = bad.iter().any(|&b| b) || rest.iter().any(|x| !x.is_finite());
    (peak, bad)
}

/// Largest absolute sample, or the index of the first non-finite one; in parallel blocks for
/// signals of [`stft::PARALLEL_MIN_FRAMES`] frames or more.
fn peak_or_non_finite(signal: &[f32]) -> Result<f32, usize> {
    const BLOCK: usize = 1 << 15;
    let (peak, bad) = if signal.len() < stft::PARALLEL_MIN_FRAMES * HOP {
        block_peak(signal)
    } else {
        signal
            .par_chunks(BLOCK)
            .map(block_peak)
            .reduce(|| (0.0f32, false), |a, b| (a.0.max(b.0), a.1 || b.1))
    };
    if bad {
        Err(signal.iter().position(|x| !x.is_finite()).unwrap_or(0))
    } else {
        Ok(peak)
    }
}

/// Checks the input; returns the peak (largest absolute sample).
fn validate(signal: &[f32], sample_rate: u32) -> CoreResult<f32> {
    if sample_rate != SAMPLE_RATE {
        return Err(CoreError::InvalidArgument(format!(
            "sample_rate must be {SAMPLE_RATE} Hz, got {sample_rate}; resample first"
        )));
    }
    if signal.is_empty() {
        return Err(CoreError::Audio("the signal is empty".into()));
    }
    peak_or_non_finite(signal).map_err(|i| {
        CoreError::Audio(format!(
            "the signal has a non-finite sample ({}) at index {i}",
            signal[i]
        ))
    })
}

fn mean_std(values: impl Iterator<Item = f64> + Clone) -> (f64, f64) {
    let (n, sum) = values
        .clone()
        .fold((0usize, 0.0), |(n, s), v| (n + 1, s + v));
    let mean = sum / n as f64;
    let var = values.map(|v| (v - mean) * (v - mean)).sum::<f64>() / n as f64;
    (mean, var.sqrt())
}

fn summarise(signal: &[f32], peak: f32, stats: &[stft::FrameStats]) -> AudioFeatures {
    let n = stft::n_frames(signal.len());
    let stats = &stats[..n];
    let col = |f: fn(&stft::FrameStats) -> f64| mean_std(stats.iter().map(f));
    let (rms_mean, rms_std) = col(|s| s.mean_square.sqrt());
    let (zcr_mean, zcr_std) = col(|s| s.zcr);
    let (centroid_mean, centroid_std) = col(|s| s.centroid);
    let (spread_mean, spread_std) = col(|s| s.spread);
    let (flatness_mean, flatness_std) = col(|s| s.flatness);

    let mean_square: Vec<f64> = stats.iter().map(|s| s.mean_square).collect();
    let band: Vec<f64> = stats.iter().map(|s| s.band_energy).collect();
    let act = activity::analyse(&mean_square, &band);

    let duration_s = signal.len() as f64 / SAMPLE_RATE as f64;
    let speech_segments: Vec<(f64, f64)> = act
        .frame_segments
        .iter()
        .map(|&(s, e)| {
            let start = (s as f64 - 0.5) * activity::FRAME_S;
            let end = (e as f64 - 0.5) * activity::FRAME_S;
            (start.max(0.0), end.min(duration_s))
        })
        .collect();
    let speech_seconds: f64 = speech_segments.iter().map(|(s, e)| e - s).sum();
    let speech_rate = if speech_seconds > 0.0 {
        act.nuclei as f64 / speech_seconds
    } else {
        0.0
    };
    AudioFeatures {
        duration_s,
        rms_mean,
        rms_std,
        zcr_mean,
        zcr_std,
        spectral_centroid_mean: centroid_mean,
        spectral_centroid_std: centroid_std,
        spectral_spread_mean: spread_mean,
        spectral_spread_std: spread_std,
        spectral_flatness_mean: flatness_mean,
        spectral_flatness_std: flatness_std,
        peak: peak as f64,
        speech_segments,
        speech_ratio: speech_seconds / duration_s,
        snr_db: act.snr_db,
        speech_rate,
        complexity: complexity(act.snr_db, speech_rate, flatness_mean, speech_seconds),
    }
}

/// Features of a 16 kHz mono signal.
pub fn analyze(signal: &[f32], sample_rate: u32) -> CoreResult<AudioFeatures> {
    let peak = validate(signal, sample_rate)?;
    let pass = stft::frame_pass(signal, None);
    Ok(summarise(signal, peak, &pass.stats))
}

/// Features and the Whisper log-mel (as [`log_mel_spectrogram`]) from one shared STFT.
pub fn analyze_with_mel(
    signal: &[f32],
    sample_rate: u32,
    n_mels: usize,
) -> CoreResult<(AudioFeatures, Vec<f32>, usize)> {
    let filters = mel::whisper_filters(n_mels)?;
    let peak = validate(signal, sample_rate)?;
    let pass = stft::frame_pass(signal, Some(filters));
    let n_frames = stft::n_frames(signal.len());
    let log_mel = mel::whisper_normalise(&pass.mel_blocks, pass.mel_max, n_mels, n_frames);
    Ok((summarise(signal, peak, &pass.stats), log_mel, n_frames))
}

/// Whisper's log-mel spectrogram of a 16 kHz signal: `([n_mels][n_frames] row-major, n_frames)`.
///
/// Same frames and values as whisper.cpp's `log_mel_spectrogram` (reflective pad of 200 at the
/// start, zeros after the end, periodic Hann, `log10(max(x, 1e-10))`, clamp at global max - 8,
/// `(x + 4) / 4`), where the global max spans every frame whisper.cpp computes (its 30 s of
/// zero padding included). Returned are whisper.cpp's `n_len_org` frames (at least 1): those
/// it treats as the real audio; the trailing frames of padding are left out.
pub fn log_mel_spectrogram(signal: &[f32], n_mels: usize) -> CoreResult<(Vec<f32>, usize)> {
    let filters = mel::whisper_filters(n_mels)?;
    let _ = validate(signal, SAMPLE_RATE)?;
    let pass = stft::frame_pass(signal, Some(filters));
    let n_frames = stft::n_frames(signal.len());
    Ok((
        mel::whisper_normalise(&pass.mel_blocks, pass.mel_max, n_mels, n_frames),
        n_frames,
    ))
}

/// [`analyze`] over many signals in parallel; one result per signal, in order.
pub fn analyze_batch(signals: &[&[f32]], sample_rate: u32) -> Vec<CoreResult<AudioFeatures>> {
    signals
        .par_iter()
        .map(|s| analyze(s, sample_rate))
        .collect()
}

#[cfg(test)]
mod tests;
