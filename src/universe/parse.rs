//! Reading index texts into packages: an index is cut into runs of whole paragraphs and
//! parsed on every core; each entry is read in one pass over its fields.

use super::names::{NameRef, copy_name};
use super::{Client, IndexRef, Malformed, MultiArch, Package, Priority};
use crate::deb822;
use crate::relation::{self, Provided};
use anyhow::{Context, Result, anyhow, bail};

/// How much parsed text may stay resident before it is handed back to the kernel.
const FORGET_EVERY: usize = 4 << 20;

/// An index is parsed in runs of about this many bytes, cut at paragraph boundaries.
pub(super) const RUN_BYTES: usize = 8 << 20;

/// One entry of an index, with copies of the names the tables need, made while its
/// text is at hand (the tables are filled after the text was handed back). The names
/// are in the run's copy of names, returned beside its entries.
pub(super) struct Parsed<'a> {
    pub(super) pkg: Package<'a>,
    pub(super) name: NameRef,
    pub(super) provides: Vec<NameRef>,
}

/// What one run of an index gave.
pub(super) struct ParsedRun<'a> {
    pub(super) entries: Vec<Parsed<'a>>,
    /// The copy of names `entries` refer to.
    pub(super) names: String,
    pub(super) malformed: Vec<Malformed>,
    pub(super) ignored_provides: usize,
}

/// Byte ranges of about [`RUN_BYTES`] covering `text`, each made of whole paragraphs.
pub(super) fn cut_runs(text: &str) -> Vec<std::ops::Range<usize>> {
    let mut runs = Vec::new();
    let mut start = 0;
    while text.len() - start > RUN_BYTES {
        // A blank line ends a paragraph; without one (CRLF text, say) keep one run.
        let Some(blank) = text[start + RUN_BYTES..].find("\n\n") else {
            break;
        };
        let end = start + RUN_BYTES + blank + 2;
        runs.push(start..end);
        start = end;
    }
    runs.push(start..text.len());
    runs
}

/// The entries `client` sees of consecutive `runs` of an index, parsed at once (a thread
/// per run), in index order. On an error (text that is not deb822 at all) the index is
/// parsed again from the top, so the error reported is its first and its line numbers
/// count from the top.
pub(super) fn parse_wave<'a>(
    index: &IndexRef<'a>,
    runs: &[std::ops::Range<usize>],
    client: &Client,
) -> Result<Vec<ParsedRun<'a>>> {
    let parsed: Vec<Result<ParsedRun<'a>>> = if runs.len() == 1 {
        vec![parse_run(index, runs[0].clone(), client)]
    } else {
        std::thread::scope(|scope| {
            let workers: Vec<_> = runs
                .iter()
                .map(|run| scope.spawn(move || parse_run(index, run.clone(), client)))
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().expect("a parser thread panicked"))
                .collect()
        })
    };
    if let Some(first) = parsed.iter().position(Result::is_err) {
        let whole = 0..index.text.as_str().len();
        if runs.first() != Some(&whole) {
            parse_run(index, whole, client)?;
        }
        return Err(parsed
            .into_iter()
            .nth(first)
            .and_then(Result::err)
            .expect("an error"));
    }
    Ok(parsed.into_iter().map(|r| r.expect("checked")).collect())
}

/// Parse the whole paragraphs in `run` (byte offsets into the index).
fn parse_run<'a>(
    index: &IndexRef<'a>,
    run: std::ops::Range<usize>,
    client: &Client,
) -> Result<ParsedRun<'a>> {
    let all = index.text.as_str();
    let text = &all[run.clone()];
    let share = index.text.entries_hint() * text.len() / all.len().max(1);
    let mut out = ParsedRun {
        entries: Vec::with_capacity(share + share / 32),
        names: String::with_capacity(share * 24),
        malformed: Vec::new(),
        ignored_provides: 0,
    };
    let mut forgotten = run.start;
    for paragraph in deb822::paragraphs(text) {
        let paragraph = paragraph.with_context(|| index.path.to_owned())?;
        let offset = paragraph.text.as_ptr() as usize - all.as_ptr() as usize;
        if offset - forgotten >= FORGET_EVERY {
            index.text.forget(forgotten..offset);
            forgotten = offset;
        }
        let (pkg, provided) = match parse_package(&paragraph, index) {
            Ok(p) => p,
            Err(e) => {
                // Line numbers count from the top of the index, whichever run this is
                // (counted only here: malformed entries are rare).
                let before = all[..run.start].bytes().filter(|&b| b == b'\n').count();
                out.malformed.push(Malformed {
                    name: paragraph.get("Package").map(str::to_owned),
                    index: index.path.to_owned(),
                    line: before + paragraph.line,
                    error: format!("{e:#}"),
                });
                continue;
            }
        };
        if !client.sees(pkg.arch) {
            continue;
        }
        out.ignored_provides += provided.1;
        out.entries.push(Parsed {
            name: copy_name(&mut out.names, pkg.name),
            provides: provided
                .0
                .iter()
                .map(|p| copy_name(&mut out.names, &p.name))
                .collect(),
            pkg,
        });
    }
    index.text.forget(forgotten..run.end);
    Ok(out)
}

/// The fields a package entry is read for, in one pass over the paragraph.
#[derive(Default)]
struct Fields<'a> {
    slots: [Option<&'a str>; FIELD_NAMES.len()],
}

/// The fields [`Fields`] reads, in slot order.
const FIELD_NAMES: [&str; 19] = [
    "Package",
    "Version",
    "Architecture",
    "Size",
    "SHA256",
    "Filename",
    "Source",
    "Multi-Arch",
    "Provides",
    "Essential",
    "Priority",
    "Pre-Depends",
    "Depends",
    "Recommends",
    "Suggests",
    "Conflicts",
    "Breaks",
    "Important",
    "Protected",
];

/// The slot of a field name in [`FIELD_NAMES`].
const fn field_slot(name: &str) -> usize {
    let mut i = 0;
    while i < FIELD_NAMES.len() {
        if const_str_eq(FIELD_NAMES[i], name) {
            return i;
        }
        i += 1;
    }
    panic!("not a field Fields reads");
}

const fn const_str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

impl<'a> Fields<'a> {
    /// Refuses an entry that names a field twice: apt reads the last one, so resolving
    /// with the first would publish something apt sees differently.
    fn read(p: &deb822::Paragraph<'a>) -> Result<Fields<'a>> {
        let mut f = Fields::default();
        for field in &p.fields {
            // Exact spelling first (the common case), then dpkg's case-insensitive rule.
            let known = FIELD_NAMES
                .iter()
                .position(|n| *n == field.name)
                .or_else(|| {
                    FIELD_NAMES
                        .iter()
                        .position(|n| n.eq_ignore_ascii_case(field.name))
                });
            let Some(slot) = known else { continue };
            if f.slots[slot].is_some() {
                bail!("field {} appears twice in one entry", field.name);
            }
            f.slots[slot] = Some(field.value);
        }
        Ok(f)
    }
}

/// The value of a field of [`FIELD_NAMES`] in a [`Fields`], its slot found at compile time.
macro_rules! field {
    ($fields:expr, $name:literal) => {
        $fields.slots[const { field_slot($name) }]
    };
}

/// Read one entry; also its provided names and how many of its Provides were ignored.
fn parse_package<'a>(
    p: &deb822::Paragraph<'a>,
    index: &IndexRef<'a>,
) -> Result<(Package<'a>, (Vec<Provided>, usize))> {
    let f = Fields::read(p)?;
    let need =
        |value: Option<&'a str>, name: &str| value.ok_or_else(|| anyhow!("missing {name} field"));
    let name = need(field!(f, "Package"), "Package")?;
    relation::check_package_name(name)?;
    let version_text = need(field!(f, "Version"), "Version")?;
    relation::parse_version(version_text).with_context(|| format!("{name}: Version"))?;
    let provided = match field!(f, "Provides") {
        Some(text) => {
            relation::parse_provides(text).with_context(|| format!("{name}: Provides"))?
        }
        None => (Vec::new(), 0),
    };
    let size: u64 = need(field!(f, "Size"), "Size")?
        .parse()
        .map_err(|_| anyhow!("{name}: invalid Size"))?;
    let sha256 =
        need(field!(f, "SHA256"), "SHA256").with_context(|| format!("{name}: apt needs SHA256"))?;
    if sha256.len() != 64
        || !sha256
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    {
        bail!("{name}: invalid SHA256 {sha256:?}");
    }
    let source_name = field!(f, "Source")
        .map(|s| s.split_whitespace().next().unwrap_or(name))
        .unwrap_or(name);
    let arch = need(field!(f, "Architecture"), "Architecture")?;
    let multi_arch = match field!(f, "Multi-Arch") {
        Some("same") if arch != "all" => MultiArch::Same,
        Some("foreign") => MultiArch::Foreign,
        Some("allowed") => MultiArch::Allowed,
        _ => MultiArch::No,
    };
    let yes = |value: Option<&str>| value.is_some_and(|v| v.eq_ignore_ascii_case("yes"));
    let pkg = Package {
        name,
        version_text,
        arch,
        multi_arch,
        source_name,
        filename: need(field!(f, "Filename"), "Filename")?,
        size,
        sha256,
        essential: yes(field!(f, "Essential")),
        important: yes(field!(f, "Important")) || yes(field!(f, "Protected")),
        priority: Priority::parse(field!(f, "Priority")),
        pre_depends: field!(f, "Pre-Depends").unwrap_or(""),
        depends: field!(f, "Depends").unwrap_or(""),
        recommends: field!(f, "Recommends").unwrap_or(""),
        suggests: field!(f, "Suggests").unwrap_or(""),
        conflicts: field!(f, "Conflicts").unwrap_or(""),
        breaks: field!(f, "Breaks").unwrap_or(""),
        provides_text: field!(f, "Provides").unwrap_or(""),
        paragraph: p.text,
        index: index.path,
        origin: index.origin,
        pin: index.origin.pin,
    };
    Ok((pkg, provided))
}
