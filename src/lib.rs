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
pub mod openpgp;
pub mod plan;
pub mod policy;
pub mod pool;
pub mod publish;
pub mod relation;
pub mod resolve;
pub mod sbom;
pub mod sha256;
pub mod spec;
pub mod universe;
pub mod upstream;

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
            let (fingerprints, _) =
                plan::changed_prefixes(&specs, &releases, &key, &opts.output, opts.force);
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
            let todo: Vec<spec::SourceSpec> = specs
                .iter()
                .filter(|s| {
                    let lock = &locks[s.prefix.as_str()];
                    let live =
                        std::fs::read_to_string(opts.output.join(&s.prefix).join(lock::LOCK_NAME));
                    let same = live.is_ok_and(|t| t == lock.to_toml());
                    !(same
                        && !opts.force
                        && publish::expiring_dists(&opts.output, &s.prefix).is_empty()
                        && publish::live_fingerprint(&opts.output, &s.prefix).is_some())
                })
                .cloned()
                .collect();
            for (prefix, _) in plan::prefixes(&specs) {
                if !todo.iter().any(|s| s.prefix == prefix) {
                    tracing::info!("{prefix}: up to date (the live tree is the locked one)");
                    reports.push(up_to_date(opts, prefix, false));
                }
            }
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
