//! All packages one client architecture can see under a prefix: the union of every
//! source's verified indices, indexed by name and by provided (virtual) name.
//! Entries borrow from the index texts (only names are copied, for the lookup tables).
//! The texts are file-backed ([`IndexText`]): pages the parser has passed are handed
//! back to the kernel, so the resident cost of a universe is its tables, not its text.
//! A large index is parsed in runs on every core.

use crate::deb822;
use crate::index_text::IndexText;
use crate::relation::{self, Provided};
use anyhow::{Context, Result, anyhow, bail};
use debversion::Version;

/// Position of a package in its [`Universe`].
pub type PkgId = usize;

/// `Multi-Arch` of a package.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MultiArch {
    /// No field, or `no`.
    No,
    /// `same`.
    Same,
    /// `foreign`.
    Foreign,
    /// `allowed`: may satisfy `pkg:any`.
    Allowed,
}

/// Where a package was found: it is published in the same dist and component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin<'a> {
    /// Index of the source (in the build's source list).
    pub source: usize,
    /// The dist it is published in.
    pub dist: &'a str,
    /// The component it is published in.
    pub component: &'a str,
}

/// One binary package entry of an index.
#[derive(Debug, Clone)]
pub struct Package<'a> {
    /// `Package`.
    pub name: &'a str,
    /// `Version` as written (checked when the index was read; see [`Package::version`]).
    pub version_text: &'a str,
    /// `Architecture` (`all` included).
    pub arch: &'a str,
    /// `Multi-Arch`.
    pub multi_arch: MultiArch,
    /// Source package name (`Source` without its version, else `Package`).
    pub source_name: &'a str,
    /// Upstream `Filename` (untrusted: checked before any use).
    pub filename: &'a str,
    /// `Size`.
    pub size: u64,
    /// `SHA256`, lowercase hex.
    pub sha256: &'a str,
    /// `Essential: yes`.
    pub essential: bool,
    /// `Priority`.
    pub priority: Priority,
    /// Raw dependency fields (parsed on demand).
    pub pre_depends: &'a str,
    /// `Depends`.
    pub depends: &'a str,
    /// `Recommends`.
    pub recommends: &'a str,
    /// `Suggests`.
    pub suggests: &'a str,
    /// `Provides` (checked when the index was read; see [`Package::provides`]).
    pub provides_text: &'a str,
    /// The whole paragraph, to republish verbatim (with our Filename).
    pub paragraph: &'a str,
    /// Where it came from.
    pub origin: Origin<'a>,
}

impl Package<'_> {
    /// The parsed `Provides`, on demand (few packages are ever asked).
    pub fn provides(&self) -> Vec<Provided> {
        relation::parse_provides(self.provides_text).expect("checked when the index was read")
    }

    /// The parsed `Version`. Parsed on demand: keeping 60k parsed versions would cost more
    /// memory than the few comparisons a resolution makes cost time.
    pub fn version(&self) -> Version {
        relation::parse_version(self.version_text).expect("checked when the index was read")
    }
}

/// The packages one architecture can see, with lookups by name and provided name.
pub struct Universe<'a> {
    /// The client architecture.
    pub arch: String,
    /// Every package, in source order.
    pub packages: Vec<Package<'a>>,
    by_name: NameTable,
    providers: NameTable,
}

/// Package ids by name. The names are copies (a few megabytes for a whole archive)
/// made while the parser had the text at hand: lookups and growth never read the
/// index texts back in after their pages were handed back to the kernel.
#[derive(Default)]
struct NameTable {
    names: String,
    table: hashbrown::HashTable<(NameRef, Vec<PkgId>)>,
}

/// A name in a [`NameTable`]'s (or a parser run's) copy of names.
#[derive(Clone, Copy)]
struct NameRef {
    hash: u64,
    at: u32,
    len: u32,
}

impl NameRef {
    fn of<'n>(&self, names: &'n str) -> &'n str {
        &names[self.at as usize..self.at as usize + self.len as usize]
    }
}

fn name_hash(name: &str) -> u64 {
    use std::hash::BuildHasher;
    rustc_hash::FxBuildHasher.hash_one(name)
}

/// Copy `name` to the end of `names`.
fn copy_name(names: &mut String, name: &str) -> NameRef {
    let at = names.len() as u32;
    names.push_str(name);
    NameRef {
        hash: name_hash(name),
        at,
        len: name.len() as u32,
    }
}

impl NameTable {
    fn with_capacity(entries: usize) -> NameTable {
        NameTable {
            names: String::new(),
            table: hashbrown::HashTable::with_capacity(entries),
        }
    }

    /// The ids of `name` (which is at `key` in `run_names`, a parser run's copy).
    fn entry(&mut self, key: NameRef, run_names: &str) -> &mut Vec<PkgId> {
        let name = key.of(run_names);
        let names = &self.names;
        let entry = self.table.entry(
            key.hash,
            |(k, _)| k.hash == key.hash && k.of(names) == name,
            |(k, _)| k.hash,
        );
        match entry {
            hashbrown::hash_table::Entry::Occupied(e) => &mut e.into_mut().1,
            hashbrown::hash_table::Entry::Vacant(e) => {
                let at = self.names.len() as u32;
                self.names.push_str(name);
                let key = NameRef { at, ..key };
                &mut e.insert((key, Vec::new())).into_mut().1
            }
        }
    }

    fn get(&self, name: &str) -> &[PkgId] {
        let hash = name_hash(name);
        self.table
            .find(hash, |(k, _)| k.hash == hash && k.of(&self.names) == name)
            .map_or(&[], |(_, ids)| ids.as_slice())
    }
}

/// One verified index with the place its packages are published.
pub struct IndexRef<'a> {
    /// The decompressed index.
    pub text: &'a IndexText,
    /// For error messages.
    pub path: &'a str,
    /// Where its packages go.
    pub origin: Origin<'a>,
}

impl<'a> Universe<'a> {
    /// Build the universe of `arch` from indices (already filtered to `binary-<arch>` and
    /// `binary-all`). Duplicate (name, version, arch) entries keep the first seen.
    pub fn build(arch: &str, indices: &[IndexRef<'a>]) -> Result<Universe<'a>> {
        // Sized up front: growing a 60k-entry Vec by doubling would briefly hold both copies.
        let expected: usize = indices.iter().map(|i| i.text.entries_hint()).sum();
        let mut universe = Universe {
            arch: arch.to_owned(),
            packages: Vec::with_capacity(expected),
            by_name: NameTable::with_capacity(expected),
            providers: NameTable::default(),
        };
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
        for index in indices {
            // A wave of runs at a time (a run per core), each wave added before the next
            // is parsed: parsed entries waiting to be added stay a few megabytes.
            let runs = cut_runs(index.text.as_str());
            for wave in runs.chunks(threads) {
                for (run, run_names) in parse_wave(index, wave, arch)? {
                    for parsed in run {
                        universe.add(parsed, &run_names, index.path);
                    }
                }
            }
            index.text.done_parsing();
        }
        // Highest version first; ties keep source order (stable sort).
        let packages = &universe.packages;
        for (_, ids) in universe
            .by_name
            .table
            .iter_mut()
            .filter(|(_, ids)| ids.len() > 1)
        {
            let mut keyed: Vec<(Version, PkgId)> =
                ids.iter().map(|&id| (packages[id].version(), id)).collect();
            keyed.sort_by(|a, b| b.0.cmp(&a.0));
            *ids = keyed.into_iter().map(|(_, id)| id).collect();
        }
        Ok(universe)
    }

    /// Add one entry, unless an entry with the same name, version and architecture came
    /// first (the first is kept).
    fn add(&mut self, parsed: Parsed<'a>, run_names: &str, path: &str) {
        let Parsed {
            pkg,
            name,
            provides,
        } = parsed;
        let same_name = self.by_name.entry(name, run_names);
        let duplicate = same_name
            .iter()
            .map(|&id| &self.packages[id])
            .find(|p| p.version_text == pkg.version_text && p.arch == pkg.arch);
        if let Some(first) = duplicate {
            if first.sha256 != pkg.sha256 && first.origin == pkg.origin {
                tracing::warn!(
                    "{path}: duplicate entry {} {} {} with a different file; keeping the first",
                    pkg.name,
                    pkg.version_text,
                    pkg.arch
                );
            }
            return;
        }
        let id = self.packages.len();
        same_name.push(id);
        for key in provides {
            self.providers.entry(key, run_names).push(id);
        }
        self.packages.push(pkg);
    }

    /// Real packages of this name, highest version first.
    pub fn by_name(&self, name: &str) -> &[PkgId] {
        self.by_name.get(name)
    }

    /// Packages that provide this name, most important first, then by name, then
    /// highest version. Ordered when asked: sorting every provider list up front would
    /// read most of the index text back in for the few names a resolution asks about.
    pub fn providers(&self, name: &str) -> Vec<PkgId> {
        let mut ids = self.providers.get(name).to_vec();
        ids.sort_by(|&a, &b| {
            let (pa, pb) = (&self.packages[a], &self.packages[b]);
            pa.priority
                .cmp(&pb.priority)
                .then(pa.name.cmp(pb.name))
                .then_with(|| pb.version().cmp(&pa.version()))
        });
        ids
    }

    /// The package with this id.
    pub fn get(&self, id: PkgId) -> &Package<'a> {
        &self.packages[id]
    }
}

/// How much parsed text may stay resident before it is handed back to the kernel.
const FORGET_EVERY: usize = 4 << 20;

/// An index is parsed in runs of about this many bytes, cut at paragraph boundaries.
const RUN_BYTES: usize = 8 << 20;

/// One entry of an index, with copies of the names the tables need, made while its
/// text is at hand (the tables are filled after the text was handed back). The names
/// are in the run's copy of names, returned beside its entries.
struct Parsed<'a> {
    pkg: Package<'a>,
    name: NameRef,
    provides: Vec<NameRef>,
}

/// A run's entries and the copy of names they refer to.
type ParsedRun<'a> = (Vec<Parsed<'a>>, String);

/// Byte ranges of about [`RUN_BYTES`] covering `text`, each made of whole paragraphs.
fn cut_runs(text: &str) -> Vec<std::ops::Range<usize>> {
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

/// The entries for `arch` of consecutive `runs` of an index, parsed at once (a thread
/// per run), in index order. On an error the index is parsed again from the top, so the
/// error reported is its first and its line numbers count from the top.
fn parse_wave<'a>(
    index: &IndexRef<'a>,
    runs: &[std::ops::Range<usize>],
    arch: &str,
) -> Result<Vec<ParsedRun<'a>>> {
    let parsed: Vec<Result<ParsedRun<'a>>> = if runs.len() == 1 {
        vec![parse_run(index, runs[0].clone(), arch)]
    } else {
        std::thread::scope(|scope| {
            let workers: Vec<_> = runs
                .iter()
                .map(|run| scope.spawn(move || parse_run(index, run.clone(), arch)))
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
            parse_run(index, whole, arch)?;
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
    arch: &str,
) -> Result<ParsedRun<'a>> {
    let all = index.text.as_str();
    let text = &all[run.clone()];
    let share = index.text.entries_hint() * text.len() / all.len().max(1);
    let mut out = Vec::with_capacity(share + share / 32);
    let mut names = String::with_capacity(share * 24);
    let mut forgotten = run.start;
    for paragraph in deb822::paragraphs(text) {
        let paragraph = paragraph.with_context(|| index.path.to_owned())?;
        let offset = paragraph.text.as_ptr() as usize - all.as_ptr() as usize;
        if offset - forgotten >= FORGET_EVERY {
            index.text.forget(forgotten..offset);
            forgotten = offset;
        }
        let pkg = parse_package(&paragraph, index.origin)
            .with_context(|| format!("{}: entry at line {}", index.path, paragraph.line))?;
        if pkg.arch != arch && pkg.arch != "all" {
            continue;
        }
        out.push(Parsed {
            name: copy_name(&mut names, pkg.name),
            provides: relation::split_provided_names(pkg.provides_text)
                .map(|provided| copy_name(&mut names, provided))
                .collect(),
            pkg,
        });
    }
    index.text.forget(forgotten..run.end);
    Ok((out, names))
}

/// `Priority` of a package; the order is importance (`Required` first), which orders
/// providers deterministically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Priority {
    /// `required`
    Required,
    /// `important`
    Important,
    /// `standard`
    Standard,
    /// `optional`
    Optional,
    /// `extra`
    Extra,
    /// Absent or unknown.
    Other,
}

impl Priority {
    /// The priority a `Priority` field value names.
    pub fn parse(value: &str) -> Priority {
        match value {
            "required" => Priority::Required,
            "important" => Priority::Important,
            "standard" => Priority::Standard,
            "optional" => Priority::Optional,
            "extra" => Priority::Extra,
            _ => Priority::Other,
        }
    }
}

/// The fields a package entry is read for, in one pass over the paragraph.
#[derive(Default)]
struct Fields<'a> {
    package: Option<&'a str>,
    version: Option<&'a str>,
    architecture: Option<&'a str>,
    size: Option<&'a str>,
    sha256: Option<&'a str>,
    filename: Option<&'a str>,
    source: Option<&'a str>,
    multi_arch: Option<&'a str>,
    provides: Option<&'a str>,
    essential: Option<&'a str>,
    priority: Option<&'a str>,
    pre_depends: Option<&'a str>,
    depends: Option<&'a str>,
    recommends: Option<&'a str>,
    suggests: Option<&'a str>,
}

impl<'a> Fields<'a> {
    /// Refuses an entry that names a field twice: apt reads the last one, so resolving
    /// with the first would publish something apt sees differently.
    fn read(p: &deb822::Paragraph<'a>) -> Result<Fields<'a>> {
        const NAMES: [&str; 15] = [
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
        ];
        let mut f = Fields::default();
        for field in &p.fields {
            // Exact spelling first (the common case), then dpkg's case-insensitive rule.
            let known = NAMES.iter().position(|n| *n == field.name).or_else(|| {
                NAMES
                    .iter()
                    .position(|n| n.eq_ignore_ascii_case(field.name))
            });
            let slot = match known {
                Some(0) => &mut f.package,
                Some(1) => &mut f.version,
                Some(2) => &mut f.architecture,
                Some(3) => &mut f.size,
                Some(4) => &mut f.sha256,
                Some(5) => &mut f.filename,
                Some(6) => &mut f.source,
                Some(7) => &mut f.multi_arch,
                Some(8) => &mut f.provides,
                Some(9) => &mut f.essential,
                Some(10) => &mut f.priority,
                Some(11) => &mut f.pre_depends,
                Some(12) => &mut f.depends,
                Some(13) => &mut f.recommends,
                Some(14) => &mut f.suggests,
                _ => continue,
            };
            if slot.is_some() {
                bail!("field {} appears twice in one entry", field.name);
            }
            *slot = Some(field.value);
        }
        Ok(f)
    }
}

fn parse_package<'a>(p: &deb822::Paragraph<'a>, origin: Origin<'a>) -> Result<Package<'a>> {
    let f = Fields::read(p)?;
    let need = |v: Option<&'a str>, name: &str| v.ok_or_else(|| anyhow!("missing {name} field"));
    let name = need(f.package, "Package")?;
    relation::check_package_name(name)?;
    let version_text = need(f.version, "Version")?;
    if let Some(text) = f.provides {
        // Checked now, parsed again when a resolution asks.
        relation::parse_provides(text).with_context(|| format!("{name}: Provides"))?;
    }
    relation::parse_version(version_text)?; // checked now, parsed again when compared
    let size: u64 = need(f.size, "Size")?
        .parse()
        .map_err(|_| anyhow!("{name}: invalid Size"))?;
    let sha256 = need(f.sha256, "SHA256").with_context(|| format!("{name}: apt needs SHA256"))?;
    if sha256.len() != 64
        || !sha256
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    {
        bail!("{name}: invalid SHA256 {sha256:?}");
    }
    let source_name = f
        .source
        .map(|s| s.split_whitespace().next().unwrap_or(name))
        .unwrap_or(name);
    let multi_arch = match f.multi_arch {
        Some("same") => MultiArch::Same,
        Some("foreign") => MultiArch::Foreign,
        Some("allowed") => MultiArch::Allowed,
        _ => MultiArch::No,
    };
    Ok(Package {
        name,
        version_text,
        arch: need(f.architecture, "Architecture")?,
        multi_arch,
        source_name,
        filename: need(f.filename, "Filename")?,
        size,
        sha256,
        essential: f.essential.is_some_and(|v| v == "yes"),
        priority: Priority::parse(f.priority.unwrap_or("")),
        pre_depends: f.pre_depends.unwrap_or(""),
        depends: f.depends.unwrap_or(""),
        recommends: f.recommends.unwrap_or(""),
        suggests: f.suggests.unwrap_or(""),
        provides_text: f.provides.unwrap_or(""),
        paragraph: p.text,
        origin,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An index of `n` entries, about 2 KB each; `pkg<i>` provides `virt<i % 7>`.
    fn big_index(n: usize) -> String {
        let mut text = String::new();
        for i in 0..n {
            text.push_str(&format!(
                "Package: pkg{i}\nVersion: 1.{i}\nArchitecture: amd64\nProvides: virt{}\n\
                 Filename: pool/main/p/pkg{i}/pkg{i}_1.{i}_amd64.deb\nSize: {i}\n\
                 SHA256: {}\nDescription: entry {i}\n",
                i % 7,
                "ab".repeat(32)
            ));
            for line in 0..25 {
                text.push_str(&format!(
                    " line {line} of a long description {}\n",
                    "x".repeat(40)
                ));
            }
            text.push('\n');
        }
        text
    }

    fn origin() -> Origin<'static> {
        Origin {
            source: 0,
            dist: "d",
            component: "main",
        }
    }

    #[test]
    fn runs_are_whole_paragraphs_covering_the_index() {
        let text = big_index(12_000);
        assert!(text.len() > 2 * RUN_BYTES);
        let runs = cut_runs(&text);
        assert!(runs.len() >= 3, "{runs:?}");
        assert_eq!(runs[0].start, 0);
        assert_eq!(runs.last().unwrap().end, text.len());
        for pair in runs.windows(2) {
            assert_eq!(pair[0].end, pair[1].start);
            assert!(text[..pair[0].end].ends_with("\n\n"));
            assert!(text[pair[1].start..].starts_with("Package: "));
        }
    }

    #[test]
    fn a_large_index_parsed_in_runs_is_the_same_universe() {
        let n = 12_000;
        let text = IndexText::from(big_index(n));
        let indices = [IndexRef {
            text: &text,
            path: "big",
            origin: origin(),
        }];
        let u = Universe::build("amd64", &indices).unwrap();
        assert_eq!(u.packages.len(), n);
        // Entries keep index order across runs.
        for (i, p) in u.packages.iter().enumerate() {
            assert_eq!(p.name, format!("pkg{i}"));
        }
        assert_eq!(u.by_name("pkg11999"), &[n - 1]);
        assert_eq!(
            u.providers("virt3").len(),
            (0..n).filter(|i| i % 7 == 3).count()
        );
        assert!(u.by_name("virt3").is_empty());
    }

    #[test]
    fn an_error_in_a_late_run_names_its_line_from_the_top() {
        let mut text = big_index(12_000);
        let bad = text.rfind("Version: 1.11990\n").unwrap();
        text.replace_range(bad..bad + "Version: 1.11990".len(), "Version: !bad");
        let line = text[..bad].matches('\n').count() + 1;
        let entry_line = text[..text[..bad].rfind("Package:").unwrap()]
            .matches('\n')
            .count()
            + 1;
        let text = IndexText::from(text);
        let indices = [IndexRef {
            text: &text,
            path: "big",
            origin: origin(),
        }];
        let err = format!("{:#}", Universe::build("amd64", &indices).err().unwrap());
        assert!(line > entry_line);
        assert!(
            err.contains(&format!("big: entry at line {entry_line}")),
            "{err}"
        );
    }
}
