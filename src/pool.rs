//! The pool stage: every selected `.deb`, downloaded in parallel into the shared
//! cache and checked against the SHA256 and Size of the verified index.
//! Upstream `Filename`s are untrusted: they are checked here before they are used
//! in a URL, and they never name a file on disk (the cache is content-addressed;
//! published paths are built from checked parts by [`pool_path`]).

use crate::cache::Cache;
use crate::http::Http;
use crate::sha256;
use anyhow::{Context, Result, bail};
use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use tokio::sync::Semaphore;

/// One file to put in the published pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolFile {
    /// Where upstream serves it.
    pub url: String,
    /// Path below the prefix's root, e.g. `pool/main/n/nginx/nginx_1.22.1-9_amd64.deb`.
    pub pool_path: String,
    /// Size from the index.
    pub size: u64,
    /// SHA256 from the index.
    pub sha256: String,
    /// Where else to get it when upstream no longer has it (a snapshot server, for
    /// `build --locked`).
    pub fallback_url: Option<String>,
}

/// What the pool stage did.
#[derive(Debug, Default, Clone)]
pub struct PoolReport {
    /// SHA256 of each file downloaded (not found in the cache).
    pub downloaded_files: std::collections::HashSet<String>,
    /// Files downloaded.
    pub downloaded: usize,
    /// Bytes of those files.
    pub downloaded_bytes: u64,
    /// Files found (and re-verified) in the cache.
    pub from_cache: usize,
}

/// Check an upstream `Filename`: relative, no `.`/`..` parts, no odd characters.
pub fn check_filename(filename: &str) -> Result<()> {
    let ok = !filename.is_empty()
        && !filename.starts_with('/')
        && filename.split('/').all(|part| {
            !part.is_empty()
                && part != "."
                && part != ".."
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+-._~".contains(&b))
        });
    if !ok {
        bail!(
            "unsafe Filename {filename:?} in the upstream index (absolute, `..` or odd characters): refusing it"
        );
    }
    Ok(())
}

/// The Debian pool path for a package: `pool/<component>/<l>/<source>/<file name>`.
pub fn pool_path(component: &str, source: &str, filename: &str) -> Result<String> {
    check_filename(filename)?;
    crate::relation::check_package_name(source).with_context(|| format!("Source of {filename}"))?;
    let base = filename.rsplit('/').next().expect("split yields one part");
    if !(base.ends_with(".deb") || base.ends_with(".udeb")) {
        bail!("Filename {filename:?} is not a .deb");
    }
    let letter = if source.starts_with("lib") && source.len() > 3 {
        &source[..4]
    } else {
        &source[..1]
    };
    Ok(format!("pool/{component}/{letter}/{source}/{base}"))
}

/// A package file is fetched in byte ranges of about this size, over up to
/// [`MAX_PARTS`] connections: one slow connection then no longer sets the pace for the
/// largest files, which finish last.
const PART_SIZE: u64 = 4 << 20;
const MAX_PARTS: u64 = 4;

/// Make sure every file is in the cache, verified; download what is missing, with at
/// most `jobs` requests to upstream at a time (a large file takes several when free).
pub async fn fetch_all(
    http: &Http,
    cache: &Cache,
    files: &[PoolFile],
    jobs: usize,
) -> Result<PoolReport> {
    let total_bytes: u64 = files.iter().map(|f| f.size).sum();
    let progress = Progress::new(files.len(), total_bytes);
    let downloaded = AtomicUsize::new(0);
    let downloaded_bytes = AtomicU64::new(0);
    let from_cache = AtomicUsize::new(0);
    let errors = Mutex::new(Vec::new());
    let downloaded_files = Mutex::new(std::collections::HashSet::new());
    let connections = Semaphore::new(jobs.max(1));
    // Largest first: a big file started last would finish long after all the others.
    let mut largest_first: Vec<&PoolFile> = files.iter().collect();
    largest_first.sort_by_key(|f| std::cmp::Reverse(f.size));
    futures_util::stream::iter(largest_first)
        .for_each_concurrent(jobs.max(1), |file| {
            let downloaded_files = &downloaded_files;
            let (progress, downloaded, downloaded_bytes, from_cache, errors, connections) = (
                &progress,
                &downloaded,
                &downloaded_bytes,
                &from_cache,
                &errors,
                &connections,
            );
            async move {
                let result = fetch_one(http, cache, file, progress, connections).await;
                match result {
                    Ok(true) => {
                        from_cache.fetch_add(1, Ordering::Relaxed);
                        progress.bytes(file.size);
                    }
                    Ok(false) => {
                        downloaded_files
                            .lock()
                            .expect("not poisoned")
                            .insert(file.sha256.clone());
                        downloaded.fetch_add(1, Ordering::Relaxed);
                        downloaded_bytes.fetch_add(file.size, Ordering::Relaxed);
                    }
                    Err(e) => errors.lock().expect("not poisoned").push(e),
                }
                progress.file_done(file.size);
            }
        })
        .await;
    progress.finish();
    let mut errors = errors.into_inner().expect("not poisoned");
    if errors.len() == 1 {
        return Err(errors.remove(0));
    }
    if !errors.is_empty() {
        // Every one of them, so that the operator sees the whole list at once.
        let mut lines: Vec<String> = errors.iter().map(|e| format!("{e:#}")).collect();
        lines.sort();
        bail!(
            "{} packages could not be fetched:\n  {}",
            lines.len(),
            lines.join("\n  ")
        );
    }
    Ok(PoolReport {
        downloaded_files: downloaded_files.into_inner().expect("not poisoned"),
        downloaded: downloaded.into_inner(),
        downloaded_bytes: downloaded_bytes.into_inner(),
        from_cache: from_cache.into_inner(),
    })
}

/// Returns `Ok(true)` for a cache hit.
async fn fetch_one(
    http: &Http,
    cache: &Cache,
    file: &PoolFile,
    progress: &Progress,
    connections: &Semaphore,
) -> Result<bool> {
    if cache.has_blob(&file.sha256, file.size) {
        let path = cache.blob_path(&file.sha256)?;
        let sha = file.sha256.clone();
        let intact =
            tokio::task::spawn_blocking(move || sha256::hex_digest_file(&path).map(|h| h == sha))
                .await??;
        if intact {
            return Ok(true);
        }
        tracing::warn!(
            "cache entry for {} is damaged; downloading it again",
            file.pool_path
        );
        let _ = std::fs::remove_file(cache.blob_path(&file.sha256)?);
    }
    let tmp = cache.temp_path()?;
    let _connection = connections.acquire().await?;
    // More connections for the parts of a large file, if free now.
    let wanted = file.size.div_ceil(PART_SIZE).clamp(1, MAX_PARTS) as u32;
    let extra = (1..wanted)
        .rev()
        .find_map(|n| connections.try_acquire_many(n).ok());
    let parts = 1 + extra.as_ref().map_or(0, |p| p.num_permits() as u64);
    let mut result = http
        .download_verified_in_parts(&file.url, &tmp, file.size, &file.sha256, parts, &|n| {
            progress.bytes(n)
        })
        .await;
    if let (Err(e), Some(fallback)) = (&result, &file.fallback_url)
        && crate::http::is_not_found(e)
    {
        tracing::info!("{} is gone upstream; fetching it from {fallback}", file.url);
        result = http
            .download_verified_in_parts(fallback, &tmp, file.size, &file.sha256, parts, &|n| {
                progress.bytes(n)
            })
            .await;
    }
    result.with_context(|| format!("fetching {}", file.pool_path))?;
    cache.insert_verified(tmp, &file.sha256)?;
    Ok(false)
}

/// A progress bar on a terminal, a line every 10% otherwise.
struct Progress {
    bar: Option<ProgressBar>,
    files_total: usize,
    files_done: AtomicUsize,
    bytes_total: u64,
    bytes_done: AtomicU64,
    next_report: AtomicUsize,
}

impl Progress {
    fn new(files_total: usize, bytes_total: u64) -> Progress {
        let bar = (std::io::stderr().is_terminal() && files_total > 0).then(|| {
            let bar = ProgressBar::with_draw_target(Some(bytes_total), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} pool {msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            bar
        });
        Progress {
            bar,
            files_total,
            files_done: AtomicUsize::new(0),
            bytes_total,
            bytes_done: AtomicU64::new(0),
            next_report: AtomicUsize::new(1),
        }
    }

    fn bytes(&self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
    }

    fn file_done(&self, size: u64) {
        let done = self.files_done.fetch_add(1, Ordering::Relaxed) + 1;
        let bytes = self.bytes_done.fetch_add(size, Ordering::Relaxed) + size;
        if let Some(bar) = &self.bar {
            bar.set_message(format!("{done}/{} files", self.files_total));
            return;
        }
        let step = self.next_report.load(Ordering::Relaxed);
        if done * 10 >= step * self.files_total
            && self
                .next_report
                .compare_exchange(step, step + 1, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::info!(
                "pool: {done}/{} files, {:.1}/{:.1} MB",
                self.files_total,
                bytes as f64 / 1e6,
                self.bytes_total as f64 / 1e6
            );
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_paths_follow_debian_layout() {
        assert_eq!(
            pool_path(
                "main",
                "nginx",
                "pool/main/n/nginx/nginx-light_1.22_amd64.deb"
            )
            .unwrap(),
            "pool/main/n/nginx/nginx-light_1.22_amd64.deb"
        );
        assert_eq!(
            pool_path("universe", "libxml2", "whatever/libxml2_2.9_amd64.deb").unwrap(),
            "pool/universe/libx/libxml2/libxml2_2.9_amd64.deb"
        );
    }

    #[test]
    fn hostile_filenames_are_refused() {
        for bad in [
            "/etc/passwd",
            "pool/../../x.deb",
            "pool/./x.deb",
            "pool//x.deb",
            "pool/x y.deb",
            "pool/x\n.deb",
            "",
            "pool/x.deb?y",
            "pool/%2e%2e/%2e%2e/x.deb",
            "pool/x.deb%00.deb",
        ] {
            assert!(check_filename(bad).is_err(), "{bad:?} accepted");
        }
        assert!(pool_path("main", "x", "pool/main/x/x.tar.gz").is_err());
        assert!(pool_path("main", "../x", "pool/x.deb").is_err());
    }
}
