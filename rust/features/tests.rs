use std::f64::consts::PI;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use super::*;

const SR: f64 = 16_000.0;

fn sine(freq: f64, amp: f64, seconds: f64) -> Vec<f32> {
    (0..(seconds * SR) as usize)
        .map(|i| (amp * (2.0 * PI * freq * i as f64 / SR).sin()) as f32)
        .collect()
}

fn noise(sigma: f64, seconds: f64, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let normal = Normal::new(0.0, sigma).unwrap();
    (0..(seconds * SR) as usize)
        .map(|_| normal.sample(&mut rng) as f32)
        .collect()
}

/// Tone bursts (`on` seconds of 440 Hz, `off` seconds of silence), starting with silence.
fn bursts(on: f64, off: f64, count: usize, amp: f64) -> Vec<f32> {
    let mut out = Vec::new();
    for _ in 0..count {
        out.extend(std::iter::repeat_n(0.0f32, (off * SR) as usize));
        out.extend(sine(440.0, amp, on));
    }
    out.extend(std::iter::repeat_n(0.0f32, (off * SR) as usize));
    out
}

fn add(a: &mut [f32], b: &[f32]) {
    a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
}

#[test]
fn sine_centroid_is_its_frequency() {
    for freq in [440.0, 1000.0, 3000.0] {
        let f = analyze(&sine(freq, 0.5, 2.0), 16_000).unwrap();
        assert!(
            (f.spectral_centroid_mean - freq).abs() < 0.02 * freq,
            "{freq}: {}",
            f.spectral_centroid_mean
        );
        assert!(f.spectral_spread_mean < 200.0);
        assert!(f.spectral_flatness_mean < 0.01);
        assert!((f.rms_mean - 0.5 / 2f64.sqrt()).abs() < 0.01);
        // A sine crosses zero twice per period.
        assert!((f.zcr_mean - 2.0 * freq / SR).abs() < 0.01);
        assert!((f.peak - 0.5).abs() < 1e-3);
    }
}

#[test]
fn white_noise_is_flat() {
    let f = analyze(&noise(0.1, 2.0, 1), 16_000).unwrap();
    // e^-γ = 0.5615 for exponentially distributed bin powers.
    assert!(
        (f.spectral_flatness_mean - 0.5615).abs() < 0.05,
        "{}",
        f.spectral_flatness_mean
    );
    assert!((f.spectral_centroid_mean - 4000.0).abs() < 250.0);
    assert!((f.zcr_mean - 0.5).abs() < 0.05);
    assert!(
        f.speech_segments.is_empty(),
        "stationary noise is not speech"
    );
}

#[test]
fn silence_has_no_speech() {
    let f = analyze(&vec![0.0f32; 32_000], 16_000).unwrap();
    assert!(f.speech_segments.is_empty());
    assert_eq!(f.speech_ratio, 0.0);
    assert_eq!(f.speech_rate, 0.0);
    assert_eq!(f.snr_db, SNR_MIN_DB);
    assert_eq!(f.rms_mean, 0.0);
    assert_eq!(f.spectral_centroid_mean, 0.0);
    assert!((0.0..=1.0).contains(&f.complexity));
}

#[test]
fn bursts_become_segments() {
    let signal = bursts(0.4, 0.6, 3, 0.3);
    let f = analyze(&signal, 16_000).unwrap();
    assert_eq!(f.speech_segments.len(), 3, "{:?}", f.speech_segments);
    for (k, &(start, end)) in f.speech_segments.iter().enumerate() {
        let expected = 0.6 + k as f64;
        assert!((start - expected).abs() < 0.03, "{start} vs {expected}");
        assert!((end - (expected + 0.4)).abs() < 0.03, "{end}");
    }
    assert!((f.speech_ratio - 1.2 / 3.6).abs() < 0.03);
    assert_eq!(f.snr_db, SNR_MAX_DB, "digital silence between bursts");
}

#[test]
fn snr_of_known_added_noise() {
    for target_db in [10.0, 20.0] {
        let mut signal = bursts(0.5, 0.5, 5, 0.5);
        let tone_power = 0.125; // 0.5² / 2
        let sigma = (tone_power / 10f64.powf(target_db / 10.0)).sqrt();
        let n = noise(sigma, signal.len() as f64 / SR, 7);
        add(&mut signal, &n);
        let f = analyze(&signal, 16_000).unwrap();
        assert_eq!(f.speech_segments.len(), 5);
        assert!(
            (f.snr_db - target_db).abs() < 1.5,
            "{target_db}: {}",
            f.snr_db
        );
    }
}

#[test]
fn syllable_rate_of_modulated_bursts() {
    for rate in [3.0, 5.0] {
        // Three 2 s phrases of a 1 kHz tone modulated at `rate` Hz, 0.5 s pauses between.
        let mut signal = vec![0.0f32; 8_000];
        for _ in 0..3 {
            let phrase: Vec<f32> = sine(1000.0, 0.4, 2.0)
                .iter()
                .enumerate()
                .map(|(i, &x)| {
                    let t = i as f64 / SR;
                    x * (0.5 - 0.5 * (2.0 * PI * rate * t).cos()) as f32
                })
                .collect();
            signal.extend(phrase);
            signal.extend(vec![0.0f32; 8_000]);
        }
        let f = analyze(&signal, 16_000).unwrap();
        assert_eq!(f.speech_segments.len(), 3, "{:?}", f.speech_segments);
        assert!(
            (f.speech_rate - rate).abs() < 0.15 * rate,
            "{rate}: {}",
            f.speech_rate
        );
    }
}

#[test]
fn log_mel_has_whisper_shape() {
    for n_mels in [80, 128] {
        let (mel, n_frames) = log_mel_spectrogram(&sine(440.0, 0.5, 1.0), n_mels).unwrap();
        assert_eq!(n_frames, 99);
        assert_eq!(mel.len(), n_mels * n_frames);
        let max = mel.iter().copied().fold(f32::MIN, f32::max);
        let min = mel.iter().copied().fold(f32::MAX, f32::min);
        assert!(max - min <= 2.0 + 1e-6, "clamped to 8 decades, /4");
    }
    let (mel, n_frames) = log_mel_spectrogram(&[0.0; 10], 80).unwrap();
    assert_eq!((mel.len(), n_frames), (80, 1));
    assert!(mel.iter().all(|&v| v == -1.5), "silence is (-10 + 4) / 4");
}

#[test]
fn analyze_with_mel_shares_the_stft() {
    let signal = noise(0.05, 1.3, 3);
    let (features, mel, n) = analyze_with_mel(&signal, 16_000, 80).unwrap();
    assert_eq!(features, analyze(&signal, 16_000).unwrap());
    assert_eq!((mel, n), log_mel_spectrogram(&signal, 80).unwrap());
}

#[test]
fn batch_equals_single_calls() {
    let a = sine(300.0, 0.2, 0.5);
    let b = noise(0.1, 0.7, 2);
    let empty: Vec<f32> = Vec::new();
    let out = analyze_batch(&[&a, &b, &empty], 16_000);
    assert_eq!(out[0].as_ref().unwrap(), &analyze(&a, 16_000).unwrap());
    assert_eq!(out[1].as_ref().unwrap(), &analyze(&b, 16_000).unwrap());
    assert!(matches!(out[2], Err(CoreError::Audio(_))));
}

#[test]
fn bad_input_is_refused_with_typed_errors() {
    assert!(matches!(analyze(&[], 16_000), Err(CoreError::Audio(_))));
    assert!(matches!(
        analyze(&[0.0, f32::NAN], 16_000),
        Err(CoreError::Audio(_))
    ));
    assert!(matches!(
        analyze(&[f32::INFINITY], 16_000),
        Err(CoreError::Audio(_))
    ));
    assert!(matches!(
        analyze(&[0.0; 100], 44_100),
        Err(CoreError::InvalidArgument(_))
    ));
    assert!(matches!(
        log_mel_spectrogram(&[0.0; 100], 64),
        Err(CoreError::InvalidArgument(_))
    ));
    assert!(matches!(
        log_mel_spectrogram(&[], 80),
        Err(CoreError::Audio(_))
    ));
}

#[test]
fn tiny_signals_work() {
    for n in [1usize, 40, 199, 201, 401] {
        let f = analyze(&vec![0.1f32; n], 16_000).unwrap();
        assert!(f.duration_s > 0.0 && f.complexity.is_finite());
    }
}

#[test]
fn complexity_grows_with_noise_and_rate() {
    let clean = complexity(40.0, 3.0, 0.05, 10.0);
    let noisy = complexity(0.0, 3.0, 0.05, 10.0);
    let fast = complexity(40.0, 7.0, 0.05, 10.0);
    assert!(noisy > clean && fast > clean);
    assert!((0.0..=1.0).contains(&complexity(-10.0, 20.0, 1.0, 0.0)));
}

#[test]
fn features_serialise() {
    let f = analyze(&sine(440.0, 0.5, 0.5), 16_000).unwrap();
    let json = serde_json::to_value(&f).unwrap();
    assert!(json["speech_segments"].is_array());
    assert!(json["complexity"].is_number());
}
