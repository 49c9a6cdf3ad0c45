//! Dedup keys read in place from Arrow string columns (the Python API's tables): the key text
//! of every row of a record batch is built from the columns' offset and data buffers and given
//! to the core deduper, with no Python object per row. The rules are those of the Python
//! `plamo_fast.data.dedup` key (a string field, or `prompt`: the user texts of
//! `curation_io.user_texts` joined by newlines, with the question + context rule of
//! `dedup.question_of` and the answer of `dedup.answer_of`); the Python side builds a
//! [`ColumnKeys`] only for tables where these columns are everything the rule reads, and the
//! tests compare both paths.

use std::borrow::Cow;

use pyo3::buffer::PyBuffer;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::dedup::{finished, Deduper};
use crate::errors::to_py;
use crate::pack::contiguous;

/// Arrow validity bits as Python passes them: the bitmap's bytes and the bit of the first row.
type BitsArg = (PyBuffer<u8>, usize);
/// A string column as Python passes it: the offsets (int32 or int64, one per row and one
/// more, into the data), the data bytes, and the validity bits (None: no null).
type ColumnArg<'py> = (Bound<'py, PyAny>, PyBuffer<u8>, Option<BitsArg>);

/// What a column is to a `prompt` key's question + context rule.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Other,
    Question,
    Context,
}

/// How the key text of a row is built from the string columns of its batch (the columns are
/// numbered in the order `add` receives them).
#[pyclass(module = "plamo_fast._native", frozen)]
pub struct ColumnKeys {
    /// false: the key is column 0's text itself (null: no key); true: the `prompt` key.
    prompt: bool,
    /// The user-text columns in order, for rows without and with an instruction.
    orders: [Vec<usize>; 2],
    roles: Vec<Role>,
    /// The answer columns in order (the first non-blank one is the answer).
    answers: Vec<usize>,
    near: bool,
}

#[pymethods]
impl ColumnKeys {
    /// `roles[c]`: 1 when column c is a question field, 2 a context field, 0 otherwise (its
    /// length is the number of columns). `plain` / `alpaca`: the user-text columns of a row
    /// without / with an instruction, in order. `near`: the rows take part in near dedup.
    #[new]
    #[pyo3(signature = (*, prompt, plain, alpaca, roles, answers, near))]
    fn new(
        prompt: bool,
        plain: Vec<usize>,
        alpaca: Vec<usize>,
        roles: Vec<u8>,
        answers: Vec<usize>,
        near: bool,
    ) -> PyResult<Self> {
        let roles = roles
            .into_iter()
            .map(|r| match r {
                0 => Ok(Role::Other),
                1 => Ok(Role::Question),
                2 => Ok(Role::Context),
                _ => Err(PyValueError::new_err("a role is 0, 1 or 2")),
            })
            .collect::<PyResult<Vec<Role>>>()?;
        let known = |v: &[usize]| v.iter().all(|&c| c < roles.len());
        let fits = known(&plain) && known(&alpaca) && known(&answers);
        if roles.is_empty() || !fits || (!prompt && plain != [0]) {
            return Err(PyValueError::new_err(
                "no columns, or column numbers outside the roles (a string key reads column 0 \
                 alone)",
            ));
        }
        Ok(Self {
            prompt,
            orders: [plain, alpaca],
            roles,
            answers,
            near,
        })
    }

    /// Adds the keys of a batch's rows to `deduper`, in row order; `(bad, questions)`: the
    /// rows without a key (0-based, in order; not added) and how many rows added have a
    /// question. `columns`: one per role, as long as each other; `alpaca_rows`: the bits of
    /// the rows with an instruction (None: every row). `quoted(text)`: the question of a key
    /// that is a single user text that may quote a passage, or None (called with the GIL for
    /// those rows only).
    fn add(
        &self,
        py: Python<'_>,
        deduper: &Bound<'_, Deduper>,
        columns: Vec<ColumnArg<'_>>,
        alpaca_rows: Option<BitsArg>,
        quoted: &Bound<'_, PyAny>,
    ) -> PyResult<(Vec<u32>, usize)> {
        if columns.len() != self.roles.len() {
            return Err(PyValueError::new_err("one column per role expected"));
        }
        let held = columns
            .into_iter()
            .map(Held::new)
            .collect::<PyResult<Vec<Held>>>()?;
        let rows = held[0].rows();
        if held.iter().any(|h| h.rows() != rows) {
            return Err(PyValueError::new_err("the columns differ in length"));
        }
        // SAFETY: every buffer is held until this function returns and the buffer protocol
        // keeps its memory in place; the views only read it. The GIL is released while they
        // are read: the caller passes buffers of immutable Arrow arrays, which nothing writes.
        let views = held
            .iter()
            .map(|h| unsafe { h.view() })
            .collect::<PyResult<Vec<_>>>()?;
        let alpaca = match &alpaca_rows {
            Some((bits, offset)) => Some(unsafe { Bits::new(bits, *offset, rows)? }),
            None => None,
        };
        let mut keys = py
            .detach(|| self.keys(&views, alpaca.as_ref(), rows))
            .map_err(PyValueError::new_err)?;
        for &(k, row) in &keys.quoted {
            let question: Option<String> = quoted.call1((keys.texts[k].as_ref(),))?.extract()?;
            if let Some(question) = question {
                keys.questions[k] = Some(Cow::Owned(question));
                keys.answers[k] = self.answer(&views, row).map_err(PyValueError::new_err)?;
            }
        }
        let mut deduper = deduper.borrow_mut();
        let inner = deduper.inner.as_mut().ok_or_else(finished)?;
        let with_question = keys.questions.iter().filter(|q| q.is_some()).count();
        py.detach(|| {
            let texts: Vec<&str> = keys.texts.iter().map(AsRef::as_ref).collect();
            let questions: Vec<Option<&str>> =
                keys.questions.iter().map(Option::as_deref).collect();
            inner.add(
                &texts,
                &vec![self.near; texts.len()],
                &questions,
                &keys.answers,
            )
        })
        .map_err(to_py)?;
        Ok((keys.bad, with_question))
    }
}

/// The keys of a batch: per row with a key, its text, question and answer (empty vectors for
/// a string key); the rows without one; the keys whose question `quoted` decides (key index,
/// row).
struct Keys<'a> {
    texts: Vec<Cow<'a, str>>,
    questions: Vec<Option<Cow<'a, str>>>,
    answers: Vec<Option<&'a str>>,
    bad: Vec<u32>,
    quoted: Vec<(usize, usize)>,
}

impl ColumnKeys {
    fn keys<'a>(
        &self,
        columns: &[Column<'a>],
        alpaca: Option<&Bits<'_>>,
        rows: usize,
    ) -> Result<Keys<'a>, String> {
        let mut keys = Keys {
            texts: Vec::with_capacity(rows),
            questions: Vec::new(),
            answers: Vec::new(),
            bad: Vec::new(),
            quoted: Vec::new(),
        };
        if !self.prompt {
            for row in 0..rows {
                match columns[0].get(row)? {
                    Some(text) => keys.texts.push(Cow::Borrowed(text)),
                    None => keys.bad.push(row as u32),
                }
            }
            return Ok(keys);
        }
        let mut texts: Vec<(usize, &'a str)> = Vec::new();
        for row in 0..rows {
            let order = &self.orders[usize::from(alpaca.is_none_or(|bits| bits.get(row)))];
            texts.clear();
            for &c in order {
                if let Some(text) = columns[c].get(row)? {
                    if !is_blank(text) {
                        texts.push((c, text));
                    }
                }
            }
            if texts.is_empty() {
                keys.bad.push(row as u32);
                continue;
            }
            let question = self.question(&texts);
            let answer = match question {
                Some(_) => self.answer(columns, row)?,
                None => None,
            };
            if texts.len() == 1 && may_quote(texts[0].1) {
                keys.quoted.push((keys.texts.len(), row));
            }
            keys.texts.push(match texts[..] {
                [(_, text)] => Cow::Borrowed(text),
                _ => Cow::Owned(join_lines(&texts)),
            });
            keys.questions.push(question.map(Cow::Borrowed));
            keys.answers.push(answer);
        }
        Ok(keys)
    }

    /// The question of two user texts that are one question field and one context field
    /// (`dedup.question_of`; a single text's quoted passage is left to `quoted`).
    fn question<'a>(&self, texts: &[(usize, &'a str)]) -> Option<&'a str> {
        let [a, b] = texts else { return None };
        let (ra, rb) = (self.roles[a.0], self.roles[b.0]);
        match (ra, rb) {
            (Role::Question, Role::Context) => Some(a.1),
            (Role::Context, Role::Question) => Some(b.1),
            _ => None,
        }
    }

    /// The first non-blank answer column's text (`dedup.answer_of`).
    fn answer<'a>(&self, columns: &[Column<'a>], row: usize) -> Result<Option<&'a str>, String> {
        for &c in &self.answers {
            if let Some(text) = columns[c].get(row)? {
                if !is_blank(text) {
                    return Ok(Some(text));
                }
            }
        }
        Ok(None)
    }
}

fn join_lines(texts: &[(usize, &str)]) -> String {
    let mut joined = String::with_capacity(texts.iter().map(|(_, t)| t.len() + 1).sum());
    for (i, (_, text)) in texts.iter().enumerate() {
        if i > 0 {
            joined.push('\n');
        }
        joined.push_str(text);
    }
    joined
}

/// Whether `text` is empty once Python's `str.strip()` has removed its whitespace (which is
/// Unicode's White_Space and the separators U+001C..U+001F).
fn is_blank(text: &str) -> bool {
    text.chars()
        .all(|c| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c))
}

/// `dedup._may_quote`: the text has what a quoted passage needs (">", a fence, triple quotes).
fn may_quote(text: &str) -> bool {
    text.contains('>') || text.contains("```") || text.contains("\"\"\"")
}

/// A column's Python buffers, held while its [`Column`] view is read.
struct Held {
    offsets: Offsets<PyBuffer<i32>, PyBuffer<i64>>,
    data: PyBuffer<u8>,
    valid: Option<BitsArg>,
}

enum Offsets<S, L> {
    Small(S),
    Large(L),
}

impl Held {
    fn new((offsets, data, valid): ColumnArg<'_>) -> PyResult<Self> {
        let offsets = match PyBuffer::<i32>::get(&offsets) {
            Ok(small) => Offsets::Small(small),
            Err(_) => Offsets::Large(PyBuffer::<i64>::get(&offsets)?),
        };
        Ok(Self {
            offsets,
            data,
            valid,
        })
    }

    /// The offsets' length (one more than the rows).
    fn offset_count(&self) -> usize {
        match &self.offsets {
            Offsets::Small(o) => o.item_count(),
            Offsets::Large(o) => o.item_count(),
        }
    }

    fn rows(&self) -> usize {
        self.offset_count().saturating_sub(1)
    }

    /// # Safety
    /// The view must not outlive `self`, and nothing may write the buffers while it is read.
    unsafe fn view(&self) -> PyResult<Column<'_>> {
        if self.offset_count() == 0 {
            return Err(PyValueError::new_err(
                "offsets need one entry more than rows",
            ));
        }
        let rows = self.rows();
        let offsets = match &self.offsets {
            Offsets::Small(o) => Offsets::Small(contiguous(o, "offsets")?.as_ref()),
            Offsets::Large(o) => Offsets::Large(contiguous(o, "offsets")?.as_ref()),
        };
        let valid = match &self.valid {
            Some((bits, offset)) => Some(Bits::new(bits, *offset, rows)?),
            None => None,
        };
        Ok(Column {
            offsets,
            data: contiguous(&self.data, "data")?.as_ref(),
            valid,
        })
    }
}

/// One string column of a batch, read in place.
struct Column<'a> {
    offsets: Offsets<&'a [i32], &'a [i64]>,
    data: &'a [u8],
    valid: Option<Bits<'a>>,
}

impl<'a> Column<'a> {
    /// Row `row`'s text; None when it is null. Offsets outside the data or invalid UTF-8 are
    /// errors.
    fn get(&self, row: usize) -> Result<Option<&'a str>, String> {
        if self.valid.as_ref().is_some_and(|bits| !bits.get(row)) {
            return Ok(None);
        }
        let (start, end) = match self.offsets {
            Offsets::Small(o) => (i64::from(o[row]), i64::from(o[row + 1])),
            Offsets::Large(o) => (o[row], o[row + 1]),
        };
        let bytes = usize::try_from(start)
            .ok()
            .zip(usize::try_from(end).ok())
            .and_then(|(start, end)| self.data.get(start..end))
            .ok_or_else(|| format!("row {row}: string offsets outside the data"))?;
        std::str::from_utf8(bytes)
            .map(Some)
            .map_err(|e| format!("row {row}: invalid UTF-8 in a string column ({e})"))
    }
}

/// Arrow validity bits (bit i of the bitmap, least significant first, is row i - offset).
struct Bits<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl<'a> Bits<'a> {
    /// # Safety
    /// As [`Held::view`], for `bits`.
    unsafe fn new(bits: &'a PyBuffer<u8>, offset: usize, rows: usize) -> PyResult<Self> {
        let bytes: &'a [u8] = contiguous(bits, "validity bits")?.as_ref();
        if (offset + rows).div_ceil(8) > bytes.len() {
            return Err(PyValueError::new_err(
                "the validity bits are shorter than the rows",
            ));
        }
        Ok(Self { bytes, offset })
    }

    fn get(&self, row: usize) -> bool {
        let bit = self.offset + row;
        self.bytes[bit / 8] >> (bit % 8) & 1 == 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_is_what_python_strips() {
        let python_space = "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \u{85}\u{a0}\u{1680}\u{2000}\u{2001}\
            \u{2002}\u{2003}\u{2004}\u{2005}\u{2006}\u{2007}\u{2008}\u{2009}\u{200a}\u{2028}\
            \u{2029}\u{202f}\u{205f}\u{3000}";
        assert!(python_space.chars().all(|c| is_blank(&c.to_string())));
        let spaces: Vec<char> = (0..=0x10FFFFu32)
            .filter_map(char::from_u32)
            .filter(|&c| is_blank(&c.to_string()))
            .collect();
        assert_eq!(spaces, python_space.chars().collect::<Vec<_>>());
        assert!(is_blank("") && !is_blank(" a "));
    }

    #[test]
    fn reads_strings_nulls_and_sliced_bits() {
        let offsets = [0i32, 1, 1, 4];
        let column = Column {
            offsets: Offsets::Small(&offsets),
            data: b"a\xe3\x81\x82",
            valid: Some(Bits {
                bytes: &[0b1011_0000],
                offset: 4,
            }),
        };
        assert_eq!(column.get(0), Ok(Some("a")));
        assert_eq!(column.get(1), Ok(Some("")));
        assert_eq!(column.get(2), Ok(None));
        let bad = Column {
            offsets: Offsets::Large(&[0, 1, 9]),
            data: b"\xff",
            valid: None,
        };
        assert!(bad.get(0).unwrap_err().contains("invalid UTF-8"));
        assert!(bad.get(1).unwrap_err().contains("outside"));
    }
}
