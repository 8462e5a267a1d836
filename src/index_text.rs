//! Decompressed `Packages` indices, kept out of the heap.
//!
//! A verified index is decoded into an unnamed temporary file and read back through a
//! read-only memory map. The parser borrows from the map exactly as it would from a
//! `String`, but pages it has read can be handed back to the kernel
//! ([`IndexText::forget`]) and are re-read from the file if touched again: a
//! 60 MB index then costs a few megabytes of resident memory instead of 60.
//!
//! Decoding is streamed: it can run while the compressed file is still downloading
//! ([`ChunkReader`]). The decoder hashes every compressed byte it consumes; the caller
//! keeps the text only when that hash is the one the signed Release lists.

use crate::sha256::Sha256;
use anyhow::{Context, Result, anyhow, bail};
use memmap2::{Mmap, UncheckedAdvice};
use std::io::{BufWriter, Read, Write};
use std::path::Path;

/// No real index comes near this decompressed (bookworm main amd64: 50 MB); a small
/// signed file that expands past it is a decompression bomb.
pub const MAX_INDEX_TEXT: u64 = 1 << 30;

/// How an index file is compressed, from its name in the Release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// `.xz`
    Xz,
    /// `.gz`
    Gzip,
    /// No extension.
    None,
}

impl Compression {
    /// The compression an index path implies.
    pub fn of_path(path: &str) -> Compression {
        if path.ends_with(".xz") {
            Compression::Xz
        } else if path.ends_with(".gz") {
            Compression::Gzip
        } else {
            Compression::None
        }
    }
}

/// A decompressed, UTF-8 checked index, readable as one `&str`.
pub struct IndexText {
    storage: Storage,
    entries_hint: usize,
}

enum Storage {
    /// Decoded into an unnamed file and mapped read-only.
    Mapped(Mmap),
    /// Held in memory (tests, examples, tiny inputs).
    Owned(String),
}

impl IndexText {
    /// The whole index.
    pub fn as_str(&self) -> &str {
        match &self.storage {
            // Checked to be UTF-8 while it was written; the file is private to us
            // (unnamed, opened only here) and never written again.
            Storage::Mapped(map) => unsafe { std::str::from_utf8_unchecked(map) },
            Storage::Owned(s) => s,
        }
    }

    /// About how many entries the index holds (to size tables once).
    pub fn entries_hint(&self) -> usize {
        self.entries_hint
    }

    /// Let the kernel drop the resident pages that lie wholly within `bytes`: the parser
    /// is past them. Borrowed text there stays valid; touching it again reads it back in.
    pub fn forget(&self, bytes: std::ops::Range<usize>) {
        if let Storage::Mapped(map) = &self.storage {
            let page = page_size();
            let start = bytes.start.next_multiple_of(page);
            let end = bytes.end.min(map.len()) & !(page - 1);
            if end > start {
                // Safety: the map is a read-only, file-backed, private mapping of a file
                // nobody writes: after MADV_DONTNEED its pages read back unchanged.
                let _ = unsafe {
                    map.unchecked_advise_range(UncheckedAdvice::DontNeed, start, end - start)
                };
            }
        }
    }

    /// The parser is through: forget every page, and read back only the pages later
    /// lookups touch (no read-around: those lookups are scattered).
    pub fn done_parsing(&self) {
        self.forget(0..usize::MAX);
        if let Storage::Mapped(map) = &self.storage {
            let _ = map.advise(memmap2::Advice::Random);
        }
    }
}

impl std::fmt::Debug for IndexText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IndexText({} bytes)", self.as_str().len())
    }
}

impl From<String> for IndexText {
    fn from(text: String) -> IndexText {
        IndexText {
            entries_hint: count_entries(&text),
            storage: Storage::Owned(text),
        }
    }
}

fn page_size() -> usize {
    // Safety: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if size > 0 { size as usize } else { 4096 }
}

fn count_entries(text: &str) -> usize {
    usize::from(!text.is_empty()) + text.matches("\nPackage:").count()
}

/// What decoding consumed: the compressed bytes' SHA256 (lowercase hex) and length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumed {
    /// SHA256 of every compressed byte read.
    pub sha256: String,
    /// How many compressed bytes were read.
    pub size: u64,
}

impl Consumed {
    /// Whether what was consumed is exactly the file of this size and SHA256.
    pub fn is(&self, size: u64, sha256: &str) -> bool {
        self.size == size && self.sha256 == sha256
    }
}

/// Decode `input` into a new [`IndexText`] whose backing file lives in `dir`, and say
/// exactly which compressed bytes it came from (all of `input`, to its end).
pub fn decode(
    input: impl Read,
    compression: Compression,
    dir: &Path,
) -> Result<(IndexText, Consumed)> {
    decode_at_most(input, compression, dir, MAX_INDEX_TEXT)
}

fn decode_at_most(
    input: impl Read,
    compression: Compression,
    dir: &Path,
    max: u64,
) -> Result<(IndexText, Consumed)> {
    let mut input = HashingReader {
        inner: input,
        hasher: Sha256::new(),
        size: 0,
    };
    let file = tempfile::tempfile_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    let mut sink = TextSink {
        out: BufWriter::with_capacity(1 << 20, file),
        dir: dir.to_path_buf(),
        written: 0,
        max,
        partial_char: Vec::new(),
        entries: 0,
        last_byte: b'\n',
    };
    match compression {
        Compression::Xz => copy(liblzma::read::XzDecoder::new(&mut input), &mut sink, "xz")?,
        Compression::Gzip => copy(
            flate2::read::MultiGzDecoder::new(&mut input),
            &mut sink,
            "gzip",
        )?,
        Compression::None => copy(&mut input, &mut sink, "index")?,
    }
    // Whatever follows the compressed stream is part of the file that was hashed.
    std::io::copy(&mut input, &mut std::io::sink())?;
    if !sink.partial_char.is_empty() {
        bail!("index is not UTF-8 (it ends inside a character)");
    }
    let entries_hint = sink.entries + sink.entries / 64 + 16;
    let file = sink.out.into_inner().map_err(|e| {
        anyhow!(
            "writing the decompressed index (a temporary file in {}): {}",
            dir.display(),
            e.error()
        )
    })?;
    // Safety: the file is unnamed and private to this process; nothing writes or
    // truncates it after this point.
    let map = unsafe { Mmap::map(&file) }.context("mapping the decompressed index")?;
    let _ = map.advise(memmap2::Advice::Sequential);
    let consumed = Consumed {
        sha256: input.hasher.hex(),
        size: input.size,
    };
    Ok((
        IndexText {
            storage: Storage::Mapped(map),
            entries_hint,
        },
        consumed,
    ))
}

/// Decode `from` into `to`: a failed read is corrupt data, a failed write is the disk's
/// (named as such: "no space left" must not read as corruption).
fn copy(mut from: impl Read, to: &mut TextSink, what: &str) -> Result<()> {
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = from
            .read(&mut buf)
            .with_context(|| format!("corrupt {what} data"))?;
        if n == 0 {
            return Ok(());
        }
        to.write(&buf[..n])?;
    }
}

/// Counts and hashes what is read through it.
struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    size: u64,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
}

/// Writes decoded text to the backing file, checking UTF-8 across chunk boundaries,
/// the size cap, and counting entries as it goes.
struct TextSink {
    out: BufWriter<std::fs::File>,
    /// Where its file is, for messages.
    dir: std::path::PathBuf,
    written: u64,
    max: u64,
    /// The first bytes of a character cut by the chunk boundary.
    partial_char: Vec<u8>,
    entries: usize,
    last_byte: u8,
}

impl TextSink {
    fn write(&mut self, chunk: &[u8]) -> Result<()> {
        if self.written + chunk.len() as u64 > self.max {
            bail!(
                "expands past {} MiB: refusing a decompression bomb",
                self.max >> 20
            );
        }
        self.check_utf8(chunk)?;
        // Entries start at a line beginning with "Package:" (a cut one is only
        // undercounted: this is a sizing hint).
        if self.last_byte == b'\n' && chunk.starts_with(b"Package:") {
            self.entries += 1;
        }
        let text = match std::str::from_utf8(chunk) {
            Ok(text) => text,
            // A character cut at the end of the chunk (checked above): count up to it.
            Err(e) => std::str::from_utf8(&chunk[..e.valid_up_to()]).unwrap_or_default(),
        };
        self.entries += text.matches("\nPackage:").count();
        self.last_byte = chunk.last().copied().unwrap_or(self.last_byte);
        self.out.write_all(chunk).with_context(|| {
            format!(
                "writing the decompressed index (a temporary file in {})",
                self.dir.display()
            )
        })?;
        self.written += chunk.len() as u64;
        Ok(())
    }

    fn check_utf8(&mut self, mut chunk: &[u8]) -> Result<()> {
        let not_utf8 = |at: u64| anyhow!("index is not UTF-8 (at byte {at})");
        if let Some(&lead) = self.partial_char.first() {
            let width = match lead {
                0xC2..=0xDF => 2,
                0xE0..=0xEF => 3,
                _ => 4,
            };
            let need = (width - self.partial_char.len()).min(chunk.len());
            self.partial_char.extend_from_slice(&chunk[..need]);
            chunk = &chunk[need..];
            if self.partial_char.len() < width {
                return Ok(());
            }
            if std::str::from_utf8(&self.partial_char).is_err() {
                return Err(not_utf8(self.written));
            }
            self.partial_char.clear();
        }
        if let Err(e) = std::str::from_utf8(chunk) {
            if e.error_len().is_some() {
                return Err(not_utf8(self.written + e.valid_up_to() as u64));
            }
            self.partial_char
                .extend_from_slice(&chunk[e.valid_up_to()..]);
        }
        Ok(())
    }
}

/// A [`Read`] over chunks sent from another thread (a download in progress); the end
/// of input is the sender going away.
pub struct ChunkReader {
    chunks: std::sync::mpsc::Receiver<Vec<u8>>,
    current: Vec<u8>,
    at: usize,
}

impl ChunkReader {
    /// A reader and the sender that feeds it.
    pub fn new() -> (std::sync::mpsc::Sender<Vec<u8>>, ChunkReader) {
        let (tx, rx) = std::sync::mpsc::channel();
        (
            tx,
            ChunkReader {
                chunks: rx,
                current: Vec::new(),
                at: 0,
            },
        )
    }
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.current.len() {
            match self.chunks.recv() {
                Ok(chunk) => {
                    self.current = chunk;
                    self.at = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len() - self.at);
        buf[..n].copy_from_slice(&self.current[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xz(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut enc = liblzma::write::XzEncoder::new(&mut out, 6);
        enc.write_all(data).unwrap();
        enc.finish().unwrap();
        out
    }

    #[test]
    fn decodes_and_reports_what_it_consumed() {
        let text = "Package: a\nVersion: 1\n\nPackage: b\nDescription: café ☕ 𝄞\n";
        let compressed = xz(text.as_bytes());
        let dir = tempfile::tempdir().unwrap();
        let (decoded, consumed) = decode(&compressed[..], Compression::Xz, dir.path()).unwrap();
        assert_eq!(decoded.as_str(), text);
        assert_eq!(consumed.size, compressed.len() as u64);
        assert_eq!(consumed.sha256, crate::sha256::hex_digest(&compressed));
        assert!(decoded.entries_hint() >= 2);
        decoded.forget(0..text.len());
        assert_eq!(
            decoded.as_str(),
            text,
            "forgotten pages read back unchanged"
        );
    }

    #[test]
    fn utf8_is_checked_across_chunk_boundaries() {
        let text = "x€y𝄞z".repeat(3);
        // Feed one byte at a time: every multi-byte character is cut.
        let (tx, reader) = ChunkReader::new();
        for b in text.bytes() {
            tx.send(vec![b]).unwrap();
        }
        drop(tx);
        let dir = tempfile::tempdir().unwrap();
        let (decoded, _) = decode(reader, Compression::None, dir.path()).unwrap();
        assert_eq!(decoded.as_str(), text);

        for bad in [&b"ok\xff"[..], b"\xe2\x82", b"a\xe2\x28\xa1b", b"\xc0\xaf"] {
            let (tx, reader) = ChunkReader::new();
            for b in bad {
                tx.send(vec![*b]).unwrap();
            }
            drop(tx);
            let err = decode(reader, Compression::None, dir.path()).err().unwrap();
            assert!(err.to_string().contains("not UTF-8"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn decompression_is_bounded() {
        // 8 MiB of zeros compresses to about a kilobyte.
        let bomb = xz(&vec![0u8; 8 << 20]);
        assert!(bomb.len() < 8 << 10);
        let dir = tempfile::tempdir().unwrap();
        let err = decode_at_most(&bomb[..], Compression::Xz, dir.path(), 4 << 20)
            .err()
            .unwrap();
        assert!(format!("{err:#}").contains("decompression bomb"), "{err:#}");
        let (ok, _) = decode_at_most(&bomb[..], Compression::Xz, dir.path(), 8 << 20).unwrap();
        assert_eq!(ok.as_str().len(), 8 << 20);
    }
}
