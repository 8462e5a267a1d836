//! `apt-get install PKG...` on a system with nothing installed, as apt's own (classic)
//! solver marks it: the reference for what the mirror must hold, because the client
//! that installs from the mirror runs exactly this algorithm.
//!
//! This follows `pkgDepCache::MarkInstall` and its helpers (apt-pkg/depcache.cc; the
//! path taken for new installs is the same in apt 2.6, bookworm, and 3.0, trixie) and
//! `TryToInstall`/`doAutoInstall` (apt-private/private-install.cc):
//! - every requested package is marked first (without its dependencies) and protected;
//!   then each is marked again with its dependencies, in apt's package-ID order;
//! - a package's Conflicts/Breaks are handled before its dependencies: a conflicting
//!   package already marked is unmarked unless it is protected (then this package
//!   fails); a requested (protected) package also takes every package it conflicts
//!   with out of the running for good;
//! - each dependency group takes its first workable solution: the alternatives in
//!   order, the versions of each sorted as apt's `CompareProviders` sorts them; a
//!   solution is workable when marking it (recursively) succeeds; a package whose
//!   Depends cannot even be met by candidates is discarded up front;
//! - a failed attempt is not undone beyond the package itself (its candidate is
//!   discarded), as in apt: what it already marked stays marked.
//!
//! What apt does afterwards when marks leave something broken (its problem resolver,
//! and from apt 3.0 the 3.0 solver as a fallback) is not emulated: the caller sees the
//! broken packages and decides (see [`super::sat`]).

use super::deps::{Graph, Group, Kind};
use crate::universe::{PkgId, SlotId};
use rustc_hash::FxHashMap;
use std::cmp::Ordering;

/// What apt's configuration says about weak dependencies for one resolution.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flags {
    /// `APT::Install-Recommends`.
    pub recommends: bool,
    /// `APT::Install-Suggests`.
    pub suggests: bool,
}

/// One package named on the command line.
#[derive(Debug, Clone)]
pub struct UserRequest<'r> {
    /// The version asked for (`pkg`, `pkg=version` or `pkg/release`).
    pub version: PkgId,
    /// For `pkg/release`: the dist whose versions may replace candidates where the
    /// requested version's dependencies need them (apt's `SetCandidateRelease`).
    pub release: Option<&'r str>,
}

/// Why a package was marked: by whom, through which dependency.
#[derive(Debug, Clone)]
pub enum Reason {
    /// Named by request number `n`.
    Request(usize),
    /// Needed by `parent` through the group written `via`.
    Dependency {
        /// The package whose dependency it satisfies.
        parent: PkgId,
        /// The dependency group as written.
        via: String,
    },
}

/// A marked package whose relations the final marks do not meet.
#[derive(Debug, Clone)]
pub struct Broken {
    /// The package.
    pub pkg: PkgId,
    /// The unmet group (`Depends: a | b`), or the conflict (`Conflicts: x`).
    pub what: String,
    /// For an unmet group: its alternatives; for a conflict: the packages it hits.
    pub detail: BrokenDetail,
}

/// What is wrong with a [`Broken`] package.
#[derive(Debug, Clone)]
pub enum BrokenDetail {
    /// A dependency group that nothing marked satisfies.
    Unmet(Group),
    /// Marked packages it conflicts with (or that conflict with it).
    Conflict(Vec<PkgId>),
}

/// The result of one simulated `apt-get install`.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Every package marked for installation, by id.
    pub installed: Vec<PkgId>,
    /// Why each was marked (the first reason apt had).
    pub reasons: FxHashMap<PkgId, Reason>,
    /// What the marks leave broken (empty: apt would install `installed`).
    pub broken: Vec<Broken>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Keep,
    Install,
}

#[derive(Debug, Clone, Copy)]
struct SlotState {
    mode: Mode,
    install: Option<PkgId>,
    candidate: Option<PkgId>,
    protected: bool,
}

/// `IsImportantDep`: whether apt follows a dependency of this kind.
fn important(flags: Flags, kind: Kind) -> bool {
    match kind {
        Kind::PreDepends | Kind::Depends => true,
        Kind::Recommends => flags.recommends,
        Kind::Suggests => flags.suggests,
    }
}

/// apt gives up beyond this depth of recursion (`IsModeChangeOk`).
const MAX_DEPTH: u32 = 3000;

/// Runs simulated installs over one graph; reusable (its tables are reset per run).
pub struct Marker<'g, 'u, 'a> {
    graph: &'g Graph<'u, 'a>,
    /// Each slot's candidate under apt's default policy (pins, then version).
    candidates: &'g [Option<PkgId>],
    flags: Flags,
    generation: u32,
    stamp: Vec<u32>,
    state: Vec<SlotState>,
    touched: Vec<SlotId>,
    reasons: FxHashMap<PkgId, Reason>,
}

impl<'g, 'u, 'a> Marker<'g, 'u, 'a> {
    /// A marker over `graph`, whose slots' default candidates are `candidates`.
    pub fn new(graph: &'g Graph<'u, 'a>, candidates: &'g [Option<PkgId>]) -> Self {
        let n = candidates.len();
        Marker {
            graph,
            candidates,
            flags: Flags::default(),
            generation: 0,
            stamp: vec![0; n],
            state: vec![
                SlotState {
                    mode: Mode::Keep,
                    install: None,
                    candidate: None,
                    protected: false,
                };
                n
            ],
            touched: Vec::new(),
            reasons: FxHashMap::default(),
        }
    }

    /// Simulate `apt-get install` of `requests` (in command-line order) on an empty system.
    pub fn install(&mut self, requests: &[UserRequest<'_>], flags: Flags) -> Outcome {
        self.generation += 1;
        self.touched.clear();
        self.reasons.clear();
        self.flags = flags;
        let u = self.graph.universe;
        // TryToInstall: the chosen version becomes the candidate; the package is
        // protected and marked without its dependencies.
        let mut later: Vec<SlotId> = Vec::new();
        for (n, r) in requests.iter().enumerate() {
            let slot = u.slot_of(r.version);
            self.state_mut(slot).candidate = Some(r.version);
            self.state_mut(slot).protected = true;
            self.mark_install(slot, false, 0, true);
            self.reasons.entry(r.version).or_insert(Reason::Request(n));
            if !later.contains(&slot) {
                later.push(slot);
            }
        }
        for r in requests {
            if let Some(release) = r.release {
                self.set_candidate_release(r.version, release, &mut Vec::new());
            }
        }
        // doAutoInstall walks a set ordered by package ID.
        later.sort_by_key(|&s| self.graph.apt_order(s));
        for slot in later {
            self.mark_install(slot, true, 0, true);
        }
        self.outcome()
    }

    fn outcome(&mut self) -> Outcome {
        let mut installed: Vec<PkgId> = self
            .touched
            .iter()
            .filter_map(|&s| {
                let st = self.state[s];
                (st.mode == Mode::Install).then_some(st.install).flatten()
            })
            .collect();
        installed.sort_unstable();
        installed.dedup();
        let broken = self.broken(&installed);
        let reasons = std::mem::take(&mut self.reasons);
        Outcome {
            reasons: installed
                .iter()
                .filter_map(|id| reasons.get(id).map(|r| (*id, r.clone())))
                .collect(),
            installed,
            broken,
        }
    }

    fn broken(&self, installed: &[PkgId]) -> Vec<Broken> {
        let g = self.graph;
        let mut out = Vec::new();
        let mut hits = Vec::new();
        for &id in installed {
            let Ok(deps) = g.deps(id) else { continue };
            for group in deps.positive.iter().filter(|gr| gr.kind.is_critical()) {
                if !self.satisfied_by_install(id, group) {
                    out.push(Broken {
                        pkg: id,
                        what: format!("{}: {}", group.kind, group.text),
                        detail: BrokenDetail::Unmet(group.clone()),
                    });
                }
            }
            for neg in &deps.negative {
                hits.clear();
                g.hit_by(id, neg, &|s| self.installed(s), &mut hits);
                if !hits.is_empty() {
                    out.push(Broken {
                        pkg: id,
                        what: format!("{}: {}", neg.field, neg.dep),
                        detail: BrokenDetail::Conflict(hits.clone()),
                    });
                }
            }
            hits.clear();
            g.implicit_conflicts(id, &|s| self.installed(s), &mut hits);
            if !hits.is_empty() {
                out.push(Broken {
                    pkg: id,
                    what: "Multi-Arch: cannot be installed beside its other architecture".into(),
                    detail: BrokenDetail::Conflict(hits.clone()),
                });
            }
        }
        out
    }

    // ---- state -------------------------------------------------------------------------

    fn state(&self, slot: SlotId) -> SlotState {
        if self.stamp[slot] == self.generation {
            self.state[slot]
        } else {
            SlotState {
                mode: Mode::Keep,
                install: None,
                candidate: self.candidates[slot],
                protected: false,
            }
        }
    }

    fn state_mut(&mut self, slot: SlotId) -> &mut SlotState {
        if self.stamp[slot] != self.generation {
            self.stamp[slot] = self.generation;
            self.state[slot] = SlotState {
                mode: Mode::Keep,
                install: None,
                candidate: self.candidates[slot],
                protected: false,
            };
            self.touched.push(slot);
        }
        &mut self.state[slot]
    }

    fn candidate(&self, slot: SlotId) -> Option<PkgId> {
        self.state(slot).candidate
    }

    fn installed(&self, slot: SlotId) -> Option<PkgId> {
        let st = self.state(slot);
        if st.mode == Mode::Install {
            st.install
        } else {
            None
        }
    }

    /// `MarkInstall_StateChange`: target the candidate.
    fn state_change(&mut self, slot: SlotId) {
        let st = self.state_mut(slot);
        st.mode = Mode::Install;
        st.install = st.candidate;
    }

    /// `MarkInstall_DiscardInstall`: back to not installed, and the candidate is gone.
    fn discard_install(&mut self, slot: SlotId) {
        let st = self.state_mut(slot);
        st.mode = Mode::Keep;
        st.install = None;
        st.candidate = None;
    }

    /// `MarkKeep` of a package that is not installed: fails on a protected one.
    fn mark_keep(&mut self, slot: SlotId) -> bool {
        let st = self.state(slot);
        if st.mode == Mode::Keep {
            return true;
        }
        if st.protected {
            return false;
        }
        let st = self.state_mut(slot);
        st.mode = Mode::Keep;
        st.install = None;
        true
    }

    // ---- relation checks ---------------------------------------------------------------

    fn satisfied_by_install(&self, from: PkgId, group: &Group) -> bool {
        let mut out = Vec::new();
        group.alts.iter().any(|alt| {
            out.clear();
            self.graph
                .satisfiers(from, alt, &|s| self.installed(s), &mut out);
            !out.is_empty()
        })
    }

    /// apt's `DepInstall | DepCVer`: met by what is marked, or by candidates.
    fn satisfiable(&self, from: PkgId, group: &Group) -> bool {
        if self.satisfied_by_install(from, group) {
            return true;
        }
        let mut out = Vec::new();
        group.alts.iter().any(|alt| {
            out.clear();
            self.graph
                .satisfiers(from, alt, &|s| self.candidate(s), &mut out);
            !out.is_empty()
        })
    }

    /// `IsInstallOkDependenciesSatisfiableByCandidates`, without the side effect.
    fn critical_deps_satisfiable(&self, id: PkgId) -> bool {
        match self.graph.deps(id) {
            Ok(deps) => deps
                .positive
                .iter()
                .filter(|g| g.kind.is_critical())
                .all(|g| self.satisfiable(id, g)),
            Err(_) => false,
        }
    }

    fn important(&self, kind: Kind) -> bool {
        important(self.flags, kind)
    }

    /// `InstBroken() || InstPolicyBroken()` of a marked package.
    fn install_broken(&self, slot: SlotId) -> bool {
        let Some(id) = self.installed(slot) else {
            return false;
        };
        let Ok(deps) = self.graph.deps(id) else {
            return true;
        };
        if deps
            .positive
            .iter()
            .filter(|g| self.important(g.kind))
            .any(|g| !self.satisfied_by_install(id, g))
        {
            return true;
        }
        let mut hits = Vec::new();
        for neg in &deps.negative {
            self.graph
                .hit_by(id, neg, &|s| self.installed(s), &mut hits);
        }
        self.graph
            .implicit_conflicts(id, &|s| self.installed(s), &mut hits);
        !hits.is_empty()
    }

    /// `CompareProviders`: which of two solutions of a dependency on `target` apt tries
    /// first (on a system with nothing installed).
    fn compare_providers(&self, target: &str, a: PkgId, b: PkgId) -> Ordering {
        let u = self.graph.universe;
        let (pa, pb) = (u.get(a), u.get(b));
        let (sa, sb) = (u.slot_of(a), u.slot_of(b));
        let first = |x: bool, y: bool| y.cmp(&x); // true sorts first
        first(self.state(sa).protected, self.state(sb).protected)
            .then_with(|| {
                if pa.name == pb.name {
                    Ordering::Equal
                } else {
                    first(pa.name == target, pb.name == target)
                }
            })
            .then_with(|| {
                // apt itself is always essential to apt (pkgCacheGen::ForceEssential).
                first(
                    pa.essential || pa.name == "apt",
                    pb.essential || pb.name == "apt",
                )
            })
            .then_with(|| first(pa.important, pb.important))
            .then_with(|| {
                let (xa, xb) = (u.slot_arch(a), u.slot_arch(b));
                if xa == xb {
                    return Ordering::Equal;
                }
                let rank = |x: &str| {
                    if x == u.client.native {
                        0
                    } else {
                        1 + u
                            .client
                            .foreign
                            .iter()
                            .position(|f| f == x)
                            .unwrap_or(usize::MAX - 1)
                    }
                };
                rank(xa).cmp(&rank(xb))
            })
            .then_with(|| pa.priority.cmp(&pb.priority))
            // Unable to decide: apt takes the higher package ID.
            .then_with(|| self.graph.apt_order(sb).cmp(&self.graph.apt_order(sa)))
    }

    /// `getAllPossibleSolutions(..., CANDIDATE, sorted)` for a positive group: each
    /// alternative's candidate solutions in apt's order, without the protected packages
    /// that are to stay uninstalled.
    fn possible_solutions(&self, from: PkgId, group: &Group) -> Vec<PkgId> {
        let mut out: Vec<PkgId> = Vec::new();
        let mut list = Vec::new();
        for alt in &group.alts {
            list.clear();
            self.graph
                .satisfiers(from, alt, &|s| self.candidate(s), &mut list);
            list.sort_by(|&a, &b| self.compare_providers(&alt.name, a, b));
            out.extend_from_slice(&list);
        }
        out.dedup();
        out.retain(|&v| {
            let st = self.state(self.graph.universe.slot_of(v));
            !(st.protected && st.mode != Mode::Install)
        });
        out
    }

    // ---- MarkInstall -------------------------------------------------------------------

    fn mark_install(&mut self, slot: SlotId, auto_inst: bool, depth: u32, from_user: bool) -> bool {
        let st = self.state(slot);
        // IsModeChangeOk
        if depth > MAX_DEPTH {
            return false;
        }
        if !from_user && st.mode != Mode::Install && st.protected {
            return false;
        }
        let Some(candidate) = st.candidate else {
            return false;
        };
        if !st.protected && st.mode == Mode::Install && !self.install_broken(slot) {
            return true;
        }
        // IsInstallOk: every Depends must at least be satisfiable by candidates, or
        // the candidate is discarded (so that nothing tries it again).
        if auto_inst && !self.critical_deps_satisfiable(candidate) {
            if !st.protected {
                let st = self.state_mut(slot);
                st.candidate = None;
                st.mode = Mode::Keep;
                st.install = None;
            }
            return false;
        }
        if from_user {
            self.state_change(slot);
        }
        let fail_early = !st.protected && !from_user;
        let propagate = st.protected;
        let mut failed = false;
        let deps = if auto_inst {
            match self.graph.deps(candidate) {
                Ok(d) => Some(d),
                Err(_) => return false,
            }
        } else {
            None
        };
        if let Some(deps) = deps
            && !self.remove_conflicts(candidate, deps, propagate, from_user)
        {
            if fail_early {
                return false;
            }
            failed = true;
        }
        if !from_user {
            self.state_change(slot);
        }
        let Some(deps) = deps else {
            return !failed;
        };
        // ScopedProtected: the package counts as protected while its dependencies are
        // marked, so that nothing they conflict with can unmark it.
        self.state_mut(slot).protected = true;
        let ok = self.install_dependencies(candidate, deps, depth, propagate, from_user);
        if !propagate {
            self.state_mut(slot).protected = false;
        }
        if !ok {
            if fail_early {
                self.discard_install(slot);
                return false;
            }
            failed = true;
        }
        !failed
    }

    /// `MarkInstall_RemoveConflictsIfNotUpgradeable`, for packages not installed.
    fn remove_conflicts(
        &mut self,
        id: PkgId,
        deps: &super::deps::Deps,
        propagate: bool,
        from_user: bool,
    ) -> bool {
        let g = self.graph;
        let mut failed = false;
        let mut hits = Vec::new();
        // Conflicts, Breaks, then the implicit Multi-Arch ones (last in apt's list).
        let negatives = deps.negative.iter().map(Some).chain(std::iter::once(None));
        for neg in negatives {
            hits.clear();
            match neg {
                Some(neg) => g.hit_by(id, neg, &|s| self.candidate(s), &mut hits),
                None => g.implicit_conflicts(id, &|s| self.candidate(s), &mut hits),
            }
            let target = neg.map_or(g.universe.get(id).name, |n| n.dep.name.as_str());
            hits.sort_by(|&a, &b| self.compare_providers(target, a, b));
            for &v in &hits {
                let other = g.universe.slot_of(v);
                if self.candidate(other) != Some(v) {
                    continue;
                }
                if self.state(other).mode == Mode::Install && !self.mark_keep(other) {
                    failed = true;
                    if !propagate && !from_user {
                        break;
                    }
                } else if propagate {
                    let st = self.state_mut(other);
                    st.candidate = st.install;
                    st.protected = true;
                }
            }
            if failed && !propagate && !from_user {
                break;
            }
        }
        !failed
    }

    /// `MarkInstall_InstallDependencies`, for a package not installed.
    fn install_dependencies(
        &mut self,
        id: PkgId,
        deps: &super::deps::Deps,
        depth: u32,
        propagate: bool,
        from_user: bool,
    ) -> bool {
        let mut failed = false;
        let flags = self.flags;
        for group in deps.positive.iter().filter(|g| important(flags, g.kind)) {
            let critical = group.kind.is_critical();
            if self.satisfied_by_install(id, group) {
                if !propagate || !critical {
                    continue;
                }
                // A protected package protects the only solution of a met dependency.
                let mut solutions = Vec::new();
                for alt in &group.alts {
                    self.graph
                        .satisfiers(id, alt, &|s| self.candidate(s), &mut solutions);
                }
                solutions.sort_unstable();
                solutions.dedup();
                if solutions.len() != 1 {
                    continue;
                }
                let slot = self.graph.universe.slot_of(solutions[0]);
                if self.state(slot).protected {
                    continue;
                }
                self.state_mut(slot).protected = true;
                if !self.mark_install(slot, true, depth + 1, false) {
                    failed = true;
                }
                continue;
            }
            let solutions = self.possible_solutions(id, group);
            let mut found = false;
            for &v in &solutions {
                let slot = self.graph.universe.slot_of(v);
                if self.candidate(slot) != Some(v) {
                    continue;
                }
                // The reason is noted before the attempt, so that what a failed attempt
                // leaves marked can still be traced back; it goes if the attempt fails.
                let noted = !self.reasons.contains_key(&v);
                if noted {
                    self.reasons.insert(
                        v,
                        Reason::Dependency {
                            parent: id,
                            via: group.text.clone(),
                        },
                    );
                }
                let mut ok = true;
                if propagate && critical && solutions.len() == 1 {
                    ok = self.mark_install(slot, false, depth + 1, false);
                    if ok {
                        self.state_mut(slot).protected = true;
                    }
                }
                ok = ok && self.mark_install(slot, true, depth + 1, false);
                if !ok {
                    if noted && self.installed(slot) != Some(v) {
                        self.reasons.remove(&v);
                    }
                    continue;
                }
                found = true;
                break;
            }
            if !found && critical {
                failed = true;
                if !propagate && !from_user {
                    break;
                }
            }
        }
        !failed
    }

    /// `SetCandidateRelease`: where the requested version's dependencies are not met by
    /// candidates, take versions from `release` that meet them (recursively). `changed`
    /// lists the slots switched so far; on failure this call's switches are undone.
    fn set_candidate_release(
        &mut self,
        id: PkgId,
        release: &str,
        changed: &mut Vec<(SlotId, Option<PkgId>)>,
    ) -> bool {
        let g = self.graph;
        let u = g.universe;
        let Ok(deps) = g.deps(id) else { return false };
        let mark = changed.len();
        let flags = self.flags;
        for group in deps.positive.iter().filter(|gr| important(flags, gr.kind)) {
            let fine = group.alts.iter().any(|alt| {
                let mut sat = Vec::new();
                g.satisfiers(id, alt, &|s| self.candidate(s), &mut sat);
                sat.iter().any(|&v| self.critical_deps_satisfiable(v))
            });
            if fine {
                continue;
            }
            let mut fixed = false;
            for alt in group.alts.iter().filter(|a| a.version.is_some()) {
                let arch = match &alt.qualifier {
                    crate::relation::ArchQualifier::Arch(a) => a.as_str(),
                    crate::relation::ArchQualifier::Native => u.client.native.as_str(),
                    _ => u.slot_arch(id),
                };
                let Some(slot) = u.slot(&alt.name, arch) else {
                    continue;
                };
                let from_release = u.slot_versions(slot).iter().copied().find(|&v| {
                    u.get(v).origin.dist == release
                        || u.aliases_of(v).iter().any(|a| a.origin.dist == release)
                });
                let Some(v) = from_release else { continue };
                if !alt
                    .version
                    .as_ref()
                    .is_some_and(|r| r.matches(g.version(v)))
                {
                    continue;
                }
                if changed.iter().any(|&(s, _)| s == slot) && self.candidate(slot) == Some(v) {
                    fixed = true;
                    break;
                }
                let old = self.candidate(slot);
                changed.push((slot, old));
                self.state_mut(slot).candidate = Some(v);
                if self.set_candidate_release(v, release, changed) {
                    fixed = true;
                    break;
                }
                self.state_mut(slot).candidate = old;
                changed.pop();
            }
            if !fixed && group.kind.is_critical() {
                for &(slot, old) in changed[mark..].iter().rev() {
                    self.state_mut(slot).candidate = old;
                }
                changed.truncate(mark);
                return false;
            }
        }
        true
    }
}
