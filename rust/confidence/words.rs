//! Merging sub-word token pieces into words (rules in the parent module docs).

use super::text::py_strip;
use super::Word;

/// Whether a piece starts a new word inside a segment.
#[inline]
fn starts_word(piece: &[u8]) -> bool {
    if piece.first() != Some(&b' ') {
        return false;
    }
    let content = piece.trim_ascii();
    let punct_only = !content.is_empty() && content.iter().all(u8::is_ascii_punctuation);
    !punct_only || content.iter().all(|c| b"([{\"'".contains(c))
}

/// The word being assembled; its bytes live in the builder's shared buffer.
struct Current {
    segment: usize,
    start: Option<f64>,
    end: Option<f64>,
    sum_p: f64,
    n: usize,
}

/// Collects words from text tokens fed in order; one allocation per finished word.
#[derive(Default)]
pub struct WordBuilder {
    words: Vec<Word>,
    bytes: Vec<u8>,
    current: Option<Current>,
}

impl WordBuilder {
    /// Add one text token of `segment` (times in seconds, `None` when unknown).
    #[inline]
    pub fn push(
        &mut self,
        segment: usize,
        piece: &[u8],
        p: f64,
        start: Option<f64>,
        end: Option<f64>,
    ) {
        match self.current.as_mut() {
            Some(w) if w.segment == segment && !starts_word(piece) => {
                w.end = end;
                w.sum_p += p;
                w.n += 1;
            }
            _ => {
                self.flush();
                self.current = Some(Current {
                    segment,
                    start,
                    end,
                    sum_p: p,
                    n: 1,
                });
            }
        }
        self.bytes.extend_from_slice(piece);
    }

    fn flush(&mut self) {
        if let Some(w) = self.current.take() {
            let decoded = String::from_utf8_lossy(&self.bytes);
            let stripped = py_strip(&decoded);
            if !stripped.is_empty() {
                self.words.push(Word {
                    word: stripped.to_owned(),
                    start: w.start,
                    end: w.end,
                    probability: w.sum_p / w.n as f64,
                    segment: w.segment,
                });
            }
        }
        self.bytes.clear();
    }

    /// All words, the last one included.
    pub fn finish(mut self) -> Vec<Word> {
        self.flush();
        self.words
    }
}
