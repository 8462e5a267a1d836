//! Selection: turns queries into seed packages and closes them under dependencies,
//! within one architecture's [`Universe`].
//!
//! Rules: a query picks the highest version that satisfies it among all sources of
//! the prefix (what a client listing them all would install: bookworm's `nginx-light`
//! query gets bookworm-security's newer build, which fits the newer `nginx` there);
//! Pre-Depends and Depends are always followed, Recommends/Suggests when the seed's
//! source asks for them; in a group `a | b` an alternative that is already selected
//! wins, else the first one that has a candidate; virtual names resolve through
//! Provides (a versioned dependency needs a versioned Provides). Conflicts are not
//! evaluated: a mirror offers packages, the client's apt decides what to install.
//! The walk is breadth-first in input order, so the same input gives the same result.

use crate::relation::{Alternatives, ArchQualifier, Dependency, parse_depends};
use crate::spec::{Location, MissingPolicy, Query, Settings};
use crate::universe::{MultiArch, PkgId, Priority, Universe};
use std::collections::VecDeque;
use std::fmt::Write as _;

/// What one source asks of the resolver.
pub struct Request<'s> {
    /// The source's position in the build's source list (matches `Origin::source`).
    pub source: usize,
    /// The source's settings.
    pub settings: &'s Settings,
    /// Its queries.
    pub queries: &'s [Query],
    /// Names `debootstrap --variant=minbase` installs besides `Priority: required`
    /// (e.g. `apt`, `usr-is-merged`); used only when `settings.essential` is on.
    pub bootstrap_names: Vec<String>,
}

/// The packages chosen for one architecture.
#[derive(Debug)]
pub struct Selection {
    /// The architecture.
    pub arch: String,
    /// Chosen packages, ordered by name, version, architecture.
    pub packages: Vec<PkgId>,
    /// Unsatisfied dependencies that the user chose to only warn about.
    pub warnings: Vec<String>,
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

const FOLLOW_RECOMMENDS: u8 = 1;
const FOLLOW_SUGGESTS: u8 = 2;
const BOOTSTRAP: u8 = 4;
const EXPANDED: u8 = 8;

#[derive(Clone)]
enum Reason {
    /// Asked for directly.
    Seed {
        request: usize,
        label: String,
        location: Option<Location>,
    },
    /// Needed by `parent` through the dependency written as `via`.
    Dependency { parent: PkgId, via: String },
}

struct Resolver<'u, 'a, 's> {
    universe: &'u Universe<'a>,
    requests: &'s [Request<'s>],
    reasons: Vec<Option<Reason>>,
    flags: Vec<u8>,
    queue: VecDeque<(PkgId, u8)>,
    problems: Vec<String>,
    warnings: Vec<String>,
}

/// Select the closure of `requests` in `universe`.
pub fn resolve(
    universe: &Universe<'_>,
    requests: &[Request<'_>],
) -> Result<Selection, ResolveError> {
    let n = universe.packages.len();
    let mut r = Resolver {
        universe,
        requests,
        reasons: vec![None; n],
        flags: vec![0; n],
        queue: VecDeque::new(),
        problems: Vec::new(),
        warnings: Vec::new(),
    };
    for (i, request) in requests.iter().enumerate() {
        r.seed_queries(i, request);
        if request.settings.essential {
            r.seed_essential(i, request);
        }
    }
    while let Some((id, flags)) = r.queue.pop_front() {
        r.expand(id, flags);
    }
    if !r.problems.is_empty() {
        return Err(ResolveError {
            problems: r.problems,
        });
    }
    let mut packages: Vec<PkgId> = (0..n).filter(|&i| r.reasons[i].is_some()).collect();
    packages.sort_by(|&a, &b| {
        let (pa, pb) = (universe.get(a), universe.get(b));
        pa.name
            .cmp(pb.name)
            .then_with(|| pa.version().cmp(&pb.version()))
            .then(pa.arch.cmp(pb.arch))
            .then(a.cmp(&b))
    });
    Ok(Selection {
        arch: universe.arch.clone(),
        packages,
        warnings: r.warnings,
    })
}

fn follow_flags(settings: &Settings) -> u8 {
    let mut f = 0;
    if settings.recommends {
        f |= FOLLOW_RECOMMENDS;
    }
    if settings.suggests {
        f |= FOLLOW_SUGGESTS;
    }
    f
}

impl<'a> Resolver<'_, 'a, '_> {
    fn seed_queries(&mut self, index: usize, request: &Request<'_>) {
        let u = self.universe;
        for query in request.queries {
            if query
                .arch
                .as_deref()
                .is_some_and(|a| a != u.arch && a != "all")
            {
                continue;
            }
            let arch_ok = |id: &PkgId| query.arch.as_deref().is_none_or(|a| u.get(*id).arch == a);
            let version_ok = |id: &PkgId| {
                query
                    .version
                    .as_ref()
                    .is_none_or(|req| req.matches(&u.get(*id).version()))
            };
            let mut pick = u
                .by_name(&query.name)
                .iter()
                .copied()
                .find(|id| arch_ok(id) && version_ok(id));
            if pick.is_none() && query.version.is_none() {
                // A virtual name: take its first provider, as apt would ask to choose.
                pick = u
                    .providers(&query.name)
                    .iter()
                    .copied()
                    .find(|id| arch_ok(id));
            }
            match pick {
                Some(id) => self.select(
                    id,
                    Reason::Seed {
                        request: index,
                        label: query.name.clone(),
                        location: Some(query.location.clone()),
                    },
                    follow_flags(request.settings),
                ),
                None => {
                    let hint = self
                        .hint_for_name(&query.name, query.version.as_ref().map(|v| v.to_string()));
                    self.problems.push(format!(
                        "{}: `{query}` matches no package for {} ({hint})",
                        query.location, u.arch
                    ));
                }
            }
        }
    }

    fn seed_essential(&mut self, index: usize, request: &Request<'_>) {
        let u = self.universe;
        let mut names: Vec<&str> = u
            .packages
            .iter()
            .filter(|p| {
                p.origin.source == request.source
                    && (p.essential || p.priority == Priority::Required)
            })
            .map(|p| p.name)
            .collect();
        names.extend(request.bootstrap_names.iter().map(String::as_str));
        names.sort_unstable();
        names.dedup();
        let flags = follow_flags(request.settings) | BOOTSTRAP;
        for name in names {
            let pick = u
                .by_name(name)
                .iter()
                .copied()
                .find(|&id| u.get(id).origin.source == request.source);
            match pick {
                Some(id) => self.select(
                    id,
                    Reason::Seed {
                        request: index,
                        label: format!("{name} (essential seeding)"),
                        location: None,
                    },
                    flags,
                ),
                None => tracing::debug!("essential seeding: {name} not in this source"),
            }
        }
    }

    fn select(&mut self, id: PkgId, reason: Reason, flags: u8) {
        if self.reasons[id].is_none() {
            self.reasons[id] = Some(reason);
        }
        let done = self.flags[id];
        if done & EXPANDED == 0
            || (flags & !done) & (FOLLOW_RECOMMENDS | FOLLOW_SUGGESTS | BOOTSTRAP) != 0
        {
            self.queue.push_back((id, flags | (done & !EXPANDED)));
            self.flags[id] |= flags | EXPANDED;
        }
    }

    fn expand(&mut self, id: PkgId, flags: u8) {
        let u = self.universe;
        let pkg = u.get(id);
        let mut fields = vec![
            ("Pre-Depends", pkg.pre_depends, true),
            ("Depends", pkg.depends, true),
        ];
        if flags & FOLLOW_RECOMMENDS != 0 {
            fields.push(("Recommends", pkg.recommends, false));
        }
        if flags & FOLLOW_SUGGESTS != 0 {
            fields.push(("Suggests", pkg.suggests, false));
        }
        for (field, text, required) in fields {
            if text.is_empty() {
                continue;
            }
            let groups = match parse_depends(text) {
                Ok(g) => g,
                Err(e) => {
                    self.problems.push(format!(
                        "{} {} ({}): malformed {field}: {e:#}",
                        pkg.name, pkg.version_text, pkg.arch
                    ));
                    continue;
                }
            };
            for group in groups {
                let alternatives: Vec<&Dependency> =
                    group.0.iter().filter(|d| d.applies_to(&u.arch)).collect();
                if alternatives.is_empty() {
                    continue;
                }
                let via = group.to_string();
                if flags & BOOTSTRAP != 0 && required {
                    self.bootstrap_first_alternative(id, alternatives[0], &via, flags);
                }
                self.satisfy(id, &group, &alternatives, via, flags, required);
            }
        }
    }

    /// debootstrap takes the first alternative of every dependency, by name, ignoring
    /// versions and virtual packages; make sure it finds it.
    fn bootstrap_first_alternative(
        &mut self,
        parent: PkgId,
        dep: &Dependency,
        via: &str,
        flags: u8,
    ) {
        // debootstrap excludes `usrmerge` from bookworm on (usr-is-merged replaces it).
        if dep.name == "usrmerge" {
            return;
        }
        // debootstrap reads one dist: take the version of the parent's own source if
        // there is one (the newest elsewhere is also selected by the normal rules).
        let u = self.universe;
        let source = u.get(parent).origin.source;
        let candidates = u.by_name(&dep.name);
        let pick = candidates
            .iter()
            .find(|&&id| u.get(id).origin.source == source)
            .or(candidates.first());
        if let Some(&best) = pick {
            self.select(
                best,
                Reason::Dependency {
                    parent,
                    via: via.to_owned(),
                },
                flags,
            );
        }
    }

    fn satisfy(
        &mut self,
        parent: PkgId,
        group: &Alternatives,
        alternatives: &[&Dependency],
        via: String,
        flags: u8,
        required: bool,
    ) {
        let candidates: Vec<Vec<PkgId>> = alternatives.iter().map(|d| self.candidates(d)).collect();
        if candidates
            .iter()
            .flatten()
            .any(|&c| self.reasons[c].is_some())
        {
            return;
        }
        // Recommends/Suggests reached through a dependency keep the parent's flags,
        // but the bootstrap rule only applies to what debootstrap itself walks.
        let child_flags = flags;
        if let Some(&best) = candidates.iter().flatten().next() {
            self.select(best, Reason::Dependency { parent, via }, child_flags);
            return;
        }
        if !required {
            return; // apt installs without a missing Recommends/Suggests, so may we.
        }
        let (chain, request) = self.chain(parent);
        let hints: Vec<String> = group
            .0
            .iter()
            .map(|d| self.hint_for_name(&d.name, d.version.as_ref().map(|v| v.to_string())))
            .collect();
        let message = format!("{chain} → {via} → ? ({})", hints.join("; "));
        match request.map(|r| self.requests[r].settings.missing) {
            Some(MissingPolicy::Warn) => self.warnings.push(message),
            _ => self.problems.push(message),
        }
    }

    /// Packages that satisfy one alternative: real packages (highest version first),
    /// then providers.
    fn candidates(&self, dep: &Dependency) -> Vec<PkgId> {
        let u = self.universe;
        let mut out: Vec<PkgId> = u
            .by_name(&dep.name)
            .iter()
            .copied()
            .filter(|&id| {
                let p = u.get(id);
                let arch_ok = match dep.qualifier {
                    ArchQualifier::Any => p.multi_arch == MultiArch::Allowed,
                    ArchQualifier::None | ArchQualifier::Native => true,
                };
                arch_ok
                    && dep
                        .version
                        .as_ref()
                        .is_none_or(|req| req.matches(&p.version()))
            })
            .collect();
        out.extend(u.providers(&dep.name).iter().copied().filter(|&id| {
            u.get(id).provides().iter().any(|prov| {
                prov.name == dep.name
                    && match (&dep.version, &prov.version) {
                        (None, _) => true,
                        (Some(req), Some(v)) => req.matches(v),
                        (Some(_), None) => false,
                    }
            })
        }));
        out
    }

    /// `query → dep → dep`, from the seed down to `id`, and the seed's request.
    fn chain(&self, id: PkgId) -> (String, Option<usize>) {
        let mut steps = Vec::new();
        let mut current = id;
        let mut guard = 0;
        loop {
            match &self.reasons[current] {
                Some(Reason::Dependency { parent, via }) => {
                    steps.push(via.clone());
                    current = *parent;
                }
                Some(Reason::Seed {
                    request,
                    label,
                    location,
                }) => {
                    steps.push(label.clone());
                    steps.reverse();
                    let mut chain = String::new();
                    if let Some(loc) = location {
                        let _ = write!(chain, "{loc}: ");
                    }
                    chain.push_str(&steps.join(" → "));
                    return (chain, Some(*request));
                }
                None => return (steps.join(" → "), None),
            }
            guard += 1;
            if guard > 10_000 {
                return (steps.join(" → "), None);
            }
        }
    }

    fn hint_for_name(&self, name: &str, wanted: Option<String>) -> String {
        let u = self.universe;
        let versions: Vec<&str> = u
            .by_name(name)
            .iter()
            .take(5)
            .map(|&id| u.get(id).version_text)
            .collect();
        let providers: Vec<&str> = u
            .providers(name)
            .iter()
            .take(5)
            .map(|&id| u.get(id).name)
            .collect();
        match (versions.is_empty(), providers.is_empty(), wanted) {
            (false, _, Some(w)) => format!("{name} {w} wanted, available: {}", versions.join(", ")),
            (false, _, None) => format!("{name} is available but not usable here"),
            (true, false, _) => format!("{name} is virtual, provided by {}", providers.join(", ")),
            (true, true, _) => format!("no package or provider named {name} for {}", u.arch),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index_text::IndexText;
    use crate::spec::{Location, Query, Settings};
    use crate::universe::{IndexRef, Origin};

    /// A Packages text from `(name, version, arch, extra fields)`.
    fn index(entries: &[(&str, &str, &str, &str)]) -> String {
        let mut out = String::new();
        for (i, (name, version, arch, extra)) in entries.iter().enumerate() {
            out.push_str(&format!(
                "Package: {name}\nVersion: {version}\nArchitecture: {arch}\nFilename: pool/main/{name}_{version}_{arch}.deb\nSize: 1\nSHA256: {i:064x}\n{extra}\n"
            ));
        }
        out
    }

    fn query(text: &str) -> Query {
        let (name, version) = match text.split_once(' ') {
            Some((n, v)) => (
                n,
                Some(crate::relation::parse_version_req(v.trim_matches(['(', ')'])).unwrap()),
            ),
            None => (text, None),
        };
        Query {
            name: name.into(),
            version,
            arch: None,
            location: Location {
                file: "sources/p/s/packages.txt".into(),
                line: 1,
            },
        }
    }

    /// Resolve `queries` (of the first source) over one index per source `(dist, text)`;
    /// the selected `name=version@dist` strings, or the error.
    fn run_sources(
        sources: &[(&str, &str)],
        queries: &[&str],
        settings: Settings,
    ) -> Result<Vec<String>, String> {
        let texts: Vec<IndexText> = sources
            .iter()
            .map(|(_, text)| IndexText::from(text.to_string()))
            .collect();
        let indices: Vec<IndexRef> = sources
            .iter()
            .zip(&texts)
            .enumerate()
            .map(|(source, ((dist, _), text))| IndexRef {
                text,
                path: "test",
                origin: Origin {
                    source,
                    dist,
                    component: "main",
                },
            })
            .collect();
        let universe = Universe::build("amd64", &indices).unwrap();
        let queries: Vec<Query> = queries.iter().map(|q| query(q)).collect();
        let requests: Vec<Request> = (0..sources.len())
            .map(|source| Request {
                source,
                settings: &settings,
                queries: if source == 0 { &queries } else { &[] },
                bootstrap_names: vec!["apt".into()],
            })
            .collect();
        match resolve(&universe, &requests) {
            Ok(sel) => Ok(sel
                .packages
                .iter()
                .map(|&id| {
                    let p = universe.get(id);
                    format!("{}={}@{}", p.name, p.version_text, p.origin.dist)
                })
                .collect()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Resolve `queries` over one index; the selected `name=version` strings, or the error.
    fn run(text: &str, queries: &[&str], settings: Settings) -> Result<Vec<String>, String> {
        run_sources(&[("d", text)], queries, settings).map(|selected| {
            selected
                .into_iter()
                .map(|s| s.trim_end_matches("@d").to_owned())
                .collect()
        })
    }

    #[test]
    fn query_picks_highest_satisfying_version() {
        let text = index(&[
            ("app", "1.0", "amd64", ""),
            ("app", "2.0", "amd64", ""),
            ("app", "1:0.5", "amd64", ""),
        ]);
        assert_eq!(
            run(&text, &["app"], Settings::default()).unwrap(),
            ["app=1:0.5"]
        );
        assert_eq!(
            run(&text, &["app (<< 1:0)"], Settings::default()).unwrap(),
            ["app=2.0"]
        );
        assert_eq!(
            run(&text, &["app (<< 2.0)"], Settings::default()).unwrap(),
            ["app=1.0"]
        );
        let err = run(&text, &["app (>> 3:0)"], Settings::default()).unwrap_err();
        assert!(err.contains("sources/p/s/packages.txt:1"), "{err}");
    }

    #[test]
    fn queries_and_dependencies_take_the_newest_build_across_the_prefix() {
        // bookworm's nginx-light pins bookworm's nginx; security has both, newer.
        let main = index(&[
            (
                "nginx-light",
                "1-1",
                "amd64",
                "Depends: nginx (<< 1-1.1~)\n",
            ),
            ("nginx", "1-1", "amd64", ""),
            ("tool", "1", "amd64", "Depends: nginx\n"),
        ]);
        let security = index(&[
            (
                "nginx-light",
                "1-2",
                "amd64",
                "Depends: nginx (<< 1-2.1~)\n",
            ),
            ("nginx", "1-2", "amd64", ""),
        ]);
        let chosen = run_sources(
            &[("bookworm", &main), ("bookworm-security", &security)],
            &["nginx-light", "tool"],
            Settings::default(),
        )
        .unwrap();
        assert_eq!(
            chosen,
            [
                "nginx=1-2@bookworm-security",
                "nginx-light=1-2@bookworm-security",
                "tool=1@bookworm"
            ]
        );
    }

    #[test]
    fn alternatives_prefer_selected_then_first_satisfiable() {
        let text = index(&[
            ("app", "1", "amd64", "Depends: missing | bb | cc\n"),
            ("tool", "1", "amd64", "Depends: cc\n"),
            ("bb", "1", "amd64", ""),
            ("cc", "1", "amd64", ""),
        ]);
        assert_eq!(
            run(&text, &["app"], Settings::default()).unwrap(),
            ["app=1", "bb=1"]
        );
        // `cc` is already selected (tool is seeded first), so it satisfies `bb | cc`.
        assert_eq!(
            run(&text, &["tool", "app"], Settings::default()).unwrap(),
            ["app=1", "cc=1", "tool=1"]
        );
    }

    #[test]
    fn virtual_and_versioned_provides() {
        let text = index(&[
            ("app", "1", "amd64", "Depends: mta, libabi (>= 2)\n"),
            ("exim", "1", "amd64", "Provides: mta\nPriority: standard\n"),
            (
                "postfix",
                "1",
                "amd64",
                "Provides: mta\nPriority: optional\n",
            ),
            ("libold", "1", "amd64", "Provides: libabi (= 1)\n"),
            ("libunversioned", "1", "amd64", "Provides: libabi\n"),
            ("libnew", "1", "amd64", "Provides: libabi (= 2.1)\n"),
        ]);
        assert_eq!(
            run(&text, &["app"], Settings::default()).unwrap(),
            ["app=1", "exim=1", "libnew=1"]
        );
    }

    #[test]
    fn any_qualifier_needs_multi_arch_allowed_and_arch_all_counts() {
        let text = index(&[
            ("app", "1", "amd64", "Depends: python3:any, data\n"),
            ("python3", "3", "amd64", "Multi-Arch: allowed\n"),
            ("data", "1", "all", ""),
            ("bad", "1", "amd64", "Depends: perl:any\n"),
            ("perl", "1", "amd64", ""),
            ("other", "1", "arm64", ""),
        ]);
        assert_eq!(
            run(&text, &["app"], Settings::default()).unwrap(),
            ["app=1", "data=1", "python3=3"]
        );
        assert!(run(&text, &["bad"], Settings::default()).is_err());
        assert!(
            run(&text, &["other"], Settings::default()).is_err(),
            "arm64 is not visible to amd64"
        );
    }

    #[test]
    fn cycles_terminate() {
        let text = index(&[
            ("aa", "1", "amd64", "Depends: bb\n"),
            ("bb", "1", "amd64", "Pre-Depends: aa\n"),
        ]);
        assert_eq!(
            run(&text, &["aa"], Settings::default()).unwrap(),
            ["aa=1", "bb=1"]
        );
    }

    #[test]
    fn unsatisfiable_dependency_shows_the_chain() {
        let text = index(&[
            ("nginx", "1", "amd64", "Depends: libmid\n"),
            ("libmid", "1", "amd64", "Depends: libssl3 (>= 3.0.9)\n"),
            ("libssl3", "3.0.8", "amd64", ""),
        ]);
        let err = run(&text, &["nginx"], Settings::default()).unwrap_err();
        assert!(
            err.contains("nginx → libmid → libssl3 (>= 3.0.9) → ?"),
            "{err}"
        );
        assert!(
            err.contains("3.0.8"),
            "the error lists what is available: {err}"
        );
        let warn = Settings {
            missing: MissingPolicy::Warn,
            ..Settings::default()
        };
        assert_eq!(
            run(&text, &["nginx"], warn).unwrap(),
            ["libmid=1", "nginx=1"]
        );
    }

    #[test]
    fn recommends_and_suggests_only_when_enabled() {
        let text = index(&[
            (
                "app",
                "1",
                "amd64",
                "Recommends: rec, gone\nSuggests: sug\n",
            ),
            ("rec", "1", "amd64", "Depends: dep\n"),
            ("dep", "1", "amd64", ""),
            ("sug", "1", "amd64", ""),
        ]);
        assert_eq!(
            run(&text, &["app"], Settings::default()).unwrap(),
            ["app=1"]
        );
        let rec = Settings {
            recommends: true,
            ..Settings::default()
        };
        assert_eq!(
            run(&text, &["app"], rec).unwrap(),
            ["app=1", "dep=1", "rec=1"]
        );
        let sug = Settings {
            suggests: true,
            ..Settings::default()
        };
        assert_eq!(run(&text, &["app"], sug).unwrap(), ["app=1", "sug=1"]);
    }

    #[test]
    fn essential_seeding_takes_required_essential_and_debootstraps_first_alternatives() {
        let text = index(&[
            (
                "base-files",
                "1",
                "amd64",
                "Priority: required\nDepends: mawk | awk\n",
            ),
            ("dash", "1", "amd64", "Essential: yes\nPriority: optional\n"),
            ("apt", "2", "amd64", ""),
            ("mawk", "1", "amd64", "Priority: optional\n"),
            ("gawk", "1", "amd64", "Provides: awk\nPriority: optional\n"),
            ("extra", "1", "amd64", "Priority: optional\n"),
        ]);
        let essential = Settings {
            essential: true,
            ..Settings::default()
        };
        assert_eq!(
            run(&text, &[], essential).unwrap(),
            ["apt=2", "base-files=1", "dash=1", "mawk=1"]
        );
    }
}
