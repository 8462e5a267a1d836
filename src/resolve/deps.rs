//! A package's relations as apt reads them, and which versions satisfy (or are hit by)
//! each one under apt's multi-arch rules. Both the apt emulation ([`super::marker`]) and
//! the fallback solver ([`super::sat`]) ask their questions here, so the two agree on
//! what a dependency means.
//!
//! apt's rules, as its cache generator writes them (apt-pkg/deb/deblistparser.cc,
//! apt-pkg/pkgcachegen.cc):
//! - an unqualified dependency of a package filed under architecture X (`all` is native)
//!   wants the name in X; a `Multi-Arch: foreign` package satisfies it from any
//!   architecture, and so do its Provides;
//! - `name:any` is satisfied only by `Multi-Arch: allowed` packages of that name, or by
//!   `Multi-Arch: allowed` packages that provide it;
//! - `name:native` and `name:<arch>` want that architecture;
//! - Conflicts and Breaks without a qualifier hit the name in every architecture, never
//!   the package's own name through a Provides, and never itself;
//! - a package that is not `Multi-Arch: same` conflicts with its own name in the other
//!   architectures; a `same` one breaks other versions of itself there.

use crate::relation::{Alternatives, ArchQualifier, Dependency, Provided, parse_depends};
use crate::universe::{MultiArch, PkgId, SlotId, Universe};
use debversion::Version;
use std::cell::OnceCell;
use std::fmt;

/// Which field a positive dependency group comes from, in the order apt walks them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// `Pre-Depends`.
    PreDepends,
    /// `Depends`.
    Depends,
    /// `Recommends`.
    Recommends,
    /// `Suggests`.
    Suggests,
}

impl Kind {
    /// Pre-Depends and Depends must be met; Recommends and Suggests are wishes.
    pub fn is_critical(self) -> bool {
        matches!(self, Kind::PreDepends | Kind::Depends)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::PreDepends => "Pre-Depends",
            Kind::Depends => "Depends",
            Kind::Recommends => "Recommends",
            Kind::Suggests => "Suggests",
        })
    }
}

/// One `a | b | c` group of a positive field.
#[derive(Debug, Clone)]
pub struct Group {
    /// The field it was written in.
    pub kind: Kind,
    /// Its alternatives that apply to the package's architecture, in written order.
    pub alts: Vec<Dependency>,
    /// The group as written, for messages and chains.
    pub text: String,
}

/// One `Conflicts` or `Breaks` entry.
#[derive(Debug, Clone)]
pub struct Negative {
    /// `Conflicts` or `Breaks`.
    pub field: &'static str,
    /// What it names.
    pub dep: Dependency,
}

/// The relations of one package version.
#[derive(Debug, Clone, Default)]
pub struct Deps {
    /// Pre-Depends, Depends, Recommends, Suggests groups, in that order.
    pub positive: Vec<Group>,
    /// Conflicts then Breaks.
    pub negative: Vec<Negative>,
}

/// The universe seen through apt's eyes: parsed relations, versions and provides of the
/// packages a resolution touches (parsed once, on first use).
pub struct Graph<'u, 'a> {
    /// The packages.
    pub universe: &'u Universe<'a>,
    deps: Vec<OnceCell<Result<Deps, String>>>,
    versions: Vec<OnceCell<Version>>,
    provides: Vec<OnceCell<Vec<Provided>>>,
}

impl<'u, 'a> Graph<'u, 'a> {
    /// A view of `universe`; nothing is parsed yet.
    pub fn new(universe: &'u Universe<'a>) -> Graph<'u, 'a> {
        let n = universe.packages.len();
        Graph {
            universe,
            deps: (0..n).map(|_| OnceCell::new()).collect(),
            versions: (0..n).map(|_| OnceCell::new()).collect(),
            provides: (0..n).map(|_| OnceCell::new()).collect(),
        }
    }

    /// The relations of `id`; an error names the index and field that could not be read.
    pub fn deps(&self, id: PkgId) -> Result<&Deps, &str> {
        self.deps[id]
            .get_or_init(|| self.parse_deps(id))
            .as_ref()
            .map_err(String::as_str)
    }

    fn parse_deps(&self, id: PkgId) -> Result<Deps, String> {
        let p = self.universe.get(id);
        let arch = self.universe.slot_arch(id);
        let mut deps = Deps::default();
        for (kind, text) in [
            (Kind::PreDepends, p.pre_depends),
            (Kind::Depends, p.depends),
            (Kind::Recommends, p.recommends),
            (Kind::Suggests, p.suggests),
        ] {
            for group in parse(text, &kind.to_string(), p)? {
                let alts: Vec<Dependency> = group
                    .0
                    .iter()
                    .filter(|d| d.applies_to(arch))
                    .cloned()
                    .collect();
                if !alts.is_empty() {
                    deps.positive.push(Group {
                        kind,
                        alts,
                        text: group.to_string(),
                    });
                }
            }
        }
        for (field, text) in [("Conflicts", p.conflicts), ("Breaks", p.breaks)] {
            for group in parse(text, field, p)? {
                for dep in group.0 {
                    if dep.applies_to(arch) {
                        deps.negative.push(Negative { field, dep });
                    }
                }
            }
        }
        Ok(deps)
    }

    /// The parsed version of `id`.
    pub fn version(&self, id: PkgId) -> &Version {
        self.versions[id].get_or_init(|| self.universe.get(id).version())
    }

    /// What `id` provides (apt's reading).
    pub fn provided(&self, id: PkgId) -> &[Provided] {
        self.provides[id].get_or_init(|| self.universe.get(id).provides())
    }

    /// A stand-in for apt's package ID, which breaks ties between equally good
    /// providers and orders the requests' auto-installation: apt numbers packages as
    /// its cache meets them, so the earlier a package appears in the indices, the lower.
    pub fn apt_order(&self, slot: SlotId) -> PkgId {
        self.universe
            .slot_versions(slot)
            .iter()
            .copied()
            .min()
            .unwrap_or(usize::MAX)
    }

    fn version_ok(&self, dep: &Dependency, id: PkgId) -> bool {
        dep.version
            .as_ref()
            .is_none_or(|req| req.matches(self.version(id)))
    }

    /// Whether `q` provides `dep`'s name at a version `dep` accepts (an unversioned
    /// Provides satisfies only an unversioned relation).
    fn provides_matching(&self, q: PkgId, dep: &Dependency) -> bool {
        self.provided(q).iter().any(|prov| {
            prov.name == dep.name
                && match (&dep.version, &prov.version) {
                    (None, _) => true,
                    (Some(req), Some(v)) => req.matches(v),
                    (Some(_), None) => false,
                }
        })
    }

    /// The versions that satisfy the positive relation `dep` of package `from`, among
    /// the versions `ver_of` assigns to slots (each slot's candidate, or what is marked
    /// for installation): the target package first, then its providers. No duplicates.
    pub fn satisfiers(
        &self,
        from: PkgId,
        dep: &Dependency,
        ver_of: &dyn Fn(SlotId) -> Option<PkgId>,
        out: &mut Vec<PkgId>,
    ) {
        let u = self.universe;
        let start = out.len();
        let target_arch: Option<&str> = match &dep.qualifier {
            ArchQualifier::None => Some(u.slot_arch(from)),
            ArchQualifier::Native => Some(&u.client.native),
            ArchQualifier::Arch(a) => Some(a),
            ArchQualifier::Any => None,
        };
        let push = |id: PkgId, out: &mut Vec<PkgId>| {
            if !out[start..].contains(&id) {
                out.push(id);
            }
        };
        match target_arch {
            Some(t) => {
                if let Some(s) = u.slot(&dep.name, t)
                    && let Some(v) = ver_of(s)
                    && self.version_ok(dep, v)
                {
                    push(v, out);
                }
                // A Multi-Arch: foreign package provides itself to every architecture.
                for s in u.slots_named(&dep.name) {
                    if let Some(v) = ver_of(s)
                        && u.slot_arch(v) != t
                        && u.get(v).multi_arch == MultiArch::Foreign
                        && self.version_ok(dep, v)
                    {
                        push(v, out);
                    }
                }
                for &q in u.providers(&dep.name) {
                    if ver_of(u.slot_of(q)) == Some(q)
                        && (u.get(q).multi_arch == MultiArch::Foreign || u.slot_arch(q) == t)
                        && self.provides_matching(q, dep)
                    {
                        push(q, out);
                    }
                }
            }
            None => {
                for s in u.slots_named(&dep.name) {
                    if let Some(v) = ver_of(s)
                        && u.get(v).multi_arch == MultiArch::Allowed
                        && self.version_ok(dep, v)
                    {
                        push(v, out);
                    }
                }
                for &q in u.providers(&dep.name) {
                    if ver_of(u.slot_of(q)) == Some(q)
                        && u.get(q).multi_arch == MultiArch::Allowed
                        && self.provides_matching(q, dep)
                    {
                        push(q, out);
                    }
                }
            }
        }
    }

    /// The versions (among those `ver_of` assigns) that the `Conflicts`/`Breaks` entry
    /// `neg` of `from` hits.
    pub fn hit_by(
        &self,
        from: PkgId,
        neg: &Negative,
        ver_of: &dyn Fn(SlotId) -> Option<PkgId>,
        out: &mut Vec<PkgId>,
    ) {
        let u = self.universe;
        let me = u.get(from);
        let my_slot = u.slot_of(from);
        let start = out.len();
        let dep = &neg.dep;
        let only_arch: Option<&str> = match &dep.qualifier {
            ArchQualifier::Native => Some(&u.client.native),
            ArchQualifier::Arch(a) => Some(a),
            ArchQualifier::None | ArchQualifier::Any => None,
        };
        for s in u.slots_named(&dep.name) {
            let Some(v) = ver_of(s) else { continue };
            if only_arch.is_some_and(|a| u.slot_arch(v) != a) {
                continue;
            }
            // Never itself; a Multi-Arch: same package ignores its own name elsewhere.
            if dep.name == me.name && (s == my_slot || me.multi_arch == MultiArch::Same) {
                continue;
            }
            if self.version_ok(dep, v) && !out[start..].contains(&v) {
                out.push(v);
            }
        }
        for &q in u.providers(&dep.name) {
            // Provides are never applied against the package's own name (or itself).
            if u.get(q).name == me.name || ver_of(u.slot_of(q)) != Some(q) {
                continue;
            }
            if only_arch
                .is_some_and(|a| u.get(q).multi_arch != MultiArch::Foreign && u.slot_arch(q) != a)
            {
                continue;
            }
            if self.provides_matching(q, dep) && !out[start..].contains(&q) {
                out.push(q);
            }
        }
    }

    /// The other-architecture versions of `from`'s own name that it cannot be installed
    /// beside: all of them, unless it is `Multi-Arch: same` (then those of another version).
    pub fn implicit_conflicts(
        &self,
        from: PkgId,
        ver_of: &dyn Fn(SlotId) -> Option<PkgId>,
        out: &mut Vec<PkgId>,
    ) {
        let u = self.universe;
        let me = u.get(from);
        let my_slot = u.slot_of(from);
        for s in u.slots_named(me.name) {
            if s == my_slot {
                continue;
            }
            let Some(v) = ver_of(s) else { continue };
            if me.multi_arch != MultiArch::Same || self.version(v) != self.version(from) {
                out.push(v);
            }
        }
    }
}

fn parse(
    text: &str,
    field: &str,
    p: &crate::universe::Package<'_>,
) -> Result<Vec<Alternatives>, String> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    parse_depends(text).map_err(|e| {
        format!(
            "{}: the entry of {} has a malformed {field} field: {e:#}",
            p.index,
            p.label()
        )
    })
}
