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
pub mod deb822;
pub mod http;
pub mod index_text;
pub mod openpgp;
pub mod plan;
pub mod policy;
pub mod pool;
pub mod publish;
pub mod relation;
pub mod resolve;
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
}

/// What a build did, for the closing summary.
#[derive(Debug, Clone)]
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
    pub elapsed: Duration,
    /// Each phase, in order.
    pub phases: Vec<Phase>,
}

/// Run the whole pipeline. On any error the previously published trees are untouched.
pub fn build(opts: &BuildOptions) -> Result<BuildReport> {
    let started = Instant::now();
    let mut timer = PhaseTimer {
        last: started,
        phases: Vec::new(),
    };
    let specs = spec::read_sources(&opts.sources)?;
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

    let releases =
        runtime.block_on(futures_util::future::try_join_all(specs.iter().map(|s| {
            upstream::verified_release(&http, &cache, s, &opts.release_rules)
        })))?;
    // A prefix whose inputs are exactly those of its live tree is already published.
    let (fingerprints, unchanged_packages) =
        plan::changed_prefixes(&specs, &releases, &key, &opts.output, opts.force);
    let (todo_specs, todo_releases): (Vec<spec::SourceSpec>, Vec<upstream::VerifiedRelease>) =
        specs
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
    drop(fetched); // the plans own what they publish; free the index texts before downloading
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
    publish::switch(&opts.output, staged)?;
    timer.lap("publish");

    Ok(BuildReport {
        packages: pool_files.len() + unchanged_packages,
        downloaded: pool_report.downloaded,
        bytes: http
            .bytes_downloaded
            .load(std::sync::atomic::Ordering::Relaxed),
        // Packages of unchanged prefixes were not downloaded either: they stand as published.
        from_cache: pool_report.from_cache + unchanged_packages,
        elapsed: started.elapsed(),
        phases: timer.phases,
    })
}

/// What one pipeline phase cost, for `--timings` and benchmarks.
#[derive(Debug, Clone)]
pub struct Phase {
    /// `setup`, `upstream`, `resolve`, `pool` or `publish`.
    pub name: &'static str,
    /// Wall time.
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
