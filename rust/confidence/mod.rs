//! Confidence aggregation of whisper.cpp token results.
//!
//! Input is one transcription result as parallel per-token arrays (what whisper.cpp reports
//! for each token) plus per-segment times and texts. Output is a set of metrics per segment
//! and overall, and the tokens merged into words. Special tokens (`FLAG_SPECIAL`: sot, eot,
//! no_timestamps...) and timestamp tokens (`FLAG_TIMESTAMP`) never count anywhere.
//!
//! Definitions (over the *text* tokens of a segment, or of the whole result):
//! - `mean`, `min`, `std` (population) of the token probabilities; `geometric_mean` is
//!   `exp(mean(ln p))` (0.0 as soon as one probability is 0); `consistency = 1 - (max - min)`;
//!   `low_confidence_ratio` is the share of probabilities `< low_threshold`; `avg_logprob` the
//!   mean token log-probability; `sequence_confidence` is `exp(sum(ln p))`, the probability the
//!   model gives its whole text (it falls with length: one likely error in a long text lowers
//!   it as much as in a short one, which is what "does this text have an error" asks).
//! - `compression_ratio`: openai-whisper's, on the stripped segment text (overall: on the
//!   stripped concatenation of all segment texts); see [`text::ZlibSizer`].
//! - `repetition_score`: see [`text::repetition_score`]; words come from the lowercased segment
//!   text (whitespace-split, ASCII punctuation trimmed); overall uses all segments' words in
//!   order, so loops that whisper.cpp splits into several segments are caught.
//!
//! Text metrics use `segment_texts` (what whisper.cpp reports), not the token pieces. Logprobs
//! must be finite; probabilities finite and in [0, 1]; times below 0 mean unknown.
//! - `speech_coverage`: share of detected speech covered by the segment spans (overall: their
//!   union); `speech_in_segments`: share of the segment duration (overall: of the union)
//!   that overlaps detected speech. Without a speech detector result (`None`) both are 1.0.
//!   With one: no detected speech gives coverage 1.0 (an empty list still makes
//!   `speech_in_segments` 0.0: text over silence). A segment without a known positive
//!   duration (times -1, or end <= start) has `speech_in_segments` 1.0 and covers nothing.
//!
//! No text tokens: `n_tokens` 0 and every token statistic 0.0 (mean, geometric mean, min,
//! std, consistency, low ratio, avg logprob, sequence confidence); the text metrics are computed as usual
//! (the empty text has compression ratio 0.0 and repetition 0.0). Nothing is ever NaN.
//!
//! Words: the byte pieces of consecutive text tokens of one segment are merged; a piece
//! starting with a space starts a new word, as does the first text token of a segment.
//! Punctuation-only pieces (ASCII punctuation once `u8::is_ascii_whitespace` is trimmed)
//! attach to the previous word even after a space, except opening marks (`( [ { " '`) after
//! a space, which start a word. Special and timestamp tokens are skipped and do not split words.
//! The merged bytes are decoded lossily (U+FFFD for invalid UTF-8) and stripped; words that
//! are empty after stripping are dropped.

pub mod speech;
pub mod text;
mod words;

use rayon::prelude::*;

use crate::error::{CoreError, CoreResult};

/// Flag bit of special tokens (sot, eot, no_timestamps, language, task...).
pub const FLAG_SPECIAL: u8 = 1;
/// Flag bit of timestamp tokens.
pub const FLAG_TIMESTAMP: u8 = 2;
/// Default probability below which a token counts as low-confidence.
pub const DEFAULT_LOW_THRESHOLD: f64 = 0.7;

/// One transcription result, borrowed. Per-token slices all have the same length; times are
/// whisper.cpp centiseconds with -1 (any negative value) meaning unknown.
#[derive(Debug, Clone, Copy)]
pub struct TokenData<'a> {
    pub token_ids: &'a [i32],
    pub probs: &'a [f32],
    pub logprobs: &'a [f32],
    pub t0: &'a [i64],
    pub t1: &'a [i64],
    pub segment_index: &'a [i32],
    pub flags: &'a [u8],
    pub token_bytes: &'a [&'a [u8]],
    pub segment_t0: &'a [i64],
    pub segment_t1: &'a [i64],
    pub segment_texts: &'a [&'a str],
}

/// Metrics of one segment or of the whole result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Metrics {
    pub n_tokens: usize,
    pub mean: f64,
    pub geometric_mean: f64,
    pub min: f64,
    pub std: f64,
    pub consistency: f64,
    pub low_confidence_ratio: f64,
    pub avg_logprob: f64,
    pub sequence_confidence: f64,
    pub compression_ratio: f64,
    pub repetition_score: f64,
    pub speech_coverage: f64,
    pub speech_in_segments: f64,
}

/// A word assembled from sub-word tokens.
#[derive(Debug, Clone, PartialEq)]
pub struct Word {
    pub word: String,
    /// Seconds; `None` when the first token's start is unknown.
    pub start: Option<f64>,
    /// Seconds; `None` when the last token's end is unknown.
    pub end: Option<f64>,
    /// Mean probability of the word's tokens.
    pub probability: f64,
    pub segment: usize,
}

/// Everything [`aggregate`] computes.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub overall: Metrics,
    pub segments: Vec<Metrics>,
    pub words: Vec<Word>,
}

/// Running token statistics (Welford for the variance).
#[derive(Debug, Clone, Copy)]
struct Acc {
    n: usize,
    mean: f64,
    m2: f64,
    sum_ln: f64,
    min: f64,
    max: f64,
    n_low: usize,
    sum_logprob: f64,
}

impl Acc {
    const EMPTY: Acc = Acc {
        n: 0,
        mean: 0.0,
        m2: 0.0,
        sum_ln: 0.0,
        min: f64::INFINITY,
        max: f64::NEG_INFINITY,
        n_low: 0,
        sum_logprob: 0.0,
    };

    #[inline]
    fn push(&mut self, p: f64, logprob: f64, low_threshold: f64) {
        self.n += 1;
        let delta = p - self.mean;
        self.mean += delta / self.n as f64;
        self.m2 += delta * (p - self.mean);
        self.sum_ln += p.ln();
        self.min = self.min.min(p);
        self.max = self.max.max(p);
        self.n_low += usize::from(p < low_threshold);
        self.sum_logprob += logprob;
    }

    /// Fold another accumulator in (Chan et al.'s pairwise update for the variance).
    fn merge(&mut self, other: &Acc) {
        if other.n == 0 {
            return;
        }
        let n = self.n + other.n;
        let delta = other.mean - self.mean;
        let weight = other.n as f64 / n as f64;
        self.m2 += other.m2 + delta * delta * self.n as f64 * weight;
        self.mean += delta * weight;
        self.n = n;
        self.sum_ln += other.sum_ln;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.n_low += other.n_low;
        self.sum_logprob += other.sum_logprob;
    }

    /// Token metrics; the text and speech fields are filled in by the caller.
    fn finish(&self) -> Metrics {
        let mut m = Metrics {
            n_tokens: self.n,
            mean: 0.0,
            geometric_mean: 0.0,
            min: 0.0,
            std: 0.0,
            consistency: 0.0,
            low_confidence_ratio: 0.0,
            avg_logprob: 0.0,
            sequence_confidence: 0.0,
            compression_ratio: 0.0,
            repetition_score: 0.0,
            speech_coverage: 1.0,
            speech_in_segments: 1.0,
        };
        if self.n == 0 {
            return m;
        }
        let n = self.n as f64;
        m.mean = self.mean;
        m.geometric_mean = (self.sum_ln / n).exp();
        m.min = self.min;
        m.std = (self.m2 / n).max(0.0).sqrt();
        m.consistency = 1.0 - (self.max - self.min);
        m.low_confidence_ratio = self.n_low as f64 / n;
        m.avg_logprob = self.sum_logprob / n;
        m.sequence_confidence = self.sum_ln.exp();
        m
    }
}

fn invalid(msg: String) -> CoreError {
    CoreError::InvalidArgument(msg)
}

fn validate(data: &TokenData<'_>, speech: Option<&[(f64, f64)]>, low: f64) -> CoreResult<()> {
    let n = data.token_ids.len();
    let lens = [
        ("probs", data.probs.len()),
        ("logprobs", data.logprobs.len()),
        ("t0", data.t0.len()),
        ("t1", data.t1.len()),
        ("segment_index", data.segment_index.len()),
        ("flags", data.flags.len()),
        ("token_bytes", data.token_bytes.len()),
    ];
    for (name, len) in lens {
        if len != n {
            return Err(invalid(format!(
                "{name} has {len} elements but token_ids has {n}"
            )));
        }
    }
    let n_seg = data.segment_texts.len();
    if data.segment_t0.len() != n_seg || data.segment_t1.len() != n_seg {
        return Err(invalid(format!(
            "segment_t0 ({}), segment_t1 ({}) and segment_texts ({n_seg}) differ in length",
            data.segment_t0.len(),
            data.segment_t1.len()
        )));
    }
    if !(low.is_finite() && (0.0..=1.0).contains(&low)) {
        return Err(invalid(format!(
            "low_threshold must be in [0, 1], got {low}"
        )));
    }
    for (i, &p) in data.probs.iter().enumerate() {
        if !(p.is_finite() && (0.0..=1.0).contains(&p)) {
            return Err(invalid(format!(
                "probs[{i}] = {p} is not a probability in [0, 1]"
            )));
        }
    }
    if let Some(i) = data.logprobs.iter().position(|lp| !lp.is_finite()) {
        return Err(invalid(format!(
            "logprobs[{i}] = {} is not finite",
            data.logprobs[i]
        )));
    }
    if let Some(i) = data
        .segment_index
        .iter()
        .position(|&s| s < 0 || s as usize >= n_seg)
    {
        return Err(invalid(format!(
            "segment_index[{i}] = {} is outside [0, {n_seg})",
            data.segment_index[i]
        )));
    }
    for (i, &(a, b)) in speech.unwrap_or(&[]).iter().enumerate() {
        if !(a.is_finite() && b.is_finite() && a <= b) {
            return Err(invalid(format!(
                "speech_segments[{i}] = ({a}, {b}) is not a finite interval with start <= end"
            )));
        }
    }
    Ok(())
}

#[inline]
fn seconds(centiseconds: i64) -> Option<f64> {
    (centiseconds >= 0).then(|| centiseconds as f64 / 100.0)
}

/// Span of a segment in seconds, when both ends are known and it has a positive length.
fn segment_span(t0: i64, t1: i64) -> Option<(f64, f64)> {
    match (seconds(t0), seconds(t1)) {
        (Some(a), Some(b)) if b > a => Some((a, b)),
        _ => None,
    }
}

/// Aggregate one transcription result; see the module docs for every definition.
///
/// `speech` holds (start, end) seconds from a speech-activity detector, `None` when none ran.
pub fn aggregate(
    data: &TokenData<'_>,
    speech: Option<&[(f64, f64)]>,
    low_threshold: f64,
) -> CoreResult<Report> {
    validate(data, speech, low_threshold)?;
    let n_seg = data.segment_texts.len();

    // One pass over the tokens: statistics and words together.
    let mut seg_acc = vec![Acc::EMPTY; n_seg];
    let mut words = words::WordBuilder::default();
    for i in 0..data.token_ids.len() {
        if data.flags[i] & (FLAG_SPECIAL | FLAG_TIMESTAMP) != 0 {
            continue;
        }
        let seg = data.segment_index[i] as usize;
        let p = f64::from(data.probs[i]);
        seg_acc[seg].push(p, f64::from(data.logprobs[i]), low_threshold);
        let piece = data.token_bytes[i];
        words.push(seg, piece, p, seconds(data.t0[i]), seconds(data.t1[i]));
    }
    let words = words.finish();

    // Text metrics: per segment, then over all segments' words/text. The zlib sizes (most
    // of the work) run in parallel with the word-repetition scores.
    let mut full_text = String::with_capacity(data.segment_texts.iter().map(|t| t.len()).sum());
    for t in data.segment_texts {
        full_text.push_str(t);
    }
    let mut texts: Vec<&str> = Vec::with_capacity(n_seg + 1);
    texts.push(text::py_strip(&full_text));
    texts.extend(data.segment_texts.iter().map(|t| text::py_strip(t)));
    let (ratios, (seg_repetition, all_repetition)) = rayon::join(
        || {
            texts
                .par_iter()
                .map(|t| text::with_zlib_sizer(|z| z.compression_ratio(t)))
                .collect::<Vec<f64>>()
        },
        || {
            let lowered: Vec<String> = data
                .segment_texts
                .iter()
                .map(|t| t.to_lowercase())
                .collect();
            let mut all_words: Vec<&str> = Vec::new();
            let per_segment: Vec<f64> = lowered
                .iter()
                .map(|l| {
                    let from = all_words.len();
                    text::normalized_words(l, &mut all_words);
                    text::repetition_score(&all_words[from..])
                })
                .collect();
            (per_segment, text::repetition_score(&all_words))
        },
    );
    let mut all_acc = Acc::EMPTY;
    for acc in &seg_acc {
        all_acc.merge(acc);
    }
    let mut overall = all_acc.finish();
    overall.compression_ratio = ratios[0];
    overall.repetition_score = all_repetition;
    let mut segments: Vec<Metrics> = seg_acc
        .iter()
        .zip(&ratios[1..])
        .zip(&seg_repetition)
        .map(|((acc, &ratio), &repetition)| {
            let mut m = acc.finish();
            m.compression_ratio = ratio;
            m.repetition_score = repetition;
            m
        })
        .collect();

    if let Some(raw) = speech {
        let detected = speech::merge_intervals(raw.to_vec());
        let speech_len = speech::total_length(&detected);
        let spans: Vec<Option<(f64, f64)>> = (0..n_seg)
            .map(|s| segment_span(data.segment_t0[s], data.segment_t1[s]))
            .collect();
        for (m, span) in segments.iter_mut().zip(&spans) {
            if let Some((a, b)) = *span {
                let inside = speech::overlap_with(a, b, &detected);
                m.speech_in_segments = (inside / (b - a)).min(1.0);
                if speech_len > 0.0 {
                    m.speech_coverage = (inside / speech_len).min(1.0);
                }
            } else if speech_len > 0.0 {
                m.speech_coverage = 0.0;
            }
        }
        let union = speech::merge_intervals(spans.into_iter().flatten().collect());
        let union_len = speech::total_length(&union);
        let inside = speech::overlap_length(&union, &detected);
        if speech_len > 0.0 {
            overall.speech_coverage = (inside / speech_len).min(1.0);
        }
        if union_len > 0.0 {
            overall.speech_in_segments = (inside / union_len).min(1.0);
        }
    }

    Ok(Report {
        overall,
        segments,
        words,
    })
}

#[cfg(test)]
mod tests;
