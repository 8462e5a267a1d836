//! One interface over the three places an image can be: a registry repository, an OCI
//! layout directory, an OCI archive. Blobs always land in the cache, checked.

use super::layout::{ArchiveReader, LayoutDir};
use super::registry::Remote;
use super::{Access, Location};
use crate::cache::Cache;
use anyhow::{Context, Result, bail};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Where images are read from or written to.
pub enum Store {
    /// A registry repository (the reference's tag or digest names the image).
    Registry(Remote),
    /// An OCI layout directory and the tag in it.
    Layout(LayoutDir, String),
    /// An OCI archive (read only: bundles are written by `export`).
    Archive(ArchiveReader, Option<String>),
}

/// A manifest as stored: its bytes, their digest and media type.
#[derive(Clone)]
pub struct Fetched {
    /// The exact bytes (their sha256 is the digest).
    pub bytes: Vec<u8>,
    /// `sha256:<hex>` of `bytes`.
    pub digest: String,
    /// The manifest's media type.
    pub media_type: String,
}

impl Store {
    /// Open `location` for reading (`push` false) or writing.
    pub async fn open(location: &Location, access: &Access, push: bool) -> Result<Store> {
        Ok(match location {
            Location::Registry(r) => Store::Registry(Remote::connect(r, access, push).await?),
            Location::Layout { dir, tag } if push => {
                Store::Layout(LayoutDir::create(dir)?, tag.clone())
            }
            Location::Layout { dir, tag } => Store::Layout(LayoutDir::open(dir)?, tag.clone()),
            Location::Archive { .. } if push => {
                bail!(
                    "{location}: an OCI archive is written with `mini-mirror export`, not pushed to"
                )
            }
            Location::Archive { file, tag } => {
                Store::Archive(ArchiveReader::open(file)?, tag.clone())
            }
        })
    }

    /// The manifest the location names as stored (possibly an index), or None.
    pub async fn manifest(&self) -> Result<Option<Fetched>> {
        match self {
            Store::Registry(r) => {
                let reference = r.reference().clone();
                let Some(bytes) = r.manifest_raw(&reference).await? else {
                    return Ok(None);
                };
                let digest = format!("sha256:{}", crate::sha256::hex_digest(&bytes));
                if let Some(want) = reference.digest()
                    && want != digest
                {
                    bail!(
                        "{reference}: the registry served a manifest with digest {digest}, not {want}"
                    );
                }
                Ok(Some(Fetched {
                    media_type: media_type_of(&bytes),
                    bytes,
                    digest,
                }))
            }
            Store::Layout(l, tag) => match l.manifest_entry(Some(tag))? {
                Some((digest, media_type, size)) => {
                    let bytes = read_checked(&l.blob_path(&digest)?, &digest, size)?;
                    Ok(Some(Fetched {
                        bytes,
                        digest,
                        media_type,
                    }))
                }
                None => Ok(None),
            },
            Store::Archive(a, tag) => match a.manifest_entry(tag.as_deref())? {
                Some((digest, media_type, size)) => {
                    let bytes = self.blob_bytes(&digest, size).await?;
                    Ok(Some(Fetched {
                        bytes,
                        digest,
                        media_type,
                    }))
                }
                None => Ok(None),
            },
        }
    }

    /// The image manifest this location names, for this machine's platform, with its JSON;
    /// an error naming `what` when there is none.
    pub async fn image_manifest(&self, what: &str) -> Result<(Fetched, serde_json::Value)> {
        let top = self
            .manifest()
            .await?
            .with_context(|| format!("{what}: no such image"))?;
        let fetched = self.platform_manifest(top).await?;
        let json = serde_json::from_slice(&fetched.bytes)
            .with_context(|| format!("{what}: the manifest is not JSON"))?;
        Ok((fetched, json))
    }

    /// The image manifest for this machine's platform: `fetched` itself, or the entry of an
    /// index for linux and this architecture.
    pub async fn platform_manifest(&self, fetched: Fetched) -> Result<Fetched> {
        if fetched.media_type != super::OCI_INDEX && fetched.media_type != super::DOCKER_LIST {
            return Ok(fetched);
        }
        let index: serde_json::Value = serde_json::from_slice(&fetched.bytes)?;
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            other => other,
        };
        let entry = index["manifests"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|m| m["platform"]["os"] == "linux" && m["platform"]["architecture"] == arch)
            .with_context(|| {
                format!(
                    "the image index {} has no linux/{arch} image",
                    fetched.digest
                )
            })?;
        let digest = entry["digest"].as_str().unwrap_or_default().to_owned();
        let size = entry["size"].as_u64().unwrap_or(0);
        super::digest_hex(&digest)?;
        let bytes = match self {
            Store::Registry(r) => {
                let reference = r.reference().clone_with_digest(digest.clone());
                r.manifest_raw(&reference)
                    .await?
                    .with_context(|| format!("{reference}: not found"))?
            }
            _ => self.blob_bytes(&digest, size).await?,
        };
        let got = format!("sha256:{}", crate::sha256::hex_digest(&bytes));
        if got != digest {
            bail!("manifest {digest}: digest mismatch: got {got}");
        }
        Ok(Fetched {
            media_type: media_type_of(&bytes),
            bytes,
            digest,
        })
    }

    /// A small blob (a config, a manifest) read into memory, checked.
    pub async fn blob_bytes(&self, digest: &str, size: u64) -> Result<Vec<u8>> {
        if size > 64 << 20 {
            bail!("blob {digest}: {size} bytes is too large for a manifest or config");
        }
        match self {
            Store::Layout(l, _) => read_checked(&l.blob_path(digest)?, digest, size),
            Store::Archive(a, _) => a.blob_bytes(digest, size),
            Store::Registry(r) => r.blob_bytes(digest, size).await,
        }
    }

    /// Whether the store has blob `digest`.
    pub async fn has_blob(&self, digest: &str, size: u64) -> Result<bool> {
        match self {
            Store::Registry(r) => r.has_blob(digest).await,
            Store::Layout(l, _) => {
                Ok(std::fs::metadata(l.blob_path(digest)?).is_ok_and(|m| m.len() == size))
            }
            Store::Archive(a, _) => Ok(a.has_blob(digest, size)),
        }
    }

    /// Blob `digest` in the cache, checked against its digest on the way in.
    pub async fn fetch_blob(&self, digest: &str, size: u64, cache: &Cache) -> Result<PathBuf> {
        let hex = super::digest_hex(digest)?;
        match self {
            Store::Registry(r) => r.fetch_blob(digest, size, cache).await,
            Store::Layout(l, _) => {
                if let Some(p) = cached_blob(cache, hex, size).await? {
                    return Ok(p);
                }
                let path = l.blob_path(digest)?;
                let mut f = std::fs::File::open(&path)
                    .with_context(|| format!("blob {digest} is missing from {}", path.display()))?;
                copy_verified(&mut f, digest, size, cache)
            }
            Store::Archive(a, _) => {
                if let Some(p) = cached_blob(cache, hex, size).await? {
                    return Ok(p);
                }
                a.fetch_blob(digest, size, cache)
            }
        }
    }

    /// Store blob `digest` from `path` (already checked) unless present; true when written.
    pub async fn put_blob(&self, digest: &str, size: u64, path: &Path) -> Result<bool> {
        match self {
            Store::Registry(r) => r.push_blob(digest, size, path).await,
            Store::Layout(l, _) => l.put_blob(digest, size, path),
            Store::Archive(..) => bail!("an OCI archive is read only"),
        }
    }

    /// Store the manifest under the location's tag; every blob it names must be there.
    pub async fn put_manifest(&self, bytes: &[u8], media_type: &str) -> Result<String> {
        let digest = format!("sha256:{}", crate::sha256::hex_digest(bytes));
        match self {
            Store::Registry(r) => r.push_manifest(bytes, media_type).await?,
            Store::Layout(l, tag) => {
                let tmp = l.temp_file()?;
                tmp.as_file().write_all(bytes)?;
                l.insert(tmp.into_temp_path(), &digest)?;
                l.set_tag(tag, &digest, media_type, bytes.len() as u64)?;
            }
            Store::Archive(..) => bail!("an OCI archive is read only"),
        }
        Ok(digest)
    }
}

/// The media type a manifest says it has (an OCI manifest when it says nothing).
fn media_type_of(bytes: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()
        .and_then(|v| v["mediaType"].as_str().map(str::to_owned))
        .unwrap_or_else(|| super::OCI_MANIFEST.to_owned())
}

fn read_checked(path: &Path, digest: &str, size: u64) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    check_blob(
        digest,
        size,
        bytes.len() as u64,
        &crate::sha256::hex_digest(&bytes),
    )
    .with_context(|| path.display().to_string())?;
    Ok(bytes)
}

/// Refuse a blob whose size or digest is not what its descriptor says.
pub(crate) fn check_blob(digest: &str, size: u64, got_size: u64, got_hex: &str) -> Result<()> {
    if got_size != size {
        bail!("blob {digest}: size mismatch: the manifest says {size} bytes, got {got_size}");
    }
    if super::digest_hex(digest)? != got_hex {
        bail!(
            "blob {digest}: digest mismatch: the content has sha256:{got_hex} (tampered or corrupt)"
        );
    }
    Ok(())
}

/// Copy `input` into the cache as blob `digest`, checking it on the way.
pub(crate) fn copy_verified(
    input: &mut dyn Read,
    digest: &str,
    size: u64,
    cache: &Cache,
) -> Result<PathBuf> {
    let tmp = cache.temp_path()?;
    let mut out = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
    let mut hasher = crate::sha256::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut got = 0u64;
    loop {
        let n = input.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])?;
        got += n as u64;
    }
    out.flush()?;
    drop(out);
    check_blob(digest, size, got, &hasher.hex())?;
    cache.insert_verified(tmp, super::digest_hex(digest)?)
}

/// A blob already in the cache, re-hashed (a cache entry is trusted no more than a download).
pub(crate) async fn cached_blob(cache: &Cache, hex: &str, size: u64) -> Result<Option<PathBuf>> {
    if !cache.has_blob(hex, size) {
        return Ok(None);
    }
    let path = cache.blob_path(hex)?;
    let p = path.clone();
    let got = tokio::task::spawn_blocking(move || crate::sha256::hex_digest_file(&p)).await??;
    if got == hex {
        Ok(Some(path))
    } else {
        tracing::warn!(
            "cache entry {} is corrupt; fetching it again",
            path.display()
        );
        let _ = std::fs::remove_file(&path);
        Ok(None)
    }
}
