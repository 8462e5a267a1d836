//! `mini-mirror pull`: the tree of a mini-mirror image, extracted from its mirror layers
//! only, each blob checked against its digest as it streams into the cache, verified
//! against the operator's keyring, then switched into place prefix by prefix. A failure at
//! any point leaves the directory as it was.

use super::image::layer_kinds;
use super::layers::{self, LayerKind};
use super::{Access, Location, Store};
use crate::cache::Cache;
use crate::verify::{self, Trust};
use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::collections::HashSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

/// What `mini-mirror pull` was asked to do.
pub struct PullOptions {
    /// The image.
    pub source: Location,
    /// Where the tree goes (an output directory, as `build --output`).
    pub dir: PathBuf,
    /// Registry access.
    pub access: Access,
    /// The cache (blobs stay there for the next pull).
    pub cache: PathBuf,
    /// Replace what DIR holds.
    pub force: bool,
    /// What the signatures are checked against.
    pub trust: Trust,
}

/// What a pull did.
#[derive(Debug, serde::Serialize)]
pub struct PullReport {
    /// The image's manifest digest.
    pub digest: String,
    /// Mirror layers extracted.
    pub layers: usize,
    /// Bytes of those layers.
    pub layer_bytes: u64,
    /// What the verification checked.
    pub verified: verify::TreeReport,
}

/// The manifest digest of `location`, None when it does not exist.
pub fn digest(location: &Location, access: &Access) -> Result<Option<String>> {
    super::runtime()?.block_on(async {
        let store = match Store::open(location, access, false).await {
            Ok(s) => s,
            Err(e) if matches!(location, Location::Layout { dir, .. } if !dir.exists()) => {
                tracing::debug!("{e:#}");
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        Ok(store.manifest().await?.map(|m| m.digest))
    })
}

/// Pull the tree of `opts.source` into `opts.dir`.
pub fn pull(opts: &PullOptions) -> Result<PullReport> {
    std::fs::create_dir_all(&opts.dir)
        .with_context(|| format!("creating {}", opts.dir.display()))?;
    let _dir_lock = crate::cache::lock_file(&opts.dir.join(".mini-mirror.lock"))?;
    crate::publish::remove_stale_staging(&opts.dir)?;
    let existing: Vec<String> = std::fs::read_dir(&opts.dir)?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != ".mini-mirror.lock")
        .collect();
    if !existing.is_empty() && !opts.force {
        bail!(
            "{} is not empty (it holds {}): pull into an empty directory, or give --force to replace the trees the image holds",
            opts.dir.display(),
            existing.join(", ")
        );
    }
    let cache = Cache::open(&opts.cache)?;
    let rt = super::runtime()?;
    let (digest, blobs) = rt.block_on(fetch(opts, &cache))?;
    let staging = tempfile::Builder::new()
        .prefix(".staging-pull-")
        .tempdir_in(&opts.dir)?;
    let mut layer_bytes = 0;
    for (blob, size) in &blobs {
        extract(blob, staging.path())
            .with_context(|| format!("extracting layer {}", blob.display()))?;
        layer_bytes += size;
    }
    let verified = verify::verify_tree(staging.path(), &opts.trust).with_context(|| {
        format!(
            "{}: the pulled tree does not verify; nothing was changed in {}",
            opts.source,
            opts.dir.display()
        )
    })?;
    crate::publish::sync_filesystem(&opts.dir)?;
    for prefix in &verified.prefixes {
        crate::publish::switch_dir(&opts.dir, prefix, &staging.path().join(prefix))?;
    }
    Ok(PullReport {
        digest,
        layers: blobs.len(),
        layer_bytes,
        verified,
    })
}

/// The manifest, config and mirror layers, fetched (checked) into the cache; records which
/// blobs the image uses so that `purge` keeps them.
async fn fetch(opts: &PullOptions, cache: &Cache) -> Result<(String, Vec<(PathBuf, u64)>)> {
    let store = Store::open(&opts.source, &opts.access, false).await?;
    let (fetched, manifest) = store.image_manifest(&opts.source.to_string()).await?;
    let (config_digest, config_size) = super::image::descriptor(&manifest["config"])?;
    let config_path = store.fetch_blob(&config_digest, config_size, cache).await?;
    let config: Value = serde_json::from_slice(&std::fs::read(&config_path)?)
        .with_context(|| format!("{}: the config is not JSON", opts.source))?;
    let kinds = layer_kinds(&manifest, &config, &opts.source.to_string())?;
    let mut refs = vec![super::digest_hex(&config_digest)?.to_owned()];
    let mut blobs = Vec::new();
    let layers = manifest["layers"]
        .as_array()
        .expect("checked by layer_kinds");
    for (layer, kind) in layers.iter().zip(kinds) {
        if !matches!(kind, Some(LayerKind::Pool | LayerKind::Tree)) {
            continue;
        }
        let (digest, size) = super::image::descriptor(layer)?;
        if layer["mediaType"]
            .as_str()
            .is_some_and(|m| !m.ends_with(".tar"))
        {
            bail!(
                "{}: mirror layer {digest} is not an uncompressed tar",
                opts.source
            );
        }
        let path = store
            .fetch_blob(&digest, size, cache)
            .await
            .with_context(|| format!("{}: layer {digest}", opts.source))?;
        tracing::info!("layer {digest} ({size} bytes) checked");
        refs.push(super::digest_hex(&digest)?.to_owned());
        blobs.push((path, size));
    }
    record_refs(cache, &fetched.digest, &refs)?;
    Ok((fetched.digest, blobs))
}

/// `<cache>/oci/<manifest>.refs`: the blobs an image pulled into this cache uses.
fn record_refs(cache: &Cache, manifest_digest: &str, refs: &[String]) -> Result<()> {
    let dir = cache.root().join("oci");
    std::fs::create_dir_all(&dir)?;
    let tmp = tempfile::NamedTempFile::new_in(&dir)?;
    std::fs::write(tmp.path(), refs.join("\n") + "\n")?;
    tmp.persist(dir.join(format!("{}.refs", super::digest_hex(manifest_digest)?)))?;
    Ok(())
}

/// Unpack one mirror layer into `root`: only `srv/` entries, no path leaving the tree, no
/// write through a symlink, no device or whiteout.
fn extract(blob: &Path, root: &Path) -> Result<()> {
    let mut archive = tar::Archive::new(std::io::BufReader::new(std::fs::File::open(blob)?));
    let mut real_dirs: HashSet<PathBuf> = HashSet::new();
    for entry in archive.entries()? {
        let mut entry = entry?;
        let name = entry.path()?.into_owned();
        let Some(rel) = layers::tree_path(&name)? else {
            continue;
        };
        if rel
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with(".wh."))
        {
            bail!("refusing whiteout {}", name.display());
        }
        let kind = entry.header().entry_type();
        if rel.as_os_str().is_empty() {
            continue;
        }
        let dest = root.join(&rel);
        if let Some(parent) = rel.parent() {
            real_dir(root, parent, &mut real_dirs)?;
        }
        match kind {
            tar::EntryType::Directory => {
                real_dir(root, &rel, &mut real_dirs)?;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                remove_existing(&dest)?;
                let mut out = std::fs::File::create(&dest)?;
                std::io::copy(&mut entry, &mut out)?;
                out.set_permissions(std::fs::Permissions::from_mode(0o644))?;
                if let Ok(mtime) = entry.header().mtime() {
                    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime);
                    out.set_modified(t)?;
                }
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name()?
                    .context("a symlink without target")?
                    .into_owned();
                if !stays_inside(&rel, &target) {
                    bail!(
                        "refusing symlink {} -> {}: it points outside the tree",
                        name.display(),
                        target.display()
                    );
                }
                remove_existing(&dest)?;
                std::os::unix::fs::symlink(&target, &dest)?;
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name()?
                    .context("a hard link without target")?
                    .into_owned();
                let Some(target_rel) = layers::tree_path(&target)? else {
                    bail!(
                        "refusing hard link {} to {}",
                        name.display(),
                        target.display()
                    );
                };
                let from = root.join(&target_rel);
                if let Some(parent) = target_rel.parent() {
                    real_dir(root, parent, &mut real_dirs)?;
                }
                if !std::fs::symlink_metadata(&from).is_ok_and(|m| m.is_file()) {
                    bail!(
                        "refusing hard link {} to {}: not a file of the tree",
                        name.display(),
                        target.display()
                    );
                }
                remove_existing(&dest)?;
                std::fs::hard_link(&from, &dest)?;
            }
            other => bail!("refusing {} (tar entry type {other:?})", name.display()),
        }
    }
    Ok(())
}

/// Make `rel` (and its parents) real directories under `root`, refusing symlinks on the way.
fn real_dir(root: &Path, rel: &Path, known: &mut HashSet<PathBuf>) -> Result<()> {
    let mut path = PathBuf::new();
    for c in rel.components() {
        path.push(c);
        if known.contains(&path) {
            continue;
        }
        let full = root.join(&path);
        match std::fs::symlink_metadata(&full) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => bail!(
                "refusing to write through {} (not a directory)",
                path.display()
            ),
            Err(_) => {
                std::fs::create_dir(&full)?;
                std::fs::set_permissions(&full, std::fs::Permissions::from_mode(0o755))?;
            }
        }
        known.insert(path.clone());
    }
    Ok(())
}

fn remove_existing(path: &Path) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => bail!("{}: a directory where a file goes", path.display()),
        Ok(_) => Ok(std::fs::remove_file(path)?),
        Err(_) => Ok(()),
    }
}

/// Whether a symlink at `link` (relative to the tree) pointing at `target` stays inside.
fn stays_inside(link: &Path, target: &Path) -> bool {
    if target.is_absolute() {
        return false;
    }
    let mut depth: i64 = link.components().count() as i64 - 1;
    for c in target.components() {
        match c {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            _ => return false,
        }
        if depth < 0 {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_must_stay_inside() {
        assert!(stays_inside(
            Path::new("p/snapshots/1/pool"),
            Path::new("../../pool")
        ));
        assert!(!stays_inside(
            Path::new("p/snapshots/1/pool"),
            Path::new("../../../../etc")
        ));
        assert!(!stays_inside(Path::new("p/x"), Path::new("/etc/passwd")));
    }

    #[test]
    fn extract_refuses_writes_through_symlinks() {
        let d = tempfile::tempdir().unwrap();
        let blob = d.path().join("layer.tar");
        let mut tar = tar::Builder::new(std::fs::File::create(&blob).unwrap());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        tar.append_link(&mut h, "srv/p/link", "..").unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut h, "srv/p/link/evil", &b"x"[..])
            .unwrap();
        tar.finish().unwrap();
        drop(tar);
        let root = d.path().join("root");
        std::fs::create_dir(&root).unwrap();
        let err = extract(&blob, &root).unwrap_err();
        assert!(format!("{err:#}").contains("write through"), "{err:#}");
        assert!(!root.join("evil").exists());
    }
}
