//! mini-mirror: a `sources/` tree becomes a verified, dependency-closed, re-signed
//! partial APT repository.
//!
//! The pipeline, one way through (one module per stage):
//! [`spec`] reads `sources/` → [`upstream`] fetches and verifies each Release and its
//! indices → [`universe`] indexes the packages a client would see → [`resolve`] picks
//! the queries and their dependency closure → [`pool`] downloads the `.deb`s into the
//! [`cache`], verified → [`publish`] writes, signs and atomically switches the tree.
//! [`plan`] turns selections into what publish writes.

pub mod cache;
pub mod commands;
pub mod deb822;
pub mod http;
pub mod index_text;
pub mod lock;
pub mod locked;
pub mod oci;
pub mod openpgp;
pub mod plan;
pub mod policy;
pub mod pool;
pub mod publish;
pub mod relation;
pub mod resolve;
pub mod sbom;
pub mod serve;
pub mod sha256;
pub mod snapshot;
pub mod spec;
pub mod universe;
pub mod upstream;
pub mod verify;

use anyhow::{Context, Result};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// What `mini-mirror build` was asked to do.
pub struct BuildOptions {
    /// The `sources/` tree.
    pub sources: PathBuf,
    /// Where published trees go (`<output>/<prefix>/`).
    pub output: PathBuf,
    /// The download cache shared across builds.
    pub cache: PathBuf,
    /// Where a generated signing key is kept when no key is given.
    pub state_dir: PathBuf,
    /// The operator's secret key files (several during a key rotation); empty: the
    /// generated key.
    pub sign_keys: Vec<PathBuf>,
    /// Its passphrase, if any (never logged).
    pub passphrase: Option<sequoia_openpgp::crypto::Password>,
    /// Parallel downloads.
    pub jobs: usize,
    /// Rebuild even when the inputs match the live tree's.
    pub force: bool,
    /// Exceptions to apt's Release checks the operator granted.
    pub release_rules: upstream::ReleaseRules,
    /// Publish even when more than half of a live tree's packages would go.
    pub allow_shrink: bool,
    /// Publish exactly what `sources/<prefix>/mirror.lock` names; resolve nothing.
    pub locked: bool,
    /// Snapshots kept per prefix (overrides the sources' `keep`).
    pub keep: Option<usize>,
    /// The URL clients reach `<output>` at, for the `Snapshots:` field (`apt --snapshot`);
    /// without it the field says `no`.
    pub base_url: Option<String>,
}

impl BuildOptions {
    /// The `Snapshots:` field of `prefix`'s Releases.
    fn snapshots_field(&self, prefix: &str) -> String {
        match &self.base_url {
            Some(base) => format!(
                "{}/{prefix}/snapshots/@SNAPSHOTID@/",
                base.trim_end_matches('/')
            ),
            None => "no".to_owned(),
        }
    }
}

/// What a build did, for the closing summary.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BuildReport {
    /// Distinct package files published.
    pub packages: usize,
    /// Package files downloaded in this run.
    pub downloaded: usize,
    /// Bytes received from the network in this run (indices and packages).
    pub bytes: u64,
    /// Package files not downloaded: taken from the cache, or already published unchanged.
    pub from_cache: usize,
    /// Wall time.
    #[serde(serialize_with = "seconds")]
    pub elapsed: Duration,
    /// Each phase, in order.
    pub phases: Vec<Phase>,
    /// Each prefix.
    pub prefixes: Vec<PrefixReport>,
}

/// What a build did for one prefix.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PrefixReport {
    /// The prefix.
    pub prefix: String,
    /// Package files it publishes.
    pub packages: usize,
    /// Their total size in bytes.
    pub bytes: u64,
    /// Of those, files downloaded in this run.
    pub downloaded: usize,
    /// Files taken from the cache or left as published.
    pub from_cache: usize,
    /// Whether it was left as it was (inputs unchanged).
    pub up_to_date: bool,
    /// The published tree.
    pub published: PathBuf,
    /// The lock in the published tree.
    pub lock: PathBuf,
    /// The lock beside the sources (not written when it could not be).
    pub sources_lock: Option<PathBuf>,
}

fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// Run the whole pipeline. On any error the previously published trees are untouched.
pub fn build(opts: &BuildOptions) -> Result<BuildReport> {
    let started = Instant::now();
    let mut timer = PhaseTimer {
        last: started,
        phases: Vec::new(),
    };
    let specs = spec::read_sources(&opts.sources)?;
    // A lock that does not answer the sources fails before anything is fetched.
    let locks = if opts.locked {
        Some(locked::read_locks(&opts.sources, &specs)?)
    } else {
        None
    };
    let key =
        openpgp::load_signing_key(&opts.sign_keys, opts.passphrase.as_ref(), &opts.state_dir)?;
    std::fs::create_dir_all(&opts.output)
        .with_context(|| format!("creating output directory {}", opts.output.display()))?;
    let _output_lock = cache::lock_file(&opts.output.join(".mini-mirror.lock"))?;
    publish::remove_stale_staging(&opts.output)?;
    let cache = cache::Cache::open(&opts.cache)?;
    let http = http::Http::new()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    timer.lap("setup");

    let mut reports: Vec<PrefixReport> = Vec::new();
    let plans = match &locks {
        None => {
            let releases =
                runtime.block_on(futures_util::future::try_join_all(specs.iter().map(|s| {
                    upstream::verified_release(&http, &cache, s, &opts.release_rules)
                })))?;
            // A prefix whose inputs are exactly those of its live tree is already published.
            let published_as = format!("base_url={:?}", opts.base_url);
            let (fingerprints, _) = plan::changed_prefixes(
                &specs,
                &releases,
                &key,
                &opts.output,
                opts.force,
                &published_as,
            );
            for (prefix, _) in plan::prefixes(&specs) {
                if !fingerprints.contains_key(prefix) {
                    reports.push(up_to_date(opts, prefix, true));
                }
            }
            let (todo_specs, todo_releases): (Vec<spec::SourceSpec>, Vec<_>) = specs
                .iter()
                .zip(releases)
                .filter(|(s, _)| fingerprints.contains_key(s.prefix.as_str()))
                .map(|(s, r)| (s.clone(), r))
                .unzip();
            let fetched = runtime.block_on(futures_util::future::try_join_all(
                todo_specs
                    .iter()
                    .zip(todo_releases)
                    .map(|(s, r)| upstream::fetch_indices(&http, &cache, s, r)),
            ))?;
            timer.lap("upstream");
            let plans = plan::plan_prefixes(&todo_specs, &fetched, &fingerprints)?;
            drop(fetched); // the plans own what they publish; free the index texts
            plans
        }
        Some(locks) => {
            // A prefix whose live tree was published from this very lock file stands.
            let read = |path: PathBuf| std::fs::read(path).ok();
            let unchanged: Vec<&str> = plan::prefixes(&specs)
                .into_iter()
                .map(|(prefix, _)| prefix)
                .filter(|prefix| {
                    !opts.force
                        && read(opts.output.join(prefix).join(lock::LOCK_NAME)).is_some_and(
                            |live| Some(live) == read(locked::lock_path(&opts.sources, prefix)),
                        )
                        && publish::expiring_dists(&opts.output, prefix).is_empty()
                        && publish::live_fingerprint(&opts.output, prefix).is_some()
                })
                .collect();
            for prefix in &unchanged {
                tracing::info!("{prefix}: up to date (the live tree is the locked one)");
                reports.push(up_to_date(opts, prefix, false));
            }
            let todo: Vec<spec::SourceSpec> = specs
                .iter()
                .filter(|s| !unchanged.contains(&s.prefix.as_str()))
                .cloned()
                .collect();
            // Upstream unreachable is not fatal here: the locked Release may be in the cache.
            let current =
                runtime.block_on(futures_util::future::join_all(todo.iter().map(|s| async {
                    match upstream::verified_release(&http, &cache, s, &opts.release_rules).await {
                        Ok(r) => Some(r),
                        Err(e) => {
                            tracing::warn!("{e:#}; looking for the locked Release elsewhere");
                            None
                        }
                    }
                })));
            let fetched = runtime.block_on(futures_util::future::try_join_all(
                todo.iter().zip(current).map(|(s, r)| {
                    let locked_source = locks[s.prefix.as_str()]
                        .sources
                        .iter()
                        .find(|l| l.name == s.name)
                        .expect("checked by read_locks");
                    locked::fetch_locked_source(&http, &cache, s, r, locked_source)
                }),
            ))?;
            timer.lap("upstream");
            let plans = locked::plan_locked(&todo, &fetched, locks, &opts.sources)?;
            drop(fetched);
            plans
        }
    };
    let mut plans = plans;
    for plan in &mut plans {
        if let Some(keep) = opts.keep {
            plan.keep = keep;
        }
        plan.snapshots_url = Some(opts.snapshots_field(&plan.prefix));
    }
    publish::refuse_shrink(&opts.output, &plans, opts.allow_shrink)?;
    timer.lap("resolve");
    let pool_files: Vec<pool::PoolFile> =
        plans.iter().flat_map(|p| p.pool.iter().cloned()).collect();
    let pool_report = runtime.block_on(pool::fetch_all(&http, &cache, &pool_files, opts.jobs))?;
    timer.lap("pool");
    let staged = plans
        .iter()
        .map(|p| publish::stage(&opts.output, p, &cache, &key))
        .collect::<Result<Vec<_>>>()?;
    if let Some(locks) = &locks {
        for s in &staged {
            let prefix = s.lock.prefix.as_str();
            locked::check_reproduced(
                &s.lock,
                &locks[prefix],
                &locked::lock_path(&opts.sources, prefix),
            )?;
        }
    }
    let new_locks: Vec<lock::Lock> = staged.iter().map(|s| s.lock.clone()).collect();
    publish::switch(&opts.output, staged)?;
    for (plan, new_lock) in plans.iter().zip(&new_locks) {
        let downloaded = plan
            .pool
            .iter()
            .filter(|f| pool_report.downloaded_files.contains(&f.sha256))
            .count();
        // --locked publishes the sources' lock itself: nothing to write back.
        let sources_lock = if locks.is_none() {
            write_sources_lock(opts, &plan.prefix, new_lock)
        } else {
            Some(locked::lock_path(&opts.sources, &plan.prefix))
        };
        reports.push(PrefixReport {
            prefix: plan.prefix.clone(),
            packages: plan.pool.len(),
            bytes: plan.pool.iter().map(|f| f.size).sum(),
            downloaded,
            from_cache: plan.pool.len() - downloaded,
            up_to_date: false,
            published: opts.output.join(&plan.prefix),
            lock: opts.output.join(&plan.prefix).join(lock::LOCK_NAME),
            sources_lock,
        });
    }
    timer.lap("publish");
    reports.sort_by(|a, b| a.prefix.cmp(&b.prefix));
    let unchanged: usize = reports
        .iter()
        .filter(|r| r.up_to_date)
        .map(|r| r.packages)
        .sum();
    Ok(BuildReport {
        packages: pool_files.len() + unchanged,
        downloaded: pool_report.downloaded,
        bytes: http
            .bytes_downloaded
            .load(std::sync::atomic::Ordering::Relaxed),
        // Packages of unchanged prefixes were not downloaded either: they stand as published.
        from_cache: pool_report.from_cache + unchanged,
        elapsed: started.elapsed(),
        phases: timer.phases,
        prefixes: reports,
    })
}

/// The report of a prefix left as published; a resolved build also brings the sources'
/// lock in line with the live one (written by an earlier build, or deleted since).
fn up_to_date(opts: &BuildOptions, prefix: &str, sync_sources_lock: bool) -> PrefixReport {
    let live = opts.output.join(prefix);
    let live_lock = live.join(lock::LOCK_NAME);
    let parsed = lock::Lock::read(&live_lock).ok();
    let sources_lock = match (&parsed, sync_sources_lock) {
        (Some(l), true) => {
            let path = locked::lock_path(&opts.sources, prefix);
            if std::fs::read_to_string(&path).ok() != Some(l.to_toml()) {
                write_sources_lock(opts, prefix, l)
            } else {
                Some(path)
            }
        }
        _ => Some(locked::lock_path(&opts.sources, prefix)),
    };
    let packages = publish::live_fingerprint(&opts.output, prefix).map_or(0, |(_, n)| n);
    PrefixReport {
        prefix: prefix.to_owned(),
        packages,
        bytes: parsed.as_ref().map_or(0, |l| {
            let mut seen = std::collections::BTreeSet::new();
            l.packages
                .iter()
                .filter(|p| seen.insert(&p.sha256))
                .map(|p| p.size)
                .sum()
        }),
        downloaded: 0,
        from_cache: packages,
        up_to_date: true,
        published: live,
        lock: live_lock,
        sources_lock,
    }
}

/// Write `sources/<prefix>/mirror.lock`; the publish stands even when this fails (a
/// read-only sources tree), so that is a warning naming the file.
fn write_sources_lock(opts: &BuildOptions, prefix: &str, lock: &lock::Lock) -> Option<PathBuf> {
    let path = locked::lock_path(&opts.sources, prefix);
    match lock.write_atomically(&path) {
        Ok(()) => Some(path),
        Err(e) => {
            tracing::warn!(
                "{prefix}: published, but the lock could not be written beside the sources: {e:#}"
            );
            None
        }
    }
}

/// What a build would publish now, per prefix, without downloading any package or
/// touching the output: the base of `diff` and `check`.
pub fn would_publish(opts: &BuildOptions) -> Result<Vec<lock::Lock>> {
    let specs = spec::read_sources(&opts.sources)?;
    let cache = cache::Cache::open(&opts.cache)?;
    let http = http::Http::new()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let fetched = runtime.block_on(futures_util::future::try_join_all(specs.iter().map(
        |s| async {
            let release = upstream::verified_release(&http, &cache, s, &opts.release_rules).await?;
            upstream::fetch_indices(&http, &cache, s, release).await
        },
    )))?;
    let plans = plan::plan_prefixes(&specs, &fetched, &std::collections::BTreeMap::new())?;
    Ok(plans.into_iter().map(|p| p.lock).collect())
}

/// What `mini-mirror rollback` was asked to do.
pub struct RollbackOptions {
    /// Where the published trees are.
    pub output: PathBuf,
    /// The prefix (needed when several are published).
    pub prefix: Option<String>,
    /// The snapshot to publish again; `None`: the one before the current.
    pub to: Option<String>,
    /// Snapshots kept, the new one included.
    pub keep: usize,
    /// The download cache (pool files are linked from it when present).
    pub cache: PathBuf,
    /// As for `build`.
    pub state_dir: PathBuf,
    /// As for `build`.
    pub sign_keys: Vec<PathBuf>,
    /// As for `build`.
    pub passphrase: Option<sequoia_openpgp::crypto::Password>,
}

/// Make an earlier snapshot's content current again, as a new snapshot with a new Date and
/// new signatures; downloads nothing. Returns (prefix, snapshot rolled back to, new ID).
pub fn rollback(opts: &RollbackOptions) -> Result<(String, String, String)> {
    let _output_lock = cache::lock_file(&opts.output.join(".mini-mirror.lock"))?;
    publish::remove_stale_staging(&opts.output)?;
    let prefix = match &opts.prefix {
        Some(p) => p.clone(),
        None => {
            let all = snapshot::prefixes(&opts.output)?;
            match all.as_slice() {
                [one] => one.clone(),
                [] => anyhow::bail!("{}: nothing is published", opts.output.display()),
                many => anyhow::bail!(
                    "several prefixes are published ({}): say which with --prefix",
                    many.join(", ")
                ),
            }
        }
    };
    let live = opts.output.join(&prefix);
    let target = snapshot::rollback_target(&live, opts.to.as_deref())?;
    let lock = snapshot::verify(&live, &target)?;
    let key =
        openpgp::load_signing_key(&opts.sign_keys, opts.passphrase.as_ref(), &opts.state_dir)?;
    let cache = cache::Cache::open(&opts.cache)?;
    let plan = snapshot::rollback_plan(&prefix, &live, &target, lock, opts.keep)?;
    let staged = publish::stage(&opts.output, &plan, &cache, &key)?;
    let id = staged.id.clone();
    publish::switch(&opts.output, vec![staged])?;
    Ok((prefix, target, id))
}

/// What `mini-mirror purge` removed (or would remove).
#[derive(Debug, Default, serde::Serialize)]
pub struct PurgeReport {
    /// Cache files removed.
    pub files: usize,
    /// Their bytes.
    pub bytes: u64,
    /// Cache files kept because something refers to them.
    pub kept: usize,
}

/// Remove the cache entries that no kept snapshot (under `output`), no lock beside the
/// sources and no cached Release refers to, and that are older than `older_than`.
pub fn purge(
    cache_dir: &std::path::Path,
    output: &std::path::Path,
    sources: &std::path::Path,
    older_than: Duration,
    dry_run: bool,
) -> Result<PurgeReport> {
    let cache = cache::Cache::open(cache_dir)?; // holds the cache lock: no build runs meanwhile
    let mut referenced = std::collections::BTreeSet::new();
    let mut locks = Vec::new();
    if output.is_dir() {
        for prefix in snapshot::prefixes(output)? {
            let dir = output.join(&prefix);
            locks.push(dir.join(lock::LOCK_NAME));
            for id in snapshot::ids(&dir) {
                locks.push(dir.join(snapshot::DIR).join(id).join(lock::LOCK_NAME));
            }
        }
    }
    if let Ok(entries) = std::fs::read_dir(sources) {
        for e in entries.flatten() {
            locks.push(e.path().join(lock::LOCK_NAME));
        }
    }
    for path in locks.iter().filter(|p| p.is_file()) {
        let l = lock::Lock::read(path)?;
        referenced.extend(l.packages.into_iter().map(|p| p.sha256));
    }
    // Images pulled into this cache (`oci/<manifest>.refs`) keep their blobs until the
    // record is older than `older_than`.
    if let Ok(entries) = std::fs::read_dir(cache.root().join("oci")) {
        for e in entries.flatten() {
            let old = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| older_than > Duration::ZERO && age > older_than);
            if old && !dry_run {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    // Indices: whatever a cached Release lists; pulled images: their blobs.
    for dir in ["release", "releases", "oci"] {
        for entry in walkdir::WalkDir::new(cache.root().join(dir))
            .into_iter()
            .flatten()
        {
            if !entry.file_type().is_file() {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(entry.path()) else {
                continue;
            };
            for line in text.lines() {
                if let Some(word) = line.split_whitespace().next()
                    && word.len() == 64
                    && word.bytes().all(|b| b.is_ascii_hexdigit())
                {
                    referenced.insert(word.to_ascii_lowercase());
                }
            }
        }
    }
    let mut report = PurgeReport::default();
    let now = std::time::SystemTime::now();
    for entry in walkdir::WalkDir::new(cache.root().join("blobs/sha256"))
        .into_iter()
        .flatten()
    {
        if !entry.file_type().is_file() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        let meta = entry.metadata()?;
        let age = meta
            .modified()
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .unwrap_or_default();
        if referenced.contains(&name) || age < older_than {
            report.kept += 1;
            continue;
        }
        report.files += 1;
        report.bytes += meta.len();
        if !dry_run {
            std::fs::remove_file(entry.path())
                .with_context(|| format!("removing {}", entry.path().display()))?;
        }
    }
    Ok(report)
}

/// What one pipeline phase cost, for `--timings` and benchmarks.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Phase {
    /// `setup`, `upstream`, `resolve`, `pool` or `publish`.
    pub name: &'static str,
    /// Wall time.
    #[serde(serialize_with = "seconds")]
    pub wall: Duration,
    /// Peak resident memory of the process so far (up to the end of this phase), in
    /// bytes.
    pub peak_rss: Option<u64>,
}

/// Wall time and peak memory per pipeline phase.
struct PhaseTimer {
    last: Instant,
    phases: Vec<Phase>,
}

impl PhaseTimer {
    fn lap(&mut self, name: &'static str) {
        let now = Instant::now();
        self.phases.push(Phase {
            name,
            wall: now - self.last,
            peak_rss: peak_rss(),
        });
        self.last = now;
    }
}

/// The process's peak resident memory so far: the figure `/usr/bin/time` reports.
fn peak_rss() -> Option<u64> {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::uninit();
    // Safety: getrusage fills the struct it is given, and says so by returning 0.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) } != 0 {
        return None;
    }
    // Safety: initialized by the successful call above. Linux counts in KiB.
    let kib = unsafe { usage.assume_init() }.ru_maxrss;
    u64::try_from(kib).ok().map(|k| k * 1024)
}
