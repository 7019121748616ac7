//! Text-level hallucination signals: zlib compression ratio and word repetition.

use std::cell::RefCell;

use flate2::{Compress, Compression, FlushCompress, Status};

/// Longest repeated phrase (in words) that [`repetition_score`] looks for.
pub const MAX_REPEAT_PERIOD: usize = 8;

/// Python's `str.isspace` for one char: Unicode `White_Space` plus the ASCII information
/// separators U+001C..U+001F, which Python also treats as whitespace.
#[inline]
pub fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// `s.strip()` exactly as Python does it.
#[inline]
pub fn py_strip(s: &str) -> &str {
    s.trim_matches(is_py_space)
}

/// Output chunk for deflate; only its length is ever looked at.
const SCRATCH_LEN: usize = 4096;

/// Computes `len(zlib.compress(data))` (zlib container, level 6, 32 KiB window, memLevel 8)
/// for many inputs, reusing one deflate state (`deflateReset` instead of a fresh init).
///
/// flate2 is built on the C zlib (feature `zlib`), the library CPython's `zlib` module wraps,
/// so the length is the one Python computes. miniz, flate2's default backend, picks other
/// matches and gives different lengths on many inputs (seen in the tests).
pub struct ZlibSizer {
    deflate: Compress,
    scratch: Vec<u8>,
}

impl Default for ZlibSizer {
    fn default() -> Self {
        Self::new()
    }
}

impl ZlibSizer {
    pub fn new() -> Self {
        ZlibSizer {
            deflate: Compress::new(Compression::default(), true),
            scratch: vec![0; SCRATCH_LEN],
        }
    }

    /// Length in bytes of the zlib stream of `data`; only the length is kept.
    pub fn compressed_len(&mut self, data: &[u8]) -> usize {
        self.deflate.reset();
        let mut consumed = 0usize;
        loop {
            let before = self.deflate.total_in();
            let status = self
                .deflate
                .compress(&data[consumed..], &mut self.scratch, FlushCompress::Finish)
                .expect("deflate with Z_FINISH on a valid stream cannot fail");
            consumed += (self.deflate.total_in() - before) as usize;
            if status == Status::StreamEnd {
                return self.deflate.total_out() as usize;
            }
        }
    }

    /// openai-whisper's `compression_ratio`: `len(text_bytes) / len(zlib.compress(text_bytes))`.
    ///
    /// `text` is used as given (openai-whisper applies it to the stripped decoded text; the
    /// caller strips). The empty text gives 0.0.
    pub fn compression_ratio(&mut self, text: &str) -> f64 {
        let bytes = text.as_bytes();
        bytes.len() as f64 / self.compressed_len(bytes) as f64
    }
}

thread_local! {
    /// One deflate state per thread: a fresh one costs ~270 KiB of allocation, more than
    /// compressing a typical segment.
    static ZLIB_SIZER: RefCell<ZlibSizer> = RefCell::new(ZlibSizer::new());
}

/// Run `f` with this thread's [`ZlibSizer`].
pub fn with_zlib_sizer<R>(f: impl FnOnce(&mut ZlibSizer) -> R) -> R {
    ZLIB_SIZER.with(|z| f(&mut z.borrow_mut()))
}

/// Split lowercased text into normalised words: whitespace-separated (Python's notion of
/// whitespace), ASCII punctuation trimmed from both ends, empty results dropped.
pub fn normalized_words<'a>(lowercased: &'a str, out: &mut Vec<&'a str>) {
    out.extend(
        lowercased
            .split(is_py_space)
            .map(|w| w.trim_matches(|c: char| c.is_ascii_punctuation()))
            .filter(|w| !w.is_empty()),
    );
}

/// Share of words that are part of a back-to-back repetition ("tandem repeat").
///
/// For each period `p` in `1..=MAX_REPEAT_PERIOD`, a position `i >= p` *echoes* when
/// `words[i] == words[i - p]`. A maximal run of `L` consecutive echoing positions means the
/// `p`-word phrase before the run is repeated; it counts when `L >= max(p, 2)`, i.e. at least
/// one full extra copy of the phrase, and for single words at least three in a row, so
/// normal emphasis ("no no", "very very") does not count. The score is the number of
/// positions covered by a counting run (for any `p`) divided by the number of words; the
/// first occurrence of a phrase is never covered. Fewer than three words score 0.0.
///
/// Examples: "the the the the" = 0.75, "thank you thank you" = 0.5, and ordinary sentences
/// ("turn on the kitchen lights") = 0.0 regardless of how often common words recur far apart.
pub fn repetition_score(words: &[&str]) -> f64 {
    let n = words.len();
    if n < 3 {
        return 0.0;
    }
    let mut covered = vec![false; n];
    let mut n_covered = 0usize;
    for p in 1..=MAX_REPEAT_PERIOD.min(n - 1) {
        let need = p.max(2);
        let mut run_start = p;
        let mut i = p;
        while i <= n {
            let echoes = i < n && words[i] == words[i - p];
            if !echoes {
                if i - run_start >= need {
                    for c in &mut covered[run_start..i] {
                        if !*c {
                            *c = true;
                            n_covered += 1;
                        }
                    }
                }
                run_start = i + 1;
            }
            i += 1;
        }
    }
    n_covered as f64 / n as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        let lower = text.to_lowercase();
        let mut out = Vec::new();
        normalized_words(&lower, &mut out);
        out.into_iter().map(str::to_owned).collect()
    }

    fn score(text: &str) -> f64 {
        let w = words(text);
        let refs: Vec<&str> = w.iter().map(String::as_str).collect();
        repetition_score(&refs)
    }

    #[test]
    fn py_strip_matches_python_whitespace() {
        assert_eq!(py_strip("\u{1c} a b\u{3000}\n"), "a b");
        assert_eq!(py_strip("  "), "");
        assert_eq!(py_strip("\u{200b}x"), "\u{200b}x"); // zero-width space is not whitespace
    }

    #[test]
    fn compressed_len_matches_cpython_zlib() {
        // Values from CPython 3.11: len(zlib.compress(b)).
        let mut z = ZlibSizer::new();
        assert_eq!(z.compressed_len(b""), 8);
        assert_eq!(z.compressed_len(b"a"), 9);
        assert_eq!(z.compressed_len(b"hello hello hello hello"), 16);
        assert_eq!(z.compression_ratio(""), 0.0);
        let ratio = z.compression_ratio("hello hello hello hello");
        assert!((ratio - 23.0 / 16.0).abs() < 1e-12);
        // Larger than the scratch buffer even after compression: several Z_FINISH rounds.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let noisy: Vec<u8> = (0..100_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 32) as u8
            })
            .collect();
        let len = z.compressed_len(&noisy);
        assert!(len > 4 * SCRATCH_LEN);
        assert_eq!(z.compressed_len(b"a"), 9); // reset state
    }

    #[test]
    fn normalization_lowercases_and_trims_punctuation() {
        assert_eq!(
            words("Hello, World! -- it's (fine)."),
            ["hello", "world", "it's", "fine"]
        );
    }

    #[test]
    fn repetition_of_single_word_loop() {
        assert_eq!(score("the the the the"), 0.75);
        assert_eq!(score("yes yes"), 0.0); // too short
        assert_eq!(score("no no, I said"), 0.0); // two in a row is emphasis
        assert!((score("I said no no no") - 2.0 / 5.0).abs() < 1e-12);
    }

    #[test]
    fn repetition_of_phrases() {
        assert_eq!(score("thank you thank you"), 0.5);
        assert!((score("a b a b a") - 3.0 / 5.0).abs() < 1e-12);
        let phrase = "turn on the kitchen lights ";
        let looped = phrase.repeat(6);
        assert!((score(&looped) - 25.0 / 30.0).abs() < 1e-12);
    }

    #[test]
    fn normal_sentences_score_zero() {
        for s in [
            "turn on the kitchen lights",
            "remind me to water the plants tomorrow morning",
            "set a timer for ten minutes and then turn off the oven and the lights",
            "what is the weather like in the city where the conference is held",
        ] {
            assert_eq!(score(s), 0.0, "{s}");
        }
    }
}
