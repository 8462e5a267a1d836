//! Talks to one upstream archive: fetches `InRelease` (or `Release` + `Release.gpg`
//! when InRelease is absent), verifies it against the source's keyring, and fetches
//! the `Packages` indices it lists, each checked against the signed size and SHA256.
//! Nothing that was not verified leaves this module.

use crate::cache::{Cache, CachedRelease, SignedRelease};
use crate::deb822;
use crate::http::{Conditional, Http};
use crate::index_text::{self, ChunkReader, Compression, IndexText};
use crate::openpgp::{self, GoodSignature, Keyring};
use crate::spec::{KeySource, SourceSpec, is_safe_relative_path};
use anyhow::{Context, Result, anyhow, bail};
use chrono::{DateTime, NaiveDateTime, Utc};
use std::collections::HashMap;
use std::fs::File;

/// Upper bound for files whose size no signed list gives (keys, InRelease, Release.gpg).
const MAX_SMALL_FILE: u64 = 64 << 20;

/// Size and SHA256 of one file listed in a Release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedFile {
    /// Size in bytes.
    pub size: u64,
    /// Lowercase hex SHA256.
    pub sha256: String,
}

/// A Release whose signature was verified, parsed from the verifier's output only.
#[derive(Debug, Clone)]
pub struct VerifiedRelease {
    /// `<upstream>/dists/<dist>`.
    pub dist_url: String,
    /// The signed text.
    pub text: String,
    /// `Origin`, `Label`, `Suite`, `Codename`, `Version`, `Description`, ... as signed.
    pub fields: HashMap<String, String>,
    /// When upstream published it.
    pub date: Option<DateTime<Utc>>,
    /// Whether `Acquire-By-Hash: yes`.
    pub acquire_by_hash: bool,
    /// `Architectures`.
    pub architectures: Vec<String>,
    /// The SHA256 section: path below `dists/<dist>/` → size and hash.
    pub files: HashMap<String, ListedFile>,
    /// Which key made the accepted signature.
    pub signed_by: GoodSignature,
}

impl VerifiedRelease {
    /// SHA256 of the signed Release text, as `sha256sum Release` prints it (the line end
    /// a clearsigned InRelease drops after its last line counted back in): what
    /// `mirror.lock` names.
    pub fn text_sha256(&self) -> String {
        if self.text.ends_with('\n') {
            crate::sha256::hex_digest(self.text.as_bytes())
        } else {
            crate::sha256::hex_digest(format!("{}\n", self.text).as_bytes())
        }
    }

    /// A field of the signed Release.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

/// One decompressed, verified `Packages` index.
#[derive(Debug)]
pub struct Index {
    /// Component it belongs to.
    pub component: String,
    /// The `binary-<arch>` it was read from (`all` for binary-all).
    pub arch: String,
    /// Path below `dists/<dist>/`, for messages.
    pub path: String,
    /// The decompressed index.
    pub text: IndexText,
}

/// Everything verified about one source: its Release and its indices.
#[derive(Debug)]
pub struct FetchedSource {
    /// The verified Release.
    pub release: VerifiedRelease,
    /// Its Packages indices, for each component × architecture.
    pub indices: Vec<Index>,
}

/// How far a Release Date may be ahead of our clock: apt's `Acquire::Max-FutureTime`
/// default (apt-pkg/metaindex.cc, apt 2.6 and 3.0: 10 seconds).
const MAX_FUTURE_SECONDS: i64 = 10;

/// The operator's exceptions to apt's Release checks, as apt's own options grant them.
#[derive(Debug, Clone, Default)]
pub struct ReleaseRules {
    /// Accept a Release whose `Origin`, `Label` or `Codename` changed since the last one
    /// accepted (`apt-get update --allow-releaseinfo-change`).
    pub allow_releaseinfo_change: bool,
}

/// Fetch a source's Release (InRelease, or Release + Release.gpg) and verify it
/// against the source's key.
pub async fn verified_release(
    http: &Http,
    cache: &Cache,
    spec: &SourceSpec,
    rules: &ReleaseRules,
) -> Result<VerifiedRelease> {
    let what = format!("{}/{}", spec.prefix, spec.name);
    let keyring = load_keyring(http, spec)
        .await
        .with_context(|| format!("source {what}: loading the upstream key"))?;
    let release = fetch_release(http, cache, spec, &keyring, rules)
        .await
        .with_context(|| format!("source {what}: {}/dists/{}", spec.url, spec.dist))?;
    tracing::info!(
        "{what}: {}/dists/{} signed by {}",
        spec.url,
        spec.dist,
        release.signed_by.key
    );
    Ok(release)
}

/// Fetch the source's Packages indices that its verified Release lists, each
/// checked against the listed size and SHA256.
pub async fn fetch_indices(
    http: &Http,
    cache: &Cache,
    spec: &SourceSpec,
    release: VerifiedRelease,
) -> Result<FetchedSource> {
    let what = format!("{}/{}", spec.prefix, spec.name);
    let mut wanted = Vec::new();
    for component in &spec.components {
        for arch in spec
            .settings
            .architectures
            .iter()
            .chain(&spec.settings.foreign_architectures)
        {
            wanted.push((component.clone(), arch.clone(), true));
        }
        // Archives that do not fold arch-all packages into binary-<arch> list binary-all.
        let folds_all = release
            .field("No-Support-for-Architecture-all")
            .is_some_and(|v| v.trim() == "Packages");
        if release.architectures.iter().any(|a| a == "all") && !folds_all {
            wanted.push((component.clone(), "all".to_owned(), false));
        }
    }
    let fetches = wanted.into_iter().map(|(component, arch, required)| {
        let (release, what) = (&release, &what);
        async move {
            fetch_index(http, cache, release, &component, &arch, required)
                .await
                .with_context(|| format!("source {what}"))
        }
    });
    let indices = futures_util::future::try_join_all(fetches)
        .await?
        .into_iter()
        .flatten()
        .collect();
    Ok(FetchedSource { release, indices })
}

/// The source's upstream key, under the policy its settings ask for.
pub async fn load_keyring(http: &Http, spec: &SourceSpec) -> Result<Keyring> {
    let bytes = match &spec.key {
        KeySource::Path(p) => {
            std::fs::read(p).with_context(|| format!("reading {}", p.display()))?
        }
        KeySource::Url(url) => {
            if url.starts_with("http://") {
                tracing::warn!(
                    "{}/{}: the upstream key is fetched over plain http ({url}); prefer a local key file",
                    spec.prefix,
                    spec.name
                );
            }
            http.get(url, MAX_SMALL_FILE)
                .await?
                .ok_or_else(|| anyhow!("{url}: not found"))?
        }
    };
    let keyring = Keyring::from_bytes(&bytes)?;
    Ok(if spec.settings.legacy_signatures {
        tracing::warn!(
            "source {}/{}: legacy_signatures = true: its upstream is verified as bookworm's gpgv \
             would (SHA-1, DSA accepted), not under apt 3's policy; the mirror re-signs it, but ask \
             the vendor to re-sign with a current key",
            spec.prefix,
            spec.name
        );
        keyring.with_legacy_policy()
    } else {
        keyring
    })
}

async fn fetch_release(
    http: &Http,
    cache: &Cache,
    spec: &SourceSpec,
    keyring: &Keyring,
    rules: &ReleaseRules,
) -> Result<VerifiedRelease> {
    let dist_url = format!("{}/dists/{}", spec.url, spec.dist);
    let inrelease_url = format!("{dist_url}/InRelease");
    let previous = cache.load_release(&inrelease_url);
    let answer = http
        .get_conditional(
            &inrelease_url,
            previous.as_ref().and_then(|p| p.etag.as_deref()),
            previous.as_ref().and_then(|p| p.last_modified.as_deref()),
            MAX_SMALL_FILE,
        )
        .await?;
    let mut to_remember = None;
    let (text, signed_by, signed) = match answer {
        Conditional::NotModified => {
            let body = &previous.as_ref().expect("validators came from it").body;
            let (text, good) = verify_inrelease(body, keyring)?;
            (text, good, SignedRelease::InRelease(body.clone()))
        }
        Conditional::Body {
            body,
            etag,
            last_modified,
        } => {
            // A bad InRelease is an error, never a reason to try Release.gpg.
            let (text, good) = verify_inrelease(&body, keyring)?;
            let signed = SignedRelease::InRelease(body.clone());
            to_remember = Some(CachedRelease {
                body,
                etag,
                last_modified,
            });
            (text, good, signed)
        }
        Conditional::NotFound => {
            tracing::info!("{inrelease_url} not found; using Release and Release.gpg");
            let release = http
                .get(&format!("{dist_url}/Release"), MAX_SMALL_FILE)
                .await?
                .ok_or_else(|| {
                    anyhow!(
                        "{inrelease_url} and {dist_url}/Release both answered 404 Not Found: \
                         upstream has no dist {:?} there (check the dist and URL in source.txt)",
                        spec.dist
                    )
                })?;
            let signature = http
                .get(&format!("{dist_url}/Release.gpg"), MAX_SMALL_FILE)
                .await?
                .ok_or_else(|| {
                    anyhow!("Release exists but Release.gpg does not: refusing an unsigned Release")
                })?;
            let good = openpgp::verify_detached(&release, &signature, keyring)
                .map_err(policy_hint)
                .context("Release.gpg")?;
            (
                release.clone(),
                good,
                SignedRelease::Detached { release, signature },
            )
        }
    };
    let text = String::from_utf8(text).context("the signed Release is not UTF-8")?;
    let release = parse_release(dist_url, text, signed_by)?;
    refuse_future_date(&release)?;
    refuse_conflicting_distribution(spec, &release)?;
    // The same signed bytes as last time (the usual scheduled build): nothing to compare
    // with, nothing to store again.
    let stored = cache.load_accepted_release(&release.dist_url);
    let unchanged = stored.as_ref() == Some(&signed);
    let last = match stored {
        Some(stored) if !unchanged => last_accepted(&stored, &release.dist_url, keyring),
        _ => None,
    };
    if let Some(last) = last {
        if release
            .date
            .zip(last.date)
            .is_some_and(|(new, old)| new < old)
        {
            // A lagging mirror behind a CDN, or a replay: apt keeps what it had.
            tracing::warn!(
                "{}: upstream serves an older Release (Date {}) than the one accepted before ({}); \
                 keeping the last verified Release and its indices, as apt does",
                release.dist_url,
                release.date.map(format_date).unwrap_or_default(),
                last.date.map(format_date).unwrap_or_default(),
            );
            return Ok(last);
        }
        refuse_releaseinfo_change(&last, &release, rules)?;
    } else if !unchanged
        && let Some(old) = cache
            .load_accepted_date(&release.dist_url)
            .and_then(|d| parse_date(&d).ok())
        && release.date.is_some_and(|new| new < old)
    {
        // Only the Date of the last accepted Release is known (a cache from before the
        // Release itself was kept): nothing to fall back to.
        bail!(
            "the upstream Release is older than the one accepted before (Date {} < {}): \
             a replayed or rolled-back Release, refusing it",
            release.date.map(format_date).unwrap_or_default(),
            format_date(old)
        );
    }
    if let Some(new) = to_remember {
        cache.store_release(&inrelease_url, &new)?;
    }
    if !unchanged {
        cache.store_accepted_release(&release.dist_url, &signed)?;
        // Kept by content too, for `build --locked` once upstream has moved on.
        cache.store_release_by_hash(&release.text_sha256(), &signed)?;
        if let Some(date) = release.date {
            cache.store_accepted_date(&release.dist_url, &format_date(date))?;
        }
    }
    Ok(release)
}

/// `signed`, the Release accepted from `dist_url` on a previous build, verified again with today's
/// keyring (a key revoked since makes it unusable, as it should).
pub fn last_accepted(
    signed: &SignedRelease,
    dist_url: &str,
    keyring: &Keyring,
) -> Option<VerifiedRelease> {
    let (text, good) = match signed {
        SignedRelease::InRelease(body) => verify_inrelease(body, keyring).ok()?,
        SignedRelease::Detached { release, signature } => (
            release.clone(),
            openpgp::verify_detached(release, signature, keyring).ok()?,
        ),
    };
    let text = String::from_utf8(text).ok()?;
    parse_release(dist_url.to_owned(), text, good).ok()
}

/// apt refuses a Release dated ahead of its clock ("is not valid yet"), and so do we:
/// before anything of it is stored, so that it never becomes the replay floor.
fn refuse_future_date(release: &VerifiedRelease) -> Result<()> {
    let Some(date) = release.date else {
        return Ok(());
    };
    let ahead = date - Utc::now();
    if ahead.num_seconds() > MAX_FUTURE_SECONDS {
        bail!(
            "the Release is not valid yet (Date: {}, {} ahead of this machine's clock); \
             apt refuses it too: check the upstream's clock, or this one's",
            format_date(date),
            humantime(ahead)
        );
    }
    Ok(())
}

/// apt's "Conflicting distribution": the dist asked for must be the Release's `Suite` or
/// its `Codename` (a dist `a/b` is checked as `a`, as apt does; a flat `./` is not checked).
/// Else a validly signed Release of another dist (stable's, served as the security dist)
/// could freeze updates.
fn refuse_conflicting_distribution(spec: &SourceSpec, release: &VerifiedRelease) -> Result<()> {
    let expected = match spec.dist.rfind('/') {
        Some(i) => &spec.dist[..i],
        None => spec.dist.as_str(),
    };
    if expected.is_empty() || expected == "." {
        return Ok(());
    }
    let suite = release.field("Suite");
    let codename = release.field("Codename");
    if suite == Some(expected) || codename == Some(expected) {
        return Ok(());
    }
    bail!(
        "conflicting distribution: expected {expected} but the signed Release says Suite {} \
         and Codename {} (apt: \"Conflicting distribution\"); refusing it, as a validly signed \
         Release of another dist must not stand in for this one",
        suite.unwrap_or("(none)"),
        codename.unwrap_or("(none)")
    )
}

/// apt refuses a Release whose `Origin`, `Label` or `Codename` changed since the last one
/// it accepted, unless the operator allows it (`Suite` may change: a new stable release).
fn refuse_releaseinfo_change(
    last: &VerifiedRelease,
    new: &VerifiedRelease,
    rules: &ReleaseRules,
) -> Result<()> {
    let changed: Vec<String> = ["Origin", "Label", "Codename"]
        .iter()
        .filter(|f| last.field(f) != new.field(f))
        .map(|f| {
            format!(
                "{f} {:?} → {:?}",
                last.field(f).unwrap_or(""),
                new.field(f).unwrap_or("")
            )
        })
        .collect();
    if changed.is_empty() {
        return Ok(());
    }
    if rules.allow_releaseinfo_change {
        tracing::warn!(
            "{}: the Release changed its {} (allowed by --allow-releaseinfo-change)",
            new.dist_url,
            changed.join(", ")
        );
        return Ok(());
    }
    bail!(
        "the Release changed its {} since the last one accepted; apt refuses this too \
         (\"changed its ... value\"): pass --allow-releaseinfo-change once you have checked it",
        changed.join(", ")
    )
}

fn humantime(d: chrono::Duration) -> String {
    let s = d.num_seconds();
    match s {
        s if s >= 86_400 => format!("{}d {}h", s / 86_400, s % 86_400 / 3600),
        s if s >= 3600 => format!("{}h {}min", s / 3600, s % 3600 / 60),
        s if s >= 60 => format!("{}min {}s", s / 60, s % 60),
        s => format!("{s}s"),
    }
}

fn verify_inrelease(body: &[u8], keyring: &Keyring) -> Result<(Vec<u8>, GoodSignature)> {
    openpgp::verify_cleartext(body, keyring)
        .map_err(policy_hint)
        .context("InRelease")
}

/// A signature refused only by apt 3's crypto policy says so, and what the operator can do.
fn policy_hint(e: anyhow::Error) -> anyhow::Error {
    if format!("{e:#}").contains("olicy") {
        e.context(
            "apt 3 (Debian trixie) refuses this signature under its crypto policy (SHA-1, DSA, \
             weak keys); if you trust this vendor, set legacy_signatures = true in the source's \
             settings.toml (the mirror re-signs with your key)",
        )
    } else {
        e
    }
}

/// Parse a verified Release text.
pub fn parse_release(
    dist_url: String,
    text: String,
    signed_by: GoodSignature,
) -> Result<VerifiedRelease> {
    let paragraph = deb822::single_paragraph(&text).context("parsing the signed Release")?;
    let mut fields = HashMap::new();
    for f in &paragraph.fields {
        if fields
            .insert(f.name.to_ascii_lowercase(), f.value.to_owned())
            .is_some()
        {
            bail!(
                "the signed Release names field {} twice: refusing an ambiguous Release",
                f.name
            );
        }
    }
    let date = match paragraph.get("Date") {
        Some(d) => Some(parse_date(d).with_context(|| format!("Release Date {d:?}"))?),
        None => None,
    };
    if let Some(until) = paragraph.get("Valid-Until") {
        let until_date =
            parse_date(until).with_context(|| format!("Release Valid-Until {until:?}"))?;
        if until_date < Utc::now() {
            bail!(
                "the upstream Release expired (Valid-Until: {until}); it is stale or replayed, refusing it"
            );
        }
    }
    let sha256 = paragraph.get("SHA256").ok_or_else(|| {
        anyhow!("the Release has no SHA256 list (only weak hashes): refusing it, as apt does")
    })?;
    let mut files = HashMap::new();
    for line in sha256.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let parts: Vec<&str> = line.split_whitespace().collect();
        let [hash, size, path] = parts[..] else {
            bail!("malformed SHA256 line in Release: {line:?}");
        };
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            bail!("malformed SHA256 in Release: {line:?}");
        }
        let size: u64 = size
            .parse()
            .map_err(|_| anyhow!("malformed size in Release: {line:?}"))?;
        files.insert(
            path.to_owned(),
            ListedFile {
                size,
                sha256: hash.to_ascii_lowercase(),
            },
        );
    }
    Ok(VerifiedRelease {
        dist_url,
        acquire_by_hash: paragraph
            .get("Acquire-By-Hash")
            .is_some_and(|v| v.eq_ignore_ascii_case("yes")),
        architectures: paragraph
            .get("Architectures")
            .unwrap_or("")
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
        date,
        files,
        fields,
        text: text.clone(),
        signed_by,
    })
}

/// Parse a Release date (`Sat, 10 Jun 2023 08:54:51 UTC`).
pub fn parse_date(s: &str) -> Result<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(d) = DateTime::parse_from_rfc2822(s) {
        return Ok(d.with_timezone(&Utc));
    }
    let bare = s
        .strip_suffix("UTC")
        .or_else(|| s.strip_suffix("GMT"))
        .or_else(|| s.strip_suffix("Z"))
        .map(str::trim)
        .ok_or_else(|| anyhow!("unsupported date format"))?;
    let naive = NaiveDateTime::parse_from_str(bare, "%a, %d %b %Y %H:%M:%S")
        .map_err(|e| anyhow!("unsupported date format: {e}"))?;
    Ok(naive.and_utc())
}

/// Format a date the way Release files write it.
pub fn format_date(d: DateTime<Utc>) -> String {
    d.format("%a, %d %b %Y %H:%M:%S UTC").to_string()
}

async fn fetch_index(
    http: &Http,
    cache: &Cache,
    release: &VerifiedRelease,
    component: &str,
    arch: &str,
    required: bool,
) -> Result<Option<Index>> {
    let base = format!("{component}/binary-{arch}/Packages");
    // gzip first: it decodes about twice as fast as xz (jammy universe, 64 MB of text:
    // 0.43 s against 0.95 s here) for 25% more index bytes (17.5 MB against 14 MB), so
    // it is the faster choice on any link above ~20 MB/s. The index is a small part of
    // a mirror's bytes (packages are most of them), while decoding it is on the
    // critical path of every cold build.
    let Some((path, listed)) = [".gz", ".xz", ""].iter().find_map(|ext| {
        let path = format!("{base}{ext}");
        release.files.get(&path).map(|l| (path, l.clone()))
    }) else {
        if required {
            bail!(
                "the Release lists no {base} (.gz, .xz or plain): is component {component:?} / architecture {arch:?} right?"
            );
        }
        return Ok(None);
    };
    if !is_safe_relative_path(&path) {
        bail!("unsafe index path {path:?}");
    }
    let display = format!("{}/{}", release.dist_url, path);
    let compression = Compression::of_path(&path);
    let text = match decode_cached(cache, &listed, compression).await? {
        Some(text) => text,
        None => download_index(http, cache, release, &path, &listed, compression)
            .await
            .with_context(|| display.clone())?,
    };
    Ok(Some(Index {
        component: component.to_owned(),
        arch: arch.to_owned(),
        path: display,
        text,
    }))
}

/// Decode the cached copy of a listed index, if there is one and it still hashes to
/// what the Release lists; a damaged copy is removed (and fetched again by the caller).
async fn decode_cached(
    cache: &Cache,
    listed: &ListedFile,
    compression: Compression,
) -> Result<Option<IndexText>> {
    if !cache.has_blob(&listed.sha256, listed.size) {
        return Ok(None);
    }
    let blob = cache.blob_path(&listed.sha256)?;
    match decode_file(blob.clone(), compression, cache.tmp_dir(), listed.clone()).await {
        Ok(text) => Ok(Some(text)),
        Err(e) => {
            tracing::warn!(
                "cache entry {} is damaged ({e:#}); fetching it again",
                blob.display()
            );
            let _ = std::fs::remove_file(&blob);
            Ok(None)
        }
    }
}

/// Download a listed index into the cache (by hash when the archive offers it), decoding
/// it while it arrives. The decoded text is kept only when the bytes it was decoded from
/// hash to the listed SHA256 and the download itself verified; otherwise (a restarted
/// transfer, say) the verified file is decoded again from the cache.
async fn download_index(
    http: &Http,
    cache: &Cache,
    release: &VerifiedRelease,
    path: &str,
    listed: &ListedFile,
    compression: Compression,
) -> Result<IndexText> {
    let plain_url = format!("{}/{}", release.dist_url, path);
    let tmp = cache.temp_path()?;
    let tmp_dir = cache.tmp_dir();
    let (chunks, reader) = ChunkReader::new();
    let streamed = tokio::task::spawn_blocking({
        let tmp_dir = tmp_dir.clone();
        move || index_text::decode(reader, compression, &tmp_dir)
    });
    let feed = |chunk: &[u8]| {
        // The decoder may have stopped (corrupt data): the download goes on regardless.
        let _ = chunks.send(chunk.to_vec());
    };
    let mut downloaded = None;
    if release.acquire_by_hash {
        let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
        let by_hash = format!(
            "{}/{dir}/by-hash/SHA256/{}",
            release.dist_url, listed.sha256
        );
        match http
            .download_verified(&by_hash, &tmp, listed.size, &listed.sha256, &feed)
            .await
        {
            Err(e) if crate::http::is_not_found(&e) => {}
            result => downloaded = Some(result),
        }
    }
    let downloaded = match downloaded {
        Some(result) => result,
        None => http
            .download_verified(&plain_url, &tmp, listed.size, &listed.sha256, &feed)
            .await
            .map_err(|e| {
                if crate::http::is_not_found(&e) {
                    anyhow!("{plain_url}: not found, though the Release lists it")
                } else {
                    e
                }
            }),
    };
    drop(chunks); // end of input for the decoder
    downloaded?;
    let blob = cache.insert_verified(tmp, &listed.sha256)?;
    if let Ok((text, consumed)) = streamed.await?
        && consumed.is(listed.size, &listed.sha256)
    {
        return Ok(text);
    }
    // The streamed copy is not known to match: decode the verified file instead.
    decode_file(blob, compression, tmp_dir, listed.clone()).await
}

/// Decode an index file, failing unless its bytes are exactly the listed ones.
async fn decode_file(
    path: std::path::PathBuf,
    compression: Compression,
    tmp_dir: std::path::PathBuf,
    listed: ListedFile,
) -> Result<IndexText> {
    tokio::task::spawn_blocking(move || {
        let file = File::open(&path).with_context(|| format!("reading {}", path.display()))?;
        let (text, consumed) = index_text::decode(file, compression, &tmp_dir)?;
        if !consumed.is(listed.size, &listed.sha256) {
            bail!("{}: not the listed size and SHA256", path.display());
        }
        Ok(text)
    })
    .await?
}

/// Check bytes against the size and SHA256 a signed Release lists for them.
pub fn check_listed(what: &str, bytes: &[u8], listed: &ListedFile) -> Result<()> {
    if bytes.len() as u64 != listed.size {
        bail!(
            "{what}: size mismatch: the signed Release says {} bytes, got {}",
            listed.size,
            bytes.len()
        );
    }
    let got = crate::sha256::hex_digest(bytes);
    if got != listed.sha256 {
        bail!(
            "{what}: SHA256 mismatch: the signed Release says {}, got {got}",
            listed.sha256
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip() {
        let d = parse_date("Sat, 10 Jun 2023 08:54:51 UTC").unwrap();
        assert_eq!(format_date(d), "Sat, 10 Jun 2023 08:54:51 UTC");
        assert_eq!(parse_date("Sat, 10 Jun 2023 08:54:51 +0000").unwrap(), d);
        assert!(parse_date("yesterday").is_err());
    }
}
