//! Zero-copy reader for deb822 control data (Packages indices, Release files).
//!
//! A paragraph is a run of non-blank lines; a field is `Name: value`, continued on
//! following lines that start with a space or a tab. Everything borrows from the
//! input text, so parsing a 50 MB index allocates only the small per-paragraph
//! field table.

use anyhow::{Result, bail};

/// One `Name: value` field; `value` keeps continuation lines (with their leading
/// space) exactly as written, minus the leading space after the colon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field<'a> {
    /// Field name as written (compare with [`Paragraph::get`], which ignores case).
    pub name: &'a str,
    /// Field value, trimmed at both ends.
    pub value: &'a str,
}

/// One paragraph: its raw text (for copying it out verbatim) and its fields.
#[derive(Debug, Clone)]
pub struct Paragraph<'a> {
    /// The paragraph exactly as it appears in the input, without the blank line after it.
    pub text: &'a str,
    /// 1-based line number of the paragraph's first line, for error messages.
    pub line: usize,
    /// The fields in input order.
    pub fields: Vec<Field<'a>>,
}

impl<'a> Paragraph<'a> {
    /// The value of a field, matched case-insensitively as dpkg does.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
            .map(|f| f.value)
    }
}

/// Iterator over the paragraphs of a deb822 text; yields an error for a line that is
/// neither a field nor a continuation.
pub struct Paragraphs<'a> {
    rest: &'a str,
    line: usize,
}

/// Read the paragraphs of `text` one by one.
pub fn paragraphs(text: &str) -> Paragraphs<'_> {
    Paragraphs {
        rest: text,
        line: 1,
    }
}

impl<'a> Iterator for Paragraphs<'a> {
    type Item = Result<Paragraph<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        // Skip blank lines between paragraphs.
        loop {
            if self.rest.is_empty() {
                return None;
            }
            let (line, after) = split_line(self.rest);
            if line.trim().is_empty() {
                self.rest = after;
                self.line += 1;
            } else {
                break;
            }
        }
        let start = self.rest;
        let first_line = self.line;
        let mut fields: Vec<Field<'a>> = Vec::with_capacity(24);
        let mut consumed = 0usize;
        // Byte range (within `start`) of the current field's value.
        let mut current: Option<(&'a str, usize, usize)> = None;
        let finish = |fields: &mut Vec<Field<'a>>, cur: Option<(&'a str, usize, usize)>| {
            if let Some((name, from, to)) = cur {
                fields.push(Field {
                    name,
                    value: start[from..to].trim(),
                });
            }
        };
        loop {
            let rest = &start[consumed..];
            if rest.is_empty() {
                break;
            }
            let raw_len = memchr_newline(rest).unwrap_or(rest.len());
            let has_newline = raw_len < rest.len();
            let line = rest[..raw_len].trim_end_matches('\r');
            let line_len = line.len();
            if line.trim().is_empty() {
                break;
            }
            if line.starts_with(' ') || line.starts_with('\t') {
                match current.as_mut() {
                    Some((_, _, to)) => *to = consumed + line_len,
                    None => {
                        return Some(Err(anyhow::anyhow!(
                            "line {}: continuation line outside a field",
                            self.line
                        )));
                    }
                }
            } else if line.starts_with('#') {
                // Comment lines are allowed in deb822 control files.
            } else {
                let Some(colon) = line.find(':') else {
                    let shown: String = line.chars().take(60).collect();
                    return Some(Err(anyhow::anyhow!(
                        "line {}: expected `Field: value`, found {shown:?}",
                        self.line
                    )));
                };
                finish(&mut fields, current.take());
                let name = &line[..colon];
                if name.is_empty() || name.contains(char::is_whitespace) {
                    return Some(Err(anyhow::anyhow!(
                        "line {}: invalid field name {name:?}",
                        self.line
                    )));
                }
                current = Some((name, consumed + colon + 1, consumed + line_len));
            }
            consumed += raw_len + usize::from(has_newline);
            self.line += 1;
        }
        finish(&mut fields, current.take());
        let text = start[..consumed].trim_end_matches(['\n', '\r']);
        self.rest = &start[consumed..];
        Some(Ok(Paragraph {
            text,
            line: first_line,
            fields,
        }))
    }
}

fn split_line(s: &str) -> (&str, &str) {
    match memchr_newline(s) {
        Some(i) => (s[..i].trim_end_matches('\r'), &s[i + 1..]),
        None => (s, ""),
    }
}

fn memchr_newline(s: &str) -> Option<usize> {
    s.as_bytes().iter().position(|&b| b == b'\n')
}

/// Parse a text that must hold exactly one paragraph (a Release file).
pub fn single_paragraph(text: &str) -> Result<Paragraph<'_>> {
    let mut it = paragraphs(text);
    let Some(first) = it.next() else {
        bail!("empty control data")
    };
    let first = first?;
    if let Some(more) = it.next() {
        let more = more?;
        bail!("line {}: unexpected second paragraph", more.line);
    }
    Ok(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields_continuations_and_paragraphs() {
        let text = "Package: a\nVersion: 1.0\nDescription: short\n long line\n .\n more\n\n\nPackage: b\r\nversion: 2\r\n";
        let ps: Vec<_> = paragraphs(text).collect::<Result<_>>().unwrap();
        assert_eq!(ps.len(), 2);
        assert_eq!(ps[0].get("package"), Some("a"));
        assert_eq!(
            ps[0].get("Description"),
            Some("short\n long line\n .\n more")
        );
        assert_eq!(ps[0].line, 1);
        assert!(ps[0].text.ends_with(" more"));
        assert_eq!(ps[1].get("Version"), Some("2"));
        assert_eq!(ps[1].line, 9);
        assert_eq!(ps[1].text, "Package: b\r\nversion: 2");
    }

    #[test]
    fn rejects_garbage_lines_with_line_numbers() {
        let err = paragraphs("Package: a\nnot a field\n")
            .collect::<Result<Vec<_>>>()
            .unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
        let err = paragraphs(" leading continuation\n")
            .collect::<Result<Vec<_>>>()
            .unwrap_err();
        assert!(err.to_string().contains("line 1"), "{err}");
    }

    #[test]
    fn single_paragraph_rejects_two() {
        assert!(single_paragraph("A: 1\n\nB: 2\n").is_err());
        assert_eq!(single_paragraph("A: 1\n").unwrap().get("a"), Some("1"));
    }
}
