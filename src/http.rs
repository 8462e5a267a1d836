//! The one HTTP client of mini-mirror: proxies from the environment
//! (HTTP_PROXY / HTTPS_PROXY / NO_PROXY, either case), timeouts, bounded redirects,
//! retries with backoff, and resumable downloads that hash while they write.

use crate::sha256::Sha256;
use anyhow::{Context, Result, anyhow, bail};
use futures_util::StreamExt;
use reqwest::StatusCode;
use reqwest::header::{
    CONTENT_RANGE, ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED, RANGE,
};
use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How many times a failed request is tried in all.
const ATTEMPTS: u32 = 5;
/// How many times a download that made progress may resume before attempts count again.
const MAX_RESUMES: u32 = 50;

/// Shared HTTP client with download counters.
pub struct Http {
    client: reqwest::Client,
    /// Bytes received from the network (all requests).
    pub bytes_downloaded: AtomicU64,
    first_backoff: Duration,
}

/// The result of a conditional GET.
pub enum Conditional {
    /// The server said 304: what we have is current.
    NotModified,
    /// A new body, with its validators for the next request.
    Body {
        /// The response body.
        body: Vec<u8>,
        /// `ETag` header, if any.
        etag: Option<String>,
        /// `Last-Modified` header, if any.
        last_modified: Option<String>,
    },
    /// 404 / 410.
    NotFound,
}

/// Why a request failed for good (after retries).
#[derive(Debug)]
pub struct HttpError {
    /// The URL asked for.
    pub url: String,
    /// The HTTP status, when the server answered.
    pub status: Option<StatusCode>,
    /// What went wrong.
    pub message: String,
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.url, self.message)
    }
}
impl std::error::Error for HttpError {}

impl Http {
    /// A client with the environment's proxy settings and sane timeouts.
    pub fn new() -> Result<Http> {
        // A stalled connection (no byte for this long) is retried, then reported.
        let timeout = std::env::var("MINI_MIRROR_HTTP_TIMEOUT")
            .ok()
            .and_then(|v| v.parse().ok())
            .map(Duration::from_secs)
            .unwrap_or(Duration::from_secs(60));
        install_tls_provider();
        let client = reqwest::Client::builder()
            .user_agent(concat!("mini-mirror/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(std::sync::Arc::new(ResolveOnce::default()))
            .connect_timeout(timeout.min(Duration::from_secs(20)))
            .read_timeout(timeout)
            .redirect(reqwest::redirect::Policy::limited(5))
            .build()
            .context("setting up the HTTP client")?;
        let first_backoff = std::env::var("MINI_MIRROR_RETRY_BASE_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .map(Duration::from_millis)
            .unwrap_or(Duration::from_millis(500));
        Ok(Http {
            client,
            bytes_downloaded: AtomicU64::new(0),
            first_backoff,
        })
    }

    async fn backoff(&self, attempt: u32) {
        tokio::time::sleep(self.first_backoff * 2u32.pow(attempt.saturating_sub(1))).await;
    }

    /// GET a file of at most `max` bytes into memory; `Ok(None)` on 404/410.
    /// Retries transient failures.
    pub async fn get(&self, url: &str, max: u64) -> Result<Option<Vec<u8>>> {
        match self.get_conditional(url, None, None, max).await? {
            Conditional::Body { body, .. } => Ok(Some(body)),
            Conditional::NotFound => Ok(None),
            Conditional::NotModified => unreachable!("no validators were sent"),
        }
    }

    /// GET with `If-None-Match` / `If-Modified-Since` validators; a body over `max`
    /// bytes is an error (a hostile server cannot make us buffer without end).
    pub async fn get_conditional(
        &self,
        url: &str,
        etag: Option<&str>,
        last_modified: Option<&str>,
        max: u64,
    ) -> Result<Conditional> {
        let mut last_error = None;
        for attempt in 1..=ATTEMPTS {
            if attempt > 1 {
                self.backoff(attempt - 1).await;
            }
            let mut req = self.client.get(url);
            if let Some(e) = etag {
                req = req.header(IF_NONE_MATCH, e);
            }
            if let Some(lm) = last_modified {
                req = req.header(IF_MODIFIED_SINCE, lm);
            }
            let resp = match req.send().await {
                Ok(r) => r,
                Err(e) => {
                    last_error = Some(self.error(url, None, &e));
                    continue;
                }
            };
            let status = resp.status();
            if status == StatusCode::NOT_MODIFIED {
                return Ok(Conditional::NotModified);
            }
            if status == StatusCode::NOT_FOUND || status == StatusCode::GONE {
                return Ok(Conditional::NotFound);
            }
            if !status.is_success() {
                let err = HttpError {
                    url: url.to_owned(),
                    status: Some(status),
                    message: format!("server answered {status}"),
                };
                if is_transient(status) {
                    last_error = Some(err);
                    continue;
                }
                return Err(err.into());
            }
            let header = |h| {
                resp.headers()
                    .get(h)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            let (etag, last_modified) = (header(ETAG), header(LAST_MODIFIED));
            match self.read_body(resp, max).await {
                Ok(Some(body)) => {
                    return Ok(Conditional::Body {
                        body,
                        etag,
                        last_modified,
                    });
                }
                Ok(None) => {
                    bail!("{url}: size mismatch: larger than the {max} bytes expected, refusing it")
                }
                Err(e) => last_error = Some(self.error(url, None, &e)),
            }
        }
        Err(last_error.expect("at least one attempt").into())
    }

    /// The body, or `None` when it grows past `max` bytes.
    async fn read_body(
        &self,
        resp: reqwest::Response,
        max: u64,
    ) -> reqwest::Result<Option<Vec<u8>>> {
        if resp.content_length().is_some_and(|n| n > max) {
            return Ok(None);
        }
        let mut body = Vec::new();
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            self.bytes_downloaded
                .fetch_add(chunk.len() as u64, Ordering::Relaxed);
            if (body.len() + chunk.len()) as u64 > max {
                return Ok(None);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Some(body))
    }

    fn error(&self, url: &str, status: Option<StatusCode>, e: &reqwest::Error) -> HttpError {
        let mut message = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            message.push_str(": ");
            message.push_str(&s.to_string());
            source = s.source();
        }
        HttpError {
            url: url.to_owned(),
            status,
            message,
        }
    }

    /// Download `url` to `dest` (a temporary file), resuming with `Range` after a broken
    /// connection, and check it against `size` and `sha256` (lowercase hex).
    /// `on_chunk` sees every byte of the file once, in order, as it arrives (progress, or
    /// decoding on the fly).
    pub async fn download_verified(
        &self,
        url: &str,
        dest: &Path,
        size: u64,
        sha256: &str,
        on_chunk: &(dyn Fn(&[u8]) + Sync),
    ) -> Result<()> {
        let mut file =
            std::fs::File::create(dest).with_context(|| format!("creating {}", dest.display()))?;
        let mut hasher = Sha256::new();
        // Plain writes from the async task: they land in the page cache in microseconds,
        // cheaper than a round trip to a blocking thread per chunk.
        self.get_span(url, 0..size, size, &mut |chunk: &[u8]| {
            hasher.update(chunk);
            on_chunk(chunk);
            file.write_all(chunk).map_err(|e| write_error(e, dest))
        })
        .await?;
        // No fsync per file: cache hits are re-hashed before use, and publishing syncs
        // the filesystem once before the switch.
        check_sha256(url, sha256, hasher.hex())
    }

    /// Like [`download_verified`](Self::download_verified), for large files: `parts`
    /// byte ranges are fetched at once over separate connections (one slow connection
    /// no longer sets the pace), then the whole file is hashed. A server that ignores
    /// `Range` gets one plain download instead.
    pub async fn download_verified_in_parts(
        &self,
        url: &str,
        dest: &Path,
        size: u64,
        sha256: &str,
        parts: u64,
        on_bytes: &(dyn Fn(u64) + Sync),
    ) -> Result<()> {
        let parts = parts.clamp(1, size.max(1));
        if parts == 1 {
            return self
                .download_verified(url, dest, size, sha256, &|c| on_bytes(c.len() as u64))
                .await;
        }
        let file =
            std::fs::File::create(dest).with_context(|| format!("creating {}", dest.display()))?;
        file.set_len(size)?;
        let bounds: Vec<u64> = (0..=parts).map(|i| size * i / parts).collect();
        let fetches = bounds.windows(2).map(|w| {
            let (start, end, file) = (w[0], w[1], &file);
            let mut at = start;
            async move {
                self.get_span(url, start..end, size, &mut |chunk: &[u8]| {
                    file.write_all_at(chunk, at)
                        .map_err(|e| write_error(e, dest))?;
                    at += chunk.len() as u64;
                    on_bytes(chunk.len() as u64);
                    Ok(())
                })
                .await
            }
        });
        match futures_util::future::try_join_all(fetches).await {
            Ok(_) => {}
            Err(e) if e.downcast_ref::<RangesUnsupported>().is_some() => {
                tracing::debug!("{url}: no byte ranges; one plain download instead");
                // No body byte was taken from the ranged answers: progress starts afresh.
                return self
                    .download_verified(url, dest, size, sha256, &|c| on_bytes(c.len() as u64))
                    .await;
            }
            Err(e) => return Err(e),
        }
        drop(file);
        let dest = dest.to_path_buf();
        let got =
            tokio::task::spawn_blocking(move || crate::sha256::hex_digest_file(&dest)).await??;
        check_sha256(url, sha256, got)
    }

    /// GET bytes `span` of the `total`-byte file at `url` and hand them, in order and
    /// each once, to `sink`. A broken connection is resumed with `Range` (a server that
    /// then answers with the whole file has the part already received skipped);
    /// transient failures are retried with backoff. A span that is not the whole file,
    /// asked of a server that ignores `Range`, fails with [`RangesUnsupported`].
    async fn get_span(
        &self,
        url: &str,
        span: std::ops::Range<u64>,
        total: u64,
        sink: &mut (dyn FnMut(&[u8]) -> std::io::Result<()> + Send),
    ) -> Result<()> {
        let mut have = span.start; // next byte wanted
        let mut last_error: Option<anyhow::Error> = None;
        let mut attempt = 0;
        let mut resumes = 0;
        while attempt < ATTEMPTS && have < span.end {
            attempt += 1;
            if attempt > 1 {
                self.backoff(attempt - 1).await;
            }
            let mut req = self.client.get(url);
            let whole_file = have == 0 && span.end == total;
            if !whole_file {
                req = req.header(RANGE, format!("bytes={have}-{}", span.end - 1));
            }
            let resp = match req.send().await {
                Ok(r) => r,
                Err(e) => {
                    last_error = Some(self.error(url, None, &e).into());
                    continue;
                }
            };
            let status = resp.status();
            // Bytes of the body before the wanted one (a server that ignored Range).
            let mut skip = 0;
            if status == StatusCode::NOT_FOUND || status == StatusCode::GONE {
                bail!(HttpError {
                    url: url.to_owned(),
                    status: Some(status),
                    message: "not found on the upstream (the index lists it)".into()
                });
            } else if status == StatusCode::OK && !whole_file {
                if span.start > 0 || span.end < total {
                    bail!(RangesUnsupported);
                }
                skip = have; // a resumed whole-file download: skip what we have
            } else if status == StatusCode::PARTIAL_CONTENT && !whole_file {
                let expected = format!("bytes {have}-");
                let ok = resp
                    .headers()
                    .get(CONTENT_RANGE)
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.starts_with(&expected));
                if !ok {
                    bail!("{url}: server answered a Range request with the wrong range");
                }
            } else if !status.is_success() || status == StatusCode::PARTIAL_CONTENT {
                let err = HttpError {
                    url: url.to_owned(),
                    status: Some(status),
                    message: format!("server answered {status}"),
                };
                if is_transient(status) {
                    last_error = Some(err.into());
                    continue;
                }
                return Err(err.into());
            }
            let have_before = have;
            let mut stream = resp.bytes_stream();
            let mut broken = None;
            while let Some(chunk) = stream.next().await {
                let chunk = match chunk {
                    Ok(c) => c,
                    Err(e) => {
                        broken = Some(self.error(url, None, &e));
                        break;
                    }
                };
                self.bytes_downloaded
                    .fetch_add(chunk.len() as u64, Ordering::Relaxed);
                let mut chunk = &chunk[..];
                let skipped = (skip as usize).min(chunk.len());
                chunk = &chunk[skipped..];
                skip -= skipped as u64;
                if chunk.is_empty() {
                    continue;
                }
                if have + chunk.len() as u64 > span.end {
                    if span.end == total {
                        bail!("{url}: size mismatch: more than the {total} bytes the index lists");
                    }
                    bail!("{url}: the server sent more than the byte range asked for");
                }
                sink(chunk).with_context(|| format!("{url}: saving the download"))?;
                have += chunk.len() as u64;
            }
            if have > have_before && resumes < MAX_RESUMES {
                // Progress was made: resume at once, with a fresh set of attempts.
                resumes += 1;
                attempt = 0;
            }
            if let Some(e) = broken {
                last_error = Some(e.into());
            } else if have < span.end {
                last_error = Some(anyhow!(
                    "{url}: connection closed after {have} of {total} bytes"
                ));
            }
        }
        if have < span.end {
            return Err(last_error.unwrap_or_else(|| anyhow!("{url}: download failed")));
        }
        Ok(())
    }
}

fn check_sha256(url: &str, expected: &str, got: String) -> Result<()> {
    if got != expected {
        bail!("{url}: SHA256 mismatch: the index says {expected}, the file has {got}");
    }
    Ok(())
}

/// A server answered a ranged request with the whole file.
#[derive(Debug)]
struct RangesUnsupported;

impl std::fmt::Display for RangesUnsupported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the server does not serve byte ranges")
    }
}
impl std::error::Error for RangesUnsupported {}

/// Resolves each host name once per run (with the system resolver), however many
/// connections are opened to it. A cold build opens dozens of connections to one
/// archive at once; a resolver that drops some of that many simultaneous queries (as
/// this project's CI resolver does) costs a 5 s retry each, during the build and again
/// at exit while the stray lookups finish. A build is short, so no TTL is kept.
#[derive(Default)]
struct ResolveOnce {
    hosts: std::sync::Mutex<
        std::collections::HashMap<String, std::sync::Arc<tokio::sync::OnceCell<Vec<SocketAddr>>>>,
    >,
}

impl reqwest::dns::Resolve for ResolveOnce {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        let cell = self
            .hosts
            .lock()
            .expect("resolver cache lock")
            .entry(host.clone())
            .or_default()
            .clone();
        Box::pin(async move {
            // A failed lookup is not kept: the next connection asks again.
            let addrs = cell
                .get_or_try_init(|| async move {
                    tokio::task::spawn_blocking(move || {
                        (host.as_str(), 0)
                            .to_socket_addrs()
                            .map(Iterator::collect::<Vec<SocketAddr>>)
                    })
                    .await
                    .map_err(std::io::Error::other)?
                })
                .await?;
            let addrs: reqwest::dns::Addrs = Box::new(addrs.clone().into_iter());
            Ok(addrs)
        })
    }
}

fn is_transient(status: StatusCode) -> bool {
    status.is_server_error()
        || status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
}

/// Make ring the process's TLS crypto provider (reqwest and the registry client use rustls
/// without a built-in one); idempotent.
pub fn install_tls_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Err means another provider is already installed, which is as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Whether a request failed because the server has no such file (404 or 410).
pub fn is_not_found(e: &anyhow::Error) -> bool {
    e.downcast_ref::<HttpError>()
        .and_then(|h| h.status)
        .is_some_and(|s| s == reqwest::StatusCode::NOT_FOUND || s == reqwest::StatusCode::GONE)
}

/// An I/O error while writing `path`, saying which file and, for a full disk, saying so
/// plainly (a full disk must not read as a corrupt download).
pub fn write_error(e: std::io::Error, path: &Path) -> std::io::Error {
    let what = if e.kind() == std::io::ErrorKind::StorageFull {
        "no space left on device".to_owned()
    } else {
        e.to_string()
    };
    std::io::Error::new(e.kind(), format!("{what} while writing {}", path.display()))
}
