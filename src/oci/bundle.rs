//! Bundles for a one-way link: `export` writes an OCI archive holding an image's manifest
//! and config and only the blobs the far side lacks (all of them without `--since`);
//! `import` checks every digest in it, and that every blob it leaves out is already at the
//! target, before anything is written; the manifest goes last.

use super::image::{descriptor, layer_kinds};
use super::layout::{ArchiveReader, ArchiveWriter};
use super::{Access, Location, Store};
use crate::cache::Cache;
use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// What an export or import moved.
#[derive(Debug, Default, serde::Serialize)]
pub struct BundleReport {
    /// The image's manifest digest.
    pub digest: String,
    /// Blobs written (into the bundle, or to the target).
    pub blobs: usize,
    /// Their bytes.
    pub bytes: u64,
    /// Blobs left out (the far side has them).
    pub skipped_blobs: usize,
    /// Their bytes.
    pub skipped_bytes: u64,
    /// Size of the bundle file (export).
    pub file_bytes: u64,
}

/// The blobs a manifest names: config first, then layers.
fn blobs_of(manifest: &Value) -> Result<Vec<(String, u64)>> {
    let mut out = vec![descriptor(&manifest["config"])?];
    for l in manifest["layers"]
        .as_array()
        .context("a manifest without layers")?
    {
        out.push(descriptor(l)?);
    }
    Ok(out)
}

/// Export `source` into the bundle `to`, leaving out the blobs of `since` (a bundle file,
/// an image reference, or a manifest digest in `source`'s repository).
pub fn export(
    source: &Location,
    to: &Path,
    since: Option<&str>,
    access: &Access,
    cache_dir: &Path,
) -> Result<BundleReport> {
    let cache = Cache::open(cache_dir)?;
    super::runtime()?.block_on(async {
        let store = Store::open(source, access, false).await?;
        let (fetched, manifest) = store.image_manifest(&source.to_string()).await?;
        let blobs = blobs_of(&manifest)?;
        let config = std::fs::read(store.fetch_blob(&blobs[0].0, blobs[0].1, &cache).await?)?;
        layer_kinds(
            &manifest,
            &serde_json::from_slice(&config)?,
            &source.to_string(),
        )?;
        let have: HashSet<String> = match since {
            Some(s) => since_blobs(s, source, access)
                .await
                .with_context(|| format!("--since {s}"))?,
            None => HashSet::new(),
        };
        let tag = match source {
            Location::Registry(r) => r.tag().unwrap_or("latest").to_owned(),
            Location::Layout { tag, .. } => tag.clone(),
            Location::Archive { tag, .. } => tag.clone().unwrap_or_else(|| "latest".into()),
        };
        let mut report = BundleReport {
            digest: fetched.digest.clone(),
            ..Default::default()
        };
        let mut writer = ArchiveWriter::create(to)?;
        for (digest, size) in &blobs {
            if have.contains(digest) {
                report.skipped_blobs += 1;
                report.skipped_bytes += size;
                continue;
            }
            let path = store.fetch_blob(digest, *size, &cache).await?;
            writer.add_blob(digest, &path)?;
            report.blobs += 1;
            report.bytes += size;
        }
        writer.add_bytes(&fetched.digest, &fetched.bytes)?;
        report.file_bytes = writer.finish(
            &fetched.digest,
            &fetched.media_type,
            fetched.bytes.len() as u64,
            &tag,
        )?;
        Ok(report)
    })
}

/// The blobs the far side has, from what `--since` names.
async fn since_blobs(since: &str, source: &Location, access: &Access) -> Result<HashSet<String>> {
    let location = if Path::new(since).is_file() {
        Location::Archive {
            file: PathBuf::from(since),
            tag: None,
        }
    } else if since.starts_with("sha256:") {
        super::digest_hex(since)?;
        match source {
            Location::Registry(r) => Location::Registry(r.clone_with_digest(since.to_owned())),
            _ => bail!(
                "a digest for --since needs a registry source; give the previous bundle file instead"
            ),
        }
    } else {
        Location::parse(since)?
    };
    let store = Store::open(&location, access, false).await?;
    let (_, manifest) = store.image_manifest(&location.to_string()).await?;
    Ok(blobs_of(&manifest)?.into_iter().map(|(d, _)| d).collect())
}

/// Import the bundle `file` into `to`: every blob checked first, then pushed where missing,
/// then the manifest.
pub fn import(
    file: &Path,
    to: &Location,
    access: &Access,
    cache_dir: &Path,
) -> Result<BundleReport> {
    let cache = Cache::open(cache_dir)?;
    super::runtime()?.block_on(async {
        let bundle = Store::Archive(ArchiveReader::open(file)?, None);
        let (fetched, manifest) = bundle.image_manifest(&file.display().to_string()).await?;
        let blobs = blobs_of(&manifest)?;
        let target = Store::open(to, access, true).await?;
        // Check everything before writing anything.
        let mut ready: Vec<(String, u64, Option<PathBuf>)> = Vec::new();
        for (digest, size) in &blobs {
            if bundle.has_blob(digest, *size).await? {
                let path = bundle
                    .fetch_blob(digest, *size, &cache)
                    .await
                    .with_context(|| format!("{}", file.display()))?;
                ready.push((digest.clone(), *size, Some(path)));
            } else if target.has_blob(digest, *size).await? {
                ready.push((digest.clone(), *size, None));
            } else {
                bail!(
                    "{}: blob {digest} is neither in the bundle nor at {to}: import the bundles \
                     this one was exported --since first; nothing was written",
                    file.display()
                );
            }
        }
        let config =
            std::fs::read(cache.blob_path(super::digest_hex(&blobs[0].0)?)?).unwrap_or_default();
        if let Ok(config) = serde_json::from_slice::<Value>(&config) {
            layer_kinds(&manifest, &config, &file.display().to_string())?;
        }
        let mut report = BundleReport {
            digest: fetched.digest.clone(),
            ..Default::default()
        };
        for (digest, size, path) in &ready {
            let pushed = match path {
                Some(p) => target.put_blob(digest, *size, p).await?,
                None => false,
            };
            if pushed {
                report.blobs += 1;
                report.bytes += size;
            } else {
                report.skipped_blobs += 1;
                report.skipped_bytes += size;
            }
        }
        let digest = target
            .put_manifest(&fetched.bytes, &fetched.media_type)
            .await?;
        if digest != fetched.digest {
            bail!(
                "the manifest's digest changed on the way ({digest} != {})",
                fetched.digest
            );
        }
        Ok(report)
    })
}
