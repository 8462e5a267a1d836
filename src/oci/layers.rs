//! The published tree as image layers, under `srv/`: the pool cut into content-stable
//! layers, and one small layer with everything else (dists, snapshots, keyrings, locks).
//!
//! A pool layer's bytes depend only on the pool files in it: entries sorted by path, owner
//! 0:0, fixed modes and mtime, GNU headers. The cut falls after a file when a hash of its
//! path says so, with a probability proportional to its size (expected layer size: the
//! target): a boundary never depends on a neighbour, so a build that adds, drops or
//! replaces a few packages changes only the layers those packages fall into, and every
//! other layer keeps its digest and is not uploaded again.

use anyhow::{Context, Result, bail};
use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Where the tree is in the image (nginx's root).
pub const ROOT: &str = "srv";

/// What a layer holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerKind {
    /// `etc/nginx/nginx.conf`.
    Nginx,
    /// Part of the pool.
    Pool,
    /// dists/, snapshots/, keyrings, locks: what changes on every publish.
    Tree,
}

impl LayerKind {
    /// The name in annotations and history (`io.mini-mirror.layer`).
    pub fn as_str(self) -> &'static str {
        match self {
            LayerKind::Nginx => "nginx",
            LayerKind::Pool => "pool",
            LayerKind::Tree => "tree",
        }
    }

    /// The kind a name stands for.
    pub fn parse(s: &str) -> Option<LayerKind> {
        match s {
            "nginx" => Some(LayerKind::Nginx),
            "pool" => Some(LayerKind::Pool),
            "tree" => Some(LayerKind::Tree),
            _ => None,
        }
    }
}

#[derive(Clone, Debug)]
enum Item {
    Dir,
    File {
        size: u64,
        mtime: u64,
    },
    Symlink(String),
    /// A hard link to an earlier path of the same layer.
    Link(String),
}

/// One layer to write: its entries (paths relative to the tree root).
#[derive(Clone, Debug)]
pub struct LayerPlan {
    /// What it holds.
    pub kind: LayerKind,
    entries: Vec<(String, Item)>,
    /// Bytes of file content in it.
    pub content_bytes: u64,
}

/// The nginx configuration layer (the same in every image of a version).
pub fn nginx_layer() -> Vec<u8> {
    const CONF: &[u8] = include_bytes!("../../nginx/mini-mirror.conf");
    let mut tar = tar::Builder::new(Vec::new());
    for d in ["etc/", "etc/nginx/"] {
        let mut h = super::layout::header(0, tar::EntryType::Directory, 0o755);
        tar.append_data(&mut h, d, std::io::empty())
            .expect("in memory");
    }
    let mut h = super::layout::header(CONF.len() as u64, tar::EntryType::Regular, 0o644);
    tar.append_data(&mut h, "etc/nginx/nginx.conf", CONF)
        .expect("in memory");
    tar.into_inner().expect("in memory")
}

/// The target pool layer size for a pool of `pool_bytes`: 32 MiB, doubled until the pool
/// makes at most 96 layers (registries and overlayfs limit a manifest's layers).
pub fn default_layer_size(pool_bytes: u64) -> u64 {
    let mut target = 32u64 << 20;
    while pool_bytes / target > 96 {
        target *= 2;
    }
    target
}

/// Whether the pool is cut after this file.
fn boundary_after(path: &str, size: u64, target: u64) -> bool {
    let h = crate::sha256::hex_digest(path.as_bytes());
    let x = u64::from_str_radix(&h[..16], 16).expect("hex");
    (x as u128) * (target as u128) < (size as u128) << 64
}

/// Cut the published tree at `output` into layers (pool layers, then the tree layer);
/// `target` is the expected pool layer size (None: [`default_layer_size`]).
pub fn plan(output: &Path, target: Option<u64>) -> Result<Vec<LayerPlan>> {
    let mut pool: Vec<(String, Item)> = Vec::new();
    let mut tree: Vec<(String, Item)> = vec![(String::new(), Item::Dir)];
    let mut seen_inodes: HashMap<(u64, u64), String> = HashMap::new();
    let walker = walkdir::WalkDir::new(output)
        .min_depth(1)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| {
            let name = e.file_name().to_string_lossy();
            !(e.depth() == 1 && (name.starts_with(".staging-") || name == ".mini-mirror.lock"))
        });
    for entry in walker {
        let entry = entry.with_context(|| format!("reading {}", output.display()))?;
        let rel = entry
            .path()
            .strip_prefix(output)
            .expect("under output")
            .to_str()
            .with_context(|| format!("{}: not a UTF-8 path", entry.path().display()))?
            .to_owned();
        let meta = entry.path().symlink_metadata()?;
        let in_pool = rel.split('/').nth(1) == Some("pool") && rel.split('/').count() > 2;
        let ft = meta.file_type();
        let item = if ft.is_dir() {
            Item::Dir
        } else if ft.is_symlink() {
            let target = std::fs::read_link(entry.path())?;
            Item::Symlink(
                target
                    .to_str()
                    .context("a non-UTF-8 link target")?
                    .to_owned(),
            )
        } else if ft.is_file() {
            let mtime = if in_pool {
                0
            } else {
                meta.mtime().max(0) as u64
            };
            if !in_pool && meta.nlink() > 1 {
                let key = (meta.dev(), meta.ino());
                if let Some(first) = seen_inodes.get(&key) {
                    tree.push((rel, Item::Link(first.clone())));
                    continue;
                }
                seen_inodes.insert(key, rel.clone());
            }
            Item::File {
                size: meta.len(),
                mtime,
            }
        } else {
            bail!(
                "{}: not a file, directory or symlink",
                entry.path().display()
            );
        };
        if in_pool && !matches!(item, Item::Dir) {
            pool.push((rel, item));
        } else if !in_pool || rel.split('/').count() <= 2 {
            tree.push((rel, item));
        } else {
            // Pool directories go with the files in them (below).
        }
    }
    if pool.is_empty() && tree.len() <= 1 {
        bail!("{}: no published tree to put in an image", output.display());
    }
    let pool_bytes: u64 = pool
        .iter()
        .map(|(_, i)| match i {
            Item::File { size, .. } => *size,
            _ => 0,
        })
        .sum();
    let target = target
        .unwrap_or_else(|| default_layer_size(pool_bytes))
        .max(1);
    let mut layers = Vec::new();
    let mut current = Vec::new();
    let mut bytes = 0;
    let n = pool.len();
    for (i, (rel, item)) in pool.into_iter().enumerate() {
        let size = match item {
            Item::File { size, .. } => size,
            _ => 0,
        };
        let cut = boundary_after(&rel, size, target);
        current.push((rel, item));
        bytes += size;
        if cut || i + 1 == n {
            layers.push(with_parents(
                LayerKind::Pool,
                std::mem::take(&mut current),
                bytes,
            ));
            bytes = 0;
        }
    }
    let tree_bytes = tree
        .iter()
        .map(|(_, i)| match i {
            Item::File { size, .. } => *size,
            _ => 0,
        })
        .sum();
    layers.push(LayerPlan {
        kind: LayerKind::Tree,
        entries: tree,
        content_bytes: tree_bytes,
    });
    Ok(layers)
}

/// A pool layer's files with the directories above them (fixed metadata).
fn with_parents(kind: LayerKind, files: Vec<(String, Item)>, bytes: u64) -> LayerPlan {
    let mut entries: Vec<(String, Item)> = Vec::new();
    let mut dirs = std::collections::BTreeSet::new();
    for (rel, _) in &files {
        let mut p = rel.as_str();
        while let Some((parent, _)) = p.rsplit_once('/') {
            dirs.insert(parent.to_owned());
            p = parent;
        }
    }
    entries.push((String::new(), Item::Dir));
    entries.extend(dirs.into_iter().map(|d| (d, Item::Dir)));
    entries.extend(files);
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    LayerPlan {
        kind,
        entries,
        content_bytes: bytes,
    }
}

impl LayerPlan {
    /// Write the layer's tar to `out`, reading file contents from `output`; fails when a
    /// file changed size since it was planned (a build running meanwhile).
    pub fn write(&self, output: &Path, out: impl Write) -> Result<()> {
        let mut tar = tar::Builder::new(out);
        tar.mode(tar::HeaderMode::Deterministic);
        let fixed_dirs = self.kind == LayerKind::Pool;
        for (rel, item) in &self.entries {
            let name = if rel.is_empty() {
                format!("{ROOT}/")
            } else {
                format!("{ROOT}/{rel}")
            };
            match item {
                Item::Dir => {
                    let mut h = super::layout::header(0, tar::EntryType::Directory, 0o755);
                    if !fixed_dirs && !rel.is_empty() {
                        let m = std::fs::symlink_metadata(output.join(rel))?;
                        h.set_mtime(m.mtime().max(0) as u64);
                    }
                    let name = if name.ends_with('/') {
                        name
                    } else {
                        format!("{name}/")
                    };
                    tar.append_data(&mut h, name, std::io::empty())?;
                }
                Item::File { size, mtime } => {
                    let path = output.join(rel);
                    let f = std::fs::File::open(&path)
                        .with_context(|| format!("reading {}", path.display()))?;
                    if f.metadata()?.len() != *size {
                        bail!(
                            "{} changed while the image was made (a build running?)",
                            path.display()
                        );
                    }
                    let mut h = super::layout::header(*size, tar::EntryType::Regular, 0o644);
                    h.set_mtime(*mtime);
                    tar.append_data(&mut h, &name, f)?;
                }
                Item::Symlink(target) => {
                    let mut h = super::layout::header(0, tar::EntryType::Symlink, 0o777);
                    tar.append_link(&mut h, &name, target)?;
                }
                Item::Link(first) => {
                    let mut h = super::layout::header(0, tar::EntryType::Link, 0o644);
                    tar.append_link(&mut h, &name, format!("{ROOT}/{first}"))?;
                }
            }
        }
        tar.into_inner()?.flush()?;
        Ok(())
    }

    /// The layer's digest and size, computed without storing it.
    pub fn digest(&self, output: &Path) -> Result<(String, u64)> {
        let mut w = HashingWriter::default();
        self.write(output, &mut w)?;
        Ok((format!("sha256:{}", w.hasher.hex()), w.len))
    }

    /// The newest modification time of its files (seconds since the epoch).
    pub fn newest_mtime(&self) -> u64 {
        self.entries
            .iter()
            .filter_map(|(_, i)| match i {
                Item::File { mtime, .. } => Some(*mtime),
                _ => None,
            })
            .max()
            .unwrap_or(0)
    }

    /// Number of files in it.
    pub fn files(&self) -> usize {
        self.entries
            .iter()
            .filter(|(_, i)| matches!(i, Item::File { .. }))
            .count()
    }
}

/// Counts and hashes what is written to it.
#[derive(Default)]
pub struct HashingWriter {
    /// The running hash.
    pub hasher: crate::sha256::Sha256,
    /// Bytes written.
    pub len: u64,
}

impl Write for HashingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.hasher.update(buf);
        self.len += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Write `plan` into a new temporary file in `dir`, hashing it; (file, digest, size).
pub fn write_to_temp(
    plan: &LayerPlan,
    output: &Path,
    dir: &Path,
) -> Result<(tempfile::TempPath, String, u64)> {
    let tmp = tempfile::Builder::new().prefix("layer-").tempfile_in(dir)?;
    struct Tee {
        file: std::io::BufWriter<std::fs::File>,
        hash: HashingWriter,
    }
    impl Write for Tee {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.file.write_all(buf)?;
            self.hash.write(buf)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            self.file.flush()
        }
    }
    let mut tee = Tee {
        file: std::io::BufWriter::with_capacity(1 << 20, tmp.reopen()?),
        hash: HashingWriter::default(),
    };
    plan.write(output, &mut tee)?;
    tee.flush()?;
    let Tee { file, hash } = tee;
    drop(file);
    let (digest, len) = (format!("sha256:{}", hash.hasher.hex()), hash.len);
    Ok((tmp.into_temp_path(), digest, len))
}

/// The directory a path from the image belongs to under the tree root, or None for what is
/// not the tree (`srv/`-relative, checked: no absolute paths, no `..`).
pub fn tree_path(name: &Path) -> Result<Option<PathBuf>> {
    use std::path::Component;
    let mut out = PathBuf::new();
    let mut comps = name.components();
    match comps.next() {
        Some(Component::Normal(c)) if c == ROOT => {}
        Some(Component::CurDir) => return tree_path(comps.as_path()),
        Some(Component::Normal(_)) => return Ok(None),
        _ => bail!(
            "refusing layer entry {}: not a relative path",
            name.display()
        ),
    }
    for c in comps {
        match c {
            Component::Normal(c) => out.push(c),
            Component::CurDir => {}
            _ => bail!(
                "refusing layer entry {}: it leaves the tree",
                name.display()
            ),
        }
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, usize)]) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for (p, n) in files {
            let path = d.path().join(p);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, vec![b'x'; *n]).unwrap();
        }
        d
    }

    #[test]
    fn pool_layers_are_content_stable() {
        let mut files: Vec<(String, usize)> = (0..200)
            .map(|i| (format!("p/pool/main/p{i:03}/p{i:03}_1_all.deb"), 1000 + i))
            .collect();
        files.push(("p/dists/s/InRelease".into(), 10));
        let refs: Vec<(&str, usize)> = files.iter().map(|(p, n)| (p.as_str(), *n)).collect();
        let a = tree(&refs);
        // One package replaced by a new version.
        files[100].0 = "p/pool/main/p100/p100_2_all.deb".into();
        let refs: Vec<(&str, usize)> = files.iter().map(|(p, n)| (p.as_str(), *n)).collect();
        let b = tree(&refs);
        let digests = |d: &Path| -> Vec<String> {
            plan(d, Some(20_000))
                .unwrap()
                .iter()
                .filter(|l| l.kind == LayerKind::Pool)
                .map(|l| l.digest(d).unwrap().0)
                .collect()
        };
        let (da, db) = (digests(a.path()), digests(b.path()));
        assert!(da.len() >= 5, "{} pool layers", da.len());
        let changed = db.iter().filter(|d| !da.contains(d)).count();
        assert!(changed <= 2, "{changed} of {} layers changed", db.len());
        // Deterministic: the same tree gives the same digests.
        assert_eq!(da, digests(a.path()));
    }

    #[test]
    fn tree_paths_stay_inside() {
        assert_eq!(
            tree_path(Path::new("srv/p/dists")).unwrap(),
            Some(PathBuf::from("p/dists"))
        );
        assert_eq!(
            tree_path(Path::new("./srv/x")).unwrap(),
            Some(PathBuf::from("x"))
        );
        assert_eq!(tree_path(Path::new("etc/nginx/nginx.conf")).unwrap(), None);
        assert!(tree_path(Path::new("srv/../etc/passwd")).is_err());
        assert!(tree_path(Path::new("/srv/x")).is_err());
    }
}
