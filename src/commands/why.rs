//! `mini-mirror why PKG`: every chain from a request to a package of the mirror, read from
//! the published lock and indices (no network).

use crate::lock::{LOCK_NAME, Lock, LockedPackage, chains_to};
use anyhow::{Context, Result, bail};
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
        None => {
            let mut v = Vec::new();
            for e in std::fs::read_dir(output)
                .with_context(|| format!("reading {}", output.display()))?
            {
                let e = e?;
                if e.path().join(LOCK_NAME).is_file() {
                    v.push(e.file_name().to_string_lossy().into_owned());
                }
            }
            v.sort();
            v
        }
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
        add_published_edges(&mut lock, &output.join(p));
        let chains = chains_to(&lock, name, arch, MAX_CHAINS);
        if chains.is_empty() {
            continue;
        }
        let provides = published_provides(&output.join(p), &lock);
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
    provides: &BTreeMap<String, Vec<String>>,
    lock: &Lock,
) -> Option<String> {
    let name = pkg.split(' ').next().unwrap_or(pkg);
    let alternatives: Vec<&str> = group.split('|').map(str::trim).collect();
    let alt_name = |a: &str| {
        a.split([' ', '(', ':', '[', '<'])
            .next()
            .unwrap_or(a)
            .to_owned()
    };
    let provided = provides.get(pkg).cloned().unwrap_or_default();
    let index = alternatives.iter().position(|a| {
        let n = alt_name(a);
        n == name || provided.contains(&n)
    })?;
    let wanted = alt_name(alternatives[index]);
    let mut note = String::new();
    if wanted != name {
        let others: Vec<String> = lock
            .packages
            .iter()
            .filter(|p| {
                p.name != name
                    && provides
                        .get(&p.label())
                        .is_some_and(|v| v.contains(&wanted))
            })
            .map(|p| p.name.clone())
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
            let skipped: Vec<String> = alternatives[..index].iter().map(|a| alt_name(a)).collect();
            note.push_str(&format!(
                "alternative {} of {}: apt could not install {} from upstream",
                index + 1,
                alternatives.len(),
                skipped.join(", ")
            ));
        }
    }
    (!note.is_empty()).then_some(note)
}

/// The resolver records the first reason it met for each package; every other published
/// package whose dependency it satisfies is a reason too. Added from the published indices:
/// for each dependency group, the packages of the same index that satisfy its first
/// alternative the mirror can satisfy (the one apt would take).
fn add_published_edges(lock: &mut Lock, prefix_dir: &Path) {
    let recommends = lock
        .sources
        .iter()
        .any(|s| s.settings.get("recommends").and_then(toml::Value::as_bool) == Some(true));
    let mut edges: Vec<(String, String)> = Vec::new(); // (child label, reason)
    for index in &lock.indices {
        let Ok(text) = std::fs::read_to_string(prefix_dir.join(&index.path)) else {
            continue;
        };
        let entries: Vec<crate::deb822::Paragraph<'_>> =
            crate::deb822::paragraphs(&text).flatten().collect();
        let label = |p: &crate::deb822::Paragraph<'_>| {
            format!(
                "{} {} {}",
                p.get("Package").unwrap_or(""),
                p.get("Version").unwrap_or(""),
                p.get("Architecture").unwrap_or("")
            )
        };
        let satisfies = |p: &crate::deb822::Paragraph<'_>, d: &crate::relation::Dependency| {
            if p.get("Package") == Some(d.name.as_str()) {
                return match &d.version {
                    None => true,
                    Some(req) => p
                        .get("Version")
                        .and_then(|v| crate::relation::parse_version(v).ok())
                        .is_some_and(|v| req.matches(&v)),
                };
            }
            d.version.is_none()
                && p.get("Provides").is_some_and(|list| {
                    list.split(',')
                        .filter_map(|x| x.split_whitespace().next())
                        .any(|x| x.split(':').next() == Some(d.name.as_str()))
                })
        };
        // Who could satisfy a name: packages of that name, and providers of it.
        let mut by_name: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, p) in entries.iter().enumerate() {
            if let Some(n) = p.get("Package") {
                by_name.entry(n).or_default().push(i);
            }
            for provided in p
                .get("Provides")
                .into_iter()
                .flat_map(|l| l.split(','))
                .filter_map(|x| x.split_whitespace().next())
                .filter_map(|x| x.split(':').next())
            {
                by_name.entry(provided).or_default().push(i);
            }
        }
        for parent in &entries {
            let mut fields = vec!["Pre-Depends", "Depends"];
            if recommends {
                fields.push("Recommends");
            }
            for field in fields {
                let Some(value) = parent.get(field) else {
                    continue;
                };
                let Ok(groups) = crate::relation::parse_depends(value) else {
                    continue;
                };
                let texts: Vec<&str> = value
                    .split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .collect();
                for (group, text) in groups.iter().zip(texts) {
                    for alternative in &group.0 {
                        let found: Vec<String> = by_name
                            .get(alternative.name.as_str())
                            .into_iter()
                            .flatten()
                            .map(|&i| &entries[i])
                            .filter(|c| satisfies(c, alternative))
                            .map(label)
                            .collect();
                        if found.is_empty() {
                            continue;
                        }
                        let via = text.split_whitespace().collect::<Vec<_>>().join(" ");
                        for child in found {
                            edges.push((child, format!("{}: {via}", label(parent))));
                        }
                        break;
                    }
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
        for &i in by_label.get(&child).into_iter().flatten() {
            let p = &mut lock.packages[i];
            if !p.why.iter().any(|w| w.starts_with(&parent)) {
                p.why.push(reason.clone());
            }
        }
    }
}

/// The `Provides` names of every published package (by `name version arch`), read from
/// the published Packages files the lock lists.
fn published_provides(prefix_dir: &Path, lock: &Lock) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for index in &lock.indices {
        let Ok(text) = std::fs::read_to_string(prefix_dir.join(&index.path)) else {
            continue;
        };
        for p in crate::deb822::paragraphs(&text).flatten() {
            let (Some(n), Some(v), Some(a)) =
                (p.get("Package"), p.get("Version"), p.get("Architecture"))
            else {
                continue;
            };
            let Some(provides) = p.get("Provides") else {
                continue;
            };
            let names = provides
                .split(',')
                .filter_map(|x| x.split_whitespace().next())
                .map(|x| x.split(':').next().unwrap_or(x).to_owned())
                .collect();
            out.insert(format!("{n} {v} {a}"), names);
        }
    }
    out
}
