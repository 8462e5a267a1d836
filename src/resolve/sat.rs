//! The fallback when apt's classic marking leaves a request broken: is there any set of
//! candidate versions that installs it? Answered by resolvo, a CDCL SAT solver, with the
//! same relations the apt emulation uses ([`super::deps`]).
//!
//! apt itself falls back the same way: apt 3.0 (trixie) retries a failed classic solve
//! with its own "3.0" solver, which searches with backtracking; bookworm's apt 2.6 runs
//! only its problem resolver. When a solution exists the mirror publishes it (so clients
//! whose apt can find it find it there too); when none exists, resolvo's explanation
//! says which requests exclude each other.
//!
//! As in apt, only candidate versions are considered (one per slot), so a solution is
//! something a client of the mirror resolves the same way.

use super::deps::Graph;
use crate::universe::{PkgId, SlotId};
use resolvo::utils::{Pool, VersionSet};
use resolvo::{
    Candidates, Condition, ConditionId, ConditionalRequirement, Dependencies, DependencyProvider,
    HintDependenciesAvailable, Interner, KnownDependencies, NameId, Problem, Requirement,
    SolvableId, Solver, SolverCache, StringId, UnsolvableOrCancelled, VersionSetId,
    VersionSetUnionId,
};
use rustc_hash::FxHashMap;
use std::cell::RefCell;
use std::fmt;

/// The versions of one slot that a relation accepts, with how the relation reads.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Matching {
    label: String,
    ids: Vec<PkgId>,
}

impl fmt::Display for Matching {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label)
    }
}

/// One candidate version, as the solver sees it.
struct Record {
    pkg: PkgId,
    version: String,
}

impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.version)
    }
}

impl VersionSet for Matching {
    type V = Record;
}

struct Provider<'g, 'u, 'a> {
    graph: &'g Graph<'u, 'a>,
    candidates: &'g [Option<PkgId>],
    overrides: FxHashMap<SlotId, PkgId>,
    pool: Pool<Matching, String>,
    /// Which slot a name stands for (`None`: a placeholder for a relation nothing meets).
    slots: RefCell<FxHashMap<NameId, Option<SlotId>>>,
    names: RefCell<FxHashMap<SlotId, NameId>>,
}

impl Provider<'_, '_, '_> {
    fn candidate(&self, slot: SlotId) -> Option<PkgId> {
        self.overrides.get(&slot).copied().or(self.candidates[slot])
    }

    fn name_of(&self, slot: SlotId) -> NameId {
        if let Some(&n) = self.names.borrow().get(&slot) {
            return n;
        }
        let u = self.graph.universe;
        let first = u.slot_versions(slot)[0];
        let label = format!("{}:{}", u.get(first).name, u.slot_arch(first));
        let n = self.pool.intern_package_name(label);
        self.names.borrow_mut().insert(slot, n);
        self.slots.borrow_mut().insert(n, Some(slot));
        n
    }

    /// A version set nothing satisfies, standing for `what`.
    fn nothing(&self, what: &str) -> VersionSetId {
        let n = self
            .pool
            .intern_package_name(format!("{what} (no candidate)"));
        self.slots.borrow_mut().entry(n).or_insert(None);
        self.pool.intern_version_set(
            n,
            Matching {
                label: String::new(),
                ids: Vec::new(),
            },
        )
    }

    /// One version set per slot among `ids` (in first-seen order), labelled `label`.
    fn sets(&self, ids: &[PkgId], label: &str) -> Vec<VersionSetId> {
        let u = self.graph.universe;
        let mut by_slot: Vec<(SlotId, Vec<PkgId>)> = Vec::new();
        for &id in ids {
            let s = u.slot_of(id);
            match by_slot.iter_mut().find(|(x, _)| *x == s) {
                Some((_, v)) => v.push(id),
                None => by_slot.push((s, vec![id])),
            }
        }
        by_slot
            .into_iter()
            .map(|(s, ids)| {
                self.pool.intern_version_set(
                    self.name_of(s),
                    Matching {
                        label: label.to_owned(),
                        ids,
                    },
                )
            })
            .collect()
    }

    fn requirement(&self, sets: Vec<VersionSetId>, what: &str) -> ConditionalRequirement {
        match sets.len() {
            0 => Requirement::Single(self.nothing(what)).into(),
            1 => Requirement::Single(sets[0]).into(),
            _ => {
                let mut it = sets.into_iter();
                let first = it.next().expect("two or more");
                Requirement::Union(self.pool.intern_version_set_union(first, it)).into()
            }
        }
    }
}

impl Interner for Provider<'_, '_, '_> {
    type NameId = NameId;
    type SolvableId = SolvableId;

    fn display_solvable(&self, solvable: SolvableId) -> impl fmt::Display + '_ {
        let s = self.pool.resolve_solvable(solvable);
        format!("{} {}", self.pool.resolve_package_name(s.name), s.record)
    }

    fn display_name(&self, name: NameId) -> impl fmt::Display + '_ {
        self.pool.resolve_package_name(name).clone()
    }

    fn display_version_set(&self, version_set: VersionSetId) -> impl fmt::Display + '_ {
        self.pool.resolve_version_set(version_set).to_string()
    }

    fn display_string(&self, string_id: StringId) -> impl fmt::Display + '_ {
        self.pool.resolve_string(string_id).to_owned()
    }

    fn version_set_name(&self, version_set: VersionSetId) -> NameId {
        self.pool.resolve_version_set_package_name(version_set)
    }

    fn solvable_name(&self, solvable: SolvableId) -> NameId {
        self.pool.resolve_solvable(solvable).name
    }

    fn version_sets_in_union(
        &self,
        version_set_union: VersionSetUnionId,
    ) -> impl Iterator<Item = VersionSetId> {
        self.pool.resolve_version_set_union(version_set_union)
    }

    fn resolve_condition(&self, condition: ConditionId) -> Condition {
        self.pool.resolve_condition(condition).clone()
    }
}

impl DependencyProvider for Provider<'_, '_, '_> {
    async fn filter_candidates(
        &self,
        candidates: &[SolvableId],
        version_set: VersionSetId,
        inverse: bool,
    ) -> Vec<SolvableId> {
        let set = self.pool.resolve_version_set(version_set);
        candidates
            .iter()
            .copied()
            .filter(|&s| set.ids.contains(&self.pool.resolve_solvable(s).record.pkg) != inverse)
            .collect()
    }

    async fn get_candidates(&self, name: NameId) -> Option<Candidates> {
        let slot = self.slots.borrow().get(&name).copied()?;
        let mut out = Candidates::default();
        if let Some(slot) = slot
            && let Some(pkg) = self.candidate(slot)
        {
            let version = self.graph.universe.get(pkg).version_text.to_owned();
            out.candidates
                .push(self.pool.intern_solvable(name, Record { pkg, version }));
        }
        out.hint_dependencies_available = HintDependenciesAvailable::None;
        Some(out)
    }

    async fn sort_candidates(&self, _solver: &SolverCache<Self>, _solvables: &mut [SolvableId]) {
        // One candidate per slot: nothing to order.
    }

    async fn get_dependencies(&self, solvable: SolvableId) -> Dependencies {
        let g = self.graph;
        let pkg = self.pool.resolve_solvable(solvable).record.pkg;
        let deps = match g.deps(pkg) {
            Ok(d) => d,
            Err(e) => return Dependencies::Unknown(self.pool.intern_string(e)),
        };
        let cand = |s: SlotId| self.candidate(s);
        let mut known = KnownDependencies::default();
        let mut ids = Vec::new();
        for group in deps.positive.iter().filter(|g| g.kind.is_critical()) {
            let mut sets = Vec::new();
            for alt in &group.alts {
                ids.clear();
                g.satisfiers(pkg, alt, &cand, &mut ids);
                sets.extend(self.sets(&ids, &alt.to_string()));
            }
            known.requirements.push(self.requirement(sets, &group.text));
        }
        let mut hits = Vec::new();
        for neg in &deps.negative {
            g.hit_by(pkg, neg, &cand, &mut hits);
        }
        g.implicit_conflicts(pkg, &cand, &mut hits);
        for h in hits {
            let slot = g.universe.slot_of(h);
            known.constrains.push(self.pool.intern_version_set(
                self.name_of(slot),
                Matching {
                    label: format!("none (conflicts with {})", g.universe.get(pkg).name),
                    ids: Vec::new(),
                },
            ));
        }
        Dependencies::Known(known)
    }
}

/// Install `requests` (versions) with candidates only: the chosen packages, or resolvo's
/// explanation of why no choice works.
pub fn solve(
    graph: &Graph<'_, '_>,
    candidates: &[Option<PkgId>],
    requests: &[PkgId],
) -> Result<Vec<PkgId>, String> {
    let u = graph.universe;
    let provider = Provider {
        graph,
        candidates,
        overrides: requests.iter().map(|&id| (u.slot_of(id), id)).collect(),
        pool: Pool::default(),
        slots: RefCell::new(FxHashMap::default()),
        names: RefCell::new(FxHashMap::default()),
    };
    let roots: Vec<ConditionalRequirement> = requests
        .iter()
        .map(|&id| {
            let sets = provider.sets(&[id], &format!("= {}", u.get(id).version_text));
            provider.requirement(sets, u.get(id).name)
        })
        .collect();
    let mut solver = Solver::new(provider);
    match solver.solve(Problem::new().requirements(roots)) {
        Ok(solution) => {
            let p = solver.provider();
            let mut out: Vec<PkgId> = solution
                .into_iter()
                .map(|s| p.pool.resolve_solvable(s).record.pkg)
                .collect();
            out.sort_unstable();
            Ok(out)
        }
        Err(UnsolvableOrCancelled::Unsolvable(conflict)) => {
            Err(conflict.display_user_friendly(&solver).to_string())
        }
        Err(UnsolvableOrCancelled::Cancelled(_)) => Err("the solver was cancelled".into()),
    }
}
