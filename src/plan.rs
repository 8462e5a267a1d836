//! Planning: for each prefix, build each architecture's universe, resolve the
//! sources' queries in it, and lay the chosen packages out by dist, component and
//! architecture — the typed hand-off from selection to the pool and publish stages.

use crate::pool::{PoolFile, pool_path};
use crate::publish::{DistPlan, Entry, PrefixPlan};
use crate::resolve::{Request, ResolveError, resolve};
use crate::spec::SourceSpec;
use crate::universe::{IndexRef, Origin, Universe};
use crate::upstream::FetchedSource;
use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;

/// Release fields copied from upstream into our Release, in this order.
const KEPT_FIELDS: [&str; 8] = [
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
) -> (BTreeMap<String, String>, usize) {
    let mut changed = BTreeMap::new();
    let mut unchanged_packages = 0;
    for (prefix, members) in prefixes(specs) {
        let fp = fingerprint(
            &members.iter().map(|&i| &specs[i]).collect::<Vec<_>>(),
            &members.iter().map(|&i| &releases[i]).collect::<Vec<_>>(),
            key,
        );
        match crate::publish::live_fingerprint(output, prefix) {
            Some((live, count)) if live == fp && !force => {
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
    let mut arches: Vec<&str> = Vec::new();
    for &i in members {
        for a in &specs[i].settings.architectures {
            if !arches.contains(&a.as_str()) {
                arches.push(a);
            }
        }
    }
    let mut dists: Vec<DistPlan> = Vec::new();
    for &i in members {
        let spec = &specs[i];
        let dist = match dists.iter_mut().position(|d| d.dist == spec.dist) {
            Some(pos) => &mut dists[pos],
            None => {
                dists.push(DistPlan {
                    dist: spec.dist.clone(),
                    header: release_header(spec, &fetched[i]),
                    ..DistPlan::default()
                });
                dists.last_mut().expect("just pushed")
            }
        };
        for c in &spec.components {
            if !dist.components.contains(c) {
                dist.components.push(c.clone());
            }
        }
        for a in &spec.settings.architectures {
            if !dist.architectures.contains(a) {
                dist.architectures.push(a.clone());
            }
        }
    }

    let mut pool: BTreeMap<String, PoolFile> = BTreeMap::new();
    let mut problems = Vec::new();
    for arch in arches {
        let mut indices = Vec::new();
        let mut requests = Vec::new();
        for &i in members {
            let spec = &specs[i];
            if !spec.settings.architectures.iter().any(|a| a == arch) {
                continue;
            }
            for index in &fetched[i].indices {
                if index.arch == arch || index.arch == "all" {
                    indices.push(IndexRef {
                        text: &index.text,
                        path: &index.path,
                        origin: Origin {
                            source: i,
                            dist: &spec.dist,
                            component: &index.component,
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
        let universe = Universe::build(arch, &indices)?;
        tracing::info!(
            "{prefix}: {} packages visible for {arch}",
            universe.packages.len()
        );
        let selection = match resolve(&universe, &requests) {
            Ok(s) => s,
            Err(e) => {
                problems.extend(e.problems);
                continue;
            }
        };
        for w in &selection.warnings {
            tracing::warn!("{prefix}: unsatisfied dependency (missing = \"warn\"): {w}");
        }
        tracing::info!(
            "{prefix}: {} packages selected for {arch}",
            selection.packages.len()
        );
        for &id in &selection.packages {
            let pkg = universe.get(id);
            let spec = &specs[pkg.origin.source];
            let path = pool_path(pkg.origin.component, pkg.source_name, pkg.filename)
                .with_context(|| {
                    format!(
                        "{} {} in {}/dists/{}",
                        pkg.name, pkg.version_text, spec.url, spec.dist
                    )
                })?;
            let file = PoolFile {
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
            let dist = dists
                .iter_mut()
                .find(|d| d.dist == pkg.origin.dist)
                .expect("every origin dist has a plan");
            dist.entries
                .entry((pkg.origin.component.to_owned(), arch.to_owned()))
                .or_default()
                .push(Entry {
                    paragraph: pkg.paragraph.to_owned(),
                    pool_path: path,
                });
        }
    }
    if !problems.is_empty() {
        return Err(ResolveError { problems }.into());
    }
    Ok(PrefixPlan {
        prefix: prefix.to_owned(),
        fingerprint: String::new(),
        dists,
        pool: pool.into_values().collect(),
    })
}

fn release_header(spec: &SourceSpec, fetched: &FetchedSource) -> Vec<(String, String)> {
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
) -> String {
    use crate::sha256::Sha256;
    let mut h = Sha256::new();
    h.update(concat!("mini-mirror ", env!("CARGO_PKG_VERSION"), "\n").as_bytes());
    h.update(key.fingerprint().to_hex().as_bytes());
    for (spec, release) in specs.iter().zip(releases) {
        h.update(format!("\n{spec:?}\n").as_bytes());
        h.update(release.text.as_bytes());
    }
    h.hex()
}

/// What `debootstrap --variant=minbase` installs by name besides `Priority: required`.
fn bootstrap_names(fetched: &FetchedSource) -> Vec<String> {
    let mut names = vec!["apt".to_owned()];
    if fetched.release.field("Codename") == Some("bookworm") {
        names.push("usr-is-merged".to_owned());
    }
    names
}
