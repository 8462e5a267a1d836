//! All packages one client architecture can see under a prefix: the union of every
//! source's verified indices, indexed by name and by provided (virtual) name.
//! Entries borrow from the index texts; nothing is copied. The texts are file-backed
//! ([`IndexText`]): pages the parser has passed are handed back to the kernel, so the
//! resident cost of a universe is its tables, not its text.

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
    by_name: NameMap<'a>,
    providers: NameMap<'a>,
}

/// Package ids by a name borrowed from the index texts.
type NameMap<'a> = hashbrown::HashMap<NameKey<'a>, Vec<PkgId>, rustc_hash::FxBuildHasher>;

/// A name with its hash computed once: the tables can grow (rehash) without reading
/// every name back from text the parser has already handed back to the kernel.
#[derive(Clone, Copy)]
struct NameKey<'a> {
    hash: u64,
    name: &'a str,
}

impl<'a> NameKey<'a> {
    fn new(name: &'a str) -> NameKey<'a> {
        use std::hash::{BuildHasher, BuildHasherDefault};
        NameKey {
            hash: BuildHasherDefault::<rustc_hash::FxHasher>::default().hash_one(name),
            name,
        }
    }
}

impl std::hash::Hash for NameKey<'_> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

impl PartialEq for NameKey<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash && self.name == other.name
    }
}

impl Eq for NameKey<'_> {}

/// A lookup by a name of any lifetime, for the keys of a [`NameMap`].
struct Lookup<'n>(NameKey<'n>);

impl std::hash::Hash for Lookup<'_> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl<'a> hashbrown::Equivalent<NameKey<'a>> for Lookup<'_> {
    fn equivalent(&self, key: &NameKey<'a>) -> bool {
        self.0.hash == key.hash && self.0.name == key.name
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
        let mut packages: Vec<Package<'a>> = Vec::with_capacity(expected);
        let mut by_name = NameMap::with_capacity_and_hasher(expected, Default::default());
        let mut providers = NameMap::default();
        for index in indices {
            let text = index.text.as_str();
            let mut forgotten = 0;
            for paragraph in deb822::paragraphs(text) {
                let paragraph = paragraph.with_context(|| index.path.to_owned())?;
                let offset = paragraph.text.as_ptr() as usize - text.as_ptr() as usize;
                if offset - forgotten >= FORGET_EVERY {
                    index.text.forget_before(offset);
                    forgotten = offset;
                }
                let pkg = parse_package(&paragraph, index.origin)
                    .with_context(|| format!("{}: entry at line {}", index.path, paragraph.line))?;
                if pkg.arch != arch && pkg.arch != "all" {
                    continue;
                }
                let same_name = by_name.entry(NameKey::new(pkg.name)).or_default();
                let duplicate = same_name
                    .iter()
                    .map(|&id| &packages[id])
                    .find(|p: &&Package| p.version_text == pkg.version_text && p.arch == pkg.arch);
                if let Some(first) = duplicate {
                    if first.sha256 != pkg.sha256 && first.origin == pkg.origin {
                        tracing::warn!(
                            "{}: duplicate entry {} {} {} with a different file; keeping the first",
                            index.path,
                            pkg.name,
                            pkg.version_text,
                            pkg.arch
                        );
                    }
                    continue;
                }
                let id = packages.len();
                same_name.push(id);
                for name in relation::provided_names(pkg.provides_text)
                    .with_context(|| format!("{}: {}: Provides", index.path, pkg.name))?
                {
                    providers.entry(NameKey::new(name)).or_default().push(id);
                }
                packages.push(pkg);
            }
            index.text.done_parsing();
        }
        // Highest version first; ties keep source order (stable sort).
        for ids in by_name.values_mut().filter(|ids| ids.len() > 1) {
            let mut keyed: Vec<(Version, PkgId)> =
                ids.iter().map(|&id| (packages[id].version(), id)).collect();
            keyed.sort_by(|a, b| b.0.cmp(&a.0));
            *ids = keyed.into_iter().map(|(_, id)| id).collect();
        }
        Ok(Universe {
            arch: arch.to_owned(),
            packages,
            by_name,
            providers,
        })
    }

    /// Real packages of this name, highest version first.
    pub fn by_name(&self, name: &str) -> &[PkgId] {
        self.by_name
            .get(&Lookup(NameKey::new(name)))
            .map_or(&[], Vec::as_slice)
    }

    /// Packages that provide this name, most important first, then by name, then
    /// highest version. Ordered when asked: sorting every provider list up front would
    /// read most of the index text back in for the few names a resolution asks about.
    pub fn providers(&self, name: &str) -> Vec<PkgId> {
        let mut ids = self
            .providers
            .get(&Lookup(NameKey::new(name)))
            .cloned()
            .unwrap_or_default();
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
