//! `mini-mirror why PKG`: every chain from a request to a package of the mirror, read from
//! the published lock and indices (no network).

use crate::lock::{LOCK_NAME, Lock, LockedPackage, chains_to};
use anyhow::{Result, bail};
use std::collections::BTreeMap;
use std::path::Path;

/// Most chains shown per package.
const MAX_CHAINS: usize = 20;

/// The answer for `name` in the published prefixes under `output` (all of them, or
/// `prefix`), as text; `Ok(None)` when no published prefix holds it.
pub fn why(
    output: &Path,
    name: &str,
    prefix: Option<&str>,
    arch: Option<&str>,
) -> Result<Option<String>> {
    let prefixes: Vec<String> = match prefix {
        Some(p) => vec![p.to_owned()],
        None => crate::snapshot::prefixes(output)?,
    };
    if prefixes.is_empty() {
        bail!(
            "{}: no published prefix with a {LOCK_NAME} (build first)",
            output.display()
        );
    }
    let mut out = String::new();
    for p in &prefixes {
        let mut lock = Lock::read(&output.join(p).join(LOCK_NAME))?;
        let published = read_published(&output.join(p), &lock);
        add_published_edges(&mut lock, &published);
        let chains = chains_to(&lock, name, arch, MAX_CHAINS);
        if chains.is_empty() {
            continue;
        }
        let provides: BTreeMap<&str, &[String]> = published
            .iter()
            .flatten()
            .map(|x| (x.label.as_str(), x.provides.as_slice()))
            .collect();
        let targets: Vec<&LockedPackage> = lock
            .packages
            .iter()
            .filter(|x| x.name == name && arch.is_none_or(|a| x.architecture == a))
            .collect();
        for t in &targets {
            out.push_str(&format!(
                "{} is in {p} ({}/{}, {})\n",
                t.label(),
                t.dist,
                t.component,
                t.filename
            ));
        }
        for chain in &chains {
            let mut line = String::new();
            let mut notes = Vec::new();
            for (i, (pkg, reason)) in chain.steps.iter().enumerate() {
                if i == 0 {
                    line.push_str(reason);
                    line.push_str(&format!(" → {pkg}"));
                } else {
                    line.push_str(&format!(" → {reason} → {pkg}"));
                    if let Some(note) = explain(reason, pkg, &provides, &lock) {
                        notes.push(note);
                    }
                }
            }
            out.push_str(&format!("  {line}\n"));
            for n in notes {
                out.push_str(&format!("      {n}\n"));
            }
        }
        if chains.len() >= MAX_CHAINS {
            out.push_str(&format!("  (first {MAX_CHAINS} chains shown)\n"));
        }
    }
    Ok((!out.is_empty()).then_some(out))
}

/// Which alternative of `group` the package `pkg` satisfies, and how (by name or as a
/// provider), when that is not plain.
fn explain(
    group: &str,
    pkg: &str,
    provides: &BTreeMap<&str, &[String]>,
    lock: &Lock,
) -> Option<String> {
    let name = pkg.split(' ').next().unwrap_or(pkg);
    let alternatives: Vec<String> = crate::relation::parse_depends(group)
        .ok()?
        .into_iter()
        .next()?
        .0
        .into_iter()
        .map(|d| d.name)
        .collect();
    let provided = provides.get(pkg).copied().unwrap_or_default();
    let index = alternatives
        .iter()
        .position(|a| a == name || provided.contains(a))?;
    let wanted = &alternatives[index];
    let mut note = String::new();
    if wanted != name {
        let others: Vec<&str> = lock
            .packages
            .iter()
            .filter(|p| {
                p.name != name
                    && provides
                        .get(p.label().as_str())
                        .is_some_and(|v| v.contains(wanted))
            })
            .map(|p| p.name.as_str())
            .collect();
        note.push_str(&format!("{name} provides virtual package {wanted}"));
        if others.is_empty() {
            note.push_str(" (the only provider in the mirror)");
        } else {
            note.push_str(&format!(
                " (other providers in the mirror: {})",
                others.join(", ")
            ));
        }
    }
    if alternatives.len() > 1 {
        if !note.is_empty() {
            note.push_str("; ");
        }
        if index == 0 {
            note.push_str(&format!(
                "first of {} alternatives (apt takes the first it can install)",
                alternatives.len()
            ));
        } else {
            note.push_str(&format!(
                "alternative {} of {}: apt could not install {} from upstream",
                index + 1,
                alternatives.len(),
                alternatives[..index].join(", ")
            ));
        }
    }
    (!note.is_empty()).then_some(note)
}

/// A published package as `why` reads it from the published Packages files.
struct Published {
    /// `name version arch`, as lock reasons name it.
    label: String,
    name: String,
    version: Option<debversion::Version>,
    /// Names it provides (apt's reading of `Provides`).
    provides: Vec<String>,
    /// Its dependency groups that bring packages in, each with its text as written.
    groups: Vec<(String, crate::relation::Alternatives)>,
}

/// Every package of each Packages file the lock lists, read once.
fn read_published(prefix_dir: &Path, lock: &Lock) -> Vec<Vec<Published>> {
    let recommends = lock
        .sources
        .iter()
        .any(|s| s.settings.get("recommends").and_then(toml::Value::as_bool) == Some(true));
    let mut fields = vec!["Pre-Depends", "Depends"];
    if recommends {
        fields.push("Recommends");
    }
    let mut out = Vec::new();
    for index in &lock.indices {
        let Ok(text) = std::fs::read_to_string(prefix_dir.join(&index.path)) else {
            continue;
        };
        let mut packages = Vec::new();
        for p in crate::deb822::paragraphs(&text).flatten() {
            let (Some(name), Some(version), Some(arch)) =
                (p.get("Package"), p.get("Version"), p.get("Architecture"))
            else {
                continue;
            };
            let mut groups = Vec::new();
            for field in &fields {
                let Some(value) = p.get(field) else { continue };
                let Ok(parsed) = crate::relation::parse_depends(value) else {
                    continue;
                };
                let texts = value.split(',').map(str::trim).filter(|t| !t.is_empty());
                groups.extend(
                    texts
                        .map(|t| t.split_whitespace().collect::<Vec<_>>().join(" "))
                        .zip(parsed),
                );
            }
            packages.push(Published {
                label: format!("{name} {version} {arch}"),
                name: name.to_owned(),
                version: crate::relation::parse_version(version).ok(),
                provides: p
                    .get("Provides")
                    .and_then(|f| crate::relation::parse_provides(f).ok())
                    .map(|(list, _)| list.into_iter().map(|x| x.name).collect())
                    .unwrap_or_default(),
                groups,
            });
        }
        out.push(packages);
    }
    out
}

/// The resolver records the first reason it met for each package; every other published
/// package whose dependency it satisfies is a reason too. Added from the published indices:
/// for each dependency group, the packages of the same index that satisfy its first
/// alternative the mirror can satisfy (the one apt would take).
fn add_published_edges(lock: &mut Lock, published: &[Vec<Published>]) {
    let mut edges: Vec<(&str, String)> = Vec::new(); // (child label, reason)
    for entries in published {
        let satisfies = |p: &Published, d: &crate::relation::Dependency| {
            if p.name == d.name {
                return match (&d.version, &p.version) {
                    (None, _) => true,
                    (Some(req), Some(v)) => req.matches(v),
                    (Some(_), None) => false,
                };
            }
            d.version.is_none() && p.provides.contains(&d.name)
        };
        // Who could satisfy a name: packages of that name, and providers of it.
        let mut by_name: BTreeMap<&str, Vec<&Published>> = BTreeMap::new();
        for p in entries {
            by_name.entry(&p.name).or_default().push(p);
            for provided in &p.provides {
                by_name.entry(provided).or_default().push(p);
            }
        }
        for parent in entries {
            for (text, group) in &parent.groups {
                for alternative in &group.0 {
                    let found: Vec<&Published> = by_name
                        .get(alternative.name.as_str())
                        .into_iter()
                        .flatten()
                        .copied()
                        .filter(|c| satisfies(c, alternative))
                        .collect();
                    if found.is_empty() {
                        continue;
                    }
                    for child in found {
                        edges.push((&child.label, format!("{}: {text}", parent.label)));
                    }
                    break;
                }
            }
        }
    }
    let mut by_label: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, p) in lock.packages.iter().enumerate() {
        by_label.entry(p.label()).or_default().push(i);
    }
    for (child, reason) in edges {
        let parent = format!("{}: ", reason.split(": ").next().unwrap_or(""));
        for &i in by_label.get(child).into_iter().flatten() {
            let p = &mut lock.packages[i];
            if !p.why.iter().any(|w| w.starts_with(&parent)) {
                p.why.push(reason.clone());
            }
        }
    }
}
