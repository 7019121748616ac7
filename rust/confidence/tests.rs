//! Hand-computed cases for [`super::aggregate`].

use super::*;

/// Owned token data for tests; `data()` borrows it as a [`TokenData`].
#[derive(Default)]
struct Owned {
    ids: Vec<i32>,
    probs: Vec<f32>,
    logprobs: Vec<f32>,
    t0: Vec<i64>,
    t1: Vec<i64>,
    seg: Vec<i32>,
    flags: Vec<u8>,
    bytes: Vec<Vec<u8>>,
    seg_t0: Vec<i64>,
    seg_t1: Vec<i64>,
    texts: Vec<String>,
}

impl Owned {
    fn segment(&mut self, t0: i64, t1: i64, text: &str) -> &mut Self {
        self.seg_t0.push(t0);
        self.seg_t1.push(t1);
        self.texts.push(text.to_owned());
        self
    }

    fn token(&mut self, piece: &[u8], p: f32, flags: u8, t0: i64, t1: i64) -> &mut Self {
        self.ids.push(self.ids.len() as i32);
        self.probs.push(p);
        self.logprobs.push(p.ln().max(-30.0));
        self.t0.push(t0);
        self.t1.push(t1);
        self.seg.push(self.texts.len() as i32 - 1);
        self.flags.push(flags);
        self.bytes.push(piece.to_vec());
        self
    }

    fn text(&mut self, piece: &str, p: f32) -> &mut Self {
        self.token(piece.as_bytes(), p, 0, -1, -1)
    }

    fn run(&self, speech: Option<&[(f64, f64)]>) -> CoreResult<Report> {
        let pieces: Vec<&[u8]> = self.bytes.iter().map(Vec::as_slice).collect();
        let texts: Vec<&str> = self.texts.iter().map(String::as_str).collect();
        let data = TokenData {
            token_ids: &self.ids,
            probs: &self.probs,
            logprobs: &self.logprobs,
            t0: &self.t0,
            t1: &self.t1,
            segment_index: &self.seg,
            flags: &self.flags,
            token_bytes: &pieces,
            segment_t0: &self.seg_t0,
            segment_t1: &self.seg_t1,
            segment_texts: &texts,
        };
        aggregate(&data, speech, DEFAULT_LOW_THRESHOLD)
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6
}

/// `[sot] " Hi"(0.5) " there"(1.0) [eot]` in one segment.
fn two_token_result() -> Owned {
    let mut o = Owned::default();
    o.segment(0, 200, " Hi there")
        .token(b"[SOT]", 0.01, FLAG_SPECIAL, -1, -1)
        .token(b" Hi", 0.5, 0, 0, 50)
        .token(b" there", 1.0, 0, 50, 120)
        .token(b"[_TT_100]", 0.02, FLAG_TIMESTAMP, 100, 100)
        .token(b"[EOT]", 0.03, FLAG_SPECIAL, -1, -1);
    o
}

#[test]
fn token_statistics_ignore_special_and_timestamp_tokens() {
    let r = two_token_result().run(None).unwrap();
    let m = r.overall;
    assert_eq!(m.n_tokens, 2);
    assert!(close(m.mean, 0.75));
    assert!(close(m.geometric_mean, 0.5f64.sqrt()));
    assert!(close(m.min, 0.5));
    assert!(close(m.std, 0.25));
    assert!(close(m.consistency, 0.5));
    assert!(close(m.low_confidence_ratio, 0.5));
    assert!(close(m.avg_logprob, (0.5f64.ln() + 0.0) / 2.0));
    assert!(close(m.sequence_confidence, 0.5));
    assert_eq!(r.segments.len(), 1);
    assert_eq!(r.segments[0].n_tokens, 2);
    assert!(close(r.segments[0].mean, 0.75));
    assert_eq!((m.speech_coverage, m.speech_in_segments), (1.0, 1.0));
}

#[test]
fn zero_probability_gives_zero_geometric_mean_not_nan() {
    let mut o = Owned::default();
    o.segment(0, 100, " a b").text(" a", 0.0).text(" b", 1.0);
    let m = o.run(None).unwrap().overall;
    assert_eq!(m.geometric_mean, 0.0);
    assert_eq!(m.sequence_confidence, 0.0);
    assert_eq!(m.consistency, 0.0);
}

#[test]
fn text_metrics_use_stripped_segment_text() {
    let mut o = Owned::default();
    o.segment(0, 100, " the the the the ")
        .text(" the", 0.9)
        .segment(100, 200, " the")
        .text(" the", 0.9);
    let r = o.run(None).unwrap();
    // len("the the the the") = 15, len(zlib.compress(...)) = 14 in CPython.
    assert!(close(r.segments[0].compression_ratio, 15.0 / 14.0));
    assert!(close(r.segments[0].repetition_score, 0.75));
    assert_eq!(r.segments[1].repetition_score, 0.0);
    // Overall: five "the" in a row across segments.
    assert!(close(r.overall.repetition_score, 0.8));
    assert!(close(
        r.overall.compression_ratio,
        text::ZlibSizer::new().compression_ratio("the the the the  the")
    ));
}

#[test]
fn empty_result_is_all_zero_and_finite() {
    let o = Owned::default();
    let r = o.run(None).unwrap();
    let m = r.overall;
    assert_eq!(m.n_tokens, 0);
    for v in [
        m.mean,
        m.geometric_mean,
        m.min,
        m.std,
        m.consistency,
        m.low_confidence_ratio,
        m.avg_logprob,
        m.sequence_confidence,
        m.compression_ratio,
        m.repetition_score,
    ] {
        assert_eq!(v, 0.0);
    }
    assert!(r.segments.is_empty() && r.words.is_empty());

    // Only special tokens in a segment: still no text tokens.
    let mut o = Owned::default();
    o.segment(0, 100, "")
        .token(b"[EOT]", 0.5, FLAG_SPECIAL, -1, -1);
    let r = o.run(Some(&[])).unwrap();
    assert_eq!(r.segments[0].n_tokens, 0);
    assert_eq!(r.segments[0].mean, 0.0);
    assert!(r.words.is_empty());
}

#[test]
fn single_token_has_zero_spread() {
    let mut o = Owned::default();
    o.segment(0, 100, " ok").text(" ok", 0.4);
    let m = o.run(None).unwrap().overall;
    assert_eq!((m.n_tokens, m.std, m.consistency), (1, 0.0, 1.0));
    assert!(close(m.mean, 0.4) && close(m.min, 0.4) && close(m.low_confidence_ratio, 1.0));
}

#[test]
fn words_merge_pieces_and_punctuation() {
    let mut o = Owned::default();
    o.segment(0, 300, " Hello, world (laughs).")
        .token(b"[_BEG_]", 0.9, FLAG_TIMESTAMP, 0, 0)
        .token(b"Hel", 0.8, 0, 0, 10) // first text token of a segment starts a word
        .token(b"lo", 0.6, 0, 10, 20)
        .token(b",", 0.9, 0, 20, 25)
        .token(b" world", 0.7, 0, 30, -1)
        .token(b" (", 0.5, 0, 40, 45)
        .token(b"laugh", 0.5, 0, 45, 50)
        .token(b"s", 0.5, 0, 50, 55)
        .token(b")", 0.5, 0, 55, 56)
        .token(b" .", 0.5, 0, 56, 60);
    let words = o.run(None).unwrap().words;
    let texts: Vec<&str> = words.iter().map(|w| w.word.as_str()).collect();
    assert_eq!(texts, ["Hello,", "world", "(laughs) ."]);
    assert_eq!(words[0].start, Some(0.0));
    assert_eq!(words[0].end, Some(0.25));
    assert!(close(words[0].probability, (0.8 + 0.6 + 0.9) / 3.0));
    assert_eq!((words[1].start, words[1].end), (Some(0.3), None));
    assert_eq!(words[2].end, Some(0.6));
}

#[test]
fn words_split_at_segments_and_decode_split_utf8() {
    let euro = "€".as_bytes(); // 3 bytes
    let mut o = Owned::default();
    o.segment(0, 100, " 5€")
        .token(b" 5", 0.9, 0, 0, 10)
        .token(&euro[..1], 0.5, 0, 10, 20)
        .token(&euro[1..], 0.7, 0, 20, 30)
        .segment(100, 200, " x")
        .token(&euro[1..], 0.3, 0, 100, 110)
        .token(b" ", 0.3, 0, 110, 120);
    let words = o.run(None).unwrap().words;
    assert_eq!(words.len(), 2);
    assert_eq!(words[0].word, "5€");
    assert_eq!(words[0].segment, 0);
    // A lone continuation tail decodes to replacement characters (one per byte, like Python).
    assert_eq!(words[1].word, "\u{fffd}\u{fffd}");
    assert_eq!(words[1].segment, 1);
}

#[test]
fn speech_overlap_metrics() {
    let mut o = Owned::default();
    // Segments 0-2 s and 5-6 s, one segment with unknown times.
    o.segment(0, 200, " a").text(" a", 0.9);
    o.segment(500, 600, " b").text(" b", 0.9);
    o.segment(-1, -1, " c").text(" c", 0.9);
    let speech = [(1.0, 3.0), (5.5, 7.5)];
    let r = o.run(Some(&speech)).unwrap();
    // Detected 4 s of speech; covered: 1 s (1-2) + 0.5 s (5.5-6).
    assert!(close(r.overall.speech_coverage, 1.5 / 4.0));
    assert!(close(r.overall.speech_in_segments, 1.5 / 3.0));
    assert!(close(r.segments[0].speech_in_segments, 0.5));
    assert!(close(r.segments[0].speech_coverage, 0.25));
    assert!(close(r.segments[1].speech_in_segments, 0.5));
    assert_eq!(r.segments[2].speech_in_segments, 1.0);
    assert_eq!(r.segments[2].speech_coverage, 0.0);

    // Detector ran and found nothing: text over silence.
    let r = o.run(Some(&[])).unwrap();
    assert_eq!(r.overall.speech_coverage, 1.0);
    assert_eq!(r.overall.speech_in_segments, 0.0);
    assert_eq!(r.segments[0].speech_in_segments, 0.0);
}

#[test]
fn invalid_inputs_are_rejected() {
    let expect_invalid =
        |o: &Owned, speech: Option<&[(f64, f64)]>, needle: &str| match o.run(speech) {
            Err(CoreError::InvalidArgument(msg)) => assert!(msg.contains(needle), "{msg}"),
            other => panic!("expected InvalidArgument({needle}), got {other:?}"),
        };
    let mut o = two_token_result();
    o.probs[1] = f32::NAN;
    expect_invalid(&o, None, "probs[1]");
    o.probs[1] = 1.5;
    expect_invalid(&o, None, "probs[1]");
    let mut o = two_token_result();
    o.logprobs[2] = f32::NEG_INFINITY;
    expect_invalid(&o, None, "logprobs[2]");
    let mut o = two_token_result();
    o.t1.pop();
    expect_invalid(&o, None, "t1 has 4");
    let mut o = two_token_result();
    o.seg[0] = 3;
    expect_invalid(&o, None, "segment_index[0]");
    let mut o = two_token_result();
    o.texts.push("x".into());
    expect_invalid(&o, None, "segment_texts");
    let o = two_token_result();
    expect_invalid(&o, Some(&[(2.0, 1.0)]), "speech_segments[0]");
    expect_invalid(&o, Some(&[(0.0, f64::INFINITY)]), "speech_segments[0]");
}
