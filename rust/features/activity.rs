//! Energy-based speech activity, SNR and syllable-nuclei speech rate from per-frame energies.

use super::stft::HOP;

/// Seconds between frame centres.
pub const FRAME_S: f64 = HOP as f64 / 16_000.0;
/// Frame energies are floored here (dB re 1.0 mean square) so digital silence stays finite.
const ENERGY_FLOOR_DB: f64 = -100.0;
/// Frames quieter than this are never speech, whatever the adaptive threshold says.
const ABSOLUTE_THRESHOLD_DB: f64 = -60.0;
/// Percentile of frame energy taken as the noise floor, and as the loud (speech) level.
const NOISE_PERCENTILE: f64 = 10.0;
const LOUD_PERCENTILE: f64 = 95.0;
/// The threshold sits this far above the floor: at least 6 dB, or a fifth of the dynamic range.
const MIN_MARGIN_DB: f64 = 6.0;
const RANGE_FRACTION: f64 = 0.2;
/// Gaps shorter than this between speech runs are bridged (hangover), in frames (200 ms).
const MAX_GAP_FRAMES: usize = 20;
/// Runs shorter than this after bridging are dropped, in frames (100 ms).
const MIN_SEGMENT_FRAMES: usize = 10;
/// Reported SNR range; also the values used when there is no speech (min) or no pause (max).
pub const SNR_MIN_DB: f64 = -10.0;
pub const SNR_MAX_DB: f64 = 60.0;
/// Syllable envelope: moving average over 5 frames (50 ms) of the band energy in dB.
const SMOOTH_HALF_WIDTH: usize = 2;
/// A syllable nucleus must rise above max(median, 99th percentile - 25 dB) of the envelope and
/// be separated from the previous nucleus by a dip of at least 2 dB (de Jong & Wempe, 2009).
const NUCLEUS_RANGE_DB: f64 = 25.0;
const MIN_DIP_DB: f64 = 2.0;

/// Speech activity of a signal.
#[derive(Debug, Clone, PartialEq)]
pub struct Activity {
    /// Speech segments as frame ranges `[start, end)`.
    pub frame_segments: Vec<(usize, usize)>,
    pub snr_db: f64,
    pub nuclei: usize,
}

/// numpy's default (linear) percentiles of unsorted values; `values` must not be empty.
///
/// Each percentile needs two order statistics, found by selection (no full sort).
pub fn percentiles<const N: usize>(values: &[f64], qs: [f64; N]) -> [f64; N] {
    let mut work = values.to_vec();
    let last = work.len() - 1;
    qs.map(|q| {
        let pos = q / 100.0 * last as f64;
        let lo = pos.floor() as usize;
        let (_, &mut low, above) = work.select_nth_unstable_by(lo, f64::total_cmp);
        let high = if lo < last {
            above.iter().copied().min_by(f64::total_cmp).unwrap_or(low)
        } else {
            low
        };
        low + (high - low) * (pos - lo as f64)
    })
}

fn to_db(energy: f64) -> f64 {
    10.0 * energy.max(1e-10).log10()
}

/// Speech runs from frame mean squares: threshold, bridge short gaps, drop short runs.
pub fn speech_runs(mean_square: &[f64]) -> Vec<(usize, usize)> {
    let db: Vec<f64> = mean_square
        .iter()
        .map(|&e| to_db(e).max(ENERGY_FLOOR_DB))
        .collect();
    let [floor, loud] = percentiles(&db, [NOISE_PERCENTILE, LOUD_PERCENTILE]);
    let margin = MIN_MARGIN_DB.max(RANGE_FRACTION * (loud - floor));
    let threshold = (floor + margin).max(ABSOLUTE_THRESHOLD_DB);

    let mut runs: Vec<(usize, usize)> = Vec::new();
    let mut start = None;
    for (i, &e) in db.iter().enumerate() {
        match (e > threshold, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                runs.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        runs.push((s, db.len()));
    }

    let mut merged: Vec<(usize, usize)> = Vec::new();
    for run in runs {
        match merged.last_mut() {
            Some(last) if run.0 - last.1 < MAX_GAP_FRAMES => last.1 = run.1,
            _ => merged.push(run),
        }
    }
    merged.retain(|&(s, e)| e - s >= MIN_SEGMENT_FRAMES);
    merged
}

/// Speech-to-noise ratio in dB: mean energy of speech frames minus that of the other frames
/// (speech frames carry the noise too), over the latter; clamped to `[SNR_MIN_DB, SNR_MAX_DB]`.
/// No speech gives `SNR_MIN_DB`; no pause (nothing to measure the noise on) gives `SNR_MAX_DB`.
pub fn snr_db(mean_square: &[f64], runs: &[(usize, usize)]) -> f64 {
    let mut in_speech = vec![false; mean_square.len()];
    for &(s, e) in runs {
        in_speech[s..e].iter_mut().for_each(|v| *v = true);
    }
    let (mut speech, mut n_speech, mut noise, mut n_noise) = (0.0, 0usize, 0.0, 0usize);
    for (&e, &sp) in mean_square.iter().zip(&in_speech) {
        if sp {
            speech += e;
            n_speech += 1;
        } else {
            noise += e;
            n_noise += 1;
        }
    }
    if n_speech == 0 {
        return SNR_MIN_DB;
    }
    if n_noise == 0 {
        return SNR_MAX_DB;
    }
    let (speech, noise) = (speech / n_speech as f64, noise / n_noise as f64);
    let ratio = (speech - noise).max(1e-20) / noise.max(1e-20);
    (10.0 * ratio.log10()).clamp(SNR_MIN_DB, SNR_MAX_DB)
}

/// Syllable nuclei: peaks of the smoothed 300-3000 Hz energy envelope inside speech runs.
pub fn count_nuclei(band_energy: &[f64], runs: &[(usize, usize)]) -> usize {
    let n = band_energy.len();
    if n < 3 || runs.is_empty() {
        return 0;
    }
    let db: Vec<f64> = band_energy.iter().map(|&e| to_db(e)).collect();
    let smooth: Vec<f64> = (0..n)
        .map(|i| {
            let lo = i.saturating_sub(SMOOTH_HALF_WIDTH);
            let hi = (i + SMOOTH_HALF_WIDTH + 1).min(n);
            db[lo..hi].iter().sum::<f64>() / (hi - lo) as f64
        })
        .collect();
    let [median, top] = percentiles(&smooth, [50.0, 99.0]);
    let threshold = median.max(top - NUCLEUS_RANGE_DB);

    let mut accepted: Vec<usize> = Vec::new();
    for &(s, e) in runs {
        for i in s.max(1)..e.min(n - 1) {
            let v = smooth[i];
            if !(v > smooth[i - 1] && v >= smooth[i + 1] && v > threshold) {
                continue;
            }
            let Some(&last) = accepted.last() else {
                accepted.push(i);
                continue;
            };
            let dip = smooth[last..=i]
                .iter()
                .copied()
                .fold(f64::INFINITY, f64::min);
            if smooth[last].min(v) - dip >= MIN_DIP_DB {
                accepted.push(i);
            } else if v > smooth[last] {
                *accepted.last_mut().expect("not empty") = i;
            }
        }
    }
    accepted.len()
}

/// Runs the whole activity analysis on per-frame energies.
pub fn analyse(mean_square: &[f64], band_energy: &[f64]) -> Activity {
    let frame_segments = speech_runs(mean_square);
    Activity {
        snr_db: snr_db(mean_square, &frame_segments),
        nuclei: count_nuclei(band_energy, &frame_segments),
        frame_segments,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_interpolates_like_numpy() {
        let [lo, hi, mid, tenth] = percentiles(&[4.0, 1.0, 3.0, 2.0], [0.0, 100.0, 50.0, 10.0]);
        assert_eq!((lo, hi), (1.0, 4.0));
        assert!((mid - 2.5).abs() < 1e-12);
        assert!((tenth - 1.3).abs() < 1e-12);
    }

    #[test]
    fn short_gaps_are_bridged_and_short_runs_dropped() {
        let mut e = vec![1e-8; 200];
        e[20..50].iter_mut().for_each(|v| *v = 0.1); // 300 ms
        e[60..80].iter_mut().for_each(|v| *v = 0.1); // 100 ms gap -> bridged
        e[150..155].iter_mut().for_each(|v| *v = 0.1); // 50 ms blip -> dropped
        assert_eq!(speech_runs(&e), vec![(20, 80)]);
    }

    #[test]
    fn snr_edge_cases_are_defined() {
        assert_eq!(snr_db(&[0.1; 10], &[]), SNR_MIN_DB);
        assert_eq!(snr_db(&[0.1; 10], &[(0, 10)]), SNR_MAX_DB);
        let mut e = vec![0.001; 20];
        e[..10].iter_mut().for_each(|v| *v = 0.101);
        assert!((snr_db(&e, &[(0, 10)]) - 20.0).abs() < 1e-9);
    }
}
