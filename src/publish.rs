//! The publish stage: lays out a prefix's tree in a staging directory beside the live
//! one (pool links from the cache, Packages in three compressions with by-hash
//! copies, Release signed as InRelease and Release.gpg, the public key), then
//! switches it into place with one atomic rename. A failed or killed build never
//! touches the live tree; a client sees the old tree or the new one, never a mix.
//!
//! This is the only module that writes below the output directory.

use crate::cache::Cache;
use crate::openpgp::SigningKey;
use crate::pool::PoolFile;
use crate::upstream::{format_date, parse_date};
use anyhow::{Context, Result, anyhow, bail};
use chrono::{DateTime, Utc};
use md5::{Digest, Md5};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Name of the exported public key (binary; `.asc` beside it is armored).
pub const KEYRING_NAME: &str = "mini-mirror-archive-keyring.gpg";

/// One package entry to publish: the upstream paragraph and its new pool path.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The verified upstream paragraph (a copy: the index texts are freed before the
    /// pool stage, so downloads do not run with 50 MB of index held in memory).
    pub paragraph: String,
    /// Our `Filename`.
    pub pool_path: String,
}

/// What to publish for one dist.
#[derive(Debug, Default)]
pub struct DistPlan {
    /// Dist name (path below `dists/`).
    pub dist: String,
    /// Origin, Label, Suite, Codename, Version, Description... in output order.
    pub header: Vec<(String, String)>,
    /// Components in output order.
    pub components: Vec<String>,
    /// Architectures in output order.
    pub architectures: Vec<String>,
    /// Entries per (component, architecture), already in output order.
    pub entries: BTreeMap<(String, String), Vec<Entry>>,
    /// How long the published Release stays valid (`Valid-Until`), if it expires.
    pub valid_for: Option<chrono::Duration>,
    /// How far the published Date is set behind the build clock.
    pub date_margin: chrono::Duration,
}

/// Name of the file in a published tree that records what it was built from.
pub const FINGERPRINT_NAME: &str = ".mini-mirror-fingerprint";

/// Everything one prefix publishes.
#[derive(Debug, Default)]
pub struct PrefixPlan {
    /// The prefix (`<output>/<prefix>/`).
    pub prefix: String,
    /// Digest of the inputs (see `plan::fingerprint`), stored in the tree.
    pub fingerprint: String,
    /// Its dists.
    pub dists: Vec<DistPlan>,
    /// Its pool files (already in the cache).
    pub pool: Vec<PoolFile>,
    /// What it publishes, as `mirror.lock` records it (its `indices` are filled in by
    /// [`stage`]).
    pub lock: crate::lock::Lock,
    /// Snapshots kept, this one included (older ones go, with the pool files only they
    /// refer to).
    pub keep: usize,
    /// The `Snapshots:` field of its Releases (`<base>/snapshots/@SNAPSHOTID@/`), if any.
    pub snapshots_url: Option<String>,
}

/// A prefix tree fully written in staging, waiting for [`switch`].
pub struct Staged {
    prefix: String,
    dir: tempfile::TempDir,
    /// The lock written into it (`mirror.lock`), indices included.
    pub lock: crate::lock::Lock,
    /// The ID of the snapshot it publishes.
    pub id: String,
}

/// Lay out `plan` in a staging directory inside `output`: the new snapshot, the kept
/// snapshots and the pool they share (hard links), the served `dists/` (the new snapshot's).
pub fn stage(output: &Path, plan: &PrefixPlan, cache: &Cache, key: &SigningKey) -> Result<Staged> {
    use crate::snapshot;
    let live = output.join(&plan.prefix);
    let dir = tempfile::Builder::new()
        .prefix(&format!(".staging-{}-", plan.prefix))
        .tempdir_in(output)
        .with_context(|| format!("creating a staging directory in {}", output.display()))?;
    let root = dir.path();
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755))?;
    let existing = snapshot::ids(&live);
    let id = snapshot::new_id(&existing);
    let kept = snapshot::kept(&existing, plan.keep);
    let snap = root.join(snapshot::DIR).join(&id);
    std::fs::create_dir_all(&snap).with_context(|| format!("creating {}", snap.display()))?;
    link_pool(root, &plan.pool, cache, &live)?;
    // The kept snapshots share the pool; whatever the previous current snapshot named stays
    // too, for one more publish (a client mid-update holds its indices).
    let previous = crate::lock::Lock::read(&live.join(crate::lock::LOCK_NAME)).ok();
    for path in snapshot::referenced_pool(&live, &kept, previous.as_ref())? {
        let (from, to) = (live.join(&path), safe_join(root, &path)?);
        if !to.exists() && from.is_file() {
            std::fs::create_dir_all(to.parent().expect("pool paths have parents"))?;
            link_or_copy(&from, &to)?;
        }
    }
    for old in &kept {
        link_tree(
            &live.join(snapshot::DIR).join(old),
            &root.join(snapshot::DIR).join(old),
        )?;
    }
    std::os::unix::fs::symlink("../../pool", snap.join("pool"))
        .with_context(|| format!("linking {}/pool", snap.display()))?;
    let mut lock = plan.lock.clone();
    for dist in &plan.dists {
        let written = write_dist(&snap, &live, dist, key, plan.snapshots_url.as_deref())
            .with_context(|| format!("publishing {}/dists/{}", plan.prefix, dist.dist))?;
        lock.indices.extend(
            written
                .into_iter()
                .filter(|w| w.path.ends_with("/Packages"))
                .map(|w| crate::lock::LockedIndex {
                    path: format!("dists/{}/{}", dist.dist, w.path),
                    size: w.size,
                    sha256: w.sha256,
                }),
        );
    }
    lock.normalize();
    let sbom = crate::sbom::cyclonedx(&lock, plan);
    for dir in [root, snap.as_path()] {
        write_file(&dir.join(crate::lock::LOCK_NAME), lock.to_toml().as_bytes())?;
        write_file(&dir.join(crate::sbom::FILE_NAME), sbom.as_bytes())?;
    }
    // The served dists/ is the new snapshot's, plus the previous generation of by-hash files.
    link_tree(&snap.join("dists"), &root.join("dists"))?;
    for dist in &plan.dists {
        keep_previous_by_hash(
            &live.join("dists").join(&dist.dist),
            &safe_join(root, &format!("dists/{}", dist.dist))?,
        )?;
    }
    write_file(
        &root.join(FINGERPRINT_NAME),
        format!("{} {}\n", plan.fingerprint, plan.pool.len()).as_bytes(),
    )?;
    write_file(&root.join(KEYRING_NAME), &key.public_binary()?)?;
    write_file(
        &root.join(KEYRING_NAME.replace(".gpg", ".asc")),
        &key.public_armored()?,
    )?;
    tracing::info!(
        "{}: snapshot {id} (keeping {} earlier)",
        plan.prefix,
        kept.len()
    );
    Ok(Staged {
        prefix: plan.prefix.clone(),
        dir,
        lock,
        id,
    })
}

fn link_pool(root: &Path, pool: &[PoolFile], cache: &Cache, live: &Path) -> Result<()> {
    let mut made_dirs = BTreeSet::new();
    for file in pool {
        let dest = safe_join(root, &file.pool_path)?;
        let parent = dest
            .parent()
            .expect("pool paths have parents")
            .to_path_buf();
        if made_dirs.insert(parent.clone()) {
            std::fs::create_dir_all(&parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        // From the cache; a rollback's files may be only in the live pool (verified first).
        let mut blob = cache.blob_path(&file.sha256)?;
        if !cache.has_blob(&file.sha256, file.size) {
            blob = safe_join(live, &file.pool_path)?;
        }
        link_or_copy(&blob, &dest)?;
    }
    Ok(())
}

/// A hard link of `from` at `to`; a copy when they are on different filesystems.
fn link_or_copy(from: &Path, to: &Path) -> Result<()> {
    if std::fs::hard_link(from, to).is_err() {
        std::fs::copy(from, to)
            .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    }
    Ok(())
}

/// Hard-link the tree `from` into `to` (files linked, symlinks recreated): a kept snapshot
/// carried into a new publish without copying a byte.
fn link_tree(from: &Path, to: &Path) -> Result<()> {
    for entry in walkdir::WalkDir::new(from).follow_links(false) {
        let entry = entry?;
        let rel = entry.path().strip_prefix(from).expect("below the root");
        let dest = to.join(rel);
        let kind = entry.file_type();
        if kind.is_dir() {
            std::fs::create_dir_all(&dest)
                .with_context(|| format!("creating {}", dest.display()))?;
        } else if kind.is_symlink() {
            let target = std::fs::read_link(entry.path())?;
            std::os::unix::fs::symlink(&target, &dest)
                .with_context(|| format!("linking {}", dest.display()))?;
        } else {
            link_or_copy(entry.path(), &dest)?;
        }
    }
    Ok(())
}

/// Join a relative path we built ourselves under `root`, refusing anything that could
/// leave it (defence in depth: the parts were checked when the path was built).
fn safe_join(root: &Path, relative: &str) -> Result<PathBuf> {
    if !crate::spec::is_safe_relative_path(relative) {
        bail!("refusing to write outside the output: {relative:?}");
    }
    Ok(root.join(relative))
}

struct Written {
    path: String,
    size: u64,
    md5: String,
    sha256: String,
}

fn write_dist(
    root: &Path,
    live: &Path,
    dist: &DistPlan,
    key: &SigningKey,
    snapshots_url: Option<&str>,
) -> Result<Vec<Written>> {
    let dist_dir = safe_join(root, &format!("dists/{}", dist.dist))?;
    let mut written = Vec::new();
    for component in &dist.components {
        for arch in &dist.architectures {
            let rel = format!("{component}/binary-{arch}");
            let dir = safe_join(&dist_dir, &rel)?;
            std::fs::create_dir_all(dir.join("by-hash/SHA256"))?;
            let entries = dist
                .entries
                .get(&(component.clone(), arch.clone()))
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            let text = packages_text(entries);
            let (gz, xz) = std::thread::scope(|s| {
                let gz = s.spawn(|| gzip(text.as_bytes()));
                let xz = s.spawn(|| xz(text.as_bytes()));
                (
                    gz.join().expect("gzip thread"),
                    xz.join().expect("xz thread"),
                )
            });
            for (name, bytes) in [
                ("Packages", text.into_bytes()),
                ("Packages.gz", gz?),
                ("Packages.xz", xz?),
            ] {
                let sha256 = crate::sha256::hex_digest(&bytes);
                let path = dir.join(name);
                write_file(&path, &bytes)?;
                std::fs::hard_link(&path, dir.join("by-hash/SHA256").join(&sha256))?;
                written.push(Written {
                    path: format!("{rel}/{name}"),
                    size: bytes.len() as u64,
                    md5: hex::encode(Md5::digest(&bytes)),
                    sha256,
                });
            }
        }
    }
    let live_dist = live.join("dists").join(&dist.dist);
    let date = publish_date(&live_dist.join("Release"), dist.date_margin)?;
    let release = release_text(dist, &written, date, snapshots_url);
    write_file(&dist_dir.join("Release"), release.as_bytes())?;
    write_file(
        &dist_dir.join("InRelease"),
        &key.clearsign(release.as_bytes())?,
    )?;
    write_file(
        &dist_dir.join("Release.gpg"),
        &key.sign_detached(release.as_bytes())?,
    )?;
    Ok(written)
}

/// SHA256 of one entry as the Packages file lists it (see `mirror.lock`).
pub fn entry_sha256(entry: &Entry) -> String {
    crate::sha256::hex_digest(packages_text(std::slice::from_ref(entry)).as_bytes())
}

/// The Packages file: entries separated by blank lines, `Filename` replaced by ours.
fn packages_text(entries: &[Entry]) -> String {
    let mut out = String::with_capacity(entries.iter().map(|e| e.paragraph.len() + 2).sum());
    for e in entries {
        for line in e.paragraph.lines() {
            if line.len() >= 9 && line[..9].eq_ignore_ascii_case("filename:") {
                out.push_str("Filename: ");
                out.push_str(&e.pool_path);
            } else {
                out.push_str(line.trim_end_matches('\r'));
            }
            out.push('\n');
        }
        out.push('\n');
    }
    out
}

fn gzip(data: &[u8]) -> Result<Vec<u8>> {
    let mut enc = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::best());
    enc.write_all(data)?;
    Ok(enc.finish()?)
}

fn xz(data: &[u8]) -> Result<Vec<u8>> {
    use liblzma::stream::{Check, Filters, LzmaOptions, Stream};
    // Preset 6 with a dictionary no larger than the data: the same output for files under
    // 8 MiB, but the encoder's tables shrink with it (preset 6 alone allocates ~94 MB).
    let mut options = LzmaOptions::new_preset(6)?;
    options.dict_size(
        (data.len() as u32)
            .next_power_of_two()
            .clamp(1 << 16, 8 << 20),
    );
    let mut filters = Filters::new();
    filters.lzma2(&options);
    let stream = Stream::new_stream_encoder(&filters, Check::Crc64)?;
    let mut enc = liblzma::write::XzEncoder::new_stream(Vec::new(), stream);
    enc.write_all(data)?;
    Ok(enc.finish()?)
}

/// A client holding the previous InRelease may still ask for the previous indices
/// by hash: keep that one generation of by-hash files in the new tree.
fn keep_previous_by_hash(live_dist: &Path, staged_dist: &Path) -> Result<()> {
    let Ok(previous) = std::fs::read_to_string(live_dist.join("Release")) else {
        return Ok(());
    };
    let Ok(paragraph) = crate::deb822::single_paragraph(&previous) else {
        return Ok(());
    };
    let Some(list) = paragraph.get("SHA256") else {
        return Ok(());
    };
    for line in list.lines() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        let [hash, _, path] = parts[..] else { continue };
        let Some((dir, _)) = path.rsplit_once('/') else {
            continue;
        };
        if !crate::spec::is_safe_relative_path(dir) || !hash.bytes().all(|b| b.is_ascii_hexdigit())
        {
            continue;
        }
        let old = live_dist.join(dir).join("by-hash/SHA256").join(hash);
        let new_dir = staged_dist.join(dir).join("by-hash/SHA256");
        let new = new_dir.join(hash);
        if old.is_file() && new_dir.is_dir() && !new.exists() {
            link_or_copy(&old, &new)?;
        }
    }
    Ok(())
}

/// Now less `margin` (a client whose clock lags must not see a Date ahead of it), but never
/// earlier than the previous publish's Date (clients reject going back).
fn publish_date(previous_release: &Path, margin: chrono::Duration) -> Result<DateTime<Utc>> {
    let now = Utc::now() - margin;
    let Ok(text) = std::fs::read_to_string(previous_release) else {
        return Ok(now);
    };
    let previous = crate::deb822::single_paragraph(&text)
        .ok()
        .and_then(|p| p.get("Date").and_then(|d| parse_date(d).ok()));
    Ok(match previous {
        Some(p) if p > now => p,
        _ => now,
    })
}

fn release_text(
    dist: &DistPlan,
    written: &[Written],
    date: DateTime<Utc>,
    snapshots_url: Option<&str>,
) -> String {
    let mut out = String::new();
    for (name, value) in &dist.header {
        out.push_str(&format!("{name}: {value}\n"));
    }
    if let Some(url) = snapshots_url {
        out.push_str(&format!("Snapshots: {url}\n"));
    }
    out.push_str(&format!("Date: {}\n", format_date(date)));
    if let Some(valid_for) = dist.valid_for {
        out.push_str(&format!("Valid-Until: {}\n", format_date(date + valid_for)));
    }
    out.push_str(&format!(
        "Architectures: {}\n",
        dist.architectures.join(" ")
    ));
    out.push_str(&format!("Components: {}\n", dist.components.join(" ")));
    out.push_str("Acquire-By-Hash: yes\n");
    out.push_str("MD5Sum:\n");
    for w in written {
        out.push_str(&format!(" {} {:>16} {}\n", w.md5, w.size, w.path));
    }
    out.push_str("SHA256:\n");
    for w in written {
        out.push_str(&format!(" {} {:>16} {}\n", w.sha256, w.size, w.path));
    }
    out
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

/// Switch staged trees into place: each prefix with one atomic rename.
pub fn switch(output: &Path, staged: Vec<Staged>) -> Result<()> {
    sync_filesystem(output)?;
    for s in staged {
        let staged_path = s.dir.keep();
        switch_dir(output, &s.prefix, &staged_path)?;
    }
    Ok(())
}

/// Put the complete tree at `staged_path` (on the output's filesystem, already synced) in
/// place of `<output>/<prefix>` with one atomic rename; the previous tree is removed.
pub fn switch_dir(output: &Path, prefix: &str, staged_path: &Path) -> Result<()> {
    let live = output.join(prefix);
    if live.exists() {
        exchange(staged_path, &live)?;
        // `staged_path` now holds the previous tree.
        std::fs::remove_dir_all(staged_path)
            .with_context(|| format!("removing the previous tree {}", staged_path.display()))?;
    } else {
        std::fs::rename(staged_path, &live)
            .with_context(|| format!("moving the new tree into {}", live.display()))?;
    }
    tracing::info!("published {}", live.display());
    Ok(())
}

/// Wipe protection: a plan that would publish fewer than half of the packages of the live
/// tree it replaces (an emptied packages.txt, an upstream that lost a component) is refused
/// unless the operator allows it; checked before anything is downloaded.
pub fn refuse_shrink(output: &Path, plans: &[PrefixPlan], allow_shrink: bool) -> Result<()> {
    for plan in plans {
        let Some((_, live)) = live_fingerprint(output, &plan.prefix) else {
            continue;
        };
        let new = plan.pool.len();
        if new * 2 >= live {
            continue;
        }
        let gone = live - new;
        if allow_shrink {
            tracing::warn!(
                "{}: publishing {new} packages where the live tree has {live} ({gone} go; allowed by --allow-shrink)",
                plan.prefix
            );
        } else {
            anyhow::bail!(
                "{}: this build would publish {new} packages where the live tree has {live}: \
                 {gone} would go (more than half). Refusing to shrink the mirror; if this is \
                 meant (sources/{}/ was cut down), build again with --allow-shrink",
                plan.prefix,
                plan.prefix
            );
        }
    }
    Ok(())
}

/// The dists of `prefix`'s live tree whose `Valid-Until` is within 20% of its validity (or
/// past): (dist, Valid-Until). A build re-signs them even when nothing else changed.
pub fn expiring_dists(output: &Path, prefix: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Ok(dirs) = std::fs::read_dir(output.join(prefix).join("dists")) else {
        return out;
    };
    let now = Utc::now();
    for entry in dirs.flatten() {
        let Ok(text) = std::fs::read_to_string(entry.path().join("Release")) else {
            continue;
        };
        let Ok(p) = crate::deb822::single_paragraph(&text) else {
            continue;
        };
        let date = p.get("Date").and_then(|d| parse_date(d).ok());
        let until = p.get("Valid-Until").and_then(|d| parse_date(d).ok());
        if let (Some(date), Some(until)) = (date, until)
            && until - now < (until - date) / 5
        {
            out.push((
                entry.file_name().to_string_lossy().into_owned(),
                format_date(until),
            ));
        }
    }
    out.sort();
    out
}

/// The fingerprint and package count recorded in the live tree of `prefix`, if any.
pub fn live_fingerprint(output: &Path, prefix: &str) -> Option<(String, usize)> {
    let live = output.join(prefix);
    // A tree without its signed Release is not worth keeping, whatever it says.
    if !live.join("dists").is_dir() {
        return None;
    }
    let text = std::fs::read_to_string(live.join(FINGERPRINT_NAME)).ok()?;
    let (fp, count) = text.trim().split_once(' ')?;
    Some((fp.to_owned(), count.parse().ok()?))
}

/// Remove staging directories left by killed runs (the caller holds the output lock).
pub fn remove_stale_staging(output: &Path) -> Result<()> {
    for entry in std::fs::read_dir(output)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with(".staging-") {
            std::fs::remove_dir_all(entry.path())
                .with_context(|| format!("removing stale {}", entry.path().display()))?;
        }
    }
    Ok(())
}

fn exchange(a: &Path, b: &Path) -> Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let ca = std::ffi::CString::new(a.as_os_str().as_bytes())?;
    let cb = std::ffi::CString::new(b.as_os_str().as_bytes())?;
    // SAFETY: both are valid NUL-terminated paths; renameat2 does not keep them.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            ca.as_ptr(),
            libc::AT_FDCWD,
            cb.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        let hint = if err.raw_os_error() == Some(libc::EXDEV) {
            " (overlayfs cannot exchange a directory of a lower image layer: copy the output \
             tree within this layer first, e.g. `cp -a`)"
        } else {
            ""
        };
        return Err(anyhow!(err)).with_context(|| {
            format!(
                "atomically exchanging {} with {}{hint}",
                a.display(),
                b.display()
            )
        });
    }
    Ok(())
}

/// Flush the filesystem holding `path` (before a switch makes what was written there live).
pub fn sync_filesystem(path: &Path) -> Result<()> {
    let dir = std::fs::File::open(path)?;
    use std::os::fd::AsRawFd;
    // SAFETY: a valid open file descriptor.
    let rc = unsafe { libc::syncfs(dir.as_raw_fd()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error()).context("syncing the output filesystem");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packages_text_replaces_only_filename() {
        let entries = [Entry {
            paragraph: "Package: a\nVersion: 1\nFilename: ../../evil.deb\nDescription: x\n y"
                .into(),
            pool_path: "pool/main/a/a/a_1_all.deb".into(),
        }];
        assert_eq!(
            packages_text(&entries),
            "Package: a\nVersion: 1\nFilename: pool/main/a/a/a_1_all.deb\nDescription: x\n y\n\n"
        );
    }

    #[test]
    fn gzip_is_deterministic() {
        assert_eq!(gzip(b"abc").unwrap(), gzip(b"abc").unwrap());
    }
}
