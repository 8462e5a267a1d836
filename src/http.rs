//! The one HTTP client of mini-mirror: proxies from the environment
//! (HTTP_PROXY / HTTPS_PROXY / NO_PROXY, either case), timeouts, bounded redirects,
//! retries with backoff, and resumable downloads that hash while they write.

use anyhow::{Context, Result, anyhow, bail};
use futures_util::StreamExt;
use reqwest::StatusCode;
use reqwest::header::{
    CONTENT_RANGE, ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED, RANGE,
};
use sha2::{Digest, Sha256};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::AsyncWriteExt;

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
    /// `on_chunk` sees each chunk as it arrives (progress, or decoding on the fly); after a
    /// broken connection it sees only the resumed part, and after a server ignored
    /// `Range` it sees the whole file again.
    pub async fn download_verified(
        &self,
        url: &str,
        dest: &Path,
        size: u64,
        sha256: &str,
        on_chunk: &(dyn Fn(&[u8]) + Sync),
    ) -> Result<()> {
        let mut file = tokio::fs::File::create(dest)
            .await
            .with_context(|| format!("creating {}", dest.display()))?;
        let mut hasher = Sha256::new();
        let mut have: u64 = 0;
        let mut last_error: Option<anyhow::Error> = None;
        let mut attempt = 0;
        let mut resumes = 0;
        while attempt < ATTEMPTS {
            attempt += 1;
            if attempt > 1 {
                self.backoff(attempt - 1).await;
            }
            let mut req = self.client.get(url);
            if have > 0 {
                req = req.header(RANGE, format!("bytes={have}-"));
            }
            let resp = match req.send().await {
                Ok(r) => r,
                Err(e) => {
                    last_error = Some(self.error(url, None, &e).into());
                    continue;
                }
            };
            let status = resp.status();
            if status == StatusCode::NOT_FOUND || status == StatusCode::GONE {
                bail!(HttpError {
                    url: url.to_owned(),
                    status: Some(status),
                    message: "not found on the upstream (the index lists it)".into()
                });
            }
            if have > 0 && status == StatusCode::OK {
                // The server ignored Range: start over.
                file.set_len(0).await?;
                file = tokio::fs::File::create(dest).await?;
                hasher = Sha256::new();
                have = 0;
            } else if have > 0 && status == StatusCode::PARTIAL_CONTENT {
                let expected = format!("bytes {have}-");
                let ok = resp
                    .headers()
                    .get(CONTENT_RANGE)
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.starts_with(&expected));
                if !ok {
                    bail!("{url}: server answered a Range request with the wrong range");
                }
            } else if !status.is_success() {
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
                match chunk {
                    Ok(chunk) => {
                        have += chunk.len() as u64;
                        if have > size {
                            bail!(
                                "{url}: size mismatch: more than the {size} bytes the index lists"
                            );
                        }
                        self.bytes_downloaded
                            .fetch_add(chunk.len() as u64, Ordering::Relaxed);
                        on_chunk(&chunk);
                        hasher.update(&chunk);
                        file.write_all(&chunk).await?;
                    }
                    Err(e) => {
                        broken = Some(self.error(url, None, &e));
                        break;
                    }
                }
            }
            if have > have_before && resumes < MAX_RESUMES {
                // Progress was made: resume at once, with a fresh set of attempts.
                resumes += 1;
                attempt = 0;
            }
            if let Some(e) = broken {
                last_error = Some(e.into());
                continue;
            }
            if have < size {
                last_error = Some(anyhow!(
                    "{url}: connection closed after {have} of {size} bytes"
                ));
                continue;
            }
            break;
        }
        if have != size {
            return Err(last_error.unwrap_or_else(|| anyhow!("{url}: download failed")));
        }
        // No fsync per file: cache hits are re-hashed before use, and publishing syncs
        // the filesystem once before the switch.
        file.flush().await?;
        let got = hex::encode(hasher.finalize());
        if got != sha256 {
            bail!("{url}: SHA256 mismatch: the index says {sha256}, the file has {got}");
        }
        Ok(())
    }
}

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
