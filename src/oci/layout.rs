//! OCI image layouts: a directory (`oci:DIR`) read and written in place, and a tar file
//! (`oci-archive:FILE`, the bundles) read by offset and written whole, `index.json` last,
//! into a temporary file renamed into place only when complete.

use super::OCI_INDEX;
use crate::cache::Cache;
use anyhow::{Context, Result, anyhow, bail};
use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

const LAYOUT_FILE: &str = "oci-layout";
const LAYOUT_JSON: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;
const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// A manifest entry of an `index.json`: (ref.name, digest, media type, size).
type IndexEntry = (Option<String>, String, String, u64);

/// The manifest entries of an `index.json`.
fn index_entries(index: &[u8], what: &str) -> Result<Vec<IndexEntry>> {
    let json: serde_json::Value =
        serde_json::from_slice(index).with_context(|| format!("{what}: index.json is not JSON"))?;
    let mut out = Vec::new();
    for m in json["manifests"].as_array().into_iter().flatten() {
        let digest = m["digest"].as_str().unwrap_or_default().to_owned();
        super::digest_hex(&digest).with_context(|| format!("{what}: index.json"))?;
        out.push((
            m["annotations"][REF_NAME].as_str().map(str::to_owned),
            digest,
            m["mediaType"]
                .as_str()
                .unwrap_or(super::OCI_MANIFEST)
                .to_owned(),
            m["size"].as_u64().unwrap_or(0),
        ));
    }
    Ok(out)
}

/// Pick the manifest tagged `tag` (or the only one, when no tag is asked for).
fn pick(
    entries: Vec<IndexEntry>,
    tag: Option<&str>,
    what: &str,
) -> Result<Option<(String, String, u64)>> {
    match tag {
        Some(t) => Ok(entries
            .into_iter()
            .find(|e| e.0.as_deref() == Some(t))
            .map(|e| (e.1, e.2, e.3))),
        None => match entries.len() {
            0 => Ok(None),
            1 => Ok(entries.into_iter().next().map(|e| (e.1, e.2, e.3))),
            n => bail!("{what} holds {n} images: name one with :TAG"),
        },
    }
}

/// An OCI layout directory.
pub struct LayoutDir {
    dir: PathBuf,
}

impl LayoutDir {
    /// An existing layout.
    pub fn open(dir: &Path) -> Result<LayoutDir> {
        if !dir.join(LAYOUT_FILE).is_file() {
            bail!(
                "{}: not an OCI image layout (no oci-layout file)",
                dir.display()
            );
        }
        Ok(LayoutDir {
            dir: dir.to_path_buf(),
        })
    }

    /// A layout to write into (created when missing).
    pub fn create(dir: &Path) -> Result<LayoutDir> {
        std::fs::create_dir_all(dir.join("blobs/sha256"))
            .with_context(|| format!("creating OCI layout {}", dir.display()))?;
        if !dir.join(LAYOUT_FILE).exists() {
            std::fs::write(dir.join(LAYOUT_FILE), LAYOUT_JSON)?;
        }
        Ok(LayoutDir {
            dir: dir.to_path_buf(),
        })
    }

    /// Where blob `digest` is (or would be).
    pub fn blob_path(&self, digest: &str) -> Result<PathBuf> {
        Ok(self
            .dir
            .join("blobs/sha256")
            .join(super::digest_hex(digest)?))
    }

    /// The manifest tagged `tag`: (digest, media type, size), None when not there.
    pub fn manifest_entry(&self, tag: Option<&str>) -> Result<Option<(String, String, u64)>> {
        let path = self.dir.join("index.json");
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| path.display().to_string()),
        };
        pick(
            index_entries(&bytes, &self.dir.display().to_string())?,
            tag,
            &self.dir.display().to_string(),
        )
    }

    /// A temporary file beside the blobs (renamed into place by [`LayoutDir::insert`]).
    pub fn temp_file(&self) -> Result<tempfile::NamedTempFile> {
        std::fs::create_dir_all(self.dir.join("blobs/sha256"))?;
        Ok(tempfile::Builder::new()
            .prefix(".tmp-")
            .tempfile_in(self.dir.join("blobs/sha256"))?)
    }

    /// Move a checked temporary file in as blob `digest`.
    pub fn insert(&self, tmp: tempfile::TempPath, digest: &str) -> Result<()> {
        let dest = self.blob_path(digest)?;
        tmp.persist(&dest)
            .with_context(|| format!("writing {}", dest.display()))?;
        Ok(())
    }

    /// Copy blob `digest` from `src` unless present; true when copied.
    pub fn put_blob(&self, digest: &str, size: u64, src: &Path) -> Result<bool> {
        let dest = self.blob_path(digest)?;
        if std::fs::metadata(&dest).is_ok_and(|m| m.len() == size) {
            return Ok(false);
        }
        let tmp = self.temp_file()?;
        let mut out = tmp.as_file();
        let mut input = std::fs::File::open(src)?;
        std::io::copy(&mut input, &mut out)?;
        out.sync_all()?;
        self.insert(tmp.into_temp_path(), digest)?;
        Ok(true)
    }

    /// Record manifest `digest` under `tag` in index.json (replacing the tag's previous
    /// manifest), written atomically; its blobs must already be there.
    pub fn set_tag(&self, tag: &str, digest: &str, media_type: &str, size: u64) -> Result<()> {
        let path = self.dir.join("index.json");
        let mut index: serde_json::Value = match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b)
                .with_context(|| format!("{}: not JSON", path.display()))?,
            Err(_) => {
                serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []})
            }
        };
        let manifests = index["manifests"]
            .as_array_mut()
            .ok_or_else(|| anyhow!("{}: no manifests list", path.display()))?;
        manifests.retain(|m| m["annotations"][REF_NAME].as_str() != Some(tag));
        manifests.push(serde_json::json!({
            "mediaType": media_type, "digest": digest, "size": size,
            "annotations": {REF_NAME: tag},
        }));
        let tmp = tempfile::NamedTempFile::new_in(&self.dir)?;
        serde_json::to_writer(tmp.as_file(), &index)?;
        tmp.as_file().sync_all()?;
        tmp.persist(&path)
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }
}

/// An OCI layout in a tar file, read in place: each blob is read by its offset.
pub struct ArchiveReader {
    file: PathBuf,
    entries: HashMap<String, (u64, u64)>,
}

impl ArchiveReader {
    /// Index the archive's entries (a truncated or malformed tar fails here).
    pub fn open(file: &Path) -> Result<ArchiveReader> {
        let what = file.display().to_string();
        let f = std::fs::File::open(file).with_context(|| format!("opening {what}"))?;
        let file_len = f.metadata()?.len();
        let mut archive = tar::Archive::new(std::io::BufReader::new(f));
        let mut entries = HashMap::new();
        for entry in archive
            .entries()
            .with_context(|| format!("{what}: not a tar archive"))?
        {
            let entry =
                entry.with_context(|| format!("{what}: a malformed or truncated tar archive"))?;
            if !entry.header().entry_type().is_file() {
                continue;
            }
            let path = entry
                .path()?
                .to_string_lossy()
                .trim_start_matches("./")
                .to_owned();
            let (offset, size) = (entry.raw_file_position(), entry.size());
            if offset + size > file_len {
                bail!("{what}: truncated: {path} ends past the end of the file");
            }
            entries.insert(path, (offset, size));
        }
        if !entries.contains_key(LAYOUT_FILE) || !entries.contains_key("index.json") {
            bail!("{what}: not an OCI archive (no oci-layout or index.json; a truncated bundle?)");
        }
        Ok(ArchiveReader {
            file: file.to_path_buf(),
            entries,
        })
    }

    fn read_entry(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let Some(&(offset, size)) = self.entries.get(name) else {
            return Ok(None);
        };
        let mut f = std::fs::File::open(&self.file)?;
        f.seek(SeekFrom::Start(offset))?;
        let mut buf = Vec::with_capacity(size as usize);
        f.take(size).read_to_end(&mut buf)?;
        Ok(Some(buf))
    }

    /// The manifest tagged `tag` (or the only one): (digest, media type, size).
    pub fn manifest_entry(&self, tag: Option<&str>) -> Result<Option<(String, String, u64)>> {
        let what = self.file.display().to_string();
        let index = self.read_entry("index.json")?.expect("checked at open");
        pick(index_entries(&index, &what)?, tag, &what)
    }

    /// Whether the archive holds blob `digest` with this size.
    pub fn has_blob(&self, digest: &str, size: u64) -> bool {
        super::digest_hex(digest).is_ok_and(|hex| {
            self.entries
                .get(&format!("blobs/sha256/{hex}"))
                .is_some_and(|&(_, s)| s == size)
        })
    }

    /// A small blob read into memory, checked against its digest.
    pub fn blob_bytes(&self, digest: &str, size: u64) -> Result<Vec<u8>> {
        let hex = super::digest_hex(digest)?;
        let bytes = self
            .read_entry(&format!("blobs/sha256/{hex}"))?
            .with_context(|| {
                format!(
                    "{}: blob {digest} is not in the bundle",
                    self.file.display()
                )
            })?;
        let got = crate::sha256::hex_digest(&bytes);
        super::store::check_blob(digest, size, bytes.len() as u64, &got)
            .with_context(|| self.file.display().to_string())?;
        Ok(bytes)
    }

    /// Copy blob `digest` into the cache, checking its digest; an error when absent.
    pub fn fetch_blob(&self, digest: &str, size: u64, cache: &Cache) -> Result<PathBuf> {
        let hex = super::digest_hex(digest)?;
        let Some(&(offset, len)) = self.entries.get(&format!("blobs/sha256/{hex}")) else {
            bail!(
                "{}: blob {digest} is not in the bundle",
                self.file.display()
            );
        };
        if len != size {
            bail!(
                "{}: blob {digest}: size mismatch: the manifest says {size} bytes, the bundle holds {len}",
                self.file.display()
            );
        }
        let mut f = std::fs::File::open(&self.file)?;
        f.seek(SeekFrom::Start(offset))?;
        super::store::copy_verified(&mut f.take(len), digest, size, cache)
            .with_context(|| format!("{}", self.file.display()))
    }
}

/// Writes an OCI archive: `oci-layout`, the blobs, then `index.json`, into `FILE.partial`,
/// renamed to FILE by [`ArchiveWriter::finish`]; dropped unfinished, nothing is left.
pub struct ArchiveWriter {
    dest: PathBuf,
    tmp: Option<tempfile::TempPath>,
    tar: tar::Builder<std::io::BufWriter<std::fs::File>>,
    /// Bytes of blob content written.
    pub blob_bytes: u64,
}

impl ArchiveWriter {
    /// Start the archive that will become `dest`.
    pub fn create(dest: &Path) -> Result<ArchiveWriter> {
        let dir = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let tmp = tempfile::Builder::new()
            .prefix(".mini-mirror-bundle-")
            .tempfile_in(dir)
            .with_context(|| format!("creating a temporary file beside {}", dest.display()))?;
        let (file, path) = tmp.into_parts();
        let mut tar = tar::Builder::new(std::io::BufWriter::with_capacity(1 << 20, file));
        for d in ["blobs/", "blobs/sha256/"] {
            let mut h = header(0, tar::EntryType::Directory, 0o755);
            tar.append_data(&mut h, d, std::io::empty())?;
        }
        let mut h = header(LAYOUT_JSON.len() as u64, tar::EntryType::Regular, 0o644);
        tar.append_data(&mut h, LAYOUT_FILE, LAYOUT_JSON)?;
        Ok(ArchiveWriter {
            dest: dest.to_path_buf(),
            tmp: Some(path),
            tar,
            blob_bytes: 0,
        })
    }

    /// Add blob `digest` with the bytes of `src`.
    pub fn add_blob(&mut self, digest: &str, src: &Path) -> Result<()> {
        let hex = super::digest_hex(digest)?;
        let f = std::fs::File::open(src)?;
        let len = f.metadata()?.len();
        let mut h = header(len, tar::EntryType::Regular, 0o644);
        self.tar
            .append_data(&mut h, format!("blobs/sha256/{hex}"), f)
            .with_context(|| format!("writing {}", self.dest.display()))?;
        self.blob_bytes += len;
        Ok(())
    }

    /// Add a small blob from memory.
    pub fn add_bytes(&mut self, digest: &str, bytes: &[u8]) -> Result<()> {
        let hex = super::digest_hex(digest)?;
        let mut h = header(bytes.len() as u64, tar::EntryType::Regular, 0o644);
        self.tar
            .append_data(&mut h, format!("blobs/sha256/{hex}"), bytes)?;
        self.blob_bytes += bytes.len() as u64;
        Ok(())
    }

    /// Write index.json naming the manifest, and move the archive into place.
    pub fn finish(
        mut self,
        manifest_digest: &str,
        media_type: &str,
        size: u64,
        tag: &str,
    ) -> Result<u64> {
        let index = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": OCI_INDEX,
            "manifests": [{"mediaType": media_type, "digest": manifest_digest, "size": size,
                           "annotations": {REF_NAME: tag}}],
        }))?;
        let mut h = header(index.len() as u64, tar::EntryType::Regular, 0o644);
        self.tar
            .append_data(&mut h, "index.json", index.as_slice())?;
        let mut w = self.tar.into_inner()?;
        w.flush()?;
        let file = w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        let len = file.metadata()?.len();
        let tmp = self.tmp.take().expect("set until finished");
        tmp.persist(&self.dest)
            .with_context(|| format!("moving the bundle into {}", self.dest.display()))?;
        Ok(len)
    }
}

/// A tar header with fixed owner and time (bundles of the same content are identical).
pub(crate) fn header(size: u64, kind: tar::EntryType, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h
}
