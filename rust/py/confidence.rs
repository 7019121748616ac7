//! Python bindings for [`crate::confidence`].

use numpy::PyUntypedArrayMethods;
use numpy::{Element, PyArray1, PyArrayMethods, PyReadonlyArray1, PyUntypedArray};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString};

use super::to_pyerr;
use crate::confidence::{self, Metrics, Report, TokenData, Word};
use crate::error::CoreError;

fn invalid(msg: String) -> PyErr {
    to_pyerr(CoreError::InvalidArgument(msg))
}

fn describe(obj: &Bound<'_, PyAny>) -> String {
    let text = |r: PyResult<Bound<'_, PyString>>| r.map_or_else(|_| "?".into(), |s| s.to_string());
    match obj.cast::<PyUntypedArray>() {
        Ok(a) => format!("a {}-D array of dtype {}", a.ndim(), text(a.dtype().str())),
        Err(_) => text(obj.get_type().name()),
    }
}

/// Borrow a 1-D C-contiguous numpy array of exactly dtype `T`, without copying.
fn array<'py, T: Element>(
    obj: &Bound<'py, PyAny>,
    name: &str,
    dtype: &str,
) -> PyResult<PyReadonlyArray1<'py, T>> {
    let arr = obj.cast::<PyArray1<T>>().map_err(|_| {
        invalid(format!(
            "{name} must be a 1-D numpy array of dtype {dtype}, got {}",
            describe(obj)
        ))
    })?;
    let ro = arr
        .try_readonly()
        .map_err(|e| invalid(format!("{name} cannot be read: {e}")))?;
    if !ro.is_c_contiguous() {
        return Err(invalid(format!("{name} must be C-contiguous")));
    }
    Ok(ro)
}

fn slice<'a, T: Element>(arr: &'a PyReadonlyArray1<'_, T>, name: &str) -> PyResult<&'a [T]> {
    arr.as_slice()
        .map_err(|e| invalid(format!("{name} cannot be read as a slice: {e}")))
}

fn metrics_dict<'py>(py: Python<'py>, m: &Metrics) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item(intern!(py, "n_tokens"), m.n_tokens)?;
    d.set_item(intern!(py, "mean"), m.mean)?;
    d.set_item(intern!(py, "geometric_mean"), m.geometric_mean)?;
    d.set_item(intern!(py, "min"), m.min)?;
    d.set_item(intern!(py, "std"), m.std)?;
    d.set_item(intern!(py, "consistency"), m.consistency)?;
    d.set_item(intern!(py, "low_confidence_ratio"), m.low_confidence_ratio)?;
    d.set_item(intern!(py, "avg_logprob"), m.avg_logprob)?;
    d.set_item(intern!(py, "sequence_confidence"), m.sequence_confidence)?;
    d.set_item(intern!(py, "compression_ratio"), m.compression_ratio)?;
    d.set_item(intern!(py, "repetition_score"), m.repetition_score)?;
    d.set_item(intern!(py, "speech_coverage"), m.speech_coverage)?;
    d.set_item(intern!(py, "speech_in_segments"), m.speech_in_segments)?;
    Ok(d)
}

fn word_dict<'py>(py: Python<'py>, w: &Word) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item(intern!(py, "word"), &w.word)?;
    d.set_item(intern!(py, "start"), w.start)?;
    d.set_item(intern!(py, "end"), w.end)?;
    d.set_item(intern!(py, "probability"), w.probability)?;
    d.set_item(intern!(py, "segment"), w.segment)?;
    Ok(d)
}

fn report_dict<'py>(py: Python<'py>, r: &Report) -> PyResult<Bound<'py, PyDict>> {
    let segments = r
        .segments
        .iter()
        .map(|m| metrics_dict(py, m))
        .collect::<PyResult<Vec<_>>>()?;
    let words = r
        .words
        .iter()
        .map(|w| word_dict(py, w))
        .collect::<PyResult<Vec<_>>>()?;
    let d = PyDict::new(py);
    d.set_item(intern!(py, "overall"), metrics_dict(py, &r.overall)?)?;
    d.set_item(intern!(py, "segments"), PyList::new(py, segments)?)?;
    d.set_item(intern!(py, "words"), PyList::new(py, words)?)?;
    Ok(d)
}

/// Metric names in the column order of [`metrics_row`].
const METRIC_NAMES: [&str; 13] = [
    "n_tokens",
    "mean",
    "geometric_mean",
    "min",
    "std",
    "consistency",
    "low_confidence_ratio",
    "avg_logprob",
    "sequence_confidence",
    "compression_ratio",
    "repetition_score",
    "speech_coverage",
    "speech_in_segments",
];

fn metrics_row(m: &Metrics) -> [f64; 13] {
    [
        m.n_tokens as f64,
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
        m.speech_coverage,
        m.speech_in_segments,
    ]
}

/// The report as columns: a few arrays and one string instead of one object per word.
struct Columns {
    overall: Vec<f64>,
    segments: Vec<f64>,
    n_segments: usize,
    word_text: String,
    /// Code-point offsets of each word in `word_text` (n_words + 1 entries).
    word_offsets: Vec<i64>,
    word_start: Vec<f64>,
    word_end: Vec<f64>,
    word_probability: Vec<f64>,
    word_segment: Vec<i64>,
}

impl Columns {
    fn new(r: &Report) -> Self {
        let n = r.words.len();
        let mut c = Columns {
            overall: metrics_row(&r.overall).to_vec(),
            segments: r.segments.iter().flat_map(metrics_row).collect(),
            n_segments: r.segments.len(),
            word_text: String::with_capacity(r.words.iter().map(|w| w.word.len()).sum()),
            word_offsets: Vec::with_capacity(n + 1),
            word_start: Vec::with_capacity(n),
            word_end: Vec::with_capacity(n),
            word_probability: Vec::with_capacity(n),
            word_segment: Vec::with_capacity(n),
        };
        let mut chars = 0i64;
        c.word_offsets.push(0);
        for w in &r.words {
            c.word_text.push_str(&w.word);
            chars += w.word.chars().count() as i64;
            c.word_offsets.push(chars);
            c.word_start.push(w.start.unwrap_or(f64::NAN));
            c.word_end.push(w.end.unwrap_or(f64::NAN));
            c.word_probability.push(w.probability);
            c.word_segment.push(w.segment as i64);
        }
        c
    }

    fn into_dict(self, py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
        let d = PyDict::new(py);
        d.set_item(intern!(py, "metric_names"), METRIC_NAMES.to_vec())?;
        d.set_item(intern!(py, "overall"), PyArray1::from_vec(py, self.overall))?;
        d.set_item(
            intern!(py, "segments"),
            PyArray1::from_vec(py, self.segments).reshape([self.n_segments, METRIC_NAMES.len()])?,
        )?;
        d.set_item(intern!(py, "word_text"), self.word_text)?;
        d.set_item(
            intern!(py, "word_offsets"),
            PyArray1::from_vec(py, self.word_offsets),
        )?;
        d.set_item(
            intern!(py, "word_start"),
            PyArray1::from_vec(py, self.word_start),
        )?;
        d.set_item(
            intern!(py, "word_end"),
            PyArray1::from_vec(py, self.word_end),
        )?;
        d.set_item(
            intern!(py, "word_probability"),
            PyArray1::from_vec(py, self.word_probability),
        )?;
        d.set_item(
            intern!(py, "word_segment"),
            PyArray1::from_vec(py, self.word_segment),
        )?;
        Ok(d)
    }
}

/// Reads the arguments (without copying the arrays) and aggregates with the GIL released.
#[allow(clippy::too_many_arguments)]
fn run<'py>(
    py: Python<'py>,
    token_ids: &Bound<'py, PyAny>,
    probs: &Bound<'py, PyAny>,
    logprobs: &Bound<'py, PyAny>,
    t0: &Bound<'py, PyAny>,
    t1: &Bound<'py, PyAny>,
    segment_index: &Bound<'py, PyAny>,
    flags: &Bound<'py, PyAny>,
    token_bytes: &Bound<'py, PyList>,
    segment_t0: &Bound<'py, PyAny>,
    segment_t1: &Bound<'py, PyAny>,
    segment_texts: &Bound<'py, PyList>,
    speech_segments: Option<Vec<(f64, f64)>>,
    low_threshold: f64,
) -> PyResult<Report> {
    let a_ids = array::<i32>(token_ids, "token_ids", "int32")?;
    let a_probs = array::<f32>(probs, "probs", "float32")?;
    let a_logprobs = array::<f32>(logprobs, "logprobs", "float32")?;
    let a_t0 = array::<i64>(t0, "t0", "int64")?;
    let a_t1 = array::<i64>(t1, "t1", "int64")?;
    let a_seg = array::<i32>(segment_index, "segment_index", "int32")?;
    let a_flags = array::<u8>(flags, "flags", "uint8")?;
    let a_seg_t0 = array::<i64>(segment_t0, "segment_t0", "int64")?;
    let a_seg_t1 = array::<i64>(segment_t1, "segment_t1", "int64")?;

    // Keep the Python objects alive while the GIL is released; bytes and str are immutable.
    let bytes_objs = token_bytes
        .iter()
        .enumerate()
        .map(|(i, item)| {
            item.cast_into::<PyBytes>().map_err(|e| {
                invalid(format!(
                    "token_bytes[{i}] must be bytes, got {}",
                    describe(e.into_inner().as_any())
                ))
            })
        })
        .collect::<PyResult<Vec<_>>>()?;
    let pieces: Vec<&[u8]> = bytes_objs.iter().map(|b| b.as_bytes()).collect();
    let text_objs = segment_texts
        .iter()
        .enumerate()
        .map(|(i, item)| {
            item.cast_into::<PyString>().map_err(|e| {
                invalid(format!(
                    "segment_texts[{i}] must be str, got {}",
                    describe(e.into_inner().as_any())
                ))
            })
        })
        .collect::<PyResult<Vec<_>>>()?;
    let texts = text_objs
        .iter()
        .enumerate()
        .map(|(i, s)| {
            s.to_str()
                .map_err(|e| invalid(format!("segment_texts[{i}] is not valid UTF-8: {e}")))
        })
        .collect::<PyResult<Vec<&str>>>()?;

    let data = TokenData {
        token_ids: slice(&a_ids, "token_ids")?,
        probs: slice(&a_probs, "probs")?,
        logprobs: slice(&a_logprobs, "logprobs")?,
        t0: slice(&a_t0, "t0")?,
        t1: slice(&a_t1, "t1")?,
        segment_index: slice(&a_seg, "segment_index")?,
        flags: slice(&a_flags, "flags")?,
        token_bytes: &pieces,
        segment_t0: slice(&a_seg_t0, "segment_t0")?,
        segment_t1: slice(&a_seg_t1, "segment_t1")?,
        segment_texts: &texts,
    };
    let speech = speech_segments.as_deref();
    py.detach(|| confidence::aggregate(&data, speech, low_threshold))
        .map_err(to_pyerr)
}

macro_rules! entry_point {
    ($(#[$doc:meta])* $name:ident => |$py:ident, $report:ident| $finish:expr) => {
        $(#[$doc])*
        #[pyfunction]
        #[pyo3(signature = (
            token_ids, probs, logprobs, t0, t1, segment_index, flags, token_bytes,
            segment_t0, segment_t1, segment_texts, speech_segments=None, low_threshold=0.7
        ))]
        #[allow(clippy::too_many_arguments)]
        fn $name<'py>(
            $py: Python<'py>,
            token_ids: &Bound<'py, PyAny>,
            probs: &Bound<'py, PyAny>,
            logprobs: &Bound<'py, PyAny>,
            t0: &Bound<'py, PyAny>,
            t1: &Bound<'py, PyAny>,
            segment_index: &Bound<'py, PyAny>,
            flags: &Bound<'py, PyAny>,
            token_bytes: &Bound<'py, PyList>,
            segment_t0: &Bound<'py, PyAny>,
            segment_t1: &Bound<'py, PyAny>,
            segment_texts: &Bound<'py, PyList>,
            speech_segments: Option<Vec<(f64, f64)>>,
            low_threshold: f64,
        ) -> PyResult<Bound<'py, PyDict>> {
            let $report = run(
                $py, token_ids, probs, logprobs, t0, t1, segment_index, flags, token_bytes,
                segment_t0, segment_t1, segment_texts, speech_segments, low_threshold,
            )?;
            $finish
        }
    };
}

entry_point!(
    /// Aggregate whisper.cpp token results into per-segment/overall metrics and words.
    aggregate_confidence => |py, report| report_dict(py, &report)
);

entry_point!(
    /// [`aggregate_confidence`] with the result as columns (arrays and one string).
    aggregate_confidence_columns => |py, report| Columns::new(&report).into_dict(py)
);

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(aggregate_confidence, m)?)?;
    m.add_function(wrap_pyfunction!(aggregate_confidence_columns, m)?)?;
    m.add("CONFIDENCE_FLAG_SPECIAL", confidence::FLAG_SPECIAL)?;
    m.add("CONFIDENCE_FLAG_TIMESTAMP", confidence::FLAG_TIMESTAMP)?;
    Ok(())
}
