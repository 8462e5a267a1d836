//! Selection: which packages a prefix's mirror must hold for one client, so that
//! whatever its packages.txt asks for installs from the mirror exactly as it would from
//! upstream.
//!
//! apt is the reference. Each query becomes what `apt-get install` would be given
//! (`name`, `name=version`, or `name/dist` when only a lower-pinned dist has the version
//! asked for), and [`marker`] replays apt's own marking on a system with nothing
//! installed:
//! - each query alone (so each installs on its own, with the choices apt makes upstream),
//! - each source's queries together, and the whole prefix's together (so they co-install,
//!   with the choices apt makes for the set: `gpr` takes `cups-bsd` beside `cups-client`),
//! - essential seeding, when asked: what debootstrap installs.
//!
//! The mirror holds the union. Candidates follow apt's policy: the highest pin (500;
//! `NotAutomatic` 1; with `ButAutomaticUpgrades` 100; or a source's `pin` setting), then
//! the highest version. Where apt's marking leaves something broken, [`sat`] looks for
//! any set of candidates that works (as apt 3 does with its 3.0 solver); if there is
//! none, a lone query is an error with its chain (`file:line: nginx → libmid →
//! libssl3 (>= 3.0.9) → ? (available: 3.0.8)`) and a set is a warning naming the
//! requests that exclude each other. The same input gives the same output.

mod deps;
mod marker;
mod sat;

pub use deps::{Graph, Kind};
pub use marker::Flags;

use crate::relation::{ArchQualifier, Dependency, VersionReq};
use crate::spec::{Essential, Location, MissingPolicy, Query, Settings};
use crate::universe::{PkgId, Priority, SlotId, Universe};
use deps::Group;
use marker::{BrokenDetail, Marker, Outcome, Reason, UserRequest};
use rustc_hash::FxHashSet;
use std::fmt::Write as _;

/// What one source asks of the resolver.
pub struct Request<'s> {
    /// The source's position in the build's source list (matches `Origin::source`).
    pub source: usize,
    /// The source's settings.
    pub settings: &'s Settings,
    /// Its queries.
    pub queries: &'s [Query],
    /// Names debootstrap adds for this dist besides its priorities (e.g.
    /// `usr-is-merged` on bookworm); used only when essential seeding is on.
    pub bootstrap_names: Vec<String>,
}

/// Why a package is in a selection (one of possibly several reasons).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Why {
    /// Asked for by a query.
    Query {
        /// Where the query is written.
        location: Location,
        /// The query as written.
        label: String,
    },
    /// Seeded by essential seeding.
    Seed {
        /// What seeded it.
        label: String,
    },
    /// Satisfies a dependency of another selected package.
    Dependency {
        /// The package that depends on it.
        parent: PkgId,
        /// The dependency group as written (`libssl3 (>= 3.0.9)`, `mta | postfix`).
        via: String,
    },
}

/// The packages chosen for one client.
#[derive(Debug)]
pub struct Selection {
    /// Chosen packages, ordered by name, version, architecture.
    pub packages: Vec<PkgId>,
    /// Things the operator should know (unsatisfied dependencies with `missing =
    /// "warn"`, requests that exclude each other, shadowed files...).
    pub warnings: Vec<String>,
    /// Why each package is there: every reason found, without duplicates.
    pub why: Vec<(PkgId, Why)>,
}

/// Why the selection failed: every problem found, each with its chain.
#[derive(Debug)]
pub struct ResolveError {
    /// One message per problem.
    pub problems: Vec<String>,
}

impl std::fmt::Display for ResolveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot select the requested packages:")?;
        for p in &self.problems {
            write!(f, "\n  {p}")?;
        }
        Ok(())
    }
}
impl std::error::Error for ResolveError {}

/// Each slot's candidate under apt's default policy: the highest pin above 0, then the
/// highest version (apt's `pkgPolicy::GetCandidateVer` on a system with nothing
/// installed).
pub fn candidates(universe: &Universe<'_>) -> Vec<Option<PkgId>> {
    (0..universe.slot_count())
        .map(|slot| {
            let mut best: Option<(i32, PkgId)> = None;
            for &id in universe.slot_versions(slot) {
                let pin = universe.get(id).pin;
                if pin > 0 && best.is_none_or(|(p, _)| pin > p) {
                    best = Some((pin, id));
                }
            }
            best.map(|(_, id)| id)
        })
        .collect()
}

/// A query turned into an apt command-line argument.
struct Picked<'q> {
    request: usize,
    query: &'q Query,
    version: PkgId,
    release: Option<String>,
}

struct Resolver<'g, 'u, 'a, 'r> {
    universe: &'u Universe<'a>,
    graph: &'g Graph<'u, 'a>,
    candidates: &'g [Option<PkgId>],
    requests: &'r [Request<'r>],
    selected: FxHashSet<PkgId>,
    why: FxHashSet<(PkgId, Why)>,
    problems: Vec<String>,
    warnings: Vec<String>,
}

/// Select what `requests` need in `universe`.
pub fn resolve(
    universe: &Universe<'_>,
    requests: &[Request<'_>],
) -> Result<Selection, ResolveError> {
    let graph = Graph::new(universe);
    let candidates = candidates(universe);
    let mut marker = Marker::new(&graph, &candidates);
    let mut r = Resolver {
        universe,
        graph: &graph,
        candidates: &candidates,
        requests,
        selected: FxHashSet::default(),
        why: FxHashSet::default(),
        problems: Vec::new(),
        warnings: Vec::new(),
    };
    let mut picked: Vec<Picked> = Vec::new();
    for (i, request) in requests.iter().enumerate() {
        for query in request.queries {
            match r.pick(i, query) {
                Ok(Some(p)) => picked.push(p),
                Ok(None) => {}
                Err(e) => r.problems.push(e),
            }
        }
    }
    // Each query on its own.
    for p in &picked {
        let outcome = marker.install(&[user(p)], r.flags(&[p.request]));
        r.absorb(outcome, std::slice::from_ref(p), Scope::Alone);
    }
    // Each source's queries together, then the whole prefix's.
    let mut sources: Vec<usize> = picked.iter().map(|p| p.request).collect();
    sources.dedup();
    for &source in &sources {
        let set: Vec<&Picked> = picked.iter().filter(|p| p.request == source).collect();
        if set.len() > 1 {
            r.install_together(&mut marker, &set, &[source]);
        }
    }
    if sources.len() > 1 {
        let set: Vec<&Picked> = picked.iter().collect();
        r.install_together(&mut marker, &set, &sources);
    }
    for (i, request) in requests.iter().enumerate() {
        if request.settings.essential != Essential::Off {
            r.seed_essential(&mut marker, i);
        }
    }
    r.warn_shadowed();
    r.refuse_needed_malformed(&picked, requests);
    if !r.problems.is_empty() {
        return Err(ResolveError {
            problems: r.problems,
        });
    }
    let mut packages: Vec<PkgId> = r.selected.iter().copied().collect();
    packages.sort_by(|&a, &b| {
        let (pa, pb) = (universe.get(a), universe.get(b));
        pa.name
            .cmp(pb.name)
            .then_with(|| graph.version(a).cmp(graph.version(b)))
            .then(pa.arch.cmp(pb.arch))
            .then(a.cmp(&b))
    });
    let mut why: Vec<(PkgId, Why)> = r.why.into_iter().collect();
    why.sort_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| format!("{:?}", a.1).cmp(&format!("{:?}", b.1)))
    });
    Ok(Selection {
        packages,
        warnings: r.warnings,
        why,
    })
}

fn user<'p>(p: &'p Picked<'_>) -> UserRequest<'p> {
    UserRequest {
        version: p.version,
        release: p.release.as_deref(),
    }
}

/// Which simulation an outcome comes from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// One query on its own: a failure is that query's error.
    Alone,
    /// Several queries together: a failure is a warning (each installs alone).
    Together,
    /// Essential seeding: a failure is a warning (debootstrap has its own rules).
    Seeding,
}

impl<'g, 'u, 'a, 'r> Resolver<'g, 'u, 'a, 'r> {
    /// apt's Install-Recommends/Suggests for requests of these sources: on only when
    /// every one of them asks.
    fn flags(&self, sources: &[usize]) -> Flags {
        Flags {
            recommends: sources
                .iter()
                .all(|&s| self.requests[s].settings.recommends),
            suggests: sources.iter().all(|&s| self.requests[s].settings.suggests),
        }
    }

    fn install_together(&mut self, marker: &mut Marker, set: &[&Picked], sources: &[usize]) {
        let users: Vec<UserRequest> = set.iter().map(|p| user(p)).collect();
        let outcome = marker.install(&users, self.flags(sources));
        let owned: Vec<Picked> = set
            .iter()
            .map(|p| Picked {
                request: p.request,
                query: p.query,
                version: p.version,
                release: p.release.clone(),
            })
            .collect();
        self.absorb(outcome, &owned, Scope::Together);
    }

    /// Take in what one simulated install marked, or deal with what it left broken.
    fn absorb(&mut self, outcome: Outcome, roots: &[Picked], scope: Scope) {
        if outcome.broken.is_empty() {
            self.take(&outcome, roots);
            return;
        }
        if scope == Scope::Seeding {
            // debootstrap installs its base set with its own rules; apt's view of it
            // is advice.
            for message in self.describe_broken(&outcome, roots) {
                self.warnings.push(format!("essential seeding: {message}"));
            }
            self.take(&outcome, roots);
            return;
        }
        let versions: Vec<PkgId> = roots.iter().map(|p| p.version).collect();
        let policy = roots
            .iter()
            .map(|p| self.requests[p.request].settings.missing)
            .max_by_key(|m| *m == MissingPolicy::Error)
            .unwrap_or(MissingPolicy::Error);
        match sat::solve(self.graph, self.candidates, &versions) {
            Ok(solution) => {
                let names: Vec<String> = roots.iter().map(|p| format!("`{}`", p.query)).collect();
                self.warnings.push(format!(
                    "apt's classic solver cannot install {} ({}) but a solution exists (apt 3's solver finds one); the mirror holds it",
                    names.join(" + "),
                    self.describe_broken(&outcome, roots).join("; ")
                ));
                self.take_solution(&solution, roots);
            }
            Err(explanation) => match scope {
                Scope::Alone if policy == MissingPolicy::Error => {
                    for message in self.describe_broken(&outcome, roots) {
                        self.problems.push(message);
                    }
                }
                Scope::Alone | Scope::Seeding => {
                    // missing = "warn": publish what can be, say what is missing.
                    for message in self.describe_broken(&outcome, roots) {
                        self.warnings.push(format!(
                            "unsatisfied dependency (missing = \"warn\"): {message}"
                        ));
                    }
                    self.take(&outcome, roots);
                    self.take_permissive(roots);
                }
                Scope::Together => {
                    self.warnings.push(format!(
                        "these requests cannot be installed together (each installs on its own): {}\n{}",
                        self.describe_broken(&outcome, roots).join("; "),
                        indent(&explanation)
                    ));
                }
            },
        }
    }

    /// Add an outcome's packages and reasons.
    fn take(&mut self, outcome: &Outcome, roots: &[Picked]) {
        for &id in &outcome.installed {
            self.selected.insert(id);
            match outcome.reasons.get(&id) {
                Some(Reason::Request(n)) => {
                    self.why.insert((id, root_why(&roots[*n])));
                }
                Some(Reason::Dependency { parent, via }) => {
                    self.why.insert((
                        id,
                        Why::Dependency {
                            parent: *parent,
                            via: via.clone(),
                        },
                    ));
                }
                None => {}
            }
        }
    }

    /// Add a solver's solution, with reasons found within it.
    fn take_solution(&mut self, solution: &[PkgId], roots: &[Picked]) {
        let set: FxHashSet<PkgId> = solution.iter().copied().collect();
        for p in roots {
            self.why.insert((p.version, root_why(p)));
        }
        for &id in solution {
            self.selected.insert(id);
            let Ok(deps) = self.graph.deps(id) else {
                continue;
            };
            for group in deps.positive.iter().filter(|g| g.kind.is_critical()) {
                let mut sat = Vec::new();
                for alt in &group.alts {
                    self.graph
                        .satisfiers(id, alt, &|s| self.candidates[s], &mut sat);
                }
                if let Some(&child) = sat.iter().find(|c| set.contains(c)) {
                    self.why.insert((
                        child,
                        Why::Dependency {
                            parent: id,
                            via: group.text.clone(),
                        },
                    ));
                }
            }
        }
    }

    /// For `missing = "warn"`: the closure of `roots` as far as candidates reach, each
    /// dependency by its first alternative that has one (conflicts not weighed).
    fn take_permissive(&mut self, roots: &[Picked]) {
        let mut queue: Vec<PkgId> = roots.iter().map(|p| p.version).collect();
        let mut seen: FxHashSet<PkgId> = queue.iter().copied().collect();
        while let Some(id) = queue.pop() {
            self.selected.insert(id);
            let Ok(deps) = self.graph.deps(id) else {
                continue;
            };
            for group in deps.positive.iter().filter(|g| g.kind.is_critical()) {
                let mut sat = Vec::new();
                for alt in &group.alts {
                    self.graph
                        .satisfiers(id, alt, &|s| self.candidates[s], &mut sat);
                    if !sat.is_empty() {
                        break;
                    }
                }
                if let Some(&child) = sat.first() {
                    self.why.insert((
                        child,
                        Why::Dependency {
                            parent: id,
                            via: group.text.clone(),
                        },
                    ));
                    if seen.insert(child) {
                        queue.push(child);
                    }
                }
            }
        }
    }

    // ---- queries -----------------------------------------------------------------------

    /// The apt command-line argument a query stands for; `None` when it belongs to
    /// another client (an architecture this one does not have).
    fn pick<'q>(&self, request: usize, query: &'q Query) -> Result<Option<Picked<'q>>, String> {
        let u = self.universe;
        let arch = match query.arch.as_deref() {
            None | Some("all") => u.client.native.as_str(),
            Some(a) if u.client.sees(a) => a,
            Some(_) => return Ok(None),
        };
        let only_all = query.arch.as_deref() == Some("all");
        let usable = |id: &PkgId| !only_all || u.get(*id).arch == "all";
        let done = |version: PkgId, release: Option<String>| {
            Ok(Some(Picked {
                request,
                query,
                version,
                release,
            }))
        };
        let no_match = |hint: String| {
            format!(
                "{}: `{query}` matches no package for {} ({hint})",
                query.location, u.client.native
            )
        };
        let Some(slot) = u.slot(&query.name, arch) else {
            // A virtual package: apt takes its provider when there is exactly one.
            let dep = Dependency {
                name: query.name.clone(),
                qualifier: ArchQualifier::Arch(arch.to_owned()),
                version: query.version.clone(),
                arches: Vec::new(),
            };
            let mut providers = Vec::new();
            if let Some(&any) = u
                .by_name(&query.name)
                .first()
                .or(u.providers(&query.name).first())
            {
                self.graph
                    .satisfiers(any, &dep, &|s| self.candidates[s], &mut providers);
            }
            providers.retain(usable);
            return match providers.as_slice() {
                [] => Err(no_match(self.hint(
                    &query.name,
                    query.version.as_ref(),
                    arch,
                ))),
                [one] => done(*one, None),
                many => {
                    let names: Vec<String> =
                        many.iter().map(|&id| u.get(id).name.to_owned()).collect();
                    Err(format!(
                        "{}: `{query}` is a virtual package provided by {}: apt asks to choose one, so name it in packages.txt",
                        query.location,
                        names.join(", ")
                    ))
                }
            };
        };
        let candidate = self.candidates[slot].filter(usable);
        let wanted = |id: PkgId| {
            query
                .version
                .as_ref()
                .is_none_or(|req| req.matches(self.graph.version(id)))
        };
        if let Some(c) = candidate
            && wanted(c)
        {
            return done(c, None);
        }
        // `name=version` (same pin) or `name/dist` (a lower-pinned dist): the highest
        // pin, then the highest version, that satisfies the query.
        let best = u
            .slot_versions(slot)
            .iter()
            .copied()
            .filter(|&id| usable(&id) && u.get(id).pin > 0 && wanted(id))
            .max_by(|&a, &b| {
                u.get(a)
                    .pin
                    .cmp(&u.get(b).pin)
                    .then_with(|| self.graph.version(a).cmp(self.graph.version(b)))
            });
        match best {
            Some(v) => {
                let lower_pin = candidate.is_none_or(|c| u.get(v).pin < u.get(c).pin);
                let release = lower_pin.then(|| u.get(v).origin.dist.to_owned());
                done(v, release)
            }
            None => Err(no_match(self.hint(
                &query.name,
                query.version.as_ref(),
                arch,
            ))),
        }
    }

    // ---- essential seeding -------------------------------------------------------------

    /// What debootstrap installs from this source: `Priority: required` and `Essential:
    /// yes` packages, `apt` (minbase) or `Priority: important` (default), the names
    /// debootstrap adds for the dist, `ca-certificates` (for an https mirror), and the
    /// first alternative of each of their dependencies, by name, from the same dist.
    fn seed_essential(&mut self, marker: &mut Marker, request: usize) {
        let u = self.universe;
        let r = &self.requests[request];
        let variant = r.settings.essential;
        // A package is this source's when this source lists its file (maybe beside
        // another source that lists the same file).
        let listed_here = |id: PkgId| {
            u.get(id).origin.source == r.source
                || u.aliases_of(id).iter().any(|a| a.origin.source == r.source)
        };
        let mut names: Vec<&str> = (0..u.packages.len())
            .filter(|&id| {
                let p = u.get(id);
                listed_here(id)
                    && (p.essential
                        || p.priority == Priority::Required
                        || (variant == Essential::Default && p.priority == Priority::Important))
            })
            .map(|id| u.get(id).name)
            .collect();
        names.extend(r.bootstrap_names.iter().map(String::as_str));
        if variant == Essential::Minbase {
            names.push("apt");
        }
        names.push("ca-certificates");
        names.sort_unstable();
        names.dedup();
        let own = |name: &str| -> Option<PkgId> {
            let ids = u.by_name(name);
            ids.iter()
                .copied()
                .filter(|&id| u.slot_arch(id) == u.client.native)
                .find(|&id| listed_here(id))
                .or_else(|| {
                    ids.iter()
                        .copied()
                        .find(|&id| u.slot_arch(id) == u.client.native)
                })
        };
        let mut seeds = Vec::new();
        let mut queue = Vec::new();
        for name in names {
            match own(name) {
                Some(id) => {
                    seeds.push(id);
                    queue.push(id);
                    self.why.insert((
                        id,
                        Why::Seed {
                            label: format!("{name} (essential seeding)"),
                        },
                    ));
                }
                None => tracing::debug!("essential seeding: {name} not in this source"),
            }
        }
        // debootstrap's own closure: first alternatives by name, no versions, no
        // virtual packages; `usrmerge` is excluded from bookworm on.
        let mut seen: FxHashSet<PkgId> = queue.iter().copied().collect();
        while let Some(id) = queue.pop() {
            self.selected.insert(id);
            let Ok(deps) = self.graph.deps(id) else {
                continue;
            };
            for group in deps.positive.iter().filter(|g| g.kind.is_critical()) {
                let first = &group.alts[0];
                if first.name == "usrmerge" {
                    continue;
                }
                if let Some(child) = own(&first.name) {
                    self.why.insert((
                        child,
                        Why::Dependency {
                            parent: id,
                            via: group.text.clone(),
                        },
                    ));
                    if seen.insert(child) {
                        queue.push(child);
                    }
                }
            }
        }
        // And what apt makes of the same set, so the seeded system is consistent.
        let users: Vec<UserRequest> = seeds
            .iter()
            .map(|&version| UserRequest {
                version,
                release: None,
            })
            .collect();
        let outcome = marker.install(&users, self.flags(&[request]));
        if outcome.broken.is_empty() {
            for &id in &outcome.installed {
                self.selected.insert(id);
                if let Some(Reason::Dependency { parent, via }) = outcome.reasons.get(&id) {
                    self.why.insert((
                        id,
                        Why::Dependency {
                            parent: *parent,
                            via: via.clone(),
                        },
                    ));
                }
            }
        } else {
            self.absorb(outcome, &[], Scope::Seeding);
        }
    }

    /// An entry that could not be read is skipped like apt skips it, unless something
    /// needs its name: a query, a selected package, or a dependency of one. Then the
    /// index and line are an error: the mirror must not quietly publish another version.
    fn refuse_needed_malformed(&mut self, picked: &[Picked], requests: &[Request]) {
        if self.universe.malformed.is_empty() {
            return;
        }
        let mut needed: FxHashSet<String> = FxHashSet::default();
        for r in requests {
            needed.extend(r.queries.iter().map(|q| q.name.to_ascii_lowercase()));
        }
        needed.extend(picked.iter().map(|p| p.query.name.to_ascii_lowercase()));
        for &id in &self.selected {
            needed.insert(self.universe.get(id).name.to_ascii_lowercase());
            if let Ok(deps) = self.graph.deps(id) {
                for group in &deps.positive {
                    needed.extend(group.alts.iter().map(|a| a.name.to_ascii_lowercase()));
                }
            }
        }
        for m in &self.universe.malformed {
            let named = m.to_string();
            if let Some(name) = &m.name
                && needed.contains(&name.to_ascii_lowercase())
                && !self.problems.iter().any(|p| p.contains(&named))
            {
                self.problems.push(format!(
                    "{m} (an entry for {name:?}, which this mirror needs: fix the index upstream, or drop what needs it)"
                ));
            }
        }
    }

    // ---- messages ----------------------------------------------------------------------

    fn warn_shadowed(&mut self) {
        let u = self.universe;
        for s in &u.shadowed {
            if self.selected.contains(&s.kept) {
                let kept = u.get(s.kept);
                self.warnings.push(format!(
                    "{} is listed with two different files: publishing the one from {}/dists/{} (asked for, or first), not the one from {}/dists/{}",
                    kept.label(),
                    kept.origin.url,
                    kept.origin.dist,
                    s.dropped.origin.url,
                    s.dropped.origin.dist
                ));
            }
        }
    }

    /// One message per broken package: the chain from its request, and why.
    fn describe_broken(&self, outcome: &Outcome, roots: &[Picked]) -> Vec<String> {
        let mut out = Vec::new();
        for b in &outcome.broken {
            let chain = self.chain(outcome, b.pkg, roots);
            let message = match &b.detail {
                BrokenDetail::Unmet(group) => {
                    let mut seen = FxHashSet::default();
                    format!(
                        "{chain} → {}",
                        self.explain(outcome, b.pkg, group, &mut seen)
                    )
                }
                BrokenDetail::Conflict(hits) => {
                    let others: Vec<String> = hits
                        .iter()
                        .map(|&h| {
                            let (c, _) = self.chain_parts(outcome, h, roots);
                            format!("{} (wanted by {c})", self.universe.get(h).name)
                        })
                        .collect();
                    format!("{chain}: {} vs {}", b.what, others.join(", "))
                }
            };
            if !out.contains(&message) {
                out.push(message);
            }
        }
        out
    }

    /// `file:line: query → dep → dep`, from a request down to `id`.
    fn chain(&self, outcome: &Outcome, id: PkgId, roots: &[Picked]) -> String {
        let (steps, location) = self.chain_parts(outcome, id, roots);
        match location {
            Some(loc) => format!("{loc}: {steps}"),
            None => steps,
        }
    }

    fn chain_parts(
        &self,
        outcome: &Outcome,
        id: PkgId,
        roots: &[Picked],
    ) -> (String, Option<Location>) {
        let mut steps = Vec::new();
        let mut current = id;
        for _ in 0..10_000 {
            match outcome.reasons.get(&current) {
                Some(Reason::Dependency { parent, via }) => {
                    steps.push(via.clone());
                    current = *parent;
                }
                Some(Reason::Request(n)) => {
                    let location = roots.get(*n).map(|p| {
                        steps.push(p.query.to_string());
                        p.query.location.clone()
                    });
                    if location.is_none() {
                        steps.push(self.universe.get(current).name.to_owned());
                    }
                    steps.reverse();
                    return (steps.join(" → "), location);
                }
                None => break,
            }
        }
        steps.push(self.universe.get(current).name.to_owned());
        steps.reverse();
        (steps.join(" → "), None)
    }

    /// Why nothing could satisfy `group` of `from`: down the first alternative whose
    /// candidate fits but cannot be installed, to the relation nothing meets.
    fn explain(
        &self,
        outcome: &Outcome,
        from: PkgId,
        group: &Group,
        seen: &mut FxHashSet<PkgId>,
    ) -> String {
        let g = self.graph;
        let cand = |s: SlotId| self.candidates[s];
        let mut conflicts = Vec::new();
        for alt in &group.alts {
            let mut sat = Vec::new();
            g.satisfiers(from, alt, &cand, &mut sat);
            for v in sat {
                if !seen.insert(v) {
                    continue;
                }
                let Ok(deps) = g.deps(v) else {
                    return format!(
                        "{} → ? ({})",
                        group.text,
                        g.deps(v).err().unwrap_or_default()
                    );
                };
                let unmet = deps
                    .positive
                    .iter()
                    .filter(|gr| gr.kind.is_critical())
                    .find(|gr| {
                        let mut s = Vec::new();
                        gr.alts.iter().all(|a| {
                            s.clear();
                            g.satisfiers(v, a, &cand, &mut s);
                            s.is_empty()
                        })
                    });
                match unmet {
                    Some(bad) => {
                        return format!("{} → {}", group.text, self.explain(outcome, v, bad, seen));
                    }
                    None => {
                        let mut hits = Vec::new();
                        let installed: FxHashSet<SlotId> = outcome
                            .installed
                            .iter()
                            .map(|&i| self.universe.slot_of(i))
                            .collect();
                        let inst = |s: SlotId| {
                            installed
                                .contains(&s)
                                .then(|| {
                                    outcome
                                        .installed
                                        .iter()
                                        .copied()
                                        .find(|&i| self.universe.slot_of(i) == s)
                                })
                                .flatten()
                        };
                        for neg in &deps.negative {
                            g.hit_by(v, neg, &inst, &mut hits);
                        }
                        if !hits.is_empty() {
                            let names: Vec<&str> =
                                hits.iter().map(|&h| self.universe.get(h).name).collect();
                            conflicts.push(format!(
                                "{} conflicts with {}",
                                self.universe.get(v).name,
                                names.join(", ")
                            ));
                        }
                    }
                }
            }
        }
        if !conflicts.is_empty() {
            return format!("{} → ? ({})", group.text, conflicts.join("; "));
        }
        let arch = self.universe.slot_arch(from).to_owned();
        let hints: Vec<String> = group
            .alts
            .iter()
            .map(|d| self.hint(&d.name, d.version.as_ref(), &arch))
            .collect();
        format!("{} → ? ({})", group.text, hints.join("; "))
    }

    /// What the universe has under `name`, for an error message.
    fn hint(&self, name: &str, wanted: Option<&VersionReq>, arch: &str) -> String {
        let u = self.universe;
        let versions: Vec<&str> = u
            .by_name(name)
            .iter()
            .take(5)
            .map(|&id| u.get(id).version_text)
            .collect();
        let mut providers: Vec<&str> = u.providers(name).iter().map(|&id| u.get(id).name).collect();
        providers.sort_unstable();
        providers.dedup();
        providers.truncate(5);
        let mut hint = match (versions.is_empty(), providers.is_empty(), wanted) {
            (false, _, Some(w)) => {
                format!("{name} ({w}) wanted, available: {}", versions.join(", "))
            }
            (false, _, None) => format!("{name} is available but not usable here"),
            (true, false, _) => format!("{name} is virtual, provided by {}", providers.join(", ")),
            (true, true, _) => format!("no package or provider named {name} for {arch}"),
        };
        for m in u.malformed_named(name) {
            let _ = write!(
                hint,
                "; its entry at {m} could not be read, so apt skips it too"
            );
        }
        hint
    }
}

fn root_why(p: &Picked) -> Why {
    Why::Query {
        location: p.query.location.clone(),
        label: p.query.to_string(),
    }
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests;
