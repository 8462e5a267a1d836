//! Checks a whole published tree against its signatures, the way apt would trust it: each
//! dist's InRelease (and Release.gpg) verified with the given keyring, every file under
//! dists/ listed with its size and SHA256 in that signed Release (by-hash files named by
//! their own hash), and every pool file named, with size and SHA256, by a Packages index so
//! verified. A file no signed index vouches for is refused. Used on trees that arrive from
//! elsewhere (`pull`) before they are switched into place.

use crate::openpgp::{self, Keyring};
use crate::publish::KEYRING_NAME;
use anyhow::{Context, Result, anyhow, bail};
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// What the tree's signatures are checked against.
pub enum Trust {
    /// A keyring file the operator has (`--keyring FILE`).
    Keyring(PathBuf),
    /// Each prefix's own published keyring, accepted only with this SHA256
    /// (`--keyring-sha256`).
    PinnedKeyring(String),
}

/// What was checked.
#[derive(Debug, Default, serde::Serialize)]
pub struct TreeReport {
    /// Prefixes (published trees).
    pub prefixes: Vec<String>,
    /// Signed dists (snapshots' included).
    pub dists: usize,
    /// Pool files checked.
    pub pool_files: usize,
}

/// Verify every prefix under `root`.
pub fn verify_tree(root: &Path, trust: &Trust) -> Result<TreeReport> {
    let fixed = match trust {
        Trust::Keyring(path) => Some(
            std::fs::read(path)
                .map_err(anyhow::Error::from)
                .and_then(|b| Keyring::from_bytes(&b))
                .with_context(|| format!("keyring {}", path.display()))?,
        ),
        Trust::PinnedKeyring(_) => None,
    };
    let mut report = TreeReport::default();
    let mut names: Vec<String> = std::fs::read_dir(root)
        .with_context(|| format!("reading {}", root.display()))?
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    if names.is_empty() {
        bail!("{}: no published tree in it", root.display());
    }
    for prefix in names {
        let dir = root.join(&prefix);
        let keyring = match (&fixed, trust) {
            (Some(k), _) => k.clone(),
            (None, Trust::PinnedKeyring(want)) => {
                let path = dir.join(KEYRING_NAME);
                let bytes = std::fs::read(&path)
                    .with_context(|| format!("{prefix}: reading its keyring {}", path.display()))?;
                let got = crate::sha256::hex_digest(&bytes);
                if !got.eq_ignore_ascii_case(want) {
                    bail!(
                        "{prefix}: the published keyring {KEYRING_NAME} has SHA256 {got}, not the pinned {want}: refusing the tree"
                    );
                }
                Keyring::from_bytes(&bytes).with_context(|| path.display().to_string())?
            }
            (None, Trust::Keyring(_)) => unreachable!("read above"),
        };
        let (dists, files) =
            verify_prefix(&dir, &keyring).with_context(|| format!("verifying prefix {prefix}"))?;
        report.dists += dists;
        report.pool_files += files;
        report.prefixes.push(prefix);
    }
    Ok(report)
}

/// The dist directories of a prefix: its own and its snapshots'.
fn dist_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut add = |dists: PathBuf| {
        if let Ok(rd) = std::fs::read_dir(dists) {
            let mut v: Vec<PathBuf> = rd
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect();
            v.sort();
            out.extend(v);
        }
    };
    add(dir.join("dists"));
    if let Ok(rd) = std::fs::read_dir(dir.join(crate::snapshot::DIR)) {
        let mut snaps: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
        snaps.sort();
        for s in snaps {
            add(s.join("dists"));
        }
    }
    out
}

/// Verify one prefix: (dists, pool files).
fn verify_prefix(dir: &Path, keyring: &Keyring) -> Result<(usize, usize)> {
    let dists = dist_dirs(dir);
    if dists.is_empty() {
        bail!("no dists/ in {}", dir.display());
    }
    // pool path → (size, sha256), from every verified Packages index.
    let mut expected: HashMap<String, (u64, String)> = HashMap::new();
    for dist in &dists {
        let what = dist.display().to_string();
        let inrelease = std::fs::read(dist.join("InRelease"))
            .with_context(|| format!("{what}: no InRelease"))?;
        let (text, signed_by) =
            openpgp::verify_cleartext(&inrelease, keyring).with_context(|| {
                format!("{what}/InRelease: the signature does not verify with the given keyring")
            })?;
        if let (Ok(release), Ok(sig)) = (
            std::fs::read(dist.join("Release")),
            std::fs::read(dist.join("Release.gpg")),
        ) {
            openpgp::verify_detached(&release, &sig, keyring)
                .with_context(|| format!("{what}/Release.gpg: does not verify"))?;
            if release != text {
                bail!("{what}: Release differs from the text InRelease signs");
            }
        }
        let text = String::from_utf8(text).context("InRelease is not UTF-8")?;
        let release = crate::upstream::parse_release(what.clone(), text, signed_by)
            .with_context(|| format!("{what}/InRelease"))?;
        for entry in walkdir::WalkDir::new(dist).sort_by_file_name() {
            let entry = entry?;
            if !entry.file_type().is_file() {
                if entry.file_type().is_symlink() {
                    bail!("{}: a symlink under dists/", entry.path().display());
                }
                continue;
            }
            let rel = entry
                .path()
                .strip_prefix(dist)
                .expect("below")
                .to_string_lossy()
                .into_owned();
            if matches!(rel.as_str(), "InRelease" | "Release" | "Release.gpg") {
                continue;
            }
            let got = crate::sha256::hex_digest_file(entry.path())?;
            if let Some((_, name)) = rel.split_once("/by-hash/SHA256/") {
                if name != got {
                    bail!("{what}/{rel}: by-hash file whose content has SHA256 {got}");
                }
                continue;
            }
            let listed = release.files.get(&rel).ok_or_else(|| {
                anyhow!("{what}/{rel}: not listed in the signed Release: refusing it")
            })?;
            let size = entry.metadata()?.len();
            if size != listed.size || got != listed.sha256 {
                bail!(
                    "{what}/{rel}: size {size} and SHA256 {got}, but the signed Release says {} and {}",
                    listed.size,
                    listed.sha256
                );
            }
        }
        // The Packages indices present, one variant per directory.
        let mut index_dirs: HashMap<&str, Vec<&str>> = HashMap::new();
        for path in release.files.keys() {
            if let Some(d) = ["Packages", "Packages.xz", "Packages.gz"]
                .iter()
                .find_map(|n| {
                    path.strip_suffix(n)
                        .filter(|d| d.is_empty() || d.ends_with('/'))
                })
            {
                index_dirs.entry(d).or_default().push(path);
            }
        }
        for (_, mut variants) in index_dirs {
            variants.sort_by_key(|p| !p.ends_with("Packages"));
            let Some(path) = variants.iter().find(|p| dist.join(p).is_file()) else {
                continue;
            };
            let text = read_index(&dist.join(path))?;
            for p in crate::deb822::paragraphs(&text) {
                let p = p.with_context(|| format!("{what}/{path}"))?;
                let (Some(file), Some(size), Some(sha)) =
                    (p.get("Filename"), p.get("Size"), p.get("SHA256"))
                else {
                    bail!("{what}/{path}: an entry without Filename, Size or SHA256");
                };
                let size: u64 = size
                    .parse()
                    .with_context(|| format!("{what}/{path}: Size {size:?}"))?;
                if !file.starts_with("pool/") || file.split('/').any(|c| c == ".." || c.is_empty())
                {
                    bail!("{what}/{path}: Filename {file:?} is not a path inside pool/");
                }
                let sha = sha.to_ascii_lowercase();
                if let Some(prev) = expected.insert(file.to_owned(), (size, sha.clone()))
                    && prev != (size, sha)
                {
                    bail!("{file}: two signed indices give it different sizes or hashes");
                }
            }
        }
    }
    let pool = dir.join("pool");
    let mut checked = 0;
    for entry in walkdir::WalkDir::new(&pool).sort_by_file_name() {
        let entry = match entry {
            Ok(e) => e,
            Err(_) if !pool.exists() => break,
            Err(e) => return Err(e.into()),
        };
        if entry.file_type().is_dir() {
            continue;
        }
        let rel = format!(
            "pool/{}",
            entry
                .path()
                .strip_prefix(&pool)
                .expect("below")
                .to_string_lossy()
        );
        if !entry.file_type().is_file() {
            bail!("{rel}: not a regular file");
        }
        let Some((size, sha)) = expected.remove(&rel) else {
            bail!("{rel}: no signed Packages index names it: refusing it");
        };
        let got = crate::sha256::hex_digest_file(entry.path())?;
        if entry.metadata()?.len() != size || got != sha {
            bail!("{rel}: SHA256 {got}, but the signed index says {sha} (tampered or corrupt)");
        }
        checked += 1;
    }
    if let Some(missing) = expected.keys().min() {
        bail!(
            "{missing}: named by a signed index but missing from the pool ({} missing)",
            expected.len()
        );
    }
    Ok((dists.len(), checked))
}

fn read_index(path: &Path) -> Result<String> {
    let f = std::fs::File::open(path)?;
    let mut text = String::new();
    let name = path.to_string_lossy();
    let r: Box<dyn Read> = if name.ends_with(".xz") {
        Box::new(liblzma::read::XzDecoder::new(f))
    } else if name.ends_with(".gz") {
        Box::new(flate2::read::GzDecoder::new(f))
    } else {
        Box::new(f)
    };
    let mut r = r;
    r.read_to_string(&mut text)
        .with_context(|| format!("reading {}", path.display()))?;
    Ok(text)
}
