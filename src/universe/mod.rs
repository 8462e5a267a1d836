//! All packages one client can see under a prefix: the union of every source's verified
//! indices for the client's native architecture (and any foreign architectures it adds,
//! as `dpkg --add-architecture` does), indexed by name, by provided (virtual) name and
//! by apt "package" (name and architecture: a slot holding that package's versions).
//!
//! Entries borrow from the index texts (only names are copied, for the lookup tables).
//! The texts are file-backed ([`IndexText`]): pages the parser has passed are handed
//! back to the kernel, so the resident cost of a universe is its tables, not its text.
//! A large index is parsed in runs on every core.
//!
//! What apt would skip is skipped, not fatal: an entry with an invalid name or version is
//! left out and counted ([`Universe::malformed`]); a `Provides` with an operator other
//! than `=` is ignored, as apt ignores it. The same file listed by several dists is one
//! version published in each of them ([`Universe::aliases`]); a different file under the
//! same name, version and architecture is kept once and the other one is recorded
//! ([`Universe::shadowed`]) so that nothing is dropped without a word.

use crate::index_text::IndexText;
use crate::relation::{self, Provided};
use anyhow::Result;
use debversion::Version;
use rustc_hash::FxHashMap;

/// Position of a package in its [`Universe`].
pub type PkgId = usize;

/// Position of an apt package (a name in one architecture) in its [`Universe`].
pub type SlotId = usize;

/// `Multi-Arch` of a package.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MultiArch {
    /// No field, or `no` (and `same` on an `Architecture: all` package, as apt reads it).
    No,
    /// `same`: co-installable with itself in other architectures, at the same version.
    Same,
    /// `foreign`: satisfies dependencies of packages of every architecture.
    Foreign,
    /// `allowed`: may satisfy `pkg:any`.
    Allowed,
}

/// Where a package was found: it is published in the same dist and component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin<'a> {
    /// Index of the source (in the build's source list).
    pub source: usize,
    /// The upstream archive root, for messages.
    pub url: &'a str,
    /// The dist it is published in.
    pub dist: &'a str,
    /// The component it is published in.
    pub component: &'a str,
    /// apt's pin priority of this dist (500; `NotAutomatic` 1; with
    /// `ButAutomaticUpgrades` 100; or the source's `pin` setting).
    pub pin: i32,
}

/// The architectures of one client: its native one, and the foreign ones it adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    /// `dpkg --print-architecture`.
    pub native: String,
    /// `dpkg --print-foreign-architectures`.
    pub foreign: Vec<String>,
}

impl Client {
    /// Whether packages of `arch` (`all` included) are visible to this client.
    pub fn sees(&self, arch: &str) -> bool {
        arch == "all" || arch == self.native || self.foreign.iter().any(|a| a == arch)
    }

    /// The architecture apt files a package of `arch` under (`all` is native).
    pub fn slot_arch<'s>(&'s self, arch: &'s str) -> &'s str {
        if arch == "all" { &self.native } else { arch }
    }
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
    /// `Important: yes` or `Protected: yes` (apt prefers such providers).
    pub important: bool,
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
    /// `Conflicts`.
    pub conflicts: &'a str,
    /// `Breaks`.
    pub breaks: &'a str,
    /// `Provides` (checked when the index was read; see [`Package::provides`]).
    pub provides_text: &'a str,
    /// The whole paragraph, to republish verbatim (with our Filename).
    pub paragraph: &'a str,
    /// The index it was read from, for messages.
    pub index: &'a str,
    /// Where it came from.
    pub origin: Origin<'a>,
    /// The highest pin among the dists that list this very file.
    pub pin: i32,
}

impl Package<'_> {
    /// The parsed `Provides` (apt's reading: entries with an operator other than `=`
    /// are ignored), on demand: few packages are ever asked.
    pub fn provides(&self) -> Vec<Provided> {
        relation::parse_provides(self.provides_text)
            .expect("checked when the index was read")
            .0
    }

    /// The parsed `Version`. Parsed on demand: keeping 60k parsed versions would cost more
    /// memory than the few comparisons a resolution makes cost time.
    pub fn version(&self) -> Version {
        relation::parse_version(self.version_text).expect("checked when the index was read")
    }

    /// `name version arch`, for messages.
    pub fn label(&self) -> String {
        format!("{} {} ({})", self.name, self.version_text, self.arch)
    }
}

/// An index entry that could not be read (apt skips such entries too).
#[derive(Debug, Clone)]
pub struct Malformed {
    /// Its `Package` field as written, if it has one.
    pub name: Option<String>,
    /// The index.
    pub index: String,
    /// 1-based line of the entry.
    pub line: usize,
    /// What is wrong with it.
    pub error: String,
}

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.index, self.line, self.error)
    }
}

/// A second, different file under a name, version and architecture already in the
/// universe: only one can be published under that name.
#[derive(Debug, Clone)]
pub struct Shadowed<'a> {
    /// The entry that was kept.
    pub kept: PkgId,
    /// The one that was not.
    pub dropped: Package<'a>,
}

/// The packages one client can see, with lookups by name, provided name and slot.
pub struct Universe<'a> {
    /// The client's architectures.
    pub client: Client,
    /// Every package, in source order (one entry per distinct file).
    pub packages: Vec<Package<'a>>,
    /// The same files as listed by other dists (or components) of the prefix.
    pub aliases: FxHashMap<PkgId, Vec<Package<'a>>>,
    /// Different files under a name, version and architecture that was already taken.
    pub shadowed: Vec<Shadowed<'a>>,
    /// Entries left out because they could not be read.
    pub malformed: Vec<Malformed>,
    /// `Provides` entries ignored (an operator other than `=`), counted.
    pub ignored_provides: usize,
    by_name: NameTable,
    providers: NameTable,
    slot_of: Vec<SlotId>,
    slot_ranges: Vec<(u32, u32)>,
    slot_members: Vec<PkgId>,
}

mod names;
mod parse;

use names::NameTable;
use parse::{Parsed, cut_runs, parse_wave};

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
    /// Build the universe of `client` from indices (of its architectures and `all`).
    /// `asked(name, source)` says whether that source's packages.txt asks for `name`: when
    /// two sources hold different files under one name, version and architecture, the
    /// one asked for is kept.
    pub fn build(
        client: &Client,
        indices: &[IndexRef<'a>],
        asked: &dyn Fn(&str, usize) -> bool,
    ) -> Result<Universe<'a>> {
        // Sized up front: growing a 60k-entry Vec by doubling would briefly hold both copies.
        let expected: usize = indices.iter().map(|i| i.text.entries_hint()).sum();
        let mut universe = Universe {
            client: client.clone(),
            packages: Vec::with_capacity(expected),
            aliases: FxHashMap::default(),
            shadowed: Vec::new(),
            malformed: Vec::new(),
            ignored_provides: 0,
            by_name: NameTable::with_capacity(expected),
            providers: NameTable::default(),
            slot_of: Vec::new(),
            slot_ranges: Vec::new(),
            slot_members: Vec::new(),
        };
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
        for index in indices {
            // A wave of runs at a time (a run per core), each wave added before the next
            // is parsed: parsed entries waiting to be added stay a few megabytes.
            let runs = cut_runs(index.text.as_str());
            for wave in runs.chunks(threads) {
                for run in parse_wave(index, wave, client)? {
                    universe.malformed.extend(run.malformed);
                    universe.ignored_provides += run.ignored_provides;
                    for parsed in run.entries {
                        universe.add(parsed, &run.names, index.path, asked);
                    }
                }
            }
            index.text.done_parsing();
        }
        // Highest version first; ties keep source order (stable sort).
        let packages = &universe.packages;
        for ids in universe.by_name.ids_mut().filter(|ids| ids.len() > 1) {
            let mut keyed: Vec<(Version, PkgId)> =
                ids.iter().map(|&id| (packages[id].version(), id)).collect();
            keyed.sort_by(|a, b| b.0.cmp(&a.0));
            *ids = keyed.into_iter().map(|(_, id)| id).collect();
        }
        universe.index_slots();
        Ok(universe)
    }

    /// Add one entry. The same file already seen under another dist or component becomes
    /// an alias; the same file twice in one place is skipped; a different file under a
    /// taken name, version and architecture is shadowed.
    fn add(
        &mut self,
        parsed: Parsed<'a>,
        run_names: &str,
        path: &str,
        asked: &dyn Fn(&str, usize) -> bool,
    ) {
        let Parsed {
            pkg,
            name,
            provides,
        } = parsed;
        let same_name = self.by_name.entry(name, run_names);
        let duplicate = same_name.iter().copied().find(|&id| {
            let p = &self.packages[id];
            p.version_text == pkg.version_text && p.arch == pkg.arch
        });
        if let Some(first_id) = duplicate {
            let first = &mut self.packages[first_id];
            if first.sha256 == pkg.sha256 {
                let same_place = first.origin.dist == pkg.origin.dist
                    && first.origin.component == pkg.origin.component;
                let aliases = self.aliases.entry(first_id).or_default();
                let listed = same_place
                    || aliases.iter().any(|a| {
                        a.origin.dist == pkg.origin.dist
                            && a.origin.component == pkg.origin.component
                    });
                first.pin = first.pin.max(pkg.pin);
                if !listed {
                    aliases.push(pkg);
                }
            } else if first.origin == pkg.origin {
                tracing::warn!(
                    "{path}: duplicate entry {} with a different file; keeping the first",
                    pkg.label()
                );
            } else if asked(pkg.name, pkg.origin.source) && !asked(first.name, first.origin.source)
            {
                // The source whose packages.txt asked for it wins. Names are the same, so
                // the tables stay valid; provides are those of the kept entry. The other
                // file's listings elsewhere go with it.
                let dropped = std::mem::replace(first, pkg);
                for alias in self.aliases.remove(&first_id).unwrap_or_default() {
                    self.shadowed.push(Shadowed {
                        kept: first_id,
                        dropped: alias,
                    });
                }
                self.shadowed.push(Shadowed {
                    kept: first_id,
                    dropped,
                });
                for key in provides {
                    let ids = self.providers.entry(key, run_names);
                    if !ids.contains(&first_id) {
                        ids.push(first_id);
                    }
                }
            } else {
                self.shadowed.push(Shadowed {
                    kept: first_id,
                    dropped: pkg,
                });
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

    /// Group each name's versions by the architecture apt files them under.
    fn index_slots(&mut self) {
        let mut slot_of = vec![usize::MAX; self.packages.len()];
        let mut ranges = Vec::with_capacity(self.packages.len());
        let mut members = Vec::with_capacity(self.packages.len());
        for ids in self.by_name.ids() {
            let mut arches: Vec<&str> = Vec::new();
            for &id in ids {
                let a = self.client.slot_arch(self.packages[id].arch);
                if !arches.contains(&a) {
                    arches.push(a);
                }
            }
            for a in arches {
                let start = members.len() as u32;
                let slot = ranges.len();
                for &id in ids {
                    if self.client.slot_arch(self.packages[id].arch) == a {
                        members.push(id);
                        slot_of[id] = slot;
                    }
                }
                ranges.push((start, members.len() as u32));
            }
        }
        self.slot_of = slot_of;
        self.slot_ranges = ranges;
        self.slot_members = members;
    }

    /// Real packages of this name (every architecture), highest version first.
    pub fn by_name(&self, name: &str) -> &[PkgId] {
        self.by_name.get(name)
    }

    /// Packages whose `Provides` names this name (every architecture), unordered.
    pub fn providers(&self, name: &str) -> &[PkgId] {
        self.providers.get(name)
    }

    /// The package with this id.
    pub fn get(&self, id: PkgId) -> &Package<'a> {
        &self.packages[id]
    }

    /// The apt package (name in one architecture) a package version belongs to.
    pub fn slot_of(&self, id: PkgId) -> SlotId {
        self.slot_of[id]
    }

    /// The versions of a slot, highest first.
    pub fn slot_versions(&self, slot: SlotId) -> &[PkgId] {
        let (a, b) = self.slot_ranges[slot];
        &self.slot_members[a as usize..b as usize]
    }

    /// How many slots there are (slot ids are `0..slot_count()`).
    pub fn slot_count(&self) -> usize {
        self.slot_ranges.len()
    }

    /// The slot of `name` in architecture `arch`, if any version of it is visible.
    pub fn slot(&self, name: &str, arch: &str) -> Option<SlotId> {
        self.by_name(name)
            .iter()
            .find(|&&id| self.client.slot_arch(self.packages[id].arch) == arch)
            .map(|&id| self.slot_of[id])
    }

    /// Every slot of `name`, one per architecture it exists in (no allocation: a name
    /// has a handful of versions).
    pub fn slots_named<'s>(&'s self, name: &str) -> impl Iterator<Item = SlotId> + 's {
        let ids = self.by_name(name);
        ids.iter().enumerate().filter_map(move |(i, &id)| {
            let s = self.slot_of[id];
            (!ids[..i].iter().any(|&j| self.slot_of[j] == s)).then_some(s)
        })
    }

    /// The architecture apt files this package under (`all` is the client's native).
    pub fn slot_arch(&self, id: PkgId) -> &str {
        self.client.slot_arch(self.packages[id].arch)
    }

    /// The other places (dist, component) the very file of `id` is listed in.
    pub fn aliases_of(&self, id: PkgId) -> &[Package<'a>] {
        self.aliases.get(&id).map_or(&[], Vec::as_slice)
    }

    /// The malformed entries that carry this `Package` name (case-insensitively: an
    /// entry apt skipped for its spelling is still the one meant).
    pub fn malformed_named(&self, name: &str) -> Vec<&Malformed> {
        self.malformed
            .iter()
            .filter(|m| {
                m.name
                    .as_deref()
                    .is_some_and(|n| n.eq_ignore_ascii_case(name))
            })
            .collect()
    }
}

/// `Priority` of a package. The order is apt's when it weighs providers: a package
/// without the field first (apt reads it as 0), then `required` ... `extra`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Priority {
    /// No `Priority` field.
    Absent,
    /// `required`
    Required,
    /// `important`
    Important,
    /// `standard`
    Standard,
    /// `optional`
    Optional,
    /// `extra`, or a word apt does not know (apt reads it as `extra`).
    Extra,
}

impl Priority {
    /// The priority a `Priority` field value names (`None`: no field).
    pub fn parse(value: Option<&str>) -> Priority {
        match value {
            None => Priority::Absent,
            Some("required") => Priority::Required,
            Some("important") => Priority::Important,
            Some("standard") => Priority::Standard,
            Some("optional") => Priority::Optional,
            Some(_) => Priority::Extra,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse::RUN_BYTES;
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
            url: "http://up",
            dist: "d",
            component: "main",
            pin: 500,
        }
    }

    fn amd64() -> Client {
        Client {
            native: "amd64".into(),
            foreign: Vec::new(),
        }
    }

    fn entry(name: &str, version: &str, arch: &str, sha: char, extra: &str) -> String {
        format!(
            "Package: {name}\nVersion: {version}\nArchitecture: {arch}\nFilename: pool/{name}.deb\nSize: 1\nSHA256: {}\n{extra}\n",
            sha.to_string().repeat(64)
        )
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
        let u = Universe::build(&amd64(), &indices, &|_, _| false).unwrap();
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
    fn a_malformed_entry_in_a_late_run_is_skipped_and_named_by_its_line_from_the_top() {
        let mut text = big_index(12_000);
        let bad = text.rfind("Version: 1.11990\n").unwrap();
        text.replace_range(bad..bad + "Version: 1.11990".len(), "Version: 1.0 beta");
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
        let u = Universe::build(&amd64(), &indices, &|_, _| false).unwrap();
        assert_eq!(u.packages.len(), 12_000 - 1);
        assert_eq!(u.malformed.len(), 1);
        let m = &u.malformed[0];
        assert_eq!((m.index.as_str(), m.line), ("big", entry_line));
        assert_eq!(m.name.as_deref(), Some("pkg11990"));
        assert!(m.error.contains("Version"), "{}", m.error);
        assert_eq!(u.malformed_named("pkg11990").len(), 1);
    }

    #[test]
    fn entries_apt_would_skip_are_counted_not_fatal() {
        let text = IndexText::from(
            [
                entry("MyTool", "1.0", "amd64", 'a', ""),
                entry("tool", "1.0 beta", "amd64", 'b', ""),
                entry("good", "1", "amd64", 'c', "Provides: xx (>= 1), yy\n"),
            ]
            .concat(),
        );
        let indices = [IndexRef {
            text: &text,
            path: "vendor",
            origin: origin(),
        }];
        let u = Universe::build(&amd64(), &indices, &|_, _| false).unwrap();
        assert_eq!(u.packages.len(), 1, "{:?}", u.malformed);
        assert_eq!(u.malformed.len(), 2);
        assert_eq!(
            u.malformed_named("mytool").len(),
            1,
            "found whatever its case"
        );
        assert_eq!(u.ignored_provides, 1);
        assert!(u.providers("xx").is_empty());
        assert_eq!(u.providers("yy").len(), 1);
    }

    #[test]
    fn the_same_file_in_two_dists_is_one_version_listed_twice() {
        let stable = IndexText::from(entry("tzdata", "1", "all", 'a', ""));
        let security = IndexText::from(
            [
                entry("tzdata", "1", "all", 'a', ""),
                entry("other", "1", "all", 'b', ""),
            ]
            .concat(),
        );
        let backports = Origin {
            source: 1,
            dist: "security",
            pin: 990,
            ..origin()
        };
        let indices = [
            IndexRef {
                text: &stable,
                path: "stable",
                origin: origin(),
            },
            IndexRef {
                text: &security,
                path: "security",
                origin: backports,
            },
        ];
        let u = Universe::build(&amd64(), &indices, &|_, _| false).unwrap();
        let ids = u.by_name("tzdata");
        assert_eq!(ids.len(), 1);
        assert_eq!(u.aliases_of(ids[0]).len(), 1);
        assert_eq!(u.aliases_of(ids[0])[0].origin.dist, "security");
        assert_eq!(
            u.get(ids[0]).pin,
            990,
            "the highest pin of the dists listing it"
        );
        assert!(u.shadowed.is_empty());
    }

    #[test]
    fn a_different_file_under_the_same_version_keeps_the_one_asked_for() {
        let first = IndexText::from(entry("tool", "1", "amd64", 'a', ""));
        let second = IndexText::from(entry("tool", "1", "amd64", 'b', ""));
        let other = Origin {
            source: 1,
            url: "http://vendor",
            ..origin()
        };
        let indices = [
            IndexRef {
                text: &first,
                path: "first",
                origin: origin(),
            },
            IndexRef {
                text: &second,
                path: "second",
                origin: other,
            },
        ];
        let u = Universe::build(&amd64(), &indices, &|_, _| false).unwrap();
        assert_eq!(u.get(u.by_name("tool")[0]).sha256, "a".repeat(64));
        assert_eq!(u.shadowed.len(), 1);
        let u = Universe::build(&amd64(), &indices, &|name, source| {
            name == "tool" && source == 1
        })
        .unwrap();
        assert_eq!(u.get(u.by_name("tool")[0]).sha256, "b".repeat(64));
        assert_eq!(u.shadowed[0].dropped.origin.url, "http://up");
    }

    #[test]
    fn slots_group_versions_by_architecture_with_all_as_native() {
        let text = IndexText::from(
            [
                entry("libc6", "2", "amd64", 'a', ""),
                entry("libc6", "2", "i386", 'b', ""),
                entry("libc6", "1", "amd64", 'c', ""),
                entry("data", "1", "all", 'd', ""),
                entry("arm", "1", "arm64", 'e', ""),
            ]
            .concat(),
        );
        let indices = [IndexRef {
            text: &text,
            path: "x",
            origin: origin(),
        }];
        let client = Client {
            native: "amd64".into(),
            foreign: vec!["i386".into()],
        };
        let u = Universe::build(&client, &indices, &|_, _| false).unwrap();
        assert!(u.by_name("arm").is_empty(), "arm64 is not this client's");
        let native = u.slot("libc6", "amd64").unwrap();
        let foreign = u.slot("libc6", "i386").unwrap();
        assert_ne!(native, foreign);
        let versions: Vec<&str> = u
            .slot_versions(native)
            .iter()
            .map(|&id| u.get(id).version_text)
            .collect();
        assert_eq!(versions, ["2", "1"]);
        assert_eq!(u.slot_versions(foreign).len(), 1);
        assert!(u.slot("data", "amd64").is_some());
        assert_eq!(u.slots_named("libc6").count(), 2);
    }
}
