//! Planning: for each prefix, build each architecture's universe, resolve the
//! sources' queries in it, and lay the chosen packages out by dist, component and
//! architecture — the typed hand-off from selection to the pool and publish stages.

use crate::lock::{Lock, LockedPackage, LockedQuery, LockedSource};
use crate::pool::{PoolFile, pool_path};
use crate::publish::{DistPlan, Entry, PrefixPlan};
use crate::resolve::{Request, ResolveError, Why, resolve};
use crate::spec::SourceSpec;
use crate::universe::PkgId;
use crate::universe::{Client, IndexRef, Origin, Universe};
use crate::upstream::FetchedSource;
use anyhow::{Context, Result, bail};
use std::collections::{BTreeMap, BTreeSet};

/// Release fields copied from upstream into our Release, in this order.
pub const KEPT_FIELDS: [&str; 8] = [
    "Origin",
    "Label",
    "Suite",
    "Codename",
    "Version",
    "Description",
    "NotAutomatic",
    "ButAutomaticUpgrades",
];

/// Each prefix with the positions of its sources in `specs` (sorted by prefix).
pub fn prefixes(specs: &[SourceSpec]) -> Vec<(&str, Vec<usize>)> {
    let mut out: Vec<(&str, Vec<usize>)> = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        match out.last_mut() {
            Some((prefix, members)) if *prefix == spec.prefix => members.push(i),
            _ => out.push((&spec.prefix, vec![i])),
        }
    }
    out
}

/// Which prefixes need building: the fingerprint of each prefix whose inputs differ from its
/// live tree's (all of them with `force`), and the package count of those left as they are.
pub fn changed_prefixes(
    specs: &[SourceSpec],
    releases: &[crate::upstream::VerifiedRelease],
    key: &crate::openpgp::SigningKey,
    output: &std::path::Path,
    force: bool,
    published_as: &str,
) -> (BTreeMap<String, String>, usize) {
    let mut changed = BTreeMap::new();
    let mut unchanged_packages = 0;
    for (prefix, members) in prefixes(specs) {
        let fp = fingerprint(
            &members.iter().map(|&i| &specs[i]).collect::<Vec<_>>(),
            &members.iter().map(|&i| &releases[i]).collect::<Vec<_>>(),
            key,
            published_as,
        );
        let expiring = crate::publish::expiring_dists(output, prefix);
        for (dist, until) in &expiring {
            tracing::warn!(
                "{prefix}: the live dists/{dist}/Release is valid only until {until} (within \
                 20% of its validity): re-signing it now; clients refuse it once it has expired"
            );
        }
        match crate::publish::live_fingerprint(output, prefix) {
            Some((live, count)) if live == fp && !force && expiring.is_empty() => {
                tracing::info!("{prefix}: up to date (upstream and sources unchanged)");
                unchanged_packages += count;
            }
            _ => {
                changed.insert(prefix.to_owned(), fp);
            }
        }
    }
    (changed, unchanged_packages)
}

/// Plan every prefix; `fetched[i]` belongs to `specs[i]`, and `fingerprints` (from
/// [`changed_prefixes`]) is recorded in each plan.
pub fn plan_prefixes<'a>(
    specs: &'a [SourceSpec],
    fetched: &'a [FetchedSource],
    fingerprints: &BTreeMap<String, String>,
) -> Result<Vec<PrefixPlan>> {
    let mut problems = Vec::new();
    let mut plans = Vec::new();
    for (prefix, members) in prefixes(specs) {
        match plan_prefix(prefix, &members, specs, fetched) {
            Ok(mut plan) => {
                plan.fingerprint = fingerprints.get(prefix).cloned().unwrap_or_default();
                plans.push(plan);
            }
            Err(e) => match e.downcast::<ResolveError>() {
                Ok(r) => problems.extend(r.problems),
                Err(other) => return Err(other),
            },
        }
    }
    if !problems.is_empty() {
        return Err(ResolveError { problems }.into());
    }
    Ok(plans)
}

fn plan_prefix<'a>(
    prefix: &str,
    members: &[usize],
    specs: &'a [SourceSpec],
    fetched: &'a [FetchedSource],
) -> Result<PrefixPlan> {
    let mut natives: Vec<&str> = Vec::new();
    let mut foreign: Vec<&str> = Vec::new();
    for &i in members {
        let s = &specs[i].settings;
        for a in &s.architectures {
            if !natives.contains(&a.as_str()) {
                natives.push(a);
            }
        }
        for a in &s.foreign_architectures {
            if !foreign.contains(&a.as_str()) {
                foreign.push(a);
            }
        }
    }
    let mut dists = dist_plans(members, specs, fetched);

    let mut pool: BTreeMap<String, PoolFile> = BTreeMap::new();
    let mut locked: BTreeMap<(String, String, String), LockedPackage> = BTreeMap::new();
    let mut problems = Vec::new();
    let mut published: BTreeSet<(String, String, String, String)> = BTreeSet::new();
    for native in natives {
        let client = Client {
            native: native.to_owned(),
            foreign: foreign
                .iter()
                .filter(|&&f| f != native)
                .map(|f| (*f).to_owned())
                .collect(),
        };
        let mut indices = Vec::new();
        let mut requests = Vec::new();
        for &i in members {
            let spec = &specs[i];
            if !spec.settings.architectures.iter().any(|a| a == native) {
                continue;
            }
            let pin = release_pin(&fetched[i].release, &spec.settings);
            for index in &fetched[i].indices {
                if client.sees(&index.arch) {
                    indices.push(IndexRef {
                        text: &index.text,
                        path: &index.path,
                        origin: Origin {
                            source: i,
                            url: &spec.url,
                            dist: &spec.dist,
                            component: &index.component,
                            pin,
                        },
                    });
                }
            }
            requests.push(Request {
                source: i,
                settings: &spec.settings,
                queries: &spec.queries,
                bootstrap_names: bootstrap_names(&fetched[i]),
            });
        }
        let asked =
            |name: &str, source: usize| specs[source].queries.iter().any(|q| q.name == name);
        let universe = Universe::build(&client, &indices, &asked)?;
        warn_malformed(prefix, &universe);
        tracing::info!(
            "{prefix}: {} packages visible for {}",
            universe.packages.len(),
            client_label(&client)
        );
        let selection = match resolve(&universe, &requests) {
            Ok(s) => s,
            Err(e) => {
                problems.extend(e.problems);
                continue;
            }
        };
        for w in &selection.warnings {
            tracing::warn!("{prefix}: {w}");
        }
        tracing::info!(
            "{prefix}: {} packages selected for {}",
            selection.packages.len(),
            client_label(&client)
        );
        let mut reasons: BTreeMap<PkgId, Vec<String>> = BTreeMap::new();
        for (id, why) in &selection.why {
            reasons
                .entry(*id)
                .or_default()
                .push(reason_text(&universe, why));
        }
        for &id in &selection.packages {
            let primary = universe.get(id);
            let arch = universe.slot_arch(id).to_owned();
            for pkg in std::iter::once(primary).chain(universe.aliases_of(id)) {
                let spec = &specs[pkg.origin.source];
                let path = pool_path(pkg.origin.component, pkg.source_name, pkg.filename)
                    .with_context(|| {
                        format!(
                            "{} {} in {}/dists/{}",
                            pkg.name, pkg.version_text, spec.url, spec.dist
                        )
                    })?;
                let file = PoolFile {
                    fallback_url: None,
                    url: format!("{}/{}", spec.url, pkg.filename),
                    pool_path: path.clone(),
                    size: pkg.size,
                    sha256: pkg.sha256.to_owned(),
                };
                if let Some(existing) = pool.get(&path) {
                    if existing.sha256 != file.sha256 {
                        bail!(
                            "{prefix}: two different files claim {path} ({} and {}): the sources disagree",
                            existing.url,
                            file.url
                        );
                    }
                } else {
                    pool.insert(path.clone(), file);
                }
                // One entry per dist, component and index architecture, whichever
                // clients selected it.
                let key = (
                    pkg.origin.dist.to_owned(),
                    pkg.origin.component.to_owned(),
                    arch.clone(),
                    path.clone(),
                );
                if !published.insert(key) {
                    continue;
                }
                let dist = dists
                    .iter_mut()
                    .find(|d| d.dist == pkg.origin.dist)
                    .expect("every origin dist has a plan");
                let entry = Entry {
                    paragraph: pkg.paragraph.to_owned(),
                    pool_path: path.clone(),
                };
                let lock_entry = locked
                    .entry((
                        pkg.origin.dist.to_owned(),
                        pkg.origin.component.to_owned(),
                        path,
                    ))
                    .or_insert_with(|| LockedPackage {
                        name: pkg.name.to_owned(),
                        version: pkg.version_text.to_owned(),
                        architecture: pkg.arch.to_owned(),
                        dist: pkg.origin.dist.to_owned(),
                        component: pkg.origin.component.to_owned(),
                        source: pkg.source_name.to_owned(),
                        upstream: spec.name.clone(),
                        filename: pkg.filename.to_owned(),
                        size: pkg.size,
                        sha256: pkg.sha256.to_owned(),
                        paragraph_sha256: crate::publish::entry_sha256(&entry),
                        indices: Vec::new(),
                        why: Vec::new(),
                        line: 0,
                    });
                lock_entry.indices.push(arch.clone());
                lock_entry
                    .why
                    .extend(reasons.get(&id).into_iter().flatten().cloned());
                dist.entries
                    .entry((pkg.origin.component.to_owned(), arch.clone()))
                    .or_default()
                    .push(entry);
            }
        }
    }
    if !problems.is_empty() {
        return Err(ResolveError { problems }.into());
    }
    for dist in &mut dists {
        for entries in dist.entries.values_mut() {
            sort_entries(entries);
        }
    }
    let mut lock = Lock {
        prefix: prefix.to_owned(),
        requests: String::new(),
        sources: members
            .iter()
            .map(|&i| locked_source(&specs[i], &fetched[i].release))
            .collect(),
        indices: Vec::new(),
        packages: locked.into_values().collect(),
    };
    lock.normalize();
    Ok(PrefixPlan {
        prefix: prefix.to_owned(),
        fingerprint: String::new(),
        dists,
        pool: pool.into_values().collect(),
        lock,
        keep: keep_of(members.iter().map(|&i| &specs[i])),
        snapshots_url: None,
    })
}

/// Snapshots a prefix keeps: the largest `keep` among its sources, else the default.
pub fn keep_of<'a>(specs: impl Iterator<Item = &'a SourceSpec>) -> usize {
    specs
        .filter_map(|s| s.settings.keep)
        .max()
        .unwrap_or(crate::snapshot::DEFAULT_KEEP)
}

/// The published order of a Packages file: by pool path (source package, then file name),
/// whichever client selected each entry first, so that `--locked` writes the same bytes.
pub fn sort_entries(entries: &mut [Entry]) {
    entries.sort_by(|a, b| a.pool_path.cmp(&b.pool_path));
}

/// What a lock records of one source: what it asked, and the Release it was answered from.
pub fn locked_source(
    spec: &SourceSpec,
    release: &crate::upstream::VerifiedRelease,
) -> LockedSource {
    LockedSource {
        name: spec.name.clone(),
        url: spec.url.clone(),
        dist: spec.dist.clone(),
        components: spec.components.clone(),
        release_sha256: release.text_sha256(),
        release_date: release.field("Date").map(str::to_owned),
        queries: spec
            .queries
            .iter()
            .map(|q| LockedQuery {
                line: q.location.line,
                query: q.to_string(),
            })
            .collect(),
        settings: crate::lock::settings_table(&spec.settings),
    }
}

/// A resolver's reason as the lock records it.
fn reason_text(universe: &Universe<'_>, why: &Why) -> String {
    match why {
        Why::Query { location, label } => {
            let source = location
                .file
                .parent()
                .and_then(|d| d.file_name())
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let file = location
                .file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            format!("query {source}/{file}:{}: {label}", location.line)
        }
        Why::Seed { label } => format!("seed: {label}"),
        Why::Dependency { parent, via } => {
            let p = universe.get(*parent);
            format!("{} {} {}: {via}", p.name, p.version_text, p.arch)
        }
    }
}

/// One plan per dist of a prefix's sources, without entries: header, components,
/// architectures, validity.
pub fn dist_plans<F: std::borrow::Borrow<FetchedSource>>(
    members: &[usize],
    specs: &[SourceSpec],
    fetched: &[F],
) -> Vec<DistPlan> {
    let mut dists: Vec<DistPlan> = Vec::new();
    for &i in members {
        let spec = &specs[i];
        let dist = match dists.iter_mut().position(|d| d.dist == spec.dist) {
            Some(pos) => &mut dists[pos],
            None => {
                dists.push(DistPlan {
                    dist: spec.dist.clone(),
                    header: release_header(spec, fetched[i].borrow()),
                    date_margin: chrono::Duration::minutes(
                        spec.settings.date_margin_minutes.into(),
                    ),
                    ..DistPlan::default()
                });
                dists.last_mut().expect("just pushed")
            }
        };
        // Sources sharing a dist: the shortest validity and the widest margin win.
        if let Some(days) = spec.settings.valid_until_days {
            let v = chrono::Duration::days(days.into());
            dist.valid_for = Some(dist.valid_for.map_or(v, |d| d.min(v)));
        }
        let margin = chrono::Duration::minutes(spec.settings.date_margin_minutes.into());
        dist.date_margin = dist.date_margin.max(margin);
        for c in &spec.components {
            if !dist.components.contains(c) {
                dist.components.push(c.clone());
            }
        }
        for a in spec
            .settings
            .architectures
            .iter()
            .chain(&spec.settings.foreign_architectures)
        {
            if !dist.architectures.contains(a) {
                dist.architectures.push(a.clone());
            }
        }
    }
    dists
}

/// apt's default pin of a dist (apt-pkg/policy.cc, `pkgPolicy::InitDefaults`): 500;
/// `NotAutomatic: yes` 1, with `ButAutomaticUpgrades: yes` 100; or the source's `pin`.
pub fn release_pin(
    release: &crate::upstream::VerifiedRelease,
    settings: &crate::spec::Settings,
) -> i32 {
    if let Some(pin) = settings.pin {
        return pin;
    }
    let yes = |field: &str| {
        release
            .field(field)
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("yes"))
    };
    if yes("ButAutomaticUpgrades") {
        100
    } else if yes("NotAutomatic") {
        1
    } else {
        500
    }
}

fn client_label(client: &Client) -> String {
    if client.foreign.is_empty() {
        client.native.clone()
    } else {
        format!("{} (+{})", client.native, client.foreign.join(", "))
    }
}

/// One warning per index with entries apt would skip too.
fn warn_malformed(prefix: &str, universe: &Universe<'_>) {
    let mut per_index: BTreeMap<&str, Vec<&crate::universe::Malformed>> = BTreeMap::new();
    for m in &universe.malformed {
        per_index.entry(&m.index).or_default().push(m);
    }
    for (index, list) in per_index {
        tracing::warn!(
            "{prefix}: {index}: skipped {} unreadable entr{} (as apt does), first at line {}: {}",
            list.len(),
            if list.len() == 1 { "y" } else { "ies" },
            list[0].line,
            list[0].error
        );
    }
    if universe.ignored_provides > 0 {
        tracing::warn!(
            "{prefix}: ignored {} Provides with an operator other than `=` (as apt does)",
            universe.ignored_provides
        );
    }
}

/// The upstream Release fields our Release keeps (with the source's Origin/Label overrides).
pub fn release_header(spec: &SourceSpec, fetched: &FetchedSource) -> Vec<(String, String)> {
    let mut header = Vec::new();
    for name in KEPT_FIELDS {
        let value = match name {
            "Origin" => spec
                .settings
                .origin
                .as_deref()
                .or(fetched.release.field(name)),
            "Label" => spec
                .settings
                .label
                .as_deref()
                .or(fetched.release.field(name)),
            _ => fetched.release.field(name),
        };
        if let Some(v) = value {
            header.push((name.to_owned(), v.to_owned()));
        }
    }
    header
}

/// A digest of everything a prefix's published tree is made from: the verified
/// Releases (which pin every index and so every package), the sources' specs, the
/// signing key and this program's version. Equal digests mean an identical tree.
pub fn fingerprint(
    specs: &[&SourceSpec],
    releases: &[&crate::upstream::VerifiedRelease],
    key: &crate::openpgp::SigningKey,
    published_as: &str,
) -> String {
    use crate::sha256::Sha256;
    let mut h = Sha256::new();
    h.update(concat!("mini-mirror ", env!("CARGO_PKG_VERSION"), "\n").as_bytes());
    h.update(published_as.as_bytes());
    for fpr in key.fingerprints() {
        h.update(fpr.to_hex().as_bytes());
    }
    for (spec, release) in specs.iter().zip(releases) {
        h.update(format!("\n{spec:?}\n").as_bytes());
        h.update(release.text.as_bytes());
    }
    h.hex()
}

/// What debootstrap adds by name for this dist, besides priorities and `apt`.
fn bootstrap_names(fetched: &FetchedSource) -> Vec<String> {
    let mut names = Vec::new();
    if fetched.release.field("Codename") == Some("bookworm") {
        names.push("usr-is-merged".to_owned());
    }
    names
}
