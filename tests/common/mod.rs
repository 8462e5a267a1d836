//! Hermetic test harness for `mini-mirror`.
//!
//! Everything here is independent of the crate's own code:
//! * [`GpgKey`] drives GnuPG in a private `GNUPGHOME` to make and use upstream keys.
//! * [`Upstream`] lays out a Debian-style archive with real `.deb`s (built by `dpkg-deb`),
//!   `Packages{,.gz,.xz}`, `Release`, `InRelease` and `Release.gpg`, with knobs for hostile
//!   variants.
//! * [`Server`] is a tiny HTTP/1.1 file server on 127.0.0.1 with fault hooks and a request log.
//! * [`Workspace`] lays out a `sources/` tree and runs the `mini-mirror` binary.
#![allow(dead_code)]

pub mod apt;
#[allow(unused_imports)]
pub use apt::{AptClient, apt_download};

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use md5::Md5;
use sha2::{Digest, Sha256};
use tempfile::TempDir;

/// Fixed, deterministic timestamp for `dpkg-deb` (SOURCE_DATE_EPOCH).
const SOURCE_DATE_EPOCH: &str = "1700000000";

// ---------------------------------------------------------------------------------------------
// small utilities
// ---------------------------------------------------------------------------------------------

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

pub fn md5_hex(data: &[u8]) -> String {
    hex::encode(Md5::digest(data))
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

pub fn xz(data: &[u8]) -> Vec<u8> {
    let mut enc = liblzma::write::XzEncoder::new(Vec::new(), 6);
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

pub fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data)
        .read_to_end(&mut out)
        .unwrap();
    out
}

pub fn unxz(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    liblzma::read::XzDecoder::new(data)
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// Run a command to completion and panic (with its output) if it fails.
fn run_checked(cmd: &mut Command) -> std::process::Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    if !out.status.success() {
        panic!(
            "{cmd:?} failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

fn write_file(path: &Path, data: impl AsRef<[u8]>) {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    fs::write(path, data).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

// ---------------------------------------------------------------------------------------------
// control-file parsing (Packages, Release)
// ---------------------------------------------------------------------------------------------

/// One deb822 paragraph, fields in file order. Continuation lines are joined with `\n`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stanza(pub Vec<(String, String)>);

impl Stanza {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }

    pub fn req(&self, key: &str) -> &str {
        self.get(key)
            .unwrap_or_else(|| panic!("field {key} missing in {self:?}"))
    }

    pub fn package(&self) -> &str {
        self.req("Package")
    }

    pub fn version(&self) -> &str {
        self.req("Version")
    }
}

pub fn parse_stanzas(text: &str) -> Vec<Stanza> {
    let mut out = Vec::new();
    let mut cur = Stanza::default();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !cur.0.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            continue;
        }
        if line.starts_with(' ') || line.starts_with('\t') {
            let last = cur.0.last_mut().expect("continuation line without field");
            if !last.1.is_empty() {
                last.1.push('\n');
            }
            last.1.push_str(line.trim());
            continue;
        }
        let (k, v) = line
            .split_once(':')
            .unwrap_or_else(|| panic!("bad control line {line:?}"));
        cur.0.push((k.to_string(), v.trim().to_string()));
    }
    if !cur.0.is_empty() {
        out.push(cur);
    }
    out
}

/// A parsed Release file: its fields plus the MD5Sum / SHA256 listings.
#[derive(Debug)]
pub struct ReleaseFile {
    pub fields: Stanza,
    /// path -> (hash, size)
    pub sha256: BTreeMap<String, (String, u64)>,
    pub md5: BTreeMap<String, (String, u64)>,
}

impl ReleaseFile {
    pub fn parse(text: &str) -> ReleaseFile {
        let st = parse_stanzas(text)
            .into_iter()
            .next()
            .expect("empty Release");
        let listing = |key: &str| -> BTreeMap<String, (String, u64)> {
            let mut m = BTreeMap::new();
            if let Some(v) = st.get(key) {
                for l in v.lines().filter(|l| !l.trim().is_empty()) {
                    let parts: Vec<&str> = l.split_whitespace().collect();
                    assert_eq!(parts.len(), 3, "bad {key} line {l:?}");
                    m.insert(
                        parts[2].to_string(),
                        (parts[0].to_string(), parts[1].parse().unwrap()),
                    );
                }
            }
            m
        };
        ReleaseFile {
            sha256: listing("SHA256"),
            md5: listing("MD5Sum"),
            fields: st,
        }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields.get(key)
    }

    /// Parse the Date field (RFC 2822).
    pub fn date(&self) -> chrono::DateTime<chrono::FixedOffset> {
        parse_release_date(self.fields.req("Date"))
    }
}

pub fn parse_release_date(s: &str) -> chrono::DateTime<chrono::FixedOffset> {
    // Debian writes "UTC" where RFC 2822 wants "+0000".
    let norm = s.trim().replace(" UTC", " +0000").replace(" GMT", " +0000");
    chrono::DateTime::parse_from_rfc2822(&norm).unwrap_or_else(|e| panic!("bad date {s:?}: {e}"))
}

pub fn rfc2822(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S UTC").to_string()
}

// ---------------------------------------------------------------------------------------------
// GnuPG keys
// ---------------------------------------------------------------------------------------------

struct KeyInner {
    home: TempDir,
    fpr: String,
    passphrase: String,
    /// The clock gpg signs with, when not the real one.
    faked_time: Option<String>,
}

impl Drop for KeyInner {
    fn drop(&mut self) {
        // Never leave a gpg-agent behind for this private home.
        let _ = Command::new("gpgconf")
            .env("GNUPGHOME", self.home.path())
            .args(["--kill", "all"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// An OpenPGP key living in its own temporary GNUPGHOME.
#[derive(Clone)]
pub struct GpgKey(Arc<KeyInner>);

impl GpgKey {
    fn gpg_in(home: &Path, faked_time: Option<&str>, passphrase: &str) -> Command {
        let mut c = Command::new("gpg");
        c.env("GNUPGHOME", home)
            .args([
                "--batch",
                "--yes",
                "--no-tty",
                "--quiet",
                "--pinentry-mode",
                "loopback",
            ])
            .args(["--passphrase", passphrase]);
        if let Some(t) = faked_time {
            c.args(["--faked-system-time", t]);
        }
        c
    }

    fn gpg(&self) -> Command {
        Self::gpg_in(
            self.0.home.path(),
            self.0.faked_time.as_deref(),
            &self.0.passphrase,
        )
    }

    /// `faked`: (the time the key is made at, the time it signs at). gpg's faked clock
    /// runs on from the time given, so signing must start later than the key was made:
    /// a key made a second "in the future" of the signing clock is unusable.
    fn create(uid: &str, passphrase: &str, expiry: &str, faked: Option<(&str, &str)>) -> GpgKey {
        Self::create_with(uid, passphrase, expiry, faked, "rsa2048", &[])
    }

    /// A key of algorithm `algo` (`dsa2048`, `ed25519`...), made with extra gpg options
    /// (`--cert-digest-algo SHA1` for SHA-1 binding signatures).
    pub fn generate_with(uid: &str, algo: &str, expiry: &str, extra: &[&str]) -> GpgKey {
        Self::create_with(uid, "", expiry, None, algo, extra)
    }

    fn create_with(
        uid: &str,
        passphrase: &str,
        expiry: &str,
        faked: Option<(&str, &str)>,
        algo: &str,
        extra: &[&str],
    ) -> GpgKey {
        let (made_at, signs_at) = faked.unzip();
        let home = tempfile::Builder::new().prefix("gpg").tempdir().unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(home.path(), fs::Permissions::from_mode(0o700)).unwrap();
        }
        run_checked(
            Self::gpg_in(home.path(), made_at, passphrase)
                .args(extra)
                .args(["--quick-gen-key", uid, algo, "sign", expiry]),
        );
        let out = run_checked(
            Self::gpg_in(home.path(), signs_at, passphrase)
                .args(["--with-colons", "--list-secret-keys"]),
        );
        let listing = String::from_utf8(out.stdout).unwrap();
        let fpr = listing
            .lines()
            .find(|l| l.starts_with("fpr:"))
            .and_then(|l| l.split(':').nth(9))
            .expect("no fingerprint")
            .to_string();
        GpgKey(Arc::new(KeyInner {
            home,
            fpr,
            passphrase: passphrase.to_string(),
            faked_time: signs_at.map(str::to_string),
        }))
    }

    /// A normal signing key (`rsa2048 sign 1y`, empty passphrase).
    pub fn generate(uid: &str) -> GpgKey {
        Self::create(uid, "", "1y", None)
    }

    /// A key protected by `passphrase`.
    pub fn generate_with_passphrase(uid: &str, passphrase: &str) -> GpgKey {
        Self::create(uid, passphrase, "1y", None)
    }

    /// A key created on 2020-01-01 with a one-day lifetime: everything it signs is dated
    /// 2020-01-01 (an hour later, while it was valid), and it is expired now.
    pub fn generate_expired(uid: &str) -> GpgKey {
        Self::create(uid, "", "1d", Some(("20200101T000000", "20200101T010000")))
    }

    pub fn fingerprint(&self) -> &str {
        &self.0.fpr
    }

    pub fn passphrase(&self) -> &str {
        &self.0.passphrase
    }

    fn sign_file(&self, input: &[u8], mode: &[&str]) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let inp = dir.path().join("in");
        let outp = dir.path().join("out");
        fs::write(&inp, input).unwrap();
        run_checked(
            self.gpg()
                .args(["--local-user", &self.0.fpr, "--digest-algo", "SHA256"])
                .args(mode)
                .arg("--output")
                .arg(&outp)
                .arg(&inp),
        );
        fs::read(&outp).unwrap()
    }

    /// `gpg --clearsign` (InRelease).
    pub fn clearsign(&self, input: &[u8]) -> Vec<u8> {
        self.sign_file(input, &["--clearsign"])
    }

    /// `gpg --detach-sign --armor` (Release.gpg).
    pub fn detach_sign(&self, input: &[u8]) -> Vec<u8> {
        self.sign_file(input, &["--detach-sign", "--armor"])
    }

    /// A binary detached signature (packets concatenate into a multi-signature file).
    pub fn detach_sign_binary(&self, input: &[u8]) -> Vec<u8> {
        self.sign_file(input, &["--detach-sign"])
    }

    /// Binary public key (`gpg --export`).
    pub fn public_binary(&self) -> Vec<u8> {
        run_checked(self.gpg().args(["--export", &self.0.fpr])).stdout
    }

    /// Armored public key (`gpg --export --armor`).
    pub fn public_armor(&self) -> Vec<u8> {
        run_checked(self.gpg().args(["--export", "--armor", &self.0.fpr])).stdout
    }

    /// Binary secret key (`gpg --export-secret-keys`), still protected by its passphrase.
    pub fn secret_binary(&self) -> Vec<u8> {
        run_checked(self.gpg().args(["--export-secret-keys", &self.0.fpr])).stdout
    }

    /// Armored secret key (`gpg --export-secret-keys --armor`).
    pub fn secret_armor(&self) -> Vec<u8> {
        run_checked(
            self.gpg()
                .args(["--export-secret-keys", "--armor", &self.0.fpr]),
        )
        .stdout
    }

    /// Revoke the key by importing the revocation certificate GnuPG generated with it.
    /// Afterwards [`public_binary`](Self::public_binary) exports the revoked certificate.
    /// (Sign whatever you need *before* revoking: gpg refuses to sign with a revoked key.)
    pub fn revoke(&self) {
        let rev = self
            .0
            .home
            .path()
            .join("openpgp-revocs.d")
            .join(format!("{}.rev", self.0.fpr));
        let text = fs::read_to_string(&rev).expect("revocation certificate");
        let cleaned: String = text
            .lines()
            .map(|l| l.strip_prefix(':').unwrap_or(l))
            .collect::<Vec<_>>()
            .join("\n");
        let tmp = self.0.home.path().join("revoke.asc");
        fs::write(&tmp, cleaned + "\n").unwrap();
        run_checked(self.gpg().arg("--import").arg(&tmp));
    }
}

/// Verify a clearsigned file with `gpgv --keyring KEYRING FILE`.
pub fn gpgv(keyring: &Path, files: &[&Path]) -> std::process::Output {
    let home = tempfile::tempdir().unwrap();
    let keyring = fs::canonicalize(keyring).unwrap_or_else(|_| keyring.to_path_buf());
    Command::new("gpgv")
        .env("GNUPGHOME", home.path())
        .arg("--keyring")
        .arg(&keyring)
        .args(files)
        .output()
        .expect("run gpgv")
}

/// GnuPG's `gpgv` must accept both signatures of a published dist (InRelease and
/// Release.gpg over Release) with the exported keyring.
#[track_caller]
pub fn assert_gpgv_accepts_dist(keyring: &Path, dist: &Path) {
    let r = gpgv(keyring, &[&dist.join("InRelease")]);
    assert!(
        r.status.success(),
        "gpgv rejects {}/InRelease: {}",
        dist.display(),
        String::from_utf8_lossy(&r.stderr)
    );
    let r = gpgv(keyring, &[&dist.join("Release.gpg"), &dist.join("Release")]);
    assert!(
        r.status.success(),
        "gpgv rejects {}/Release.gpg: {}",
        dist.display(),
        String::from_utf8_lossy(&r.stderr)
    );
}

/// Fingerprints found in an OpenPGP key file, via `gpg --show-keys`.
pub fn key_fingerprints(keyfile: &Path) -> Vec<String> {
    let home = tempfile::tempdir().unwrap();
    let out = run_checked(
        Command::new("gpg")
            .env("GNUPGHOME", home.path())
            .args(["--batch", "--with-colons", "--show-keys"])
            .arg(keyfile),
    );
    let fprs = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("fpr:"))
        .filter_map(|l| l.split(':').nth(9).map(str::to_string))
        .collect();
    let _ = Command::new("gpgconf")
        .env("GNUPGHOME", home.path())
        .args(["--kill", "all"])
        .status();
    fprs
}

// ---------------------------------------------------------------------------------------------
// Upstream archive fixture
// ---------------------------------------------------------------------------------------------

/// One binary package of the fixture archive.
#[derive(Clone, Debug)]
pub struct Pkg {
    pub name: String,
    pub version: String,
    pub arch: String,
    /// Extra control fields (in the .deb and in the Packages entry).
    fields: Vec<(String, String)>,
    /// Packages-entry-only overrides: `Some(v)` replaces/adds, `None` removes.
    index_overrides: Vec<(String, Option<String>)>,
    payload_size: usize,
}

impl Pkg {
    pub fn new(name: &str, version: &str) -> Pkg {
        Pkg {
            name: name.into(),
            version: version.into(),
            arch: "amd64".into(),
            fields: Vec::new(),
            index_overrides: Vec::new(),
            payload_size: 64,
        }
    }

    pub fn arch(mut self, arch: &str) -> Pkg {
        self.arch = arch.into();
        self
    }

    /// Add (or replace) a control field, present both in the .deb and in the index.
    pub fn field(mut self, key: &str, value: &str) -> Pkg {
        self.fields.retain(|(k, _)| !k.eq_ignore_ascii_case(key));
        self.fields.push((key.into(), value.into()));
        self
    }

    pub fn depends(self, v: &str) -> Pkg {
        self.field("Depends", v)
    }
    pub fn pre_depends(self, v: &str) -> Pkg {
        self.field("Pre-Depends", v)
    }
    pub fn recommends(self, v: &str) -> Pkg {
        self.field("Recommends", v)
    }
    pub fn suggests(self, v: &str) -> Pkg {
        self.field("Suggests", v)
    }
    pub fn provides(self, v: &str) -> Pkg {
        self.field("Provides", v)
    }
    pub fn multi_arch(self, v: &str) -> Pkg {
        self.field("Multi-Arch", v)
    }
    pub fn source(self, v: &str) -> Pkg {
        self.field("Source", v)
    }
    pub fn essential(self) -> Pkg {
        self.field("Essential", "yes")
    }
    pub fn priority(self, v: &str) -> Pkg {
        self.field("Priority", v)
    }

    /// Make the .deb bigger (useful for slow-download tests).
    pub fn payload_size(mut self, bytes: usize) -> Pkg {
        self.payload_size = bytes;
        self
    }

    /// Override a field in the Packages entry only (e.g. `Filename`, `SHA256`, `Size`).
    pub fn index_field(mut self, key: &str, value: &str) -> Pkg {
        self.index_overrides.push((key.into(), Some(value.into())));
        self
    }

    /// Remove a field from the Packages entry only.
    pub fn drop_index_field(mut self, key: &str) -> Pkg {
        self.index_overrides.push((key.into(), None));
        self
    }

    /// Source package name (from `Source:`, without a version), else the package name.
    pub fn source_name(&self) -> String {
        self.fields
            .iter()
            .find(|(k, _)| k == "Source")
            .map(|(_, v)| v.split_whitespace().next().unwrap().to_string())
            .unwrap_or_else(|| self.name.clone())
    }

    /// `name_version_arch.deb`, epoch stripped like Debian does.
    pub fn deb_name(&self) -> String {
        let v = self
            .version
            .split_once(':')
            .map(|(_, v)| v)
            .unwrap_or(&self.version);
        format!("{}_{}_{}.deb", self.name, v, self.arch)
    }

    /// Debian pool path: `pool/<comp>/<l>/<source>/<deb>`.
    pub fn pool_path(&self, comp: &str) -> String {
        let src = self.source_name();
        format!(
            "pool/{comp}/{}/{src}/{}",
            pool_letter(&src),
            self.deb_name()
        )
    }

    fn control_text(&self) -> String {
        let mut s = format!(
            "Package: {}\nVersion: {}\nArchitecture: {}\n",
            self.name, self.version, self.arch
        );
        s += "Maintainer: Test Maintainer <maint@example.org>\n";
        for (k, v) in &self.fields {
            s += &format!("{k}: {v}\n");
        }
        s += &format!(
            "Description: test package {}\n This is the {} fixture package.\n",
            self.name, self.name
        );
        s
    }
}

/// `l` for most sources, `libX` for `lib*` sources.
pub fn pool_letter(source: &str) -> String {
    if source.starts_with("lib") && source.len() > 3 {
        source[..4].to_string()
    } else {
        source[..1].to_string()
    }
}

#[derive(Clone)]
struct DistSpec {
    name: String,
    suite: String,
    codename: String,
    origin: String,
    label: String,
    date: String,
    valid_until: Option<String>,
    archs: Vec<String>,
    comps: Vec<String>,
    cur_comp: String,
    by_hash: bool,
    inrelease: bool,
    release_gpg: bool,
    signer: Option<GpgKey>,
    extra_fields: Vec<(String, String)>,
    packages: Vec<(String, Pkg)>,
}

/// Builder for a fixture archive. Methods after `.dist(..)` configure that dist;
/// `.package(..)` adds to the dist's current component (set with `.component(..)`).
#[derive(Clone)]
pub struct Upstream {
    key: GpgKey,
    dists: Vec<DistSpec>,
}

impl Upstream {
    pub fn new(key: &GpgKey) -> Upstream {
        Upstream {
            key: key.clone(),
            dists: Vec::new(),
        }
    }

    fn cur(&mut self) -> &mut DistSpec {
        if self.dists.is_empty() {
            self.dists.push(Self::default_dist("bookworm"));
        }
        self.dists.last_mut().unwrap()
    }

    fn default_dist(name: &str) -> DistSpec {
        DistSpec {
            name: name.into(),
            suite: name.into(),
            codename: name.into(),
            origin: "Test Origin".into(),
            label: "Test Label".into(),
            date: rfc2822(chrono::Utc::now() - chrono::Duration::hours(1)),
            valid_until: None,
            archs: vec!["amd64".into()],
            comps: Vec::new(),
            cur_comp: "main".into(),
            by_hash: false,
            inrelease: true,
            release_gpg: true,
            signer: None,
            extra_fields: Vec::new(),
            packages: Vec::new(),
        }
    }

    /// Start a new dist (suite and codename default to the name).
    pub fn dist(mut self, name: &str) -> Upstream {
        self.dists.push(Self::default_dist(name));
        self
    }

    /// Add a component (if new) and make it the target of following `.package(..)` calls.
    pub fn component(mut self, comp: &str) -> Upstream {
        let d = self.cur();
        if !d.comps.iter().any(|c| c == comp) {
            d.comps.push(comp.into());
        }
        d.cur_comp = comp.into();
        self
    }

    pub fn architectures(mut self, archs: &[&str]) -> Upstream {
        self.cur().archs = archs.iter().map(|s| s.to_string()).collect();
        self
    }

    pub fn package(mut self, pkg: Pkg) -> Upstream {
        let d = self.cur();
        if d.comps.is_empty() {
            d.comps.push(d.cur_comp.clone());
        }
        let comp = d.cur_comp.clone();
        d.packages.push((comp, pkg));
        self
    }

    pub fn suite(mut self, v: &str) -> Upstream {
        self.cur().suite = v.into();
        self
    }
    pub fn codename(mut self, v: &str) -> Upstream {
        self.cur().codename = v.into();
        self
    }
    pub fn origin(mut self, v: &str) -> Upstream {
        self.cur().origin = v.into();
        self
    }
    pub fn label(mut self, v: &str) -> Upstream {
        self.cur().label = v.into();
        self
    }
    /// Release `Date:` (RFC 2822, e.g. `Sat, 21 Nov 2026 10:00:00 UTC`).
    pub fn date(mut self, v: &str) -> Upstream {
        self.cur().date = v.into();
        self
    }
    pub fn valid_until(mut self, v: &str) -> Upstream {
        self.cur().valid_until = Some(v.into());
        self
    }
    /// Another field in the Release (e.g. `NotAutomatic: yes`).
    pub fn release_field(mut self, name: &str, value: &str) -> Upstream {
        self.cur().extra_fields.push((name.into(), value.into()));
        self
    }
    /// Write `Acquire-By-Hash: yes` and `by-hash/SHA256/<hash>` copies.
    pub fn by_hash(mut self) -> Upstream {
        self.cur().by_hash = true;
        self
    }
    /// Do not publish InRelease (only Release + Release.gpg).
    pub fn without_inrelease(mut self) -> Upstream {
        self.cur().inrelease = false;
        self
    }
    /// Do not publish Release.gpg.
    pub fn without_release_gpg(mut self) -> Upstream {
        self.cur().release_gpg = false;
        self
    }
    /// Sign this dist with another key than the one given to [`Upstream::new`].
    pub fn signed_by(mut self, key: &GpgKey) -> Upstream {
        self.cur().signer = Some(key.clone());
        self
    }

    /// Build into a fresh temporary directory.
    pub fn build(self) -> UpstreamRepo {
        let dir = tempfile::Builder::new()
            .prefix("upstream")
            .tempdir()
            .unwrap();
        self.build_into(dir.path());
        UpstreamRepo { dir }
    }

    /// (Re)build into `root`, replacing any previous `dists/` and `pool/`.
    pub fn build_into(&self, root: &Path) {
        for sub in ["dists", "pool"] {
            let p = root.join(sub);
            if p.exists() {
                fs::remove_dir_all(&p).unwrap();
            }
        }
        let mut built_debs: HashMap<String, Vec<u8>> = HashMap::new();
        for d in &self.dists {
            let dist_dir = root.join("dists").join(&d.name);
            // comp -> arch -> Packages text
            let mut indices: BTreeMap<(String, String), String> = BTreeMap::new();
            for comp in &d.comps {
                for arch in &d.archs {
                    indices.insert((comp.clone(), arch.clone()), String::new());
                }
            }
            for (comp, pkg) in &d.packages {
                let pool = pkg.pool_path(comp);
                let deb = built_debs
                    .entry(pool.clone())
                    .or_insert_with(|| build_deb(pkg))
                    .clone();
                write_file(&root.join(&pool), &deb);
                let stanza = index_stanza(pkg, &pool, &deb);
                for arch in &d.archs {
                    if pkg.arch == *arch || pkg.arch == "all" {
                        let text = indices.get_mut(&(comp.clone(), arch.clone())).unwrap();
                        if !text.is_empty() {
                            text.push('\n');
                        }
                        text.push_str(&stanza);
                    }
                }
            }
            let mut listed: Vec<(String, Vec<u8>)> = Vec::new();
            for ((comp, arch), text) in &indices {
                let base = format!("{comp}/binary-{arch}/Packages");
                let raw = text.as_bytes().to_vec();
                for (name, data) in [
                    (base.clone(), raw.clone()),
                    (format!("{base}.gz"), gzip(&raw)),
                    (format!("{base}.xz"), xz(&raw)),
                ] {
                    write_file(&dist_dir.join(&name), &data);
                    if d.by_hash {
                        let bh = dist_dir
                            .join(&name)
                            .parent()
                            .unwrap()
                            .join("by-hash/SHA256")
                            .join(sha256_hex(&data));
                        write_file(&bh, &data);
                    }
                    listed.push((name, data));
                }
            }
            let release = release_text(d, &listed);
            write_file(&dist_dir.join("Release"), &release);
            let signer = d.signer.as_ref().unwrap_or(&self.key);
            if d.inrelease {
                write_file(
                    &dist_dir.join("InRelease"),
                    signer.clearsign(release.as_bytes()),
                );
            }
            if d.release_gpg {
                write_file(
                    &dist_dir.join("Release.gpg"),
                    signer.detach_sign(release.as_bytes()),
                );
            }
        }
    }
}

fn release_text(d: &DistSpec, listed: &[(String, Vec<u8>)]) -> String {
    let mut r = String::new();
    r += &format!(
        "Origin: {}\nLabel: {}\nSuite: {}\nCodename: {}\n",
        d.origin, d.label, d.suite, d.codename
    );
    r += &format!("Date: {}\n", d.date);
    if let Some(v) = &d.valid_until {
        r += &format!("Valid-Until: {v}\n");
    }
    r += &format!(
        "Architectures: {}\nComponents: {}\n",
        d.archs.join(" "),
        d.comps.join(" ")
    );
    if d.by_hash {
        r += "Acquire-By-Hash: yes\n";
    }
    r += "Description: mini-mirror test fixture\n";
    for (name, value) in &d.extra_fields {
        r += &format!("{name}: {value}\n");
    }
    r += "MD5Sum:\n";
    for (name, data) in listed {
        r += &format!(" {} {:>16} {}\n", md5_hex(data), data.len(), name);
    }
    r += "SHA256:\n";
    for (name, data) in listed {
        r += &format!(" {} {:>16} {}\n", sha256_hex(data), data.len(), name);
    }
    r
}

fn index_stanza(pkg: &Pkg, pool: &str, deb: &[u8]) -> String {
    let mut fields: Vec<(String, String)> = parse_stanzas(&pkg.control_text()).remove(0).0;
    fields.push(("Filename".into(), pool.into()));
    fields.push(("Size".into(), deb.len().to_string()));
    fields.push(("MD5sum".into(), md5_hex(deb)));
    fields.push(("SHA256".into(), sha256_hex(deb)));
    for (k, v) in &pkg.index_overrides {
        match v {
            Some(v) => {
                if let Some(slot) = fields.iter_mut().find(|(fk, _)| fk.eq_ignore_ascii_case(k)) {
                    slot.1 = v.clone();
                } else {
                    fields.push((k.clone(), v.clone()));
                }
            }
            None => fields.retain(|(fk, _)| !fk.eq_ignore_ascii_case(k)),
        }
    }
    let mut s = String::new();
    for (k, v) in fields {
        let mut lines = v.split('\n');
        s += &format!("{k}: {}\n", lines.next().unwrap());
        for l in lines {
            s += &format!(" {l}\n");
        }
    }
    s
}

/// Build a real .deb with `dpkg-deb --root-owner-group --build`.
fn build_deb(pkg: &Pkg) -> Vec<u8> {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    write_file(&root.join("DEBIAN/control"), pkg.control_text());
    // Deterministic, mildly incompressible payload so sizes are meaningful.
    let mut payload = Vec::with_capacity(pkg.payload_size);
    let mut x: u32 = pkg
        .name
        .bytes()
        .fold(2166136261u32, |h, b| (h ^ b as u32).wrapping_mul(16777619));
    while payload.len() < pkg.payload_size {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        payload.push((x & 0xff) as u8);
    }
    write_file(
        &root.join(format!("usr/share/{}/data.bin", pkg.name)),
        &payload,
    );
    let out = tmp.path().join("out.deb");
    run_checked(
        Command::new("dpkg-deb")
            .env("SOURCE_DATE_EPOCH", SOURCE_DATE_EPOCH)
            .args(["--root-owner-group", "-Zgzip", "--build"])
            .arg(&root)
            .arg(&out)
            .stdout(Stdio::null()),
    );
    fs::read(&out).unwrap()
}

/// A built fixture archive on disk, with helpers to corrupt it after the fact.
pub struct UpstreamRepo {
    dir: TempDir,
}

impl UpstreamRepo {
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn read(&self, rel: &str) -> Vec<u8> {
        fs::read(self.path(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
    }

    pub fn write(&self, rel: &str, data: impl AsRef<[u8]>) {
        write_file(&self.path(rel), data);
    }

    pub fn remove(&self, rel: &str) {
        fs::remove_file(self.path(rel)).unwrap_or_else(|e| panic!("remove {rel}: {e}"));
    }

    /// Rewrite a file in place.
    pub fn tamper(&self, rel: &str, f: impl FnOnce(&mut Vec<u8>)) {
        let mut data = self.read(rel);
        f(&mut data);
        self.write(rel, data);
    }

    /// Replace the whole archive with a freshly built one (same directory, so same URL).
    pub fn rebuild(&self, upstream: &Upstream) {
        upstream.build_into(self.root());
    }

    /// Rewrite `Packages`, `.gz` and `.xz` of one index from new text *without* touching the
    /// (signed) Release, so the Release's sizes/hashes no longer match.
    pub fn rewrite_index(
        &self,
        dist: &str,
        comp: &str,
        arch: &str,
        f: impl FnOnce(&str) -> String,
    ) {
        let base = format!("dists/{dist}/{comp}/binary-{arch}/Packages");
        let text = String::from_utf8(self.read(&base)).unwrap();
        let new = f(&text);
        self.write(&base, new.as_bytes());
        self.write(&format!("{base}.gz"), gzip(new.as_bytes()));
        self.write(&format!("{base}.xz"), xz(new.as_bytes()));
        // by-hash copies, if any, are keyed by the old hash: overwrite them too.
        let bh = self.path(&format!("dists/{dist}/{comp}/binary-{arch}/by-hash/SHA256"));
        if bh.is_dir() {
            let rel = ReleaseFile::parse(
                &String::from_utf8(self.read(&format!("dists/{dist}/Release"))).unwrap(),
            );
            for (suffix, data) in [
                ("", new.as_bytes().to_vec()),
                (".gz", gzip(new.as_bytes())),
                (".xz", xz(new.as_bytes())),
            ] {
                let key = format!("{comp}/binary-{arch}/Packages{suffix}");
                if let Some((h, _)) = rel.sha256.get(&key) {
                    write_file(&bh.join(h), &data);
                }
            }
        }
    }
}

impl UpstreamRepo {
    /// Rewrite `dists/<dist>/Release` with `f` and sign the result again with `key` (new
    /// InRelease and Release.gpg): a hostile upstream that holds the key. Returns the new text.
    pub fn resign_release(
        &self,
        key: &GpgKey,
        dist: &str,
        f: impl FnOnce(&str) -> String,
    ) -> String {
        let rel = format!("dists/{dist}/Release");
        let old = String::from_utf8(self.read(&rel)).unwrap();
        let new = f(&old);
        self.write(&rel, new.as_bytes());
        self.write(
            &format!("dists/{dist}/InRelease"),
            key.clearsign(new.as_bytes()),
        );
        self.write(
            &format!("dists/{dist}/Release.gpg"),
            key.detach_sign(new.as_bytes()),
        );
        new
    }

    /// Like [`rewrite_index`](Self::rewrite_index), but the Release is updated to list the new
    /// files (sizes, MD5Sum, SHA256; by-hash copies under the new hashes) and signed again with
    /// `key`: a validly signed index with whatever content `f` returns.
    pub fn rewrite_index_signed(
        &self,
        key: &GpgKey,
        dist: &str,
        comp: &str,
        arch: &str,
        f: impl FnOnce(&str) -> String,
    ) {
        self.rewrite_index_signed_bytes(key, dist, comp, arch, |t| f(t).into_bytes());
    }

    /// [`rewrite_index_signed`](Self::rewrite_index_signed) for content that need not be
    /// UTF-8.
    pub fn rewrite_index_signed_bytes(
        &self,
        key: &GpgKey,
        dist: &str,
        comp: &str,
        arch: &str,
        f: impl FnOnce(&str) -> Vec<u8>,
    ) {
        let base = format!("dists/{dist}/{comp}/binary-{arch}/Packages");
        let text = String::from_utf8(self.read(&base)).unwrap();
        let new = f(&text);
        let files = [
            ("".to_string(), new.clone()),
            (".gz".to_string(), gzip(&new)),
            (".xz".to_string(), xz(&new)),
        ];
        let bh = self.path(&format!("dists/{dist}/{comp}/binary-{arch}/by-hash/SHA256"));
        for (suffix, data) in &files {
            self.write(&format!("{base}{suffix}"), data);
            if bh.is_dir() {
                write_file(&bh.join(sha256_hex(data)), data);
            }
        }
        self.resign_release(key, dist, |r| {
            let mut r = r.to_string();
            for (suffix, data) in &files {
                r = relist(&r, &format!("{comp}/binary-{arch}/Packages{suffix}"), data);
            }
            r
        });
    }
}

/// In a Release text, list `data` (size and hash) for `path` in the MD5Sum and SHA256
/// sections, replacing the lines that listed `path` before.
pub fn relist(release: &str, path: &str, data: &[u8]) -> String {
    let mut out = String::new();
    let mut section = String::new();
    for line in release.lines() {
        if !line.starts_with(' ') {
            section = line.split(':').next().unwrap_or("").to_ascii_lowercase();
        } else if line.split_whitespace().last() == Some(path) {
            let hash = match section.as_str() {
                "md5sum" => md5_hex(data),
                "sha256" => sha256_hex(data),
                other => panic!("relist: cannot compute a {other} hash"),
            };
            out += &format!(" {hash} {:>16} {path}\n", data.len());
            continue;
        }
        out += line;
        out.push('\n');
    }
    out
}

// ---------------------------------------------------------------------------------------------
// HTTP server
// ---------------------------------------------------------------------------------------------

/// One request the server received.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    /// The request target exactly as sent (origin-form `/x` or absolute-form `http://h/x`).
    pub target: String,
    /// The decoded path, without scheme/host/query.
    pub path: String,
    /// True when the request line used absolute-form (i.e. came through as a proxy request).
    pub absolute_form: bool,
    pub host_header: Option<String>,
    pub range: Option<String>,
}

#[derive(Clone, Debug, Default)]
struct Fault {
    /// (status, remaining) — answer `status` for the next `remaining` requests.
    status: Option<(u16, usize)>,
    /// Drop the connection after this many body bytes, once.
    drop_after: Option<usize>,
    /// Sleep this long after the headers, before the body.
    delay: Option<Duration>,
    /// Sleep this long before answering at all (no status line, no headers).
    stall_headers: Option<Duration>,
    /// Answer `302 Found` with `Location: <base><request path>` (every time).
    redirect_base: Option<String>,
    /// Reset the connection (TCP RST) after this many body bytes, once.
    reset_after: Option<usize>,
    /// Answer a `Range` request with `200 OK` and the whole file (every time).
    ignore_range: bool,
}

struct ServerState {
    root: PathBuf,
    stop: AtomicBool,
    requests: Mutex<Vec<Request>>,
    faults: Mutex<Vec<(String, Fault)>>,
    /// Requests being answered now, and the most there ever were at once.
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

/// Counts a request as in flight until dropped.
struct InFlight<'a>(&'a ServerState);

impl<'a> InFlight<'a> {
    fn start(st: &'a ServerState) -> InFlight<'a> {
        let now = st.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        st.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(st)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Tiny HTTP/1.1 file server on 127.0.0.1. Stops when dropped.
pub struct Server {
    addr: SocketAddr,
    state: Arc<ServerState>,
    accept: Option<thread::JoinHandle<()>>,
}

impl Server {
    pub fn start(root: &Path) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(ServerState {
            root: root.to_path_buf(),
            stop: AtomicBool::new(false),
            requests: Mutex::new(Vec::new()),
            faults: Mutex::new(Vec::new()),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
        });
        let st = state.clone();
        let accept = thread::spawn(move || {
            for conn in listener.incoming() {
                if st.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let st = st.clone();
                thread::spawn(move || {
                    let _ = handle_connection(conn, &st);
                });
            }
        });
        Server {
            addr,
            state,
            accept: Some(accept),
        }
    }

    /// `http://127.0.0.1:PORT/` (trailing slash).
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn with_fault(&self, path_suffix: &str, f: impl FnOnce(&mut Fault)) {
        let mut faults = self.state.faults.lock().unwrap();
        if let Some((_, fault)) = faults.iter_mut().find(|(p, _)| p == path_suffix) {
            f(fault);
        } else {
            let mut fault = Fault::default();
            f(&mut fault);
            faults.push((path_suffix.to_string(), fault));
        }
    }

    /// Answer `status` to the first `times` requests whose path ends with `path_suffix`.
    pub fn fail_with(&self, path_suffix: &str, status: u16, times: usize) {
        self.with_fault(path_suffix, |f| f.status = Some((status, times)));
    }

    /// Drop the connection after `bytes` body bytes, once, for paths ending with `path_suffix`.
    pub fn drop_after(&self, path_suffix: &str, bytes: usize) {
        self.with_fault(path_suffix, |f| f.drop_after = Some(bytes));
    }

    /// Delay the body of every response for paths ending with `path_suffix`.
    pub fn delay(&self, path_suffix: &str, d: Duration) {
        self.with_fault(path_suffix, |f| f.delay = Some(d));
    }

    /// Say nothing at all (not even a status line) for `d` after reading a request for a path
    /// ending with `path_suffix`, then answer normally.
    pub fn stall_headers(&self, path_suffix: &str, d: Duration) {
        self.with_fault(path_suffix, |f| f.stall_headers = Some(d));
    }

    /// Redirect (`302 Found`) every request for a path ending with `path_suffix` to
    /// `base` + the request's path (e.g. `base` = another server's [`url`](Self::url); with
    /// this server's own URL, the redirect points at itself: a loop).
    pub fn redirect_to(&self, path_suffix: &str, base: &str) {
        self.with_fault(path_suffix, |f| f.redirect_base = Some(base.to_string()));
    }

    /// Reset the connection (TCP RST, not a clean FIN) after `bytes` body bytes, once, for
    /// paths ending with `path_suffix`.
    pub fn reset_after(&self, path_suffix: &str, bytes: usize) {
        self.with_fault(path_suffix, |f| f.reset_after = Some(bytes));
    }

    /// Answer `Range` requests for paths ending with `path_suffix` with the whole file
    /// (`200 OK`), as servers without range support do.
    pub fn ignore_range(&self, path_suffix: &str) {
        self.with_fault(path_suffix, |f| f.ignore_range = true);
    }

    /// The most requests this server was answering at once.
    pub fn max_in_flight(&self) -> usize {
        self.state.max_in_flight.load(Ordering::SeqCst)
    }

    pub fn clear_faults(&self) {
        self.state.faults.lock().unwrap().clear();
    }

    pub fn requests(&self) -> Vec<Request> {
        self.state.requests.lock().unwrap().clone()
    }

    pub fn clear_requests(&self) {
        self.state.requests.lock().unwrap().clear();
    }

    /// Number of GET requests for `.deb` files.
    pub fn deb_downloads(&self) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.method == "GET" && r.path.ends_with(".deb"))
            .count()
    }

    /// Paths requested (any method) that end with `suffix`.
    pub fn requested(&self, suffix: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.path.ends_with(suffix))
            .count()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Make the close of `conn` a TCP RST (SO_LINGER with a zero timeout), then close it.
fn reset_connection(conn: &TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket descriptor and a correctly sized `linger` value.
    unsafe {
        libc::setsockopt(
            conn.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &linger as *const libc::linger as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
    // Both handles (reader clone and writer) must go for the close to happen; the caller
    // drops its own on return. Shutting down would send a FIN first, so only close.
}

fn handle_connection(conn: TcpStream, st: &ServerState) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut w = conn;
    // One request per connection (we always answer `Connection: close`).
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(());
    }
    let mut in_flight = Some(InFlight::start(st));
    let mut headers: Vec<(String, String)> = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 {
            break;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let header = |k: &str| {
        headers
            .iter()
            .find(|(hk, _)| hk == k)
            .map(|(_, v)| v.clone())
    };
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("").to_string();
    let absolute_form = target.starts_with("http://") || target.starts_with("https://");
    let raw_path = if absolute_form {
        let after_scheme = target.split_once("://").unwrap().1;
        match after_scheme.find('/') {
            Some(i) => after_scheme[i..].to_string(),
            None => "/".to_string(),
        }
    } else {
        target.clone()
    };
    let raw_path = raw_path.split(['?', '#']).next().unwrap_or("/").to_string();
    let path = percent_decode(&raw_path);
    let range = header("range");
    st.requests.lock().unwrap().push(Request {
        method: method.clone(),
        target: target.clone(),
        path: path.clone(),
        absolute_form,
        host_header: header("host"),
        range: range.clone(),
    });

    // Fault lookup (and consumption of one-shot parts).
    let mut status_fault = None;
    let mut drop_after = None;
    let mut delay = None;
    let mut stall_headers = None;
    let mut redirect_base = None;
    let mut reset_after = None;
    let mut ignore_range = false;
    {
        let mut faults = st.faults.lock().unwrap();
        for (suffix, f) in faults.iter_mut() {
            if !path.ends_with(suffix.as_str()) {
                continue;
            }
            if let Some((code, remaining)) = f.status
                && remaining > 0
            {
                status_fault = Some(code);
                f.status = Some((code, remaining - 1));
            }
            if drop_after.is_none() {
                drop_after = f.drop_after.take();
            }
            delay = delay.or(f.delay);
            stall_headers = stall_headers.or(f.stall_headers);
            if redirect_base.is_none() {
                redirect_base = f.redirect_base.clone();
            }
            if reset_after.is_none() {
                reset_after = f.reset_after.take();
            }
            ignore_range |= f.ignore_range;
        }
    }
    if let Some(d) = stall_headers {
        let until = Instant::now() + d;
        while Instant::now() < until {
            if st.stop.load(Ordering::SeqCst) {
                return Ok(());
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    let send_head = |w: &mut TcpStream,
                     status: &str,
                     extra: &[(String, String)],
                     len: usize|
     -> std::io::Result<()> {
        let mut h = format!("HTTP/1.1 {status}\r\nContent-Length: {len}\r\nConnection: close\r\n");
        h += "Accept-Ranges: bytes\r\nContent-Type: application/octet-stream\r\n";
        for (k, v) in extra {
            h += &format!("{k}: {v}\r\n");
        }
        h += "\r\n";
        w.write_all(h.as_bytes())
    };

    if let Some(code) = status_fault {
        send_head(&mut w, &format!("{code} Injected Fault"), &[], 0)?;
        return w.flush();
    }
    if let Some(base) = redirect_base {
        let location = format!("{}{}", base.trim_end_matches('/'), raw_path);
        send_head(&mut w, "302 Found", &[("Location".into(), location)], 0)?;
        return w.flush();
    }
    if method != "GET" && method != "HEAD" {
        send_head(&mut w, "405 Method Not Allowed", &[], 0)?;
        return w.flush();
    }
    let rel = Path::new(path.trim_start_matches('/'));
    let safe = rel.components().all(|c| matches!(c, Component::Normal(_)));
    let file = st.root.join(rel);
    let data = if safe && file.is_file() {
        fs::read(&file).ok()
    } else {
        None
    };
    let Some(data) = data else {
        send_head(&mut w, "404 Not Found", &[], 0)?;
        return w.flush();
    };

    let mut start = 0usize;
    let mut end = data.len(); // exclusive
    let mut status = "200 OK".to_string();
    let mut extra = Vec::new();
    // `bytes=N-` and `bytes=N-M` (one range; multipart ranges are not needed).
    if let Some(r) = range
        .as_deref()
        .filter(|_| !ignore_range)
        .and_then(|r| r.strip_prefix("bytes="))
        && let Some((first, last)) = r.split_once('-')
        && let Ok(n) = first.trim().parse::<usize>()
    {
        let last = match last.trim() {
            "" => Some(data.len().saturating_sub(1)),
            m => m
                .parse::<usize>()
                .ok()
                .map(|m| m.min(data.len().saturating_sub(1))),
        };
        let Some(last) = last.filter(|&m| n < data.len() && m >= n) else {
            send_head(
                &mut w,
                "416 Range Not Satisfiable",
                &[("Content-Range".into(), format!("bytes */{}", data.len()))],
                0,
            )?;
            return w.flush();
        };
        start = n;
        end = last + 1;
        status = "206 Partial Content".into();
        extra.push((
            "Content-Range".into(),
            format!("bytes {}-{}/{}", n, last, data.len()),
        ));
    }
    let body = &data[start..end];
    send_head(&mut w, &status, &extra, body.len())?;
    w.flush()?;
    if method == "HEAD" {
        return Ok(());
    }
    if let Some(d) = delay {
        let until = Instant::now() + d;
        while Instant::now() < until {
            if st.stop.load(Ordering::SeqCst) {
                return Ok(());
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
    if let Some(n) = reset_after {
        let n = n.min(body.len());
        for chunk in body[..n].chunks(16 * 1024) {
            w.write_all(chunk)?;
        }
        w.flush()?;
        reset_connection(&w);
        return Ok(());
    }
    let limit = drop_after.unwrap_or(usize::MAX).min(body.len());
    let chunks = body[..limit].chunks(16 * 1024);
    let last = chunks.len().saturating_sub(1);
    for (i, chunk) in chunks.enumerate() {
        if st.stop.load(Ordering::SeqCst) {
            return Ok(());
        }
        if i == last {
            // Done counting before the client can see the end of the body and reuse
            // its slot: the count never shows a request the client already finished.
            in_flight.take();
        }
        w.write_all(chunk)?;
    }
    w.flush()?;
    if limit < body.len() {
        let _ = w.shutdown(std::net::Shutdown::Both);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// sources/ tree and running the binary
// ---------------------------------------------------------------------------------------------

/// How a source.txt refers to its key file.
#[derive(Clone, Copy, Debug)]
pub enum KeyRef {
    /// `upstream-key.gpg` next to source.txt, written as a relative path.
    Relative,
    /// The same file, written as an absolute path.
    Absolute,
}

/// Builder for one `sources/<prefix>/<name>/` folder.
pub struct SourceBuilder<'w> {
    ws: &'w Workspace,
    prefix: String,
    name: String,
    url: String,
    key: Vec<u8>,
    key_ref: KeyRef,
    dist: String,
    comps: Vec<String>,
    packages: String,
    settings: Option<String>,
}

impl<'w> SourceBuilder<'w> {
    pub fn url(mut self, url: &str) -> Self {
        self.url = url.into();
        self
    }
    /// Key file content (any format: binary or armored).
    pub fn key_bytes(mut self, key: Vec<u8>) -> Self {
        self.key = key;
        self
    }
    /// The binary export of `key`.
    pub fn key(self, key: &GpgKey) -> Self {
        self.key_bytes(key.public_binary())
    }
    pub fn key_ref(mut self, r: KeyRef) -> Self {
        self.key_ref = r;
        self
    }
    pub fn dist(mut self, dist: &str) -> Self {
        self.dist = dist.into();
        self
    }
    pub fn components(mut self, comps: &[&str]) -> Self {
        self.comps = comps.iter().map(|s| s.to_string()).collect();
        self
    }
    pub fn packages(mut self, text: &str) -> Self {
        self.packages = text.into();
        self
    }
    pub fn settings(mut self, toml: &str) -> Self {
        self.settings = Some(toml.into());
        self
    }

    /// Write the folder; returns its path.
    pub fn write(self) -> PathBuf {
        let dir = self.ws.sources().join(&self.prefix).join(&self.name);
        fs::create_dir_all(&dir).unwrap();
        let key_path = dir.join("upstream-key.gpg");
        write_file(&key_path, &self.key);
        let key_str = match self.key_ref {
            KeyRef::Relative => "upstream-key.gpg".to_string(),
            KeyRef::Absolute => key_path.display().to_string(),
        };
        let comps = if self.comps.is_empty() {
            vec!["main".to_string()]
        } else {
            self.comps
        };
        write_file(
            &dir.join("source.txt"),
            format!(
                "{} {} {} {}\n",
                self.url,
                key_str,
                self.dist,
                comps.join(" ")
            ),
        );
        write_file(&dir.join("packages.txt"), &self.packages);
        if let Some(s) = self.settings {
            write_file(&dir.join("settings.toml"), s);
        }
        dir
    }
}

/// Outcome of one `mini-mirror` run.
#[derive(Debug)]
pub struct RunResult {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Parsed last stderr line of a successful build.
#[derive(Debug, PartialEq, Eq)]
pub struct Summary {
    pub packages: u64,
    pub downloaded: u64,
    pub bytes: u64,
    pub from_cache: u64,
}

impl RunResult {
    pub fn success(&self) -> bool {
        self.status.success()
    }

    #[track_caller]
    pub fn assert_success(&self) -> &Self {
        assert!(
            self.status.success(),
            "mini-mirror failed ({}).\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }

    /// Assert a non-zero exit whose stderr contains every one of `needles`.
    #[track_caller]
    pub fn assert_failure_mentioning(&self, needles: &[&str]) -> &Self {
        assert!(
            !self.status.success() && self.status.code().is_some(),
            "expected a clean non-zero exit, got {}.\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        assert!(
            !self.stderr.contains("panicked at"),
            "mini-mirror panicked instead of failing cleanly:\n{}",
            self.stderr
        );
        for n in needles {
            assert!(
                self.stderr.contains(n),
                "stderr does not mention {n:?}.\n--- stderr ---\n{}",
                self.stderr
            );
        }
        self
    }

    /// Parse `summary: N packages, N downloaded (N bytes), N from cache, X.Ys` from the last
    /// non-empty stderr line (strictly, like `^summary: (\d+) packages, ... [0-9.]+s$`).
    #[track_caller]
    pub fn summary(&self) -> Summary {
        let last = self
            .stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or_else(|| panic!("empty stderr"));
        parse_summary(last).unwrap_or_else(|| {
            panic!(
                "last stderr line is not a summary: {last:?}\n--- stderr ---\n{}",
                self.stderr
            )
        })
    }
}

pub fn parse_summary(line: &str) -> Option<Summary> {
    fn num(s: &str) -> Option<(u64, &str)> {
        let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        if end == 0 {
            return None;
        }
        Some((s[..end].parse().ok()?, &s[end..]))
    }
    let s = line.strip_prefix("summary: ")?;
    let (packages, s) = num(s)?;
    let s = s.strip_prefix(" packages, ")?;
    let (downloaded, s) = num(s)?;
    let s = s.strip_prefix(" downloaded (")?;
    let (bytes, s) = num(s)?;
    let s = s.strip_prefix(" bytes), ")?;
    let (from_cache, s) = num(s)?;
    let s = s.strip_prefix(" from cache, ")?;
    let secs = s.strip_suffix('s')?;
    if secs.is_empty() || !secs.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return None;
    }
    Some(Summary {
        packages,
        downloaded,
        bytes,
        from_cache,
    })
}

/// A temporary directory holding `sources/`, `output/`, `cache/` and `state/`.
pub struct Workspace {
    dir: TempDir,
}

pub const BUILD_TIMEOUT: Duration = Duration::from_secs(240);

impl Default for Workspace {
    fn default() -> Self {
        Self::new()
    }
}

impl Workspace {
    pub fn new() -> Workspace {
        let dir = tempfile::Builder::new().prefix("mm-ws").tempdir().unwrap();
        fs::create_dir_all(dir.path().join("sources")).unwrap();
        Workspace { dir }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }
    pub fn sources(&self) -> PathBuf {
        self.dir.path().join("sources")
    }
    pub fn output(&self) -> PathBuf {
        self.dir.path().join("output")
    }
    pub fn cache(&self) -> PathBuf {
        self.dir.path().join("cache")
    }
    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// Start describing `sources/<prefix>/<name>/`. Defaults: dist `bookworm`, component
    /// `main`, key referenced relatively, empty packages.txt.
    pub fn source(&self, prefix: &str, name: &str) -> SourceBuilder<'_> {
        SourceBuilder {
            ws: self,
            prefix: prefix.into(),
            name: name.into(),
            url: String::new(),
            key: Vec::new(),
            key_ref: KeyRef::Relative,
            dist: "bookworm".into(),
            comps: Vec::new(),
            packages: String::new(),
            settings: None,
        }
    }

    /// `sources/settings.toml` (defaults for every source).
    pub fn default_settings(&self, toml: &str) {
        write_file(&self.sources().join("settings.toml"), toml);
    }

    /// Overwrite a file below `sources/`.
    pub fn write_source_file(&self, rel: &str, data: impl AsRef<[u8]>) {
        write_file(&self.sources().join(rel), data);
    }

    /// The binary with the environment cleaned of anything that could leak in from the
    /// outside (proxies, our own env knobs), and no arguments. `MINI_MIRROR_TEST_BIN` runs
    /// the suites against another build (an older release, to show what a fix changes).
    pub fn bare_command(&self) -> Command {
        let mut c = Command::new(mini_mirror_bin());
        for var in [
            "HTTP_PROXY",
            "http_proxy",
            "HTTPS_PROXY",
            "https_proxy",
            "ALL_PROXY",
            "all_proxy",
            "NO_PROXY",
            "no_proxy",
            "MINI_MIRROR_CACHE",
            "MINI_MIRROR_STATE",
            "RELEASE_SIGN_KEY_PATH",
            "RELEASE_SIGN_KEY_PASSPHRASE",
            "RUST_LOG",
        ] {
            c.env_remove(var);
        }
        c.env("HOME", self.dir.path());
        c.env("GNUPGHOME", self.dir.path().join("no-gnupg"));
        c.stdin(Stdio::null());
        c
    }

    /// `mini-mirror build --sources .. --output .. --cache .. --state-dir ..`.
    pub fn build_command(&self) -> Command {
        let mut c = self.bare_command();
        c.arg("build")
            .arg("--sources")
            .arg(self.sources())
            .arg("--output")
            .arg(self.output())
            .arg("--cache")
            .arg(self.cache())
            .arg("--state-dir")
            .arg(self.state());
        c
    }

    pub fn build(&self) -> RunResult {
        run_with_timeout(self.build_command(), BUILD_TIMEOUT)
    }

    /// Any other subcommand (`key check ...`), with the cleaned environment.
    pub fn run(&self, args: &[&str]) -> RunResult {
        let mut c = self.bare_command();
        c.args(args);
        run_with_timeout(c, BUILD_TIMEOUT)
    }

    /// Build with extra arguments and environment variables.
    pub fn build_with(&self, args: &[&str], env: &[(&str, &str)]) -> RunResult {
        let mut c = self.build_command();
        c.args(args);
        for (k, v) in env {
            c.env(k, v);
        }
        run_with_timeout(c, BUILD_TIMEOUT)
    }

    /// `<output>/<prefix>`.
    pub fn published(&self, prefix: &str) -> PathBuf {
        self.output().join(prefix)
    }

    /// Read an output file below `<output>/<prefix>/`.
    #[track_caller]
    pub fn read_published(&self, prefix: &str, rel: &str) -> Vec<u8> {
        let p = self.published(prefix).join(rel);
        fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
    }

    /// The published (uncompressed) Packages index for one dist/component/arch.
    #[track_caller]
    pub fn packages(&self, prefix: &str, dist: &str, comp: &str, arch: &str) -> Vec<Stanza> {
        let raw = self.read_published(
            prefix,
            &format!("dists/{dist}/{comp}/binary-{arch}/Packages"),
        );
        parse_stanzas(&String::from_utf8(raw).expect("Packages is UTF-8"))
    }

    /// `(name, version)` pairs of one published Packages index, sorted.
    #[track_caller]
    pub fn published_versions(
        &self,
        prefix: &str,
        dist: &str,
        comp: &str,
        arch: &str,
    ) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = self
            .packages(prefix, dist, comp, arch)
            .iter()
            .map(|s| (s.package().to_string(), s.version().to_string()))
            .collect();
        v.sort();
        v
    }

    /// Names in one published Packages index, sorted.
    #[track_caller]
    pub fn published_names(&self, prefix: &str, dist: &str, comp: &str, arch: &str) -> Vec<String> {
        self.published_versions(prefix, dist, comp, arch)
            .into_iter()
            .map(|(n, _)| n)
            .collect()
    }

    #[track_caller]
    pub fn release(&self, prefix: &str, dist: &str) -> ReleaseFile {
        let raw = self.read_published(prefix, &format!("dists/{dist}/Release"));
        ReleaseFile::parse(&String::from_utf8(raw).unwrap())
    }

    /// Every file visible under `<output>` (following symlinks, skipping dot-entries at the
    /// top level, which an implementation may use for staging), mapped to its SHA-256.
    pub fn snapshot(&self) -> BTreeMap<String, String> {
        snapshot_tree(&self.output())
    }
}

/// Map every regular file under `root` (following symlinks; top-level dot-entries skipped)
/// to its SHA-256. Symlinks are also recorded by target, so a swapped link shows up.
pub fn snapshot_tree(root: &Path) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    if !root.exists() {
        return map;
    }
    for entry in walkdir::WalkDir::new(root)
        .follow_links(true)
        .sort_by_file_name()
    {
        let entry = entry.unwrap();
        let rel = entry.path().strip_prefix(root).unwrap();
        if let Some(Component::Normal(first)) = rel.components().next()
            && first.to_string_lossy().starts_with('.')
        {
            continue;
        }
        let key = rel.to_string_lossy().into_owned();
        if entry.file_type().is_file() {
            map.insert(key, sha256_hex(&fs::read(entry.path()).unwrap()));
        } else if entry.file_type().is_dir() && !key.is_empty() {
            map.insert(format!("{key}/"), "dir".into());
        }
    }
    map
}

/// Run a command, capturing output, killing it if it exceeds `timeout`.
/// The binary under test: this build's, or `MINI_MIRROR_TEST_BIN` (another build, to show
/// what a fix changes).
pub fn mini_mirror_bin() -> std::ffi::OsString {
    std::env::var_os("MINI_MIRROR_TEST_BIN")
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_mini-mirror").into())
}

pub fn run_with_timeout(mut cmd: Command, timeout: Duration) -> RunResult {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let (out_t, err_t) = drain(&mut child);
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let st = child.wait().unwrap();
            let stderr = err_t.join().unwrap();
            panic!("mini-mirror timed out after {timeout:?} ({st}); stderr:\n{stderr}");
        }
        thread::sleep(Duration::from_millis(20));
    };
    let r = RunResult {
        status,
        stdout: out_t.join().unwrap(),
        stderr: err_t.join().unwrap(),
    };
    // Captured by the test harness: shown only when the test fails.
    // (Arguments only: the environment may hold a passphrase.)
    let args: Vec<_> = cmd.get_args().map(|a| a.to_string_lossy()).collect();
    eprintln!(
        "--- mini-mirror {} -> {status}\n{}",
        args.join(" "),
        r.stderr
    );
    r
}

/// Take the child's stdout/stderr pipes and read them to strings on background threads.
pub fn drain(child: &mut Child) -> (thread::JoinHandle<String>, thread::JoinHandle<String>) {
    let mut so = child.stdout.take().expect("stdout piped");
    let mut se = child.stderr.take().expect("stderr piped");
    let a = thread::spawn(move || {
        let mut s = Vec::new();
        let _ = so.read_to_end(&mut s);
        String::from_utf8_lossy(&s).into_owned()
    });
    let b = thread::spawn(move || {
        let mut s = Vec::new();
        let _ = se.read_to_end(&mut s);
        String::from_utf8_lossy(&s).into_owned()
    });
    (a, b)
}

/// Wait until `cond` holds, polling, up to `timeout`. Returns whether it held.
pub fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if cond() {
            return true;
        }
        thread::sleep(Duration::from_millis(20));
    }
    cond()
}

// ---------------------------------------------------------------------------------------------
// the fixture most tests start from
// ---------------------------------------------------------------------------------------------

/// An upstream archive built by the test, signed by a fresh GnuPG key, served on 127.0.0.1,
/// and an empty workspace to build mirrors of it in.
pub struct Fixture {
    /// Where the mirror is built (sources/, output, cache, state).
    pub ws: Workspace,
    /// The upstream's HTTP server.
    pub server: Server,
    /// The upstream archive on disk.
    pub repo: UpstreamRepo,
    /// The upstream's signing key.
    pub key: GpgKey,
}

impl Fixture {
    /// Build the archive that `archive` describes and serve it.
    pub fn new(archive: impl FnOnce(Upstream) -> Upstream) -> Fixture {
        Fixture::signed_by(GpgKey::generate("Test Upstream <t@example.org>"), archive)
    }

    /// The same, with the upstream signed by `key`.
    pub fn signed_by(key: GpgKey, archive: impl FnOnce(Upstream) -> Upstream) -> Fixture {
        let repo = archive(Upstream::new(&key)).build();
        let server = Server::start(repo.root());
        Fixture {
            ws: Workspace::new(),
            server,
            repo,
            key,
        }
    }

    /// A source folder pointing at this fixture's server and key.
    pub fn source(&self, prefix: &str, name: &str) -> SourceBuilder<'_> {
        self.ws
            .source(prefix, name)
            .url(&self.server.url())
            .key(&self.key)
    }

    /// The archive used by most tests: two versions of app, of libfoo, and some bystanders.
    pub fn basic() -> Fixture {
        Fixture::new(basic_archive)
    }
}

/// bookworm/main with app 1.0 (Depends libfoo >= 1) and 2.0 (Depends libfoo >= 2,
/// Pre-Depends base), libfoo 1.0 and 2.1, base, and an unrelated package.
pub fn basic_archive(up: Upstream) -> Upstream {
    up.dist("bookworm")
        .component("main")
        .package(Pkg::new("app", "1.0").depends("libfoo (>= 1)"))
        .package(
            Pkg::new("app", "2.0")
                .depends("libfoo (>= 2)")
                .pre_depends("base"),
        )
        .package(Pkg::new("libfoo", "1.0"))
        .package(Pkg::new("libfoo", "2.1"))
        .package(Pkg::new("base", "1.0"))
        .package(Pkg::new("unrelated", "1.0"))
}

/// Every file below `dir` (recursively; directories left out).
pub fn walk_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk_files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// `curl ARGS` (paths as given, no `..` folding): (status, headers lowercased, body).
pub fn curl(args: &[&str]) -> (u16, String, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let headers = dir.path().join("h");
    let out = Command::new("curl")
        .args(["-s", "--path-as-is", "-D"])
        .arg(&headers)
        .args(["-o", "-", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .unwrap();
    let mut body = out.stdout;
    let pos = body.iter().rposition(|&b| b == b'\n').unwrap();
    let code = String::from_utf8_lossy(&body[pos + 1..])
        .parse()
        .unwrap_or(0);
    body.truncate(pos);
    let h = fs::read_to_string(&headers)
        .unwrap_or_default()
        .to_ascii_lowercase();
    (code, h, body)
}
