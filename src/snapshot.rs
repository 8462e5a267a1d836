//! The snapshot store of a published prefix: every publish is kept, immutable, as
//! `<prefix>/snapshots/<ID>/` (its own signed `dists/`, `mirror.lock` and SBOM, and a
//! `pool` link to the prefix's one shared pool), `ID` the UTC time `YYYYMMDDTHHMMSSZ` that
//! `apt --snapshot` takes. The newest snapshot is the current one, whose `dists/` the
//! prefix serves. Retention keeps the newest N; rollback publishes an older one's content
//! again as a new snapshot.

use crate::lock::{LOCK_NAME, Lock};
use anyhow::{Context, Result, bail};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The folder of a prefix that holds its snapshots.
pub const DIR: &str = "snapshots";

/// Snapshots kept per prefix unless the sources or the command line say otherwise.
pub const DEFAULT_KEEP: usize = 5;

/// Whether `s` has the form of a snapshot ID (`20261202T164726Z`).
pub fn is_id(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 16
        && b[8] == b'T'
        && b[15] == b'Z'
        && b[..8].iter().chain(&b[9..15]).all(u8::is_ascii_digit)
}

/// The IDs of the snapshots of the prefix published at `prefix_dir`, oldest first (the
/// last is the current one). Only complete snapshots count: a folder without its lock is
/// not one.
pub fn ids(prefix_dir: &Path) -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(prefix_dir.join(DIR))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| is_id(n) && prefix_dir.join(DIR).join(n).join(LOCK_NAME).is_file())
        .collect();
    ids.sort();
    ids
}

/// The ID for a publish now: the current UTC second, or one past the newest existing ID
/// (two publishes in one second, or a clock that went back).
pub fn new_id(existing: &[String]) -> String {
    let format = |t: chrono::DateTime<chrono::Utc>| t.format("%Y%m%dT%H%M%SZ").to_string();
    let now = format(chrono::Utc::now());
    match existing.last() {
        Some(last) if *last >= now => {
            let t = chrono::NaiveDateTime::parse_from_str(last, "%Y%m%dT%H%M%SZ")
                .map(|t| t.and_utc())
                .unwrap_or_else(|_| chrono::Utc::now());
            format(t + chrono::Duration::seconds(1))
        }
        _ => now,
    }
}

/// What `mini-mirror snapshots` shows of one snapshot.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SnapshotInfo {
    /// The prefix.
    pub prefix: String,
    /// Its ID.
    pub id: String,
    /// Package files it publishes.
    pub packages: usize,
    /// Their total size.
    pub bytes: u64,
    /// Bytes of pool files no other kept snapshot refers to (what removing it frees).
    pub unique_bytes: u64,
    /// Whether the prefix serves it now.
    pub current: bool,
}

/// The pool files (path → size) a snapshot's lock refers to.
pub fn pool_files(lock: &Lock) -> Result<BTreeMap<String, (u64, String)>> {
    let mut out = BTreeMap::new();
    for p in &lock.packages {
        out.insert(p.pool_path()?, (p.size, p.sha256.clone()));
    }
    Ok(out)
}

/// The snapshots of one published prefix, oldest first.
pub fn list(output: &Path, prefix: &str) -> Result<Vec<SnapshotInfo>> {
    let dir = output.join(prefix);
    let ids = ids(&dir);
    let mut files = Vec::new();
    for id in &ids {
        let lock = Lock::read(&dir.join(DIR).join(id).join(LOCK_NAME))?;
        files.push(pool_files(&lock)?);
    }
    let mut refs: BTreeMap<&str, usize> = BTreeMap::new();
    for f in &files {
        for path in f.keys() {
            *refs.entry(path).or_default() += 1;
        }
    }
    Ok(ids
        .iter()
        .zip(&files)
        .enumerate()
        .map(|(i, (id, f))| SnapshotInfo {
            prefix: prefix.to_owned(),
            id: id.clone(),
            packages: f.len(),
            bytes: f.values().map(|(s, _)| s).sum(),
            unique_bytes: f
                .iter()
                .filter(|(p, _)| refs[p.as_str()] == 1)
                .map(|(_, (s, _))| s)
                .sum(),
            current: i + 1 == ids.len(),
        })
        .collect())
}

/// The published prefixes under `output` (folders with a `mirror.lock`).
pub fn prefixes(output: &Path) -> Result<Vec<String>> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(output).with_context(|| format!("reading {}", output.display()))? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') && e.path().join(LOCK_NAME).is_file() {
            v.push(name);
        }
    }
    v.sort();
    Ok(v)
}

/// The snapshots a new publish keeps besides itself: the newest `keep - 1` of `existing`.
pub fn kept(existing: &[String], keep: usize) -> Vec<String> {
    let n = keep.max(1) - 1;
    existing[existing.len().saturating_sub(n)..].to_vec()
}

/// Check a snapshot's files on disk before it is published again: every Packages file
/// against its lock, every pool file against the lock's size and SHA256.
pub fn verify(prefix_dir: &Path, id: &str) -> Result<Lock> {
    let snap = prefix_dir.join(DIR).join(id);
    let lock = Lock::read(&snap.join(LOCK_NAME))?;
    let mut problems = Vec::new();
    for index in &lock.indices {
        let path = snap.join(&index.path);
        match std::fs::read(&path) {
            Ok(bytes) if crate::sha256::hex_digest(&bytes) == index.sha256 => {}
            Ok(_) => problems.push(format!("{}: not the SHA256 its lock names", path.display())),
            Err(e) => problems.push(format!("{}: {e}", path.display())),
        }
    }
    for (pool_path, (size, sha256)) in pool_files(&lock)? {
        let path = prefix_dir.join(&pool_path);
        let ok = std::fs::metadata(&path).is_ok_and(|m| m.len() == size)
            && crate::sha256::hex_digest_file(&path).is_ok_and(|h| h == sha256);
        if !ok {
            problems.push(format!("{}: missing or damaged", path.display()));
        }
    }
    if !problems.is_empty() {
        bail!(
            "snapshot {id} is damaged on disk; not publishing it:\n  {}",
            problems.join("\n  ")
        );
    }
    Ok(lock)
}

/// Pick the snapshot to roll back to: `to`, or the one before the current.
pub fn rollback_target(prefix_dir: &Path, to: Option<&str>) -> Result<String> {
    let ids = ids(prefix_dir);
    let known = if ids.is_empty() {
        "none".to_owned()
    } else {
        ids.join(", ")
    };
    match to {
        Some(id) if ids.iter().any(|i| i == id) => {
            if ids.last().map(String::as_str) == Some(id) {
                bail!(
                    "{id} is already the current snapshot of {}",
                    prefix_dir.display()
                );
            }
            Ok(id.to_owned())
        }
        Some(id) => bail!(
            "no snapshot {id} in {} (known: {known}); nothing changed",
            prefix_dir.display()
        ),
        None if ids.len() >= 2 => Ok(ids[ids.len() - 2].clone()),
        None => bail!(
            "{} has no previous snapshot to roll back to (known: {known}); nothing changed",
            prefix_dir.display()
        ),
    }
}

/// Everything the kept snapshots and the grace set refer to, by pool path, for the pool
/// of a new publish: `(path below the live prefix, size)`.
pub fn referenced_pool(
    live: &Path,
    kept: &[String],
    grace: Option<&Lock>,
) -> Result<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    for id in kept {
        let lock = Lock::read(&live.join(DIR).join(id).join(LOCK_NAME))?;
        out.extend(pool_files(&lock)?.into_keys());
    }
    if let Some(lock) = grace {
        out.extend(pool_files(lock)?.into_keys());
    }
    Ok(out)
}

/// The plan of a rollback: snapshot `id`'s content (verified by [`verify`]) published again
/// as a new snapshot, with a new Date and new signatures (apt ignores a Release older than
/// one it has seen). Nothing is downloaded: the pool files are the live ones.
pub fn rollback_plan(
    prefix: &str,
    prefix_dir: &Path,
    id: &str,
    lock: Lock,
    keep: usize,
) -> Result<crate::publish::PrefixPlan> {
    use crate::publish::{DistPlan, Entry, PrefixPlan};
    let snap = prefix_dir.join(DIR).join(id);
    let mut dists = Vec::new();
    let mut snapshots_url = None;
    let mut dist_names: Vec<String> = lock.packages.iter().map(|p| p.dist.clone()).collect();
    dist_names.extend(lock.indices.iter().filter_map(|i| {
        let rest = i.path.strip_prefix("dists/")?;
        let end = rest.rfind("/binary-")?;
        let comp_start = rest[..end].rfind('/')?;
        Some(rest[..comp_start].to_owned())
    }));
    dist_names.sort();
    dist_names.dedup();
    for dist in dist_names {
        let release_path = snap.join("dists").join(&dist).join("Release");
        let text = std::fs::read_to_string(&release_path)
            .with_context(|| format!("reading {}", release_path.display()))?;
        let release = crate::deb822::single_paragraph(&text)
            .with_context(|| release_path.display().to_string())?;
        let field = |name: &str| release.get(name).map(str::to_owned);
        let words = |name: &str| -> Vec<String> {
            field(name)
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_owned)
                .collect()
        };
        snapshots_url = snapshots_url.or(field("Snapshots"));
        let date = field("Date").and_then(|d| crate::upstream::parse_date(&d).ok());
        let until = field("Valid-Until").and_then(|d| crate::upstream::parse_date(&d).ok());
        let mut plan = DistPlan {
            dist: dist.clone(),
            header: crate::plan::KEPT_FIELDS
                .iter()
                .filter_map(|f| field(f).map(|v| ((*f).to_owned(), v)))
                .collect(),
            components: words("Components"),
            architectures: words("Architectures"),
            valid_for: date.zip(until).map(|(d, u)| u - d),
            date_margin: chrono::Duration::minutes(5),
            ..DistPlan::default()
        };
        for component in plan.components.clone() {
            for arch in plan.architectures.clone() {
                let rel = format!("dists/{dist}/{component}/binary-{arch}/Packages");
                if !crate::spec::is_safe_relative_path(&rel) {
                    bail!(
                        "{}: unsafe component or architecture",
                        release_path.display()
                    );
                }
                let text = std::fs::read_to_string(snap.join(&rel))
                    .with_context(|| format!("reading {}", snap.join(&rel).display()))?;
                let entries: Vec<Entry> = crate::deb822::paragraphs(&text)
                    .map(|p| {
                        let p = p.with_context(|| rel.clone())?;
                        let filename = p.get("Filename").unwrap_or_default().to_owned();
                        Ok(Entry {
                            paragraph: p.text.to_owned(),
                            pool_path: filename,
                        })
                    })
                    .collect::<Result<_>>()?;
                plan.entries
                    .insert((component.clone(), arch.clone()), entries);
            }
        }
        dists.push(plan);
    }
    let mut pool = BTreeMap::new();
    for p in &lock.packages {
        let pool_path = p.pool_path()?;
        pool.entry(pool_path.clone())
            .or_insert_with(|| crate::pool::PoolFile {
                url: String::new(),
                pool_path,
                size: p.size,
                sha256: p.sha256.clone(),
                fallback_url: None,
            });
    }
    let mut planned = lock;
    planned.indices.clear();
    Ok(PrefixPlan {
        prefix: prefix.to_owned(),
        fingerprint: format!("rollback-{id}"),
        dists,
        pool: pool.into_values().collect(),
        lock: planned,
        keep,
        snapshots_url,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_recognised_and_new_ones_move_forward() {
        assert!(is_id("20261202T164726Z"));
        assert!(!is_id("2026-12-02"));
        assert!(!is_id("20261202T164726"));
        let future = vec!["29991231T235959Z".to_owned()];
        assert_eq!(new_id(&future), "30000101T000000Z");
        assert!(new_id(&[]).as_str() > "20260101T000000Z");
    }

    #[test]
    fn kept_leaves_room_for_the_new_one() {
        let ids: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        assert_eq!(kept(&ids, 1), Vec::<String>::new());
        assert_eq!(kept(&ids, 2), vec!["c".to_owned()]);
        assert_eq!(kept(&ids, 9), ids);
    }
}
