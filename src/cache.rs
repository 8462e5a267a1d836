//! The download cache shared across builds: a content-addressed store of verified
//! files (`blobs/sha256/<ab>/<hash>`), plus the last upstream InRelease per URL for
//! conditional requests. A file enters the store only after its hash was checked,
//! and under its hash: upstream names never become cache paths.

use anyhow::{Context, Result, bail};
use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// An open, locked cache directory.
pub struct Cache {
    root: PathBuf,
    _lock: File,
}

/// A previously fetched upstream file with its HTTP validators.
pub struct CachedRelease {
    /// The body as last received (it is verified again on every use).
    pub body: Vec<u8>,
    /// `ETag` of that response.
    pub etag: Option<String>,
    /// `Last-Modified` of that response.
    pub last_modified: Option<String>,
}

/// The signed bytes of an accepted Release, as they came, so that they can be verified
/// again when a later build falls back to them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignedRelease {
    /// A clearsigned InRelease.
    InRelease(Vec<u8>),
    /// A Release with its detached Release.gpg.
    Detached {
        /// `Release`.
        release: Vec<u8>,
        /// `Release.gpg`.
        signature: Vec<u8>,
    },
}

/// The default cache: `/var/cache/mini-mirror` for root, `~/.cache/mini-mirror` otherwise.
pub fn default_dir() -> PathBuf {
    if is_root() {
        PathBuf::from("/var/cache/mini-mirror")
    } else {
        home_dir().join(".cache/mini-mirror")
    }
}

pub(crate) fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

pub(crate) fn home_dir() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp"))
}

/// Take an exclusive lock on `path` (created if needed), telling the user if we must wait.
pub fn lock_file(path: &Path) -> Result<File> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_context(|| format!("opening lock file {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            tracing::warn!(
                "waiting for another mini-mirror run to release {}",
                path.display()
            );
            file.lock()
                .with_context(|| format!("locking {}", path.display()))?;
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("locking {}", path.display()));
        }
    }
    Ok(file)
}

impl Cache {
    /// Open (creating) and lock the cache at `root`.
    pub fn open(root: &Path) -> Result<Cache> {
        for sub in ["blobs/sha256", "tmp", "release"] {
            std::fs::create_dir_all(root.join(sub)).with_context(|| {
                format!("creating cache directory {}", root.join(sub).display())
            })?;
        }
        let lock = lock_file(&root.join(".lock"))?;
        // Leftovers of a killed run are never trusted: they were not verified.
        for entry in std::fs::read_dir(root.join("tmp"))? {
            let _ = std::fs::remove_file(entry?.path());
        }
        Ok(Cache {
            root: root.to_path_buf(),
            _lock: lock,
        })
    }

    /// The cache directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the verified file with this SHA256 lives (whether or not it exists yet).
    pub fn blob_path(&self, sha256: &str) -> Result<PathBuf> {
        if sha256.len() != 64
            || !sha256
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        {
            bail!("invalid SHA256 {sha256:?}");
        }
        Ok(self
            .root
            .join("blobs/sha256")
            .join(&sha256[..2])
            .join(sha256))
    }

    /// Whether a verified file with this hash and size is present.
    pub fn has_blob(&self, sha256: &str, size: u64) -> bool {
        self.blob_path(sha256)
            .ok()
            .and_then(|p| std::fs::metadata(p).ok())
            .is_some_and(|m| m.len() == size)
    }

    /// Where temporary files of this run go (emptied when the cache is opened).
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// A new temporary file inside the cache (same filesystem as the store).
    pub fn temp_path(&self) -> Result<tempfile::TempPath> {
        Ok(tempfile::Builder::new()
            .prefix("dl-")
            .tempfile_in(self.root.join("tmp"))
            .context("creating a temporary file in the cache")?
            .into_temp_path())
    }

    /// Move an already verified temporary file into the store under its hash.
    pub fn insert_verified(&self, tmp: tempfile::TempPath, sha256: &str) -> Result<PathBuf> {
        let dest = self.blob_path(sha256)?;
        std::fs::create_dir_all(dest.parent().expect("blob path has a parent"))?;
        // Published trees hard-link these files: they must be world-readable (nginx).
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644))?;
        tmp.persist(&dest)
            .with_context(|| format!("moving a download into {}", dest.display()))?;
        Ok(dest)
    }

    fn release_dir(&self, url: &str) -> PathBuf {
        self.root
            .join("release")
            .join(crate::sha256::hex_digest(url.as_bytes()))
    }

    /// The last body received from `url` (an InRelease), if any.
    pub fn load_release(&self, url: &str) -> Option<CachedRelease> {
        let dir = self.release_dir(url);
        let body = std::fs::read(dir.join("body")).ok()?;
        let meta = std::fs::read_to_string(dir.join("validators")).unwrap_or_default();
        let mut lines = meta.lines();
        let non_empty = |s: Option<&str>| s.filter(|s| !s.is_empty()).map(str::to_owned);
        Some(CachedRelease {
            body,
            etag: non_empty(lines.next()),
            last_modified: non_empty(lines.next()),
        })
    }

    /// The Date of the Release last accepted from `dist_url`, as written in it.
    pub fn load_accepted_date(&self, dist_url: &str) -> Option<String> {
        std::fs::read_to_string(self.release_dir(dist_url).join("accepted-date")).ok()
    }

    /// The signed Release accepted from `dist_url` on a previous build (to be verified
    /// again before use).
    pub fn load_accepted_release(&self, dist_url: &str) -> Option<SignedRelease> {
        load_signed(&self.release_dir(dist_url))
    }

    /// Remember the signed Release just accepted from `dist_url`, replacing the last one.
    pub fn store_accepted_release(&self, dist_url: &str, signed: &SignedRelease) -> Result<()> {
        self.store_signed(&self.release_dir(dist_url), signed)
    }

    fn by_hash_dir(&self, text_sha256: &str) -> Result<PathBuf> {
        let blob = self.blob_path(text_sha256)?; // checks the hash's form
        Ok(self
            .root
            .join("releases")
            .join(blob.file_name().expect("named")))
    }

    /// Keep a verified signed Release under the SHA256 of its text (what `mirror.lock`
    /// names), so that `build --locked` finds it after upstream has moved on.
    pub fn store_release_by_hash(&self, text_sha256: &str, signed: &SignedRelease) -> Result<()> {
        self.store_signed(&self.by_hash_dir(text_sha256)?, signed)
    }

    /// The signed Release kept under the SHA256 of its text, if any (to be verified again).
    pub fn load_release_by_hash(&self, text_sha256: &str) -> Option<SignedRelease> {
        load_signed(&self.by_hash_dir(text_sha256).ok()?)
    }

    fn store_signed(&self, dir: &Path, signed: &SignedRelease) -> Result<()> {
        std::fs::create_dir_all(dir)?;
        let put = |name: &str, bytes: &[u8]| -> Result<()> {
            let tmp = self.temp_path()?;
            std::fs::write(&tmp, bytes)?;
            tmp.persist(dir.join(name))?;
            Ok(())
        };
        match signed {
            SignedRelease::InRelease(body) => {
                put("accepted-inrelease", body)?;
                let _ = std::fs::remove_file(dir.join("accepted-release"));
                let _ = std::fs::remove_file(dir.join("accepted-release.gpg"));
            }
            SignedRelease::Detached { release, signature } => {
                let _ = std::fs::remove_file(dir.join("accepted-inrelease"));
                put("accepted-release.gpg", signature)?;
                put("accepted-release", release)?;
            }
        }
        Ok(())
    }

    /// Remember the Date of a Release just accepted from `dist_url`.
    pub fn store_accepted_date(&self, dist_url: &str, date: &str) -> Result<()> {
        let dir = self.release_dir(dist_url);
        std::fs::create_dir_all(&dir)?;
        let tmp = self.temp_path()?;
        std::fs::write(&tmp, date)?;
        tmp.persist(dir.join("accepted-date"))?;
        Ok(())
    }

    /// Remember `url`'s body and validators for the next conditional request.
    pub fn store_release(&self, url: &str, r: &CachedRelease) -> Result<()> {
        let dir = self.release_dir(url);
        std::fs::create_dir_all(&dir)?;
        let tmp = self.temp_path()?;
        std::fs::write(&tmp, &r.body)?;
        tmp.persist(dir.join("body"))?;
        let validators = format!(
            "{}\n{}\n",
            r.etag.as_deref().unwrap_or(""),
            r.last_modified.as_deref().unwrap_or("")
        );
        std::fs::write(dir.join("validators"), validators)?;
        Ok(())
    }
}

fn load_signed(dir: &Path) -> Option<SignedRelease> {
    if let Ok(body) = std::fs::read(dir.join("accepted-inrelease")) {
        return Some(SignedRelease::InRelease(body));
    }
    Some(SignedRelease::Detached {
        release: std::fs::read(dir.join("accepted-release")).ok()?,
        signature: std::fs::read(dir.join("accepted-release.gpg")).ok()?,
    })
}

/// Where state (a generated signing key) lives: `/var/lib/mini-mirror` for root,
/// `$XDG_STATE_HOME/mini-mirror` or `~/.local/state/mini-mirror` otherwise.
pub fn default_state_dir() -> PathBuf {
    if is_root() {
        PathBuf::from("/var/lib/mini-mirror")
    } else if let Some(x) = std::env::var_os("XDG_STATE_HOME") {
        PathBuf::from(x).join("mini-mirror")
    } else {
        home_dir().join(".local/state/mini-mirror")
    }
}
