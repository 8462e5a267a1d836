//! One repository of a registry, through the ORAS `oci-client`: credentials from the user's
//! auth files, TLS against the system roots plus the operator's CAs, plain HTTP only for
//! loopback registries that speak nothing else or for hosts named `--insecure-registry`,
//! retries with backoff on transient failures, and every blob's digest checked while it
//! streams into the cache.

use super::{Access, auth};
use crate::cache::Cache;
use anyhow::{Context, Result, anyhow, bail};
use futures_util::StreamExt;
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, RegistryOperation, client};
use oci_spec::distribution::Reference;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// A connected, authenticated repository.
pub struct Remote {
    client: Client,
    reference: Reference,
    auth: RegistryAuth,
    credential_source: Option<PathBuf>,
}

const ATTEMPTS: u32 = 4;

impl Remote {
    /// Reach `reference`'s registry and authenticate for pulling (or pushing).
    pub async fn connect(reference: &Reference, access: &Access, push: bool) -> Result<Remote> {
        crate::http::install_tls_provider();
        let host = reference.registry().to_owned();
        let plain_http = if access.insecure_registries.iter().any(|h| h == &host) {
            true
        } else if is_loopback(&host) {
            speaks_plain_http(&host).await
        } else {
            false
        };
        let mut extra_root_certificates = Vec::new();
        for path in &access.ca_certs {
            let pem = std::fs::read(path)
                .with_context(|| format!("reading CA certificates {}", path.display()))?;
            let text = String::from_utf8_lossy(&pem);
            let mut n = 0;
            for block in text.split_inclusive("-----END CERTIFICATE-----") {
                if let Some(start) = block.find("-----BEGIN CERTIFICATE-----") {
                    extra_root_certificates.push(client::Certificate {
                        encoding: client::CertificateEncoding::Pem,
                        data: block.as_bytes()[start..].to_vec(),
                    });
                    n += 1;
                }
            }
            if n == 0 {
                bail!("{}: no PEM certificate in it", path.display());
            }
        }
        let config = client::ClientConfig {
            protocol: if plain_http {
                client::ClientProtocol::Http
            } else {
                client::ClientProtocol::Https
            },
            // One PUT per blob: the registry never holds a half-made upload of ours, and a
            // re-run after an interruption uploads exactly the blobs still missing.
            use_monolithic_push: true,
            extra_root_certificates,
            connect_timeout: Some(Duration::from_secs(20)),
            read_timeout: Some(Duration::from_secs(120)),
            user_agent: concat!("mini-mirror/", env!("CARGO_PKG_VERSION")),
            ..Default::default()
        };
        let credential = auth::lookup(&host, reference.repository())?;
        let remote = Remote {
            client: Client::new(config),
            reference: reference.clone(),
            auth: credential.auth,
            credential_source: credential.source,
        };
        let op = if push {
            RegistryOperation::Push
        } else {
            RegistryOperation::Pull
        };
        remote
            .retry("authenticating", || async {
                remote
                    .client
                    .auth(&remote.reference, &remote.auth, op)
                    .await
                    .map(|_| ())
            })
            .await?;
        remote
            .client
            .store_auth_if_needed(remote.reference.resolve_registry(), &remote.auth)
            .await;
        Ok(remote)
    }

    /// The reference this talks to.
    pub fn reference(&self) -> &Reference {
        &self.reference
    }

    /// The manifest `reference` names (bytes as served), or None when it does not exist.
    pub async fn manifest_raw(&self, reference: &Reference) -> Result<Option<Vec<u8>>> {
        let accept = [
            super::OCI_MANIFEST,
            super::DOCKER_MANIFEST,
            super::OCI_INDEX,
            super::DOCKER_LIST,
        ];
        let got = self
            .retry("fetching the manifest", || async {
                self.client
                    .pull_manifest_raw(reference, &self.auth, &accept)
                    .await
            })
            .await;
        match got {
            Ok((bytes, _)) => Ok(Some(bytes.to_vec())),
            Err(e) if is_missing(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Whether the repository has the blob.
    pub async fn has_blob(&self, digest: &str) -> Result<bool> {
        self.retry(&format!("checking blob {digest}"), || async {
            self.client.blob_exists(&self.reference, digest).await
        })
        .await
    }

    /// Stream blob `digest` into the cache, checking size and digest on the way; a blob
    /// already in the cache is re-hashed instead of fetched.
    pub async fn fetch_blob(&self, digest: &str, size: u64, cache: &Cache) -> Result<PathBuf> {
        let hex = super::digest_hex(digest)?.to_owned();
        if let Some(path) = super::store::cached_blob(cache, &hex, size).await? {
            return Ok(path);
        }
        let mut last = None;
        for attempt in 1..=ATTEMPTS {
            match self.fetch_once(digest, &hex, size, cache).await {
                Ok(p) => return Ok(p),
                Err(e) if attempt < ATTEMPTS && !format!("{e:#}").contains("mismatch") => {
                    tracing::warn!("{}: blob {digest}: {e:#}; retrying", self.reference);
                    tokio::time::sleep(backoff(attempt)).await;
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.expect("at least one attempt"))
    }

    async fn fetch_once(
        &self,
        digest: &str,
        hex: &str,
        size: u64,
        cache: &Cache,
    ) -> Result<PathBuf> {
        let tmp = cache.temp_path()?;
        let mut file = tokio::fs::File::create(&tmp).await?;
        self.stream_into(digest, size, &mut file).await?;
        drop(file);
        cache.insert_verified(tmp, hex)
    }

    /// A small blob (a config) read into memory, checked against its digest.
    pub async fn blob_bytes(&self, digest: &str, size: u64) -> Result<Vec<u8>> {
        let mut bytes = Vec::new();
        self.stream_into(digest, size, &mut bytes).await?;
        Ok(bytes)
    }

    /// Stream blob `digest` into `out`, refusing it when its size or digest is not the
    /// descriptor's (what was written must then be discarded).
    async fn stream_into(
        &self,
        digest: &str,
        size: u64,
        out: &mut (impl tokio::io::AsyncWrite + Unpin),
    ) -> Result<()> {
        let mut stream = self
            .client
            .pull_blob_stream(&self.reference, digest)
            .await
            .map_err(|e| self.explain(e))?
            .stream;
        let mut hasher = crate::sha256::Sha256::new();
        let mut got = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) if e.to_string().contains("Invalid digest") => {
                    bail!("blob {digest}: digest mismatch: the registry served other content ({e})")
                }
                Err(e) => return Err(anyhow!(e).context(format!("reading blob {digest}"))),
            };
            got += chunk.len() as u64;
            if got > size {
                bail!(
                    "blob {digest}: size mismatch: longer than the {size} bytes the manifest says"
                );
            }
            hasher.update(&chunk);
            out.write_all(&chunk).await?;
        }
        out.flush().await?;
        super::store::check_blob(digest, size, got, &hasher.hex())
    }

    /// Upload the blob in `path` (already checked to have `digest`) unless the repository
    /// has it; true when it was uploaded.
    pub async fn push_blob(&self, digest: &str, size: u64, path: &Path) -> Result<bool> {
        if self.has_blob(digest).await? {
            return Ok(false);
        }
        self.retry(&format!("uploading blob {digest}"), || async {
            let file = tokio::fs::File::open(path).await?;
            let stream = tokio_util::io::ReaderStream::with_capacity(file, 1 << 20)
                .map(|r| r.map_err(OciDistributionError::from));
            self.client
                .push_blob_stream(&self.reference, stream, digest, Some(size))
                .await
                .map(|_| ())
        })
        .await?;
        Ok(true)
    }

    /// Upload a manifest under the reference's tag (call after all its blobs are there).
    pub async fn push_manifest(&self, bytes: &[u8], media_type: &str) -> Result<()> {
        let content_type = reqwest::header::HeaderValue::from_str(media_type)?;
        self.retry("uploading the manifest", || async {
            self.client
                .push_manifest_raw(&self.reference, bytes.to_vec(), content_type.clone())
                .await
                .map(|_| ())
        })
        .await
    }

    /// Run `op`, retrying transient failures (connection errors, 5xx, 429) with backoff;
    /// errors come back explained (which registry, which credentials).
    async fn retry<T, F, Fut>(&self, what: &str, op: F) -> Result<T>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = std::result::Result<T, OciDistributionError>>,
    {
        let mut attempt = 1;
        loop {
            match op().await {
                Ok(v) => return Ok(v),
                Err(e) if attempt < ATTEMPTS && is_transient(&e) => {
                    tracing::warn!("{}: {what}: {e}; retrying", self.reference);
                    tokio::time::sleep(backoff(attempt)).await;
                    attempt += 1;
                }
                Err(e) => {
                    return Err(self
                        .explain(e)
                        .context(format!("{what} ({})", self.reference)));
                }
            }
        }
    }

    fn explain(&self, e: OciDistributionError) -> anyhow::Error {
        let unauthorized = matches!(e, OciDistributionError::UnauthorizedError { .. })
            || matches!(&e, OciDistributionError::RequestError(r)
                if r.status().is_some_and(|s| s.as_u16() == 401 || s.as_u16() == 403))
            || matches!(
                &e,
                OciDistributionError::ServerError {
                    code: 401 | 403,
                    ..
                }
            )
            || matches!(&e, OciDistributionError::RegistryError { envelope, .. }
                if envelope.errors.iter().any(|x| matches!(x.code, OciErrorCode::Unauthorized | OciErrorCode::Denied)));
        if unauthorized {
            let from = match &self.credential_source {
                Some(f) => format!("the credentials from {}", f.display()),
                None => "no credentials (none in REGISTRY_AUTH_FILE, containers auth.json or ~/.docker/config.json)".into(),
            };
            return anyhow!(e).context(format!(
                "{} refused access with {from}",
                self.reference.registry()
            ));
        }
        let text = format!("{e:?}");
        if text.contains("InvalidCertificate") || text.contains("UnknownIssuer") {
            return anyhow!(e).context(format!(
                "TLS: the certificate of {} is not trusted (add its CA with --ca-cert FILE or EXTRA_CA_CERTS)",
                self.reference.registry()
            ));
        }
        anyhow!(e)
    }
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(500 * 2u64.pow(attempt - 1))
}

fn is_transient(e: &OciDistributionError) -> bool {
    match e {
        OciDistributionError::RequestError(r) => {
            r.is_connect() || r.is_timeout() || r.is_request() || r.is_body()
        }
        OciDistributionError::ServerError { code, .. } => *code >= 500 || *code == 429,
        OciDistributionError::RegistryError { envelope, .. } => envelope
            .errors
            .iter()
            .any(|x| matches!(x.code, OciErrorCode::Toomanyrequests)),
        OciDistributionError::IoError(_) => true,
        _ => false,
    }
}

fn is_missing(e: &anyhow::Error) -> bool {
    e.chain()
        .any(|c| match c.downcast_ref::<OciDistributionError>() {
            Some(OciDistributionError::ImageManifestNotFoundError(_)) => true,
            Some(OciDistributionError::ServerError { code: 404, .. }) => true,
            Some(OciDistributionError::RegistryError { envelope, .. }) => {
                envelope.errors.iter().any(|x| {
                    matches!(
                        x.code,
                        OciErrorCode::ManifestUnknown
                            | OciErrorCode::NameUnknown
                            | OciErrorCode::NotFound
                    )
                })
            }
            _ => false,
        })
}

/// `localhost`, `127.x.y.z` or `[::1]`, with or without a port.
fn is_loopback(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host),
    };
    name == "localhost"
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Whether a loopback registry answers the registry API over plain HTTP (a TLS server
/// answers 400 to plain HTTP, or not at all): registries on 127.0.0.1 are often plain.
async fn speaks_plain_http(host: &str) -> bool {
    let Ok(client) = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
    else {
        return false;
    };
    match client.get(format!("http://{host}/v2/")).send().await {
        Ok(r) => matches!(r.status().as_u16(), 200 | 401),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn loopback_hosts() {
        assert!(super::is_loopback("127.0.0.1:5000"));
        assert!(super::is_loopback("localhost"));
        assert!(super::is_loopback("[::1]:5000"));
        assert!(!super::is_loopback("registry.example:5000"));
        assert!(!super::is_loopback("10.0.0.1"));
    }
}
