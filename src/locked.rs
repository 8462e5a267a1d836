//! `build --locked`: plan a prefix from its `mirror.lock` instead of resolving.
//!
//! Nothing is resolved. Each source's Release is the one the lock names (by the SHA256 of
//! its text): upstream's current one when it is still that, else the copy the cache kept,
//! else the one on the source's `snapshot_url` — each verified against the source's key
//! again. Every locked package's entry is taken from that Release's verified indices and
//! must hash to what the lock says; every `.deb` is then checked against the lock's SHA256
//! (which is the verified entry's). The result is the original publish's Packages, byte
//! for byte.

use crate::cache::Cache;
use crate::http::Http;
use crate::lock::{Lock, LockedSource};
use crate::plan::{dist_plans, prefixes, sort_entries};
use crate::pool::PoolFile;
use crate::publish::{Entry, PrefixPlan};
use crate::spec::SourceSpec;
use crate::upstream::{FetchedSource, VerifiedRelease, fetch_indices, parse_date};
use anyhow::{Context, Result, anyhow, bail};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// Where a prefix's lock lives in the sources tree.
pub fn lock_path(sources: &Path, prefix: &str) -> PathBuf {
    sources.join(prefix).join(crate::lock::LOCK_NAME)
}

/// Read every prefix's lock and check that it answers that prefix's sources: all problems
/// are reported before anything is fetched.
pub fn read_locks(sources: &Path, specs: &[SourceSpec]) -> Result<BTreeMap<String, Lock>> {
    let mut locks = BTreeMap::new();
    let mut problems = Vec::new();
    for (prefix, members) in prefixes(specs) {
        let path = lock_path(sources, prefix);
        let lock = match Lock::read(&path) {
            Ok(lock) => lock,
            Err(e) if !path.exists() => {
                problems.push(format!(
                    "{}: no lock (run `mini-mirror build` once without --locked to write it): {e:#}",
                    path.display()
                ));
                continue;
            }
            Err(e) => {
                problems.push(format!("{e:#}"));
                continue;
            }
        };
        if lock.prefix != prefix {
            problems.push(format!(
                "{}: the lock is for prefix {:?}, not {prefix:?}",
                path.display(),
                lock.prefix
            ));
            continue;
        }
        let member_specs: Vec<&SourceSpec> = members.iter().map(|&i| &specs[i]).collect();
        if let Err(e) = lock.check_answers(&member_specs, &path) {
            problems.push(format!("{e:#}"));
            continue;
        }
        locks.insert(prefix.to_owned(), lock);
    }
    if !problems.is_empty() {
        bail!("--locked: {}", problems.join("\n"));
    }
    Ok(locks)
}

/// One source's verified indices as the lock saw them, and where its old `.deb`s can still
/// be fetched when upstream has dropped them.
pub struct LockedFetch {
    /// The locked Release and its indices.
    pub fetched: FetchedSource,
    /// `<snapshot_url>/<ID>`, when the snapshot server holds the locked Release.
    pub snapshot_base: Option<String>,
}

/// The locked Release of `spec` and its indices; `current` is upstream's Release now (none
/// when upstream could not be reached).
pub async fn fetch_locked_source(
    http: &Http,
    cache: &Cache,
    spec: &SourceSpec,
    current: Option<VerifiedRelease>,
    locked: &LockedSource,
) -> Result<LockedFetch> {
    let what = format!("source {}/{}", spec.prefix, spec.name);
    let current_date = current
        .as_ref()
        .and_then(|r| r.field("Date"))
        .unwrap_or("unknown")
        .to_owned();
    if let Some(release) = current
        && release.text_sha256() == locked.release_sha256
    {
        let fetched = fetch_indices(http, cache, spec, release).await?;
        return Ok(LockedFetch {
            fetched,
            snapshot_base: None,
        });
    }
    let keyring = crate::upstream::load_keyring(http, spec)
        .await
        .with_context(|| format!("{what}: loading the upstream key"))?;
    let dist_url = format!("{}/dists/{}", spec.url, spec.dist);
    let snapshot = match &spec.settings.snapshot_url {
        Some(base) => find_snapshot(http, base, spec, locked, &keyring).await,
        None => Err(anyhow!("no snapshot_url is set for this source")),
    };
    let mut tried = Vec::new();
    if let Some(signed) = cache.load_release_by_hash(&locked.release_sha256) {
        match crate::upstream::last_accepted(&signed, &dist_url, &keyring) {
            Some(release) => match fetch_indices(http, cache, spec, release).await {
                Ok(fetched) => {
                    tracing::info!(
                        "{what}: upstream has moved on (Date {current_date}); using the locked \
                         Release (Date {}) kept in the cache",
                        locked.release_date.as_deref().unwrap_or("unknown")
                    );
                    return Ok(LockedFetch {
                        fetched,
                        snapshot_base: snapshot.as_ref().ok().map(|(b, _)| b.clone()),
                    });
                }
                Err(e) => tried.push(format!("the cache's copy of the locked Release: {e:#}")),
            },
            None => tried.push(
                "the cache's copy of the locked Release no longer verifies with the upstream key"
                    .to_owned(),
            ),
        }
    } else {
        tried.push("the cache does not hold the locked Release".to_owned());
    }
    match snapshot {
        Ok((base, release)) => {
            tracing::info!("{what}: using the locked Release from {base}");
            let fetched = fetch_indices(http, cache, spec, release).await?;
            Ok(LockedFetch {
                fetched,
                snapshot_base: Some(base),
            })
        }
        Err(e) => {
            tried.push(format!("{e:#}"));
            bail!(
                "{what}: the lock names the Release dated {} (SHA256 {}), but upstream now \
                 serves another (Date {current_date}); {}. Set `snapshot_url` in the source's \
                 settings.toml, or build without --locked",
                locked.release_date.as_deref().unwrap_or("unknown"),
                locked.release_sha256,
                tried.join("; ")
            )
        }
    }
}

/// Look for the locked Release on the snapshot server: the snapshot taken at its Date, or
/// soon after (archives are imported some hours after they are published). Every
/// candidate is verified and must be the locked text.
async fn find_snapshot(
    http: &Http,
    base: &str,
    spec: &SourceSpec,
    locked: &LockedSource,
    keyring: &crate::openpgp::Keyring,
) -> Result<(String, VerifiedRelease)> {
    let date = locked
        .release_date
        .as_deref()
        .and_then(|d| parse_date(d).ok())
        .ok_or_else(|| anyhow!("the locked Release has no Date to find its snapshot by"))?;
    let mut ids = Vec::new();
    for hours in [0, 3, 6, 9, 12, 24, 48] {
        let at = date + chrono::Duration::hours(hours);
        ids.push(at.format("%Y%m%dT%H%M%SZ").to_string());
    }
    for id in &ids {
        let snap = format!("{base}/{id}");
        let dist_url = format!("{snap}/dists/{}", spec.dist);
        let Some(body) = http
            .get(&format!("{dist_url}/InRelease"), 64 << 20)
            .await
            .ok()
            .flatten()
        else {
            continue;
        };
        let signed = crate::cache::SignedRelease::InRelease(body);
        let Some(release) = crate::upstream::last_accepted(&signed, &dist_url, keyring) else {
            tracing::warn!(
                "{dist_url}/InRelease does not verify with the upstream key; skipping it"
            );
            continue;
        };
        if release.text_sha256() == locked.release_sha256 {
            return Ok((snap, release));
        }
    }
    bail!(
        "{base} holds no snapshot of the locked Release (tried {})",
        ids.join(", ")
    )
}

/// Plan every prefix exactly as its lock says; `fetched[i]` belongs to `specs[i]`.
pub fn plan_locked(
    specs: &[SourceSpec],
    fetched: &[LockedFetch],
    locks: &BTreeMap<String, Lock>,
    sources: &Path,
) -> Result<Vec<PrefixPlan>> {
    let mut plans = Vec::new();
    let mut problems = Vec::new();
    for (prefix, members) in prefixes(specs) {
        let lock = &locks[prefix];
        let verified: Vec<&FetchedSource> = fetched.iter().map(|f| &f.fetched).collect();
        let mut dists = dist_plans(&members, specs, &verified);
        // Every verified entry of each source, by what identifies a package file.
        let mut entries: HashMap<(usize, &str, &str, &str, &str), &str> = HashMap::new();
        for &i in &members {
            for index in &fetched[i].fetched.indices {
                for p in crate::deb822::paragraphs(index.text.as_str()).flatten() {
                    if let (Some(n), Some(v), Some(a), Some(h)) = (
                        p.get("Package"),
                        p.get("Version"),
                        p.get("Architecture"),
                        p.get("SHA256"),
                    ) {
                        entries.entry((i, n, v, a, h)).or_insert(p.text);
                    }
                }
            }
        }
        let mut pool: BTreeMap<String, PoolFile> = BTreeMap::new();
        for lp in &lock.packages {
            let at = format!("{}:{}", lock_path(sources, prefix).display(), lp.line);
            let Some(&i) = members.iter().find(|&&i| specs[i].name == lp.upstream) else {
                problems.push(format!(
                    "{at}: {}: unknown upstream {:?}",
                    lp.label(),
                    lp.upstream
                ));
                continue;
            };
            let key = (
                i,
                lp.name.as_str(),
                lp.version.as_str(),
                lp.architecture.as_str(),
                lp.sha256.as_str(),
            );
            let Some(paragraph) = entries.get(&key) else {
                problems.push(format!(
                    "{at}: {} (SHA256 {}) is in none of the verified indices of the locked \
                     Release of {}/{}: the lock was edited, or does not belong to this upstream",
                    lp.label(),
                    lp.sha256,
                    prefix,
                    lp.upstream
                ));
                continue;
            };
            let pool_path = match lp.pool_path() {
                Ok(p) => p,
                Err(e) => {
                    problems.push(format!("{at}: {}: {e:#}", lp.label()));
                    continue;
                }
            };
            let entry = Entry {
                paragraph: (*paragraph).to_owned(),
                pool_path: pool_path.clone(),
            };
            if crate::publish::entry_sha256(&entry) != lp.paragraph_sha256 {
                problems.push(format!(
                    "{at}: {}: its entry in the locked Release's index does not hash to the \
                     lock's paragraph_sha256 (the lock was edited)",
                    lp.label()
                ));
                continue;
            }
            let Some(dist) = dists.iter_mut().find(|d| d.dist == lp.dist) else {
                problems.push(format!(
                    "{at}: {}: dist {:?} is not a source's dist",
                    lp.label(),
                    lp.dist
                ));
                continue;
            };
            for arch in &lp.indices {
                dist.entries
                    .entry((lp.component.clone(), arch.clone()))
                    .or_default()
                    .push(entry.clone());
            }
            let spec = &specs[i];
            pool.entry(pool_path.clone()).or_insert_with(|| PoolFile {
                url: format!("{}/{}", spec.url, lp.filename),
                pool_path,
                size: lp.size,
                sha256: lp.sha256.clone(),
                fallback_url: fetched[i]
                    .snapshot_base
                    .as_ref()
                    .map(|b| format!("{b}/{}", lp.filename)),
            });
        }
        for dist in &mut dists {
            for list in dist.entries.values_mut() {
                sort_entries(list);
            }
        }
        let mut planned = lock.clone();
        planned.indices.clear();
        plans.push(PrefixPlan {
            prefix: prefix.to_owned(),
            // Never equal to a resolved build's: the next plain build resolves again.
            fingerprint: format!(
                "locked-{}",
                crate::sha256::hex_digest(lock.to_toml().as_bytes())
            ),
            dists,
            pool: pool.into_values().collect(),
            lock: planned,
            keep: crate::plan::keep_of(members.iter().map(|&i| &specs[i])),
            snapshots_url: None,
        });
    }
    if !problems.is_empty() {
        bail!("--locked: {}", problems.join("\n"));
    }
    Ok(plans)
}

/// After staging: the Packages files written must be the locked ones, byte for byte.
pub fn check_reproduced(staged: &Lock, locked: &Lock, lock_file: &Path) -> Result<()> {
    let mut problems = Vec::new();
    let want: BTreeMap<&str, &crate::lock::LockedIndex> = locked
        .indices
        .iter()
        .map(|i| (i.path.as_str(), i))
        .collect();
    for got in &staged.indices {
        match want.get(got.path.as_str()) {
            Some(w) if w.sha256 == got.sha256 && w.size == got.size => {}
            Some(w) => problems.push(format!(
                "{}: SHA256 {} ({} bytes), the lock says {} ({} bytes)",
                got.path, got.sha256, got.size, w.sha256, w.size
            )),
            None => problems.push(format!("{}: not in the lock", got.path)),
        }
    }
    for w in &locked.indices {
        if !staged.indices.iter().any(|g| g.path == w.path) {
            problems.push(format!("{}: in the lock, not written", w.path));
        }
    }
    if !problems.is_empty() {
        bail!(
            "--locked: the Packages files written are not the ones {} names (nothing was \
             published):\n  {}",
            lock_file.display(),
            problems.join("\n  ")
        );
    }
    Ok(())
}
