//! Hostile upstream, faults and concurrency (issue 7): nothing bad gets in, nothing good is
//! lost.
//!
//! Every case runs the real `mini-mirror` binary against a fixture archive served on
//! 127.0.0.1 (see `tests/common`). A case the builder must refuse ends in a clean non-zero exit
//! whose stderr says what and where, with the previously published tree byte-identical, and a
//! following good build (same cache and state) must succeed and publish a correct tree. A case
//! the builder must survive must succeed with correct output.
//!
//! The assertions encode what a security reviewer expects, not what the builder happens to do:
//! a failing test here is a finding.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Command-line arguments of one build run in a table of runs.
type Args<'a> = Vec<&'a str>;
/// Environment variables of one build run in a table of runs.
type Env<'a> = Vec<(&'a str, &'a str)>;

use common::*;

// ---------------------------------------------------------------------------------------------
// fixtures and checks
// ---------------------------------------------------------------------------------------------

/// Applied to every build: a stall limit that a busy machine never reaches on 127.0.0.1, and
/// short retry delays (20, 40, 80, 160 ms) so that retried failures stay fast.
const FAST: &[(&str, &str)] = &[
    ("MINI_MIRROR_HTTP_TIMEOUT", "10"),
    ("MINI_MIRROR_RETRY_BASE_MS", "20"),
];

/// The common [`Fixture`] with one source `p/s` (querying `app`) already written.
struct Fx(Fixture);

impl std::ops::Deref for Fx {
    type Target = Fixture;
    fn deref(&self) -> &Fixture {
        &self.0
    }
}

impl Fx {
    fn new(archive: impl FnOnce(Upstream) -> Upstream) -> Fx {
        let fx = Fixture::new(archive);
        fx.source("p", "s").packages("app\n").write();
        Fx(fx)
    }

    fn basic() -> Fx {
        Fx::new(basic_archive)
    }

    /// `mini-mirror build ...` with [`FAST`] and then `env` (later values win).
    fn command(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut c = self.ws.build_command();
        c.args(args);
        for (k, v) in FAST.iter().chain(env) {
            c.env(k, v);
        }
        c
    }

    fn build(&self) -> RunResult {
        self.build_with(&[], &[])
    }

    fn build_with(&self, args: &[&str], env: &[(&str, &str)]) -> RunResult {
        run_with_timeout(self.command(args, env), BUILD_TIMEOUT)
    }

    /// A build that must end within `limit` (a hang is reported as such, not after 240 s).
    fn build_within(&self, limit: Duration, args: &[&str], env: &[(&str, &str)]) -> RunResult {
        run_with_timeout(self.command(args, env), limit)
    }
}

/// The basic archive plus app 3.0 (a version nothing has cached yet), carrying `tweak`.
fn with_new_app(key: &GpgKey, tweak: impl FnOnce(Pkg) -> Pkg) -> Upstream {
    basic_archive(Upstream::new(key))
        .package(tweak(Pkg::new("app", "3.0").depends("libfoo (>= 2)")))
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = v
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    v.sort();
    v
}

/// What `app` resolves to before and after the upstream gains app 3.0.
fn old_set() -> Vec<(String, String)> {
    pairs(&[("app", "2.0"), ("base", "1.0"), ("libfoo", "2.1")])
}
fn new_set() -> Vec<(String, String)> {
    pairs(&[("app", "3.0"), ("libfoo", "2.1")])
}

/// Publish `app` from the basic archive, then replace the upstream with `hostile` (same URL).
fn published_then(hostile: impl FnOnce(&Fx) -> Upstream) -> Fx {
    let fx = Fx::basic();
    fx.build().assert_success();
    assert_eq!(assert_tree_consistent(&fx.ws), old_set());
    let up = hostile(&fx);
    fx.repo.rebuild(&up);
    fx
}

/// Run a build that must fail with every one of `needles` in stderr, and check that the
/// previously published tree is byte-identical afterwards.
#[track_caller]
fn assert_rejected_keeping_tree(fx: &Fx, needles: &[&str]) -> RunResult {
    assert_rejected_keeping_tree_with(fx, &[], &[], needles)
}

#[track_caller]
fn assert_rejected_keeping_tree_with(
    fx: &Fx,
    args: &[&str],
    env: &[(&str, &str)],
    needles: &[&str],
) -> RunResult {
    let before = fx.ws.snapshot();
    assert!(!before.is_empty(), "test bug: nothing published before");
    let r = fx.build_with(args, env);
    r.assert_failure_mentioning(needles);
    assert_eq!(
        before,
        fx.ws.snapshot(),
        "a failed build changed the published tree"
    );
    r
}

/// The upstream turns good again (basic archive + app 3.0, a newer Release): the next build
/// with the same cache and state succeeds and publishes a correct tree, and the cache holds
/// only verified blobs.
#[track_caller]
fn assert_recovers(fx: &Fx) {
    fx.server.clear_faults();
    fx.repo.rebuild(&with_new_app(&fx.key, |p| p));
    fx.build().assert_success();
    assert_eq!(assert_tree_consistent(&fx.ws), new_set());
    assert_no_staging_left(&fx.ws);
    assert_cache_consistent(&fx.ws);
}

/// `<output>/p` is a complete published tree: InRelease and Release.gpg verify with gpgv
/// against the published keyring, every file the Release lists has the listed size and
/// SHA256, the three compressions of Packages agree, and every Packages entry names a pool
/// file with its Size and SHA256. Returns the (name, version) pairs of bookworm/main/amd64.
#[track_caller]
fn assert_tree_consistent(ws: &Workspace) -> Vec<(String, String)> {
    let root = ws.published("p");
    let dist = root.join("dists/bookworm");
    let keyring = root.join("mini-mirror-archive-keyring.gpg");
    assert_gpgv_accepts_dist(&keyring, &dist);
    let rel = ws.release("p", "bookworm");
    assert!(!rel.sha256.is_empty(), "published Release lists nothing");
    for (path, (hash, size)) in &rel.sha256 {
        let data = fs::read(dist.join(path)).unwrap_or_else(|e| panic!("listed {path}: {e}"));
        assert_eq!(data.len() as u64, *size, "size of published {path}");
        assert_eq!(&sha256_hex(&data), hash, "SHA256 of published {path}");
    }
    let idx = dist.join("main/binary-amd64");
    let plain = fs::read(idx.join("Packages")).unwrap();
    assert_eq!(gunzip(&fs::read(idx.join("Packages.gz")).unwrap()), plain);
    assert_eq!(unxz(&fs::read(idx.join("Packages.xz")).unwrap()), plain);
    for st in ws.packages("p", "bookworm", "main", "amd64") {
        let f = st.req("Filename");
        let data = fs::read(root.join(f)).unwrap_or_else(|e| panic!("pool file {f}: {e}"));
        assert_eq!(data.len().to_string(), st.req("Size"), "Size of {f}");
        assert_eq!(sha256_hex(&data), st.req("SHA256"), "SHA256 of {f}");
    }
    ws.published_versions("p", "bookworm", "main", "amd64")
}

/// Every blob of the cache's store is named by its own SHA256 (under `<first two>/`), and
/// no temporary download is left behind.
#[track_caller]
fn assert_cache_consistent(ws: &Workspace) {
    let blobs = ws.cache().join("blobs/sha256");
    let mut n = 0;
    for e in walkdir::WalkDir::new(&blobs) {
        let e = e.unwrap();
        if !e.file_type().is_file() {
            continue;
        }
        n += 1;
        let name = e.file_name().to_string_lossy().into_owned();
        let data = fs::read(e.path()).unwrap();
        assert_eq!(
            sha256_hex(&data),
            name,
            "cache blob {} does not hold what its name says",
            e.path().display()
        );
        let dir = e.path().parent().unwrap().file_name().unwrap();
        assert_eq!(dir.to_string_lossy(), &name[..2], "{}", e.path().display());
    }
    assert!(n > 0, "the cache holds no blob at all");
    assert_eq!(
        leftovers(&ws.cache().join("tmp")),
        Vec::<String>::new(),
        "cache/tmp"
    );
}

/// Entries of a directory (empty when it does not exist).
fn leftovers(dir: &Path) -> Vec<String> {
    match fs::read_dir(dir) {
        Ok(rd) => rd
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

fn staging_dirs(ws: &Workspace) -> Vec<String> {
    leftovers(&ws.output())
        .into_iter()
        .filter(|n| n.starts_with(".staging-"))
        .collect()
}

#[track_caller]
fn assert_no_staging_left(ws: &Workspace) {
    assert_eq!(
        staging_dirs(ws),
        Vec::<String>::new(),
        "staging left in the output"
    );
}

/// The paragraph of `Package: <name>` / `Version: <version>` in a fixture index, rewritten by
/// `f` (the paragraph is passed without its trailing newline).
fn edit_entry(index: &str, name: &str, version: &str, f: impl FnOnce(&str) -> String) -> String {
    let head = format!("Package: {name}\nVersion: {version}\n");
    let mut f = Some(f);
    let parts: Vec<String> = index
        .split("\n\n")
        .map(|p| {
            if p.starts_with(&head) {
                let f = f.take().expect("entry appears once");
                f(p.trim_end_matches('\n'))
            } else {
                p.to_string()
            }
        })
        .collect();
    assert!(f.is_none(), "no entry {name} {version} in the index");
    parts.join("\n\n")
}

/// Replace the value of `field` (single-line) in a paragraph.
fn set_field(paragraph: &str, field: &str, value: &str) -> String {
    let prefix = format!("{field}:");
    let mut found = false;
    let out: Vec<String> = paragraph
        .lines()
        .map(|l| {
            if l.starts_with(&prefix) {
                found = true;
                format!("{field}: {value}")
            } else {
                l.to_string()
            }
        })
        .collect();
    assert!(found, "no {field} in {paragraph}");
    out.join("\n")
}

fn field_of(paragraph: &str, field: &str) -> String {
    let prefix = format!("{field}: ");
    paragraph
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {field} in {paragraph}"))
        .to_string()
}

/// `pool/main/a/app/app_3.0_amd64.deb`
fn app3_pool() -> String {
    Pkg::new("app", "3.0").pool_path("main")
}

// ---------------------------------------------------------------------------------------------
// signatures
// ---------------------------------------------------------------------------------------------

/// A good InRelease is all that is needed: a tampered Release.gpg (and a tampered plain
/// Release beside it) is never consulted, and the build publishes the signed content.
#[test]
fn good_inrelease_with_tampered_release_gpg_is_used() {
    let fx = published_then(|fx| with_new_app(&fx.key, |p| p));
    let mallory = GpgKey::generate("Mallory <m@example.org>");
    fx.repo.write(
        "dists/bookworm/Release.gpg",
        mallory.detach_sign(b"nothing good"),
    );
    fx.repo.tamper("dists/bookworm/Release", |d| {
        *d = String::from_utf8(d.clone())
            .unwrap()
            .replace("Label: Test Label", "Label: Evil Label")
            .into_bytes();
    });
    fx.server.clear_requests();
    fx.build().assert_success();
    assert_eq!(assert_tree_consistent(&fx.ws), new_set());
    assert_eq!(
        fx.ws.release("p", "bookworm").get("Label"),
        Some("Test Label")
    );
    assert_eq!(fx.server.requested("/dists/bookworm/Release.gpg"), 0);
    assert_eq!(fx.server.requested("/dists/bookworm/Release"), 0);
}

/// apt fails a file on any BADSIG, even beside a good signature: a Release.gpg holding the
/// good signature and one by the same (known) key over other bytes is refused. A signature
/// by a key nobody listed beside the good one is only ignored, as in apt.
#[test]
fn bad_signature_beside_a_good_one_is_refused() {
    let fx = published_then(|fx| with_new_app(&fx.key, |p| p).without_inrelease());
    let release = fx.repo.read("dists/bookworm/Release");
    let good = fx.key.detach_sign_binary(&release);
    let mallory = GpgKey::generate("Mallory <m@example.org>");
    // An unknown key's signature beside the good one: accepted.
    fx.repo.write(
        "dists/bookworm/Release.gpg",
        [good.clone(), mallory.detach_sign_binary(&release)].concat(),
    );
    fx.build().assert_success();
    assert_eq!(assert_tree_consistent(&fx.ws), new_set());
    // A BADSIG by the source's own key beside the good one: refused.
    let stale = fx.key.detach_sign_binary(b"some other Release");
    fx.repo
        .write("dists/bookworm/Release.gpg", [good, stale].concat());
    assert_rejected_keeping_tree(&fx, &["bad signature", "BADSIG"]);
    assert_recovers(&fx);
}

/// A bad InRelease is an error, never a reason to fall back to Release + Release.gpg, which
/// are good here: content changed after signing, signature stripped, signed by another key.
#[test]
fn tampered_inrelease_with_good_release_gpg_is_refused() {
    let fx = published_then(|fx| with_new_app(&fx.key, |p| p));
    let good = fx.repo.read("dists/bookworm/InRelease");
    let release = fx.repo.read("dists/bookworm/Release");
    let mallory = GpgKey::generate("Mallory <m@example.org>");
    let variants: Vec<(&str, Vec<u8>)> = vec![
        (
            "content changed after signing",
            String::from_utf8(good.clone())
                .unwrap()
                .replace("Label: Test Label", "Label: Evil Label")
                .into_bytes(),
        ),
        ("plain Release served as InRelease", release.clone()),
        ("signed by another key", mallory.clearsign(&release)),
    ];
    for (what, body) in variants {
        fx.repo.write("dists/bookworm/InRelease", &body);
        fx.server.clear_requests();
        let r = assert_rejected_keeping_tree(&fx, &["InRelease"]);
        assert!(
            r.stderr
                .contains(&format!("{}dists/bookworm", fx.server.url()))
                || r.stderr.contains("dists/bookworm"),
            "{what}: stderr does not say where:\n{}",
            r.stderr
        );
        assert_eq!(
            fx.server.requested("/dists/bookworm/Release.gpg"),
            0,
            "{what}: fell back to Release.gpg after a bad InRelease"
        );
    }
    assert_recovers(&fx);
}

/// An InRelease that the server fails to deliver (500 on every attempt, or 403) is an error
/// too: only a 404 means "this archive has no InRelease".
#[test]
fn inrelease_server_error_does_not_fall_back_to_release_gpg() {
    let fx = published_then(|fx| with_new_app(&fx.key, |p| p));
    for status in [500u16, 403] {
        fx.server.clear_faults();
        fx.server
            .fail_with("/dists/bookworm/InRelease", status, 1000);
        fx.server.clear_requests();
        let r = assert_rejected_keeping_tree(&fx, &["InRelease", &status.to_string()]);
        assert_eq!(
            fx.server.requested("/dists/bookworm/Release.gpg"),
            0,
            "HTTP {status} on InRelease: fell back to Release.gpg\n{}",
            r.stderr
        );
    }
    assert_recovers(&fx);
}

/// The upstream Release's Date minus one day, as Release files write dates.
fn day_before_upstream_date(fx: &Fx) -> String {
    let release = String::from_utf8(fx.repo.read("dists/bookworm/Release")).unwrap();
    let date = ReleaseFile::parse(&release).date();
    rfc2822(date.with_timezone(&chrono::Utc) - chrono::Duration::days(1))
}

/// Replay or a lagging CDN backend: after publishing with upstream Date D, a validly signed
/// Release dated before D is not used; as apt does, the build keeps the last verified
/// Release and its indices, says so, and the published set stays what it was.
#[test]
fn older_release_keeps_the_last_verified_one() {
    let fx = Fx::basic();
    fx.build().assert_success();
    let older = day_before_upstream_date(&fx);
    // The older Release is genuinely signed and even brings a new version.
    fx.repo.rebuild(&with_new_app(&fx.key, |p| p).date(&older));
    let r = fx.build();
    r.assert_success();
    assert!(
        r.stderr.contains("older Release") && r.stderr.contains("keeping the last verified"),
        "no warning about the older Release:\n{}",
        r.stderr
    );
    assert_eq!(assert_tree_consistent(&fx.ws), old_set());
    assert_recovers(&fx);
}

/// The same served the other way a Release can come: no InRelease (404), an older Release
/// with a good Release.gpg. Replay protection must not depend on the format.
#[test]
fn older_release_via_release_gpg_keeps_the_last_verified_one() {
    let fx = Fx::basic();
    fx.build().assert_success();
    let older = day_before_upstream_date(&fx);
    fx.repo.rebuild(
        &with_new_app(&fx.key, |p| p)
            .date(&older)
            .without_inrelease(),
    );
    let r = fx.build();
    r.assert_success();
    assert!(r.stderr.contains("older Release"), "{}", r.stderr);
    assert_eq!(assert_tree_consistent(&fx.ws), old_set());
    assert_recovers(&fx);
}

/// A Release dated ahead of the clock is refused as apt refuses it ("not valid yet"), and it
/// is not remembered: once upstream fixes its clock, the next build works.
#[test]
fn release_dated_in_the_future_is_refused_and_not_remembered() {
    let fx = Fx::basic();
    fx.build().assert_success();
    let future = rfc2822(chrono::Utc::now() + chrono::Duration::days(5 * 365));
    fx.repo.rebuild(&with_new_app(&fx.key, |p| p).date(&future));
    assert_rejected_keeping_tree(&fx, &["not valid yet"]);
    // Upstream fixes its clock: a Release dated now is accepted (the future Date did not
    // become the replay floor).
    assert_recovers(&fx);
}

/// A validly signed Release of another dist (stable's, served at dists/bookworm/) is refused:
/// apt's "Conflicting distribution".
#[test]
fn release_of_another_dist_is_refused() {
    let fx = published_then(|fx| {
        with_new_app(&fx.key, |p| p)
            .suite("stable")
            .codename("trixie")
    });
    assert_rejected_keeping_tree(&fx, &["conflicting distribution", "expected bookworm"]);
    assert_recovers(&fx);
}

/// A Release whose Origin changed since the last one accepted is refused unless the operator
/// allows it, as `apt-get update` does.
#[test]
fn release_info_change_needs_allow_releaseinfo_change() {
    let fx = published_then(|fx| with_new_app(&fx.key, |p| p).origin("Someone Else"));
    assert_rejected_keeping_tree(&fx, &["Origin", "--allow-releaseinfo-change"]);
    let r = fx.build_with(&["--allow-releaseinfo-change"], &[]);
    r.assert_success();
    assert_eq!(assert_tree_consistent(&fx.ws), new_set());
}

/// Unsigned text around a clearsigned InRelease (before the BEGIN line, after the END line,
/// or a fake unsigned "signed message" header before the real one) that claims another
/// Label and another SHA256 list (an index with an `app 9.0`, served by hash) has no effect:
/// the build either refuses the file, or publishes exactly what a clean build publishes.
#[test]
fn unsigned_text_around_clearsigned_inrelease_has_no_effect() {
    let fx = Fx::basic();
    fx.build().assert_success();
    let clean = fx.ws.snapshot();
    let clean_names = assert_tree_consistent(&fx.ws);
    let signed = String::from_utf8(fx.repo.read("dists/bookworm/InRelease")).unwrap();
    let release = String::from_utf8(fx.repo.read("dists/bookworm/Release")).unwrap();

    // The evil index: the real one plus app 9.0 (pointing at a real .deb, so it would work).
    let idx = "dists/bookworm/main/binary-amd64";
    let real = String::from_utf8(fx.repo.read(&format!("{idx}/Packages"))).unwrap();
    let unrelated = real
        .split("\n\n")
        .find(|p| p.starts_with("Package: unrelated\n"))
        .unwrap()
        .trim_end()
        .to_string();
    let evil_entry = unrelated
        .replace("Package: unrelated", "Package: app")
        .replace("Version: 1.0", "Version: 9.0");
    let evil_index = format!("{}\n\n{evil_entry}\n", real.trim_end());
    let mut evil_release = release.replace("Label: Test Label", "Label: Evil Label");
    evil_release = evil_release.replace("Description:", "Acquire-By-Hash: yes\nDescription:");
    for (suffix, data) in [
        ("", evil_index.as_bytes().to_vec()),
        (".gz", gzip(evil_index.as_bytes())),
        (".xz", xz(evil_index.as_bytes())),
    ] {
        fx.repo.write(
            &format!("{idx}/by-hash/SHA256/{}", sha256_hex(&data)),
            &data,
        );
        evil_release = relist(
            &evil_release,
            &format!("main/binary-amd64/Packages{suffix}"),
            &data,
        );
    }
    let fake_header =
        format!("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n{evil_release}\n");
    let variants = [
        (
            "evil paragraph before BEGIN",
            format!("{evil_release}\n{signed}"),
        ),
        (
            "evil paragraph after END",
            format!("{signed}{evil_release}"),
        ),
        (
            "blank line then evil paragraph after END",
            format!("{signed}\n{evil_release}"),
        ),
        (
            "fake unsigned message before the real one",
            format!("{fake_header}{signed}"),
        ),
        (
            "evil text on both sides",
            format!("{evil_release}\n{signed}\n{evil_release}"),
        ),
    ];
    let strip_release = |m: &BTreeMap<String, String>| -> BTreeMap<String, String> {
        m.iter()
            .filter(|(k, _)| {
                // Each publish is a new snapshot (a new ID, earlier ones kept).
                !(k.ends_with("dists/bookworm/Release")
                    || k.ends_with("dists/bookworm/InRelease")
                    || k.ends_with("dists/bookworm/Release.gpg")
                    || k.contains("/snapshots/"))
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    let mut outcomes = Vec::new();
    for (what, body) in &variants {
        fx.repo.write("dists/bookworm/InRelease", body);
        for args in [&[][..], &["--force"][..]] {
            fx.server.clear_requests();
            let before = fx.ws.snapshot();
            let r = fx.build_with(args, &[]);
            assert!(
                !r.stderr.contains("panicked at"),
                "{what}: panic\n{}",
                r.stderr
            );
            let after = fx.ws.snapshot();
            if r.success() {
                outcomes.push(format!("{what} {args:?}: accepted"));
                assert_eq!(
                    assert_tree_consistent(&fx.ws),
                    clean_names,
                    "{what} {args:?}: the unsigned text changed what is published"
                );
                assert_eq!(
                    fx.ws.release("p", "bookworm").get("Label"),
                    Some("Test Label"),
                    "{what} {args:?}: the unsigned Label was used"
                );
                assert_eq!(
                    fx.server.requested("/by-hash/SHA256/"),
                    0,
                    "{what} {args:?}: the unsigned SHA256 list was used"
                );
                if args.is_empty() {
                    assert_eq!(
                        before, after,
                        "{what}: nothing verified changed, yet the tree did"
                    );
                } else {
                    assert_eq!(
                        strip_release(&clean),
                        strip_release(&after),
                        "{what} --force"
                    );
                }
            } else {
                outcomes.push(format!("{what} {args:?}: refused"));
                r.assert_failure_mentioning(&["InRelease"]);
                assert_eq!(before, after, "{what}: refused, yet the tree changed");
            }
        }
    }
    eprintln!("outcomes:\n{}", outcomes.join("\n"));
}

/// A Release with only weak hashes (MD5Sum and SHA1, no SHA256) is refused.
#[test]
fn release_with_only_md5_and_sha1_is_refused() {
    let fx = published_then(|fx| with_new_app(&fx.key, |p| p));
    let dist = "dists/bookworm";
    let files: Vec<(String, Vec<u8>)> = ["Packages", "Packages.gz", "Packages.xz"]
        .iter()
        .map(|f| {
            let rel = format!("main/binary-amd64/{f}");
            let data = fx.repo.read(&format!("{dist}/{rel}"));
            (rel, data)
        })
        .collect();
    fx.repo.resign_release(&fx.key, "bookworm", |r| {
        let head = r.split("SHA256:").next().unwrap().to_string();
        let mut out = head + "SHA1:\n";
        for (rel, data) in &files {
            out += &format!(" {} {:>16} {rel}\n", sha1_hex(data), data.len());
        }
        out
    });
    let text = String::from_utf8(fx.repo.read(&format!("{dist}/Release"))).unwrap();
    assert!(text.contains("MD5Sum:") && text.contains("SHA1:") && !text.contains("SHA256"));
    assert_rejected_keeping_tree(&fx, &["SHA256"]);
    assert_recovers(&fx);
}

fn sha1_hex(data: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("f");
    fs::write(&p, data).unwrap();
    let out = Command::new("sha1sum").arg(&p).output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()[..40].to_string()
}

// ---------------------------------------------------------------------------------------------
// indices
// ---------------------------------------------------------------------------------------------

/// Truncate one compressed index and list the truncated file (its real size and SHA256) in a
/// validly signed Release: `keep` says which of the compressions stay listed.
fn serve_truncated_index(fx: &Fx, ext: &str, keep: &[&str]) {
    let idx = "main/binary-amd64/Packages";
    let path = format!("dists/bookworm/{idx}{ext}");
    let mut data = fx.repo.read(&path);
    data.truncate(data.len() / 2);
    fx.repo.write(&path, &data);
    fx.repo.resign_release(&fx.key, "bookworm", |r| {
        let r = relist(r, &format!("{idx}{ext}"), &data);
        r.lines()
            .filter(|l| {
                let last = l.split_whitespace().last().unwrap_or("");
                !l.starts_with(' ')
                    || !last.starts_with(idx)
                    || keep.iter().any(|k| last == format!("{idx}{k}"))
            })
            .map(|l| format!("{l}\n"))
            .collect()
    });
}

/// A truncated Packages.xz whose truncated hash is what the signed Release lists: a clear
/// "corrupt data" error naming the index, no panic. (The Release lists no .gz, so .xz is
/// the one fetched.)
#[test]
fn truncated_xz_index_listed_in_release_is_a_clear_error() {
    let fx = published_then(|fx| with_new_app(&fx.key, |p| p));
    serve_truncated_index(&fx, ".xz", &["", ".xz"]);
    assert_rejected_keeping_tree(&fx, &["Packages.xz", "corrupt"]);
    assert_recovers(&fx);
}

/// The same for Packages.gz, listed beside an intact .xz: gzip is preferred, and a
/// corrupt preferred index is an error, not a reason to try another.
#[test]
fn truncated_gz_index_listed_in_release_is_a_clear_error() {
    let fx = published_then(|fx| with_new_app(&fx.key, |p| p));
    serve_truncated_index(&fx, ".gz", &["", ".gz", ".xz"]);
    assert_rejected_keeping_tree(&fx, &["Packages.gz", "corrupt"]);
    assert_recovers(&fx);
}

/// Garbage in the (validly signed) entry of the package to mirror: the builder cannot know
/// what to fetch or publish, so the build fails cleanly, naming the index.
#[test]
fn garbage_fields_in_index_entry_are_refused_cleanly() {
    let fx = published_then(|fx| with_new_app(&fx.key, |p| p));
    let pristine = fx.repo.read("dists/bookworm/main/binary-amd64/Packages");
    type Edit = Box<dyn Fn(&str) -> Vec<u8>>;
    let field = |f: &'static str, v: &'static str| -> Edit {
        Box::new(move |p: &str| set_field(p, f, v).into_bytes())
    };
    let variants: Vec<(&str, Edit)> = vec![
        ("Size not a number", field("Size", "12abc")),
        ("negative Size", field("Size", "-1")),
        ("Size overflows u64", field("Size", "184467440737095516160")),
        (
            "SHA256 not hex",
            field(
                "SHA256",
                "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz",
            ),
        ),
        ("SHA256 too short", field("SHA256", "abc123")),
        ("empty Version", field("Version", "")),
        ("Version with spaces", field("Version", "3.0 beta")),
        (
            "a line that is no field",
            Box::new(|p: &str| format!("{p}\nthis line is not a field").into_bytes()),
        ),
        (
            "field without a name",
            Box::new(|p: &str| format!("{p}\n: no name").into_bytes()),
        ),
        (
            "continuation line first",
            Box::new(|p: &str| format!(" continuation first\n{p}").into_bytes()),
        ),
        (
            "not UTF-8",
            Box::new(|p: &str| {
                let mut b = p.as_bytes().to_vec();
                b.extend_from_slice(b"\nX-Junk: \xff\xfe\xc3\x28");
                b
            }),
        ),
        (
            "missing SHA256",
            Box::new(|p: &str| {
                p.lines()
                    .filter(|l| !l.starts_with("SHA256:"))
                    .collect::<Vec<_>>()
                    .join("\n")
                    .into_bytes()
            }),
        ),
    ];
    for (what, edit) in &variants {
        fx.repo
            .write("dists/bookworm/main/binary-amd64/Packages", &pristine);
        fx.repo
            .rewrite_index_signed_bytes(&fx.key, "bookworm", "main", "amd64", |t| {
                let mut out = Vec::new();
                let head = "Package: app\nVersion: 3.0\n";
                for (i, p) in t.split("\n\n").enumerate() {
                    if i > 0 {
                        out.extend_from_slice(b"\n\n");
                    }
                    if p.starts_with(head) {
                        out.extend(edit(p.trim_end_matches('\n')));
                        out.push(b'\n');
                    } else {
                        out.extend_from_slice(p.as_bytes());
                    }
                }
                out
            });
        let r = fx.build();
        assert!(
            !r.success(),
            "{what}: the build accepted the garbage entry\n{}",
            r.stderr
        );
        r.assert_failure_mentioning(&["binary-amd64/Packages"]);
    }
    assert_eq!(assert_tree_consistent(&fx.ws), old_set());
    assert_recovers(&fx);
}

/// An entry whose Package name is not a package name belongs to nothing the mirror needs:
/// apt skips it, and so does the builder, with a warning naming the index and line; the
/// rest of the index is mirrored as usual.
#[test]
fn unreadable_entry_nobody_needs_is_skipped_with_a_warning() {
    let fx = published_then(|fx| with_new_app(&fx.key, |p| p));
    fx.repo
        .rewrite_index_signed(&fx.key, "bookworm", "main", "amd64", |t| {
            t.replace(
                "Package: app\nVersion: 3.0\n",
                "Package: app!$(id)\nVersion: 3.0\n",
            )
        });
    let r = fx.build();
    r.assert_success();
    assert!(
        r.stderr.contains("binary-amd64/Packages")
            && r.stderr.contains("skipped 1 unreadable entry"),
        "{}",
        r.stderr
    );
    assert_eq!(assert_tree_consistent(&fx.ws), old_set());
}

/// The same field twice in one entry (dpkg refuses such control data): the builder reads the
/// first and would republish the paragraph verbatim, so apt could read another value than the
/// one that was resolved and verified. Either refuse, or publish an entry without duplicates.
#[test]
fn duplicate_field_in_index_entry_is_refused_or_not_republished() {
    let fx = published_then(|fx| with_new_app(&fx.key, |p| p));
    let index = "dists/bookworm/main/binary-amd64/Packages";
    let pristine = fx.repo.read(index);
    let mut failures = Vec::new();
    for (what, dup) in [
        ("second Depends", "Depends: unrelated"),
        (
            "second SHA256",
            "SHA256: 0000000000000000000000000000000000000000000000000000000000000000",
        ),
        ("second Version", "Version: 9.9"),
    ] {
        fx.repo.write(index, &pristine);
        fx.repo
            .rewrite_index_signed(&fx.key, "bookworm", "main", "amd64", |t| {
                edit_entry(t, "app", "3.0", |p| format!("{p}\n{dup}\n"))
            });
        let before = fx.ws.snapshot();
        let r = fx.build();
        assert!(!r.stderr.contains("panicked at"), "{}", r.stderr);
        if r.success() {
            assert_tree_consistent(&fx.ws);
            let text = String::from_utf8(fx.ws.read_published("p", index)).unwrap();
            for entry in text.split("\n\n").filter(|e| !e.trim().is_empty()) {
                let mut names: Vec<String> = entry
                    .lines()
                    .filter(|l| !l.starts_with(' '))
                    .filter_map(|l| l.split_once(':'))
                    .map(|(k, _)| k.to_ascii_lowercase())
                    .collect();
                names.sort();
                let n = names.len();
                names.dedup();
                if n != names.len() {
                    failures.push(format!(
                        "{what}: the build succeeded and published an entry with a duplicated \
                         field:\n{entry}"
                    ));
                }
            }
            if what == "second Depends" && !failures.is_empty() {
                // What the real client makes of it: which Depends does apt read?
                let (ok, log) =
                    apt_download(&fx.ws.published("p"), "bookworm", "main", "amd64", &["app"]);
                let tail: Vec<&str> = log
                    .lines()
                    .filter(|l| l.contains("Depends") || l.starts_with("E:"))
                    .collect();
                failures.push(format!(
                    "{what}: apt-get install --download-only app on the published tree: {} {tail:?}",
                    if ok { "succeeded" } else { "FAILED" }
                ));
            }
        } else {
            r.assert_failure_mentioning(&["binary-amd64/Packages"]);
            assert_eq!(before, fx.ws.snapshot());
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The published entry of `app` (bookworm main amd64).
fn published_app(fx: &Fx) -> Stanza {
    fx.ws
        .packages("p", "bookworm", "main", "amd64")
        .into_iter()
        .find(|s| s.package() == "app")
        .expect("app is published")
}

/// Description text of `lines` lines of 64 characters (continuation lines).
fn long_description(lines: usize) -> String {
    let mut s = String::with_capacity(lines * 66);
    s.push_str("enormous description");
    for i in 0..lines {
        s.push('\n');
        s.push_str(&format!("line {i:>10} {}", "x".repeat(47)));
    }
    s
}

/// An entry with a 10 MB Description is a legitimate if odd index: mirrored, verbatim, in
/// bounded time.
#[test]
fn enormous_description_is_mirrored_in_bounded_time() {
    let desc = long_description(10 * 1024 * 1024 / 64);
    let fx = Fx::basic();
    fx.build().assert_success();
    fx.repo.rebuild(&with_new_app(&fx.key, |p| {
        p.index_field("Description", &desc)
    }));
    let t = Instant::now();
    fx.build_within(Duration::from_secs(90), &[], &[])
        .assert_success();
    let took = t.elapsed();
    assert_eq!(assert_tree_consistent(&fx.ws), new_set());
    assert_eq!(
        published_app(&fx).req("Description"),
        desc,
        "Description not republished verbatim"
    );
    eprintln!("10 MB Description: build took {took:?}");
}

/// A Depends with a million alternatives (the last one the only real package), and a
/// Depends with a million entries: resolved (or refused cleanly) in bounded time.
#[test]
fn million_alternatives_and_entries_in_depends_are_bounded() {
    let alternatives = {
        let mut s = String::new();
        for i in 0..999_999 {
            s.push_str(&format!("nx{i} | "));
        }
        s.push_str("libfoo (>= 2)");
        s
    };
    let entries = vec!["libfoo (>= 2)"; 1_000_000].join(", ");
    let fx = Fx::basic();
    fx.build().assert_success();
    for (what, depends) in [("alternatives", &alternatives), ("entries", &entries)] {
        fx.repo.rebuild(&with_new_app(&fx.key, |p| {
            p.index_field("Depends", depends)
        }));
        let t = Instant::now();
        let r = fx.build_within(Duration::from_secs(60), &[], &[]);
        let took = t.elapsed();
        eprintln!("a million {what}: {took:?}, {}", r.status);
        assert!(!r.stderr.contains("panicked at"), "{}", r.stderr);
        r.assert_success();
        assert_eq!(
            assert_tree_consistent(&fx.ws),
            new_set(),
            "a million {what}"
        );
        assert!(
            took < Duration::from_secs(30),
            "a million {what}: the build took {took:?}"
        );
    }
}

/// The same (name, version, arch) twice in one index, identical or with a different file:
/// one entry is published (the first), consistently, and repeated builds from scratch
/// publish the same index.
#[test]
fn duplicate_package_entries_give_a_deterministic_result() {
    let fx =
        Fx::new(|up| basic_archive(up).package(Pkg::new("app", "3.0").depends("libfoo (>= 2)")));
    let packages_of =
        |ws: &Workspace| ws.read_published("p", "dists/bookworm/main/binary-amd64/Packages");
    for variant in ["identical", "different file"] {
        fx.repo.rebuild(&with_new_app(&fx.key, |p| p));
        fx.repo
            .rewrite_index_signed(&fx.key, "bookworm", "main", "amd64", |t| {
                let first = t
                    .split("\n\n")
                    .find(|p| p.starts_with("Package: app\nVersion: 3.0\n"))
                    .unwrap()
                    .trim_end()
                    .to_string();
                let second = if variant == "identical" {
                    first.clone()
                } else {
                    // Another real file (unrelated's), with its true size and hash.
                    let unrelated = t
                        .split("\n\n")
                        .find(|p| p.starts_with("Package: unrelated\n"))
                        .unwrap();
                    let mut s = first.clone();
                    for f in ["Filename", "Size", "MD5sum", "SHA256"] {
                        s = set_field(&s, f, &field_of(unrelated, f));
                    }
                    s
                };
                format!("{}\n\n{second}\n", t.trim_end())
            });
        let mut results = Vec::new();
        for _ in 0..2 {
            // A fresh workspace (empty cache and output) each time.
            let ws = Workspace::new();
            ws.source("p", "s")
                .url(&fx.server.url())
                .key(&fx.key)
                .packages("app (= 3.0)\n")
                .write();
            ws.build_with(&[], FAST).assert_success();
            assert_eq!(assert_tree_consistent(&ws), new_set(), "{variant}");
            let apps: Vec<Stanza> = ws
                .packages("p", "bookworm", "main", "amd64")
                .into_iter()
                .filter(|s| s.package() == "app")
                .collect();
            assert_eq!(apps.len(), 1, "{variant}: {apps:?}");
            let pool = fx.repo.read(&app3_pool());
            assert_eq!(
                apps[0].req("SHA256"),
                sha256_hex(&pool),
                "{variant}: not the first entry"
            );
            results.push(packages_of(&ws));
        }
        assert_eq!(results[0], results[1], "{variant}: two builds disagree");
    }
}

/// Upstream `Filename`s with odd characters are refused as unsafe, whatever they would
/// resolve to: a space, percent-encoded dot segments (which URL parsers resolve as `..`),
/// backslashes, a query, a fragment, a full URL. Where a URL parser would land on a real
/// file, the file is there, so "it downloaded fine" is not an excuse.
#[test]
fn filename_with_odd_characters_is_refused_as_unsafe() {
    let fx = published_then(|fx| with_new_app(&fx.key, |p| p));
    let deb = fx.repo.read(&app3_pool());
    // Where `pool/main/a/app/%2e%2e/%2e%2e/%2e%2e/app_3.0_amd64.deb` resolves to.
    fx.repo.write("pool/app_3.0_amd64.deb", &deb);
    fx.repo.write("pool/main/a/app/app 3.0_amd64.deb", &deb);
    let variants = [
        "pool/main/a/app/app 3.0_amd64.deb",
        "pool/main/a/app/%2e%2e/%2e%2e/%2e%2e/app_3.0_amd64.deb",
        "pool/main/a/%2E%2E/a/app/app_3.0_amd64.deb",
        "pool/main/a/app/.%2e/app/app_3.0_amd64.deb",
        "pool/main/a/app%2f..%2f..%2fapp/app_3.0_amd64.deb",
        "pool\\main\\a\\app\\app_3.0_amd64.deb",
        "pool/main/a/app/app_3.0_amd64.deb?x=.deb",
        "pool/main/a/app/app_3.0_amd64.deb#.deb",
        "http://127.0.0.1:9/app_3.0_amd64.deb",
        "pool/main/a/app/app_3.0_amd64.deb%00.deb",
    ];
    let mut failures = Vec::new();
    for filename in variants {
        fx.repo.rebuild(&with_new_app(&fx.key, |p| {
            p.index_field("Filename", filename)
        }));
        fx.repo.write("pool/app_3.0_amd64.deb", &deb);
        fx.repo.write("pool/main/a/app/app 3.0_amd64.deb", &deb);
        fx.server.clear_requests();
        let before = fx.ws.snapshot();
        let r = fx.build();
        let requested: Vec<String> = fx
            .server
            .requests()
            .into_iter()
            .filter(|q| q.path.ends_with(".deb"))
            .map(|q| q.target)
            .collect();
        let ok = !r.success()
            && r.status.code().is_some()
            && !r.stderr.contains("panicked at")
            && r.stderr.contains("unsafe")
            && before == fx.ws.snapshot();
        if !ok {
            failures.push(format!(
                "Filename {filename:?}: exit {}, .deb requests {requested:?}, stderr: {}",
                r.status,
                r.stderr
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "not refused as unsafe:\n{}",
        failures.join("\n")
    );
    assert_recovers(&fx);
}

// ---------------------------------------------------------------------------------------------
// network
// ---------------------------------------------------------------------------------------------

/// A connection reset (TCP RST, not a clean close) in the middle of a .deb is resumed and the
/// published file is right.
#[test]
fn connection_reset_mid_file_is_resumed() {
    let fx = Fx::new(|up| {
        basic_archive(up).package(
            Pkg::new("app", "3.0")
                .depends("libfoo (>= 2)")
                .payload_size(400 * 1024),
        )
    });
    let deb = Pkg::new("app", "3.0").deb_name();
    fx.server.reset_after(&deb, 100 * 1024);
    fx.build().assert_success();
    assert_eq!(assert_tree_consistent(&fx.ws), new_set());
    assert!(fx.server.requested(&deb) >= 2, "the reset was not noticed");
    assert_cache_consistent(&fx.ws);
}

/// app 3.0 with a 10 MiB package file: fetched in 3 byte ranges of about 4 MiB.
fn archive_with_large_package(up: Upstream) -> Upstream {
    basic_archive(up).package(
        Pkg::new("app", "3.0")
            .depends("libfoo (>= 2)")
            .payload_size(10 << 20),
    )
}

/// The SHA256 of the published copy of a pool file, and of the upstream one.
fn published_and_upstream_sha256(fx: &Fx, pool: &str) -> (String, String) {
    let published = std::fs::read(fx.ws.output().join("p").join(pool)).unwrap();
    (sha256_hex(&published), sha256_hex(&fx.repo.read(pool)))
}

/// A large package is fetched as parallel byte ranges; the published file is the
/// upstream one, byte for byte.
#[test]
fn large_package_is_fetched_in_parts() {
    let fx = Fx::new(archive_with_large_package);
    fx.build().assert_success();
    assert_eq!(assert_tree_consistent(&fx.ws), new_set());
    let deb = Pkg::new("app", "3.0").deb_name();
    let mut ranges: Vec<String> = fx
        .server
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with(&deb))
        .map(|r| r.range.unwrap_or_else(|| "whole file".into()))
        .collect();
    ranges.sort();
    assert_eq!(ranges.len(), 3, "{ranges:?}");
    assert!(ranges.iter().all(|r| r.starts_with("bytes=")), "{ranges:?}");
    assert!(
        ranges.iter().any(|r| r.starts_with("bytes=0-")),
        "{ranges:?}"
    );
    let (published, upstream) =
        published_and_upstream_sha256(&fx, &Pkg::new("app", "3.0").pool_path("main"));
    assert_eq!(published, upstream);
    assert_cache_consistent(&fx.ws);
}

/// Fetching in parts survives a reset part (resumed), a server that ignores `Range` (one
/// plain download instead), and refuses a tampered file (the whole file is hashed).
#[test]
fn large_package_in_parts_survives_faults_and_refuses_tampering() {
    let deb = Pkg::new("app", "3.0").deb_name();
    let pool = Pkg::new("app", "3.0").pool_path("main");

    let fx = Fx::new(archive_with_large_package);
    fx.server.reset_after(&deb, 1 << 20);
    fx.build().assert_success();
    assert_eq!(assert_tree_consistent(&fx.ws), new_set());
    assert!(
        fx.server.requested(&deb) >= 4,
        "the reset part was not resumed"
    );
    let (published, upstream) = published_and_upstream_sha256(&fx, &pool);
    assert_eq!(published, upstream, "after a reset part");

    let fx = Fx::new(archive_with_large_package);
    fx.server.ignore_range(&deb);
    fx.build().assert_success();
    assert_eq!(assert_tree_consistent(&fx.ws), new_set());
    let plain = fx
        .server
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with(&deb) && r.range.is_none())
        .count();
    assert_eq!(plain, 1, "no plain download after the server ignored Range");
    let (published, upstream) = published_and_upstream_sha256(&fx, &pool);
    assert_eq!(published, upstream, "from a server without ranges");

    let fx = published_then(|fx| with_new_app(&fx.key, |p| p.payload_size(10 << 20)));
    fx.repo.tamper(&pool, |d| {
        let middle = d.len() / 2;
        d[middle] ^= 0xff;
    });
    assert_rejected_keeping_tree(&fx, &["SHA256 mismatch", &deb]);
    assert_recovers(&fx);
}

/// `--jobs N` bounds the requests in flight to upstream, the byte ranges of a large file
/// included; a large file still gets ranges when connections are free.
#[test]
fn jobs_bounds_the_requests_in_flight() {
    let libs: Vec<String> = (0..12).map(|i| format!("lib{i:02}")).collect();
    let archive = |up: Upstream| {
        let mut up = archive_with_large_package(up).package(
            Pkg::new("app", "3.1")
                .depends(&libs.join(", "))
                .payload_size(10 << 20),
        );
        for lib in &libs {
            up = up.package(Pkg::new(lib, "1.0"));
        }
        up
    };
    for jobs in [3, 8] {
        let fx = Fx::new(archive);
        fx.server.delay(".deb", Duration::from_millis(150));
        fx.build_with(&["--jobs", &jobs.to_string()], &[])
            .assert_success();
        let most = fx.server.max_in_flight();
        assert!(most <= jobs, "--jobs {jobs}: {most} requests at once");
        assert!(most >= 2, "--jobs {jobs}: requests never overlapped");
        let deb = Pkg::new("app", "3.1").deb_name();
        let ranged = fx
            .server
            .requests()
            .iter()
            .filter(|r| r.path.ends_with(&deb) && r.range.is_some())
            .count();
        if jobs == 8 {
            assert!(
                ranged >= 2,
                "--jobs 8: the 10 MiB file was not fetched in ranges"
            );
        }
        assert_cache_consistent(&fx.ws);
    }
}

/// The basic archive plus app 3.0 whose Description does not compress well, so that its
/// Packages.xz is large enough (about 100 KB) to be cut in the middle.
fn archive_with_large_index(up: Upstream) -> Upstream {
    basic_archive(up).package(
        Pkg::new("app", "3.0")
            .depends("libfoo (>= 2)")
            .index_field("Description", &hard_to_compress_description()),
    )
}

fn hard_to_compress_description() -> String {
    let mut desc = String::from("hard to compress");
    for i in 0..2000 {
        desc.push('\n');
        desc.push_str(&sha256_hex(format!("line {i}").as_bytes()));
    }
    desc
}

/// The index a build fetches (gzip is preferred when listed).
const AMD64_INDEX: &str = "main/binary-amd64/Packages.gz";

/// A connection reset in the middle of an index is resumed with `Range`; the index text,
/// decoded while it arrives, is the verified one and the build is right.
#[test]
fn connection_reset_mid_index_is_resumed() {
    let fx = Fx::new(archive_with_large_index);
    fx.server.reset_after(AMD64_INDEX, 30 * 1024);
    fx.build().assert_success();
    assert_eq!(assert_tree_consistent(&fx.ws), new_set());
    let ranged = fx
        .server
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with(AMD64_INDEX) && r.range.is_some())
        .count();
    assert_eq!(ranged, 1, "the index download was not resumed with Range");
    assert_cache_consistent(&fx.ws);
}

/// The same, from a server that ignores `Range` and sends the whole index again: the part
/// already received is skipped, so the text decoded on the fly is the listed one. Checked
/// for each format the Release may list alone (a plain index with a doubled part would
/// still read as text).
#[test]
fn server_ignoring_range_on_resume_gives_the_listed_index() {
    for ext in [".xz", ".gz", ""] {
        let fx = Fx::new(archive_with_large_index);
        let index = format!("main/binary-amd64/Packages{ext}");
        fx.repo.resign_release(&fx.key, "bookworm", |r| {
            r.lines()
                .filter(|l| {
                    let last = l.split_whitespace().last().unwrap_or("");
                    !last.starts_with("main/binary-amd64/Packages") || last == index
                })
                .map(|l| format!("{l}\n"))
                .collect()
        });
        fx.server.reset_after(&index, 30 * 1024);
        fx.server.ignore_range(&index);
        fx.build().assert_success();
        assert_eq!(assert_tree_consistent(&fx.ws), new_set(), "{index}");
        assert_eq!(fx.server.requested(&index), 2, "{index}");
        assert_eq!(
            published_app(&fx).req("Description"),
            hard_to_compress_description(),
            "{index}"
        );
        assert_cache_consistent(&fx.ws);
    }
}

/// A cached index that no longer hashes to what the Release lists (disk damage, a
/// meddling hand) is not used: it is fetched again and the build is right.
#[test]
fn damaged_cached_index_is_fetched_again() {
    let fx = Fx::new(archive_with_large_index);
    fx.build().assert_success();
    let release = String::from_utf8(fx.repo.read("dists/bookworm/Release")).unwrap();
    let listed = release
        .lines()
        .skip_while(|l| !l.starts_with("SHA256:"))
        .find(|l| l.ends_with(&format!(" {AMD64_INDEX}")))
        .and_then(|l| l.split_whitespace().next())
        .expect("the Release lists the index")
        .to_owned();
    let blob = fx
        .ws
        .cache()
        .join("blobs/sha256")
        .join(&listed[..2])
        .join(&listed);
    let mut bytes = std::fs::read(&blob).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(&blob, &bytes).unwrap();
    fx.server.clear_requests();
    let run = fx.build_with(&["--force"], &[]);
    run.assert_success();
    assert!(
        run.stderr.contains("is damaged"),
        "no warning about the damaged cache entry:\n{}",
        run.stderr
    );
    assert_eq!(
        fx.server.requested(AMD64_INDEX),
        1,
        "the index was not fetched again"
    );
    assert_eq!(assert_tree_consistent(&fx.ws), new_set());
    assert_cache_consistent(&fx.ws);
}

/// Build with MINI_MIRROR_HTTP_TIMEOUT=2 against a stalled `url`: the build must fail
/// naming it within 40 s and leave the published tree as it was. Returns how long it took.
#[track_caller]
fn assert_times_out_naming(fx: &Fx, url: &str) -> Duration {
    let t = Instant::now();
    let before = fx.ws.snapshot();
    let r = fx.build_within(
        Duration::from_secs(90),
        &[],
        &[("MINI_MIRROR_HTTP_TIMEOUT", "2")],
    );
    let took = t.elapsed();
    r.assert_failure_mentioning(&[url]);
    assert_eq!(before, fx.ws.snapshot());
    assert!(took < Duration::from_secs(40), "took {took:?}");
    took
}

/// A server that stops sending (headers sent, body never comes) for longer than
/// MINI_MIRROR_HTTP_TIMEOUT=2: a clear error naming the URL, after the retries, in bounded
/// time.
#[test]
fn stalled_download_times_out_naming_the_url() {
    let fx = published_then(|fx| with_new_app(&fx.key, |p| p));
    let deb = Pkg::new("app", "3.0").deb_name();
    fx.server.delay(&deb, Duration::from_secs(600));
    let url = format!("{}{}", fx.server.url(), app3_pool());
    let took = assert_times_out_naming(&fx, &url);
    eprintln!(
        "stalled body: failed after {took:?}, {} requests",
        fx.server.requested(&deb)
    );
    assert_recovers(&fx);
}

/// A server that accepts the connection and never answers (no status line) for InRelease.
#[test]
fn stalled_inrelease_times_out_naming_the_url() {
    let fx = published_then(|fx| with_new_app(&fx.key, |p| p));
    fx.server
        .stall_headers("/dists/bookworm/InRelease", Duration::from_secs(600));
    let url = format!("{}dists/bookworm/InRelease", fx.server.url());
    assert_times_out_naming(&fx, &url);
    assert_recovers(&fx);
}

/// HTTP 500 on every attempt: a clear error naming the URL and the status after the
/// documented 5 attempts.
#[test]
fn server_error_on_every_attempt_fails_after_retries() {
    let fx = published_then(|fx| with_new_app(&fx.key, |p| p));
    let deb = Pkg::new("app", "3.0").deb_name();
    fx.server.fail_with(&deb, 500, 1000);
    let url = format!("{}{}", fx.server.url(), app3_pool());
    let r = assert_rejected_keeping_tree(&fx, &[&url, "500"]);
    assert_eq!(fx.server.requested(&deb), 5, "{}", r.stderr);
    assert_recovers(&fx);
}

/// A redirect loop (the .deb redirects to itself): a clear error naming the URL, after a
/// bounded number of requests.
#[test]
fn redirect_loop_is_a_clear_error() {
    let fx = published_then(|fx| with_new_app(&fx.key, |p| p));
    let deb = Pkg::new("app", "3.0").deb_name();
    fx.server.redirect_to(&deb, &fx.server.url());
    let url = format!("{}{}", fx.server.url(), app3_pool());
    let r = assert_rejected_keeping_tree(&fx, &[&url, "redirect"]);
    let n = fx.server.requested(&deb);
    assert!(n <= 60, "{n} requests for a redirect loop\n{}", r.stderr);
    assert_recovers(&fx);
}

/// A redirect to another host (a second server on another port) is followed: the content is
/// verified by hash, wherever it comes from.
#[test]
fn redirect_to_another_host_is_followed() {
    let fx = published_then(|fx| with_new_app(&fx.key, |p| p));
    let other = Server::start(fx.repo.root());
    for suffix in ["/InRelease", "/Packages.gz", "/Packages.xz", ".deb"] {
        fx.server.redirect_to(suffix, &other.url());
    }
    fx.build().assert_success();
    assert_eq!(assert_tree_consistent(&fx.ws), new_set());
    assert!(
        other.requested("/InRelease") > 0,
        "InRelease not fetched from the other host"
    );
    assert!(
        other.requested("/Packages.gz") + other.requested("/Packages.xz") > 0,
        "no index fetched from the other host"
    );
    assert!(
        other.deb_downloads() > 0,
        "no .deb fetched from the other host"
    );
    assert_cache_consistent(&fx.ws);
}

/// ... and what the other host serves is still checked: a tampered .deb there is refused.
#[test]
fn redirect_to_another_host_serving_a_tampered_deb_is_refused() {
    let fx = published_then(|fx| with_new_app(&fx.key, |p| p));
    let copy = tempfile::tempdir().unwrap();
    let st = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", fx.repo.root().display()))
        .arg(copy.path())
        .status()
        .unwrap();
    assert!(st.success());
    let evil = copy.path().join(app3_pool());
    let mut d = fs::read(&evil).unwrap();
    let n = d.len();
    d[n - 10] ^= 0xff;
    fs::write(&evil, d).unwrap();
    let other = Server::start(copy.path());
    fx.server.redirect_to(".deb", &other.url());
    assert_rejected_keeping_tree(&fx, &["app_3.0_amd64.deb", "mismatch"]);
    assert!(other.deb_downloads() > 0);
    assert_recovers(&fx);
}

// ---------------------------------------------------------------------------------------------
// process and disk
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
enum KillAt {
    After(u64),
    /// As soon as a staging directory appears (publish has begun).
    Staging,
    /// As soon as the live tree is the new one (right after the atomic exchange, while the
    /// old tree is being removed).
    Switched,
}

/// SIGKILL at several points of a build (after 50, 150, 400, 900 ms, and as soon as a
/// staging directory appears, i.e. during publish; the new tree has a 4 MB index to make
/// publish take a while): the live tree is the old one or the complete new one, never a mix;
/// the next build succeeds, leaves no staging directory, and the cache holds only blobs
/// named by their own hash.
#[test]
fn sigkill_at_several_points_leaves_old_or_new_tree() {
    let fx = Fx::basic();
    fx.build().assert_success();
    let old = fx.ws.snapshot();
    let saved = fx.ws.root().join("saved-output");
    cp_a(&fx.ws.output(), &saved);

    let bulky_desc = long_description(4 * 1024 * 1024 / 64);
    fx.repo.rebuild(
        &basic_archive(Upstream::new(&fx.key))
            .package(
                Pkg::new("app", "3.0")
                    .depends("libfoo (>= 2), bulky")
                    .payload_size(1024 * 1024),
            )
            .package(
                Pkg::new("bulky", "1.0")
                    .payload_size(512 * 1024)
                    .index_field("Description", &bulky_desc),
            ),
    );
    let new = pairs(&[("app", "3.0"), ("bulky", "1.0"), ("libfoo", "2.1")]);
    fx.server.delay(".deb", Duration::from_millis(150));

    let points = [
        KillAt::After(50),
        KillAt::After(150),
        KillAt::After(400),
        KillAt::After(900),
        KillAt::Switched,
        KillAt::Staging,
        KillAt::Staging,
    ];
    let fingerprint = fx.ws.published("p").join(".mini-mirror-fingerprint");
    let old_fingerprint = fs::read(&fingerprint).unwrap();
    let mut log = Vec::new();
    for (i, point) in points.iter().enumerate() {
        // Every kill interrupts a switch from the old tree to the new one.
        fs::remove_dir_all(fx.ws.output()).unwrap();
        cp_a(&saved, &fx.ws.output());
        let stderr_path = fx.ws.root().join(format!("kill-{i}.log"));
        let mut cmd = fx.command(&[], &[]);
        cmd.stdout(Stdio::null())
            .stderr(fs::File::create(&stderr_path).unwrap());
        let mut child = cmd.spawn().unwrap();
        let t = Instant::now();
        let mut saw_staging = false;
        match point {
            KillAt::After(ms) => thread::sleep(Duration::from_millis(*ms)),
            KillAt::Staging | KillAt::Switched => {
                while t.elapsed() < Duration::from_secs(60) {
                    let hit = match point {
                        KillAt::Staging => !staging_dirs(&fx.ws).is_empty(),
                        _ => fs::read(&fingerprint).is_ok_and(|f| f != old_fingerprint),
                    };
                    if hit {
                        saw_staging = true;
                        break;
                    }
                    if child.try_wait().unwrap().is_some() {
                        break;
                    }
                    thread::sleep(Duration::from_millis(1));
                }
            }
        }
        let finished_already = child.try_wait().unwrap().is_some();
        let _ = child.kill();
        child.wait().unwrap();
        let last_line = fs::read_to_string(&stderr_path)
            .unwrap_or_default()
            .lines()
            .last()
            .unwrap_or("")
            .to_string();
        let snap = fx.ws.snapshot();
        let state = if snap == old {
            "old tree"
        } else {
            assert_eq!(
                assert_tree_consistent(&fx.ws),
                new,
                "kill {point:?}: the live tree is neither the old one nor the new one"
            );
            "new tree"
        };
        if matches!(point, KillAt::Switched) && saw_staging {
            assert_eq!(
                state, "new tree",
                "killed after the switch, yet the old tree is live"
            );
        }
        log.push(format!(
            "{point:?} at {:?}: {state}{}{}; last log line: {last_line:?}",
            t.elapsed(),
            if saw_staging { ", moment seen" } else { "" },
            if finished_already {
                ", build had already finished"
            } else {
                ""
            },
        ));
    }
    // The last kill's leftovers stay: the next build must clean them up.
    let left = staging_dirs(&fx.ws);
    fx.server.clear_faults();
    fx.build().assert_success();
    assert_eq!(assert_tree_consistent(&fx.ws), new);
    assert_no_staging_left(&fx.ws);
    assert_cache_consistent(&fx.ws);
    eprintln!(
        "staging left by the last kill: {left:?}\n{}",
        log.join("\n")
    );
}

fn cp_a(from: &Path, to: &Path) {
    let st = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(st.success(), "cp -a {} {}", from.display(), to.display());
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A tmpfs (or bind) mount that is unmounted when dropped.
struct Mount(PathBuf);

impl Mount {
    /// Mount a tmpfs of `size` (mount(8) syntax) at `path`; `Err` says why not.
    fn tmpfs(path: &Path, size: &str) -> Result<Mount, String> {
        if !is_root() {
            return Err("not root: cannot mount a tmpfs".into());
        }
        fs::create_dir_all(path).unwrap();
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(path)
            .output()
            .unwrap();
        if !out.status.success() {
            return Err(format!(
                "mount -t tmpfs failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(Mount(path.to_path_buf()))
    }

    /// Bind-mount `path` onto itself, read-only.
    fn read_only_bind(path: &Path) -> Result<Mount, String> {
        if !is_root() {
            return Err("not root: cannot bind-mount".into());
        }
        let run = |args: &[&str]| -> Result<(), String> {
            let out = Command::new("mount")
                .args(args)
                .arg(path)
                .arg(path)
                .output()
                .unwrap();
            if out.status.success() {
                Ok(())
            } else {
                Err(format!(
                    "mount {args:?}: {}",
                    String::from_utf8_lossy(&out.stderr)
                ))
            }
        };
        run(&["--bind"])?;
        let m = Mount(path.to_path_buf());
        let out = Command::new("mount")
            .args(["-o", "remount,bind,ro"])
            .arg(path)
            .output()
            .unwrap();
        if !out.status.success() {
            return Err(format!(
                "remount read-only: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(m)
    }

    fn resize(&self, size: &str) {
        let out = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "resize {}: {}",
            self.0.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

macro_rules! skip_on_err {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(why) => {
                eprintln!("SKIPPED: {why}");
                println!("SKIPPED: {why}");
                return;
            }
        }
    };
}

/// The cache (a 2 MB tmpfs) fills up while a 3 MB .deb is downloaded: a clear error, the
/// previous tree intact, no partial file in the cache. Then the output (its own tmpfs, so
/// pool files are copied, not linked) is too small for the new tree: a clear error, the
/// previous tree intact, no staging left. With room again, the build succeeds.
#[test]
fn disk_full_on_cache_or_output_fails_cleanly() {
    let fx = Fx::basic();
    let out_mnt = skip_on_err!(Mount::tmpfs(&fx.ws.output(), "16m"));
    let cache_mnt = skip_on_err!(Mount::tmpfs(&fx.ws.cache(), "2m"));
    fx.build().assert_success();
    assert_eq!(assert_tree_consistent(&fx.ws), old_set());
    fx.repo
        .rebuild(&with_new_app(&fx.key, |p| p.payload_size(3 * 1024 * 1024)));

    // The cache is full: said as such (not as corrupt data), with the file being written.
    let r = assert_rejected_keeping_tree(
        &fx,
        &[
            "no space left on device while writing",
            "hint: a filesystem is full",
        ],
    );
    assert!(
        r.stderr
            .contains(&format!("while writing {}/", fx.ws.cache().display())),
        "the error does not name the file in the cache:\n{}",
        r.stderr
    );
    assert!(!r.stderr.contains("corrupt"), "{}", r.stderr);
    assert_cache_consistent(&fx.ws);

    // The output is full.
    cache_mnt.resize("64m");
    out_mnt.resize("1m");
    let r = assert_rejected_keeping_tree(
        &fx,
        &["No space left on device", "hint: a filesystem is full"],
    );
    assert!(
        r.stderr.contains(&*fx.ws.output().to_string_lossy()),
        "the error does not name the output:\n{}",
        r.stderr
    );
    assert_no_staging_left(&fx.ws);
    assert_cache_consistent(&fx.ws);

    // Room again.
    out_mnt.resize("64m");
    fx.build().assert_success();
    assert_eq!(assert_tree_consistent(&fx.ws), new_set());
    assert_no_staging_left(&fx.ws);
    assert_cache_consistent(&fx.ws);
    drop(cache_mnt);
    drop(out_mnt);
}

/// Several builds at once on the same output and cache all succeed (serialized by the
/// locks), and the final tree is correct.
#[test]
fn concurrent_builds_on_same_output_and_cache_are_serialized() {
    let fx = published_then(|fx| with_new_app(&fx.key, |p| p.payload_size(256 * 1024)));
    // Slow downloads, so that the builds overlap.
    fx.server.delay(".deb", Duration::from_millis(700));
    let mut children = Vec::new();
    for args in [&[][..], &["--force"][..], &["--force"][..]] {
        let mut c = fx.command(args, &[]);
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        let pipes = drain(&mut child);
        children.push((child, pipes));
        thread::sleep(Duration::from_millis(30));
    }
    let mut stderrs = Vec::new();
    for (mut child, (o, e)) in children {
        let st = child.wait().unwrap();
        let (_o, e) = (o.join().unwrap(), e.join().unwrap());
        assert!(st.success(), "a concurrent build failed ({st}):\n{e}");
        stderrs.push(e);
    }
    assert!(
        stderrs
            .iter()
            .any(|e| e.contains("waiting for another mini-mirror run")),
        "the builds did not wait for each other:\n{}",
        stderrs.join("\n----\n")
    );
    assert_eq!(assert_tree_consistent(&fx.ws), new_set());
    assert_no_staging_left(&fx.ws);
    assert_cache_consistent(&fx.ws);
}

/// A read-only output directory is a clear error that names it; the tree stays as it was.
#[test]
fn read_only_output_is_a_clear_error() {
    let fx = published_then(|fx| with_new_app(&fx.key, |p| p));
    let out = fx.ws.output();
    let ro = skip_on_err!(Mount::read_only_bind(&out));
    let r = assert_rejected_keeping_tree(&fx, &["Read-only file system"]);
    assert!(
        r.stderr.contains(&*out.to_string_lossy()),
        "the error does not name the output:\n{}",
        r.stderr
    );
    drop(ro);
    assert_recovers(&fx);
}

// ---------------------------------------------------------------------------------------------
// secrets
// ---------------------------------------------------------------------------------------------

const PASS: &str = "Pz-7c1e9b04-hunter2-f00d";
const WRONG: &str = "Wr-5aa0e3d7-badger-c0de";

/// Files (recursively) under `dir` whose content contains `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut hits = Vec::new();
    if !dir.exists() {
        return hits;
    }
    for e in walkdir::WalkDir::new(dir) {
        let e = e.unwrap();
        if e.file_type().is_file() {
            let data = fs::read(e.path()).unwrap_or_default();
            if data.windows(needle.len()).any(|w| w == needle) {
                hits.push(e.path().display().to_string());
            }
        }
    }
    hits
}

/// Run a build, sampling `/proc/<pid>/cmdline` (and each thread's) every few ms while it
/// runs. Returns the result and the number of samples taken.
fn run_sampling_cmdline(mut cmd: Command, needle: &str) -> (RunResult, usize, Vec<String>) {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let pid = child.id();
    let (o, e) = drain(&mut child);
    let mut samples = 0;
    let mut leaks = Vec::new();
    let t = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(t.elapsed() < Duration::from_secs(120), "build hangs");
        let mut paths = vec![format!("/proc/{pid}/cmdline")];
        if let Ok(rd) = fs::read_dir(format!("/proc/{pid}/task")) {
            for t in rd.flatten() {
                paths.push(format!("{}/cmdline", t.path().display()));
            }
        }
        for p in paths {
            if let Ok(data) = fs::read(&p) {
                samples += 1;
                if String::from_utf8_lossy(&data).contains(needle) {
                    leaks.push(p);
                }
            }
        }
        thread::sleep(Duration::from_millis(10));
    };
    let r = RunResult {
        status,
        stdout: o.join().unwrap(),
        stderr: e.join().unwrap(),
    };
    (r, samples, leaks)
}

/// With a passphrase-protected signing key, at `-vv` and with MINI_MIRROR_LOG=trace, the
/// passphrase never shows in stdout/stderr, in the running build's /proc cmdline, nor in any
/// file under the output, cache and state dirs.
#[test]
fn passphrase_never_leaks_at_trace_level() {
    let fx = Fx::basic();
    let signer = GpgKey::generate_with_passphrase("Repo Signer <repo@example.org>", PASS);
    let key_file = fx.ws.root().join("signing-key.gpg");
    fs::write(&key_file, signer.secret_binary()).unwrap();
    let pass_file = fx.ws.root().join("pass.txt");
    fs::write(&pass_file, format!("{PASS}\n")).unwrap();
    let key_arg = key_file.to_str().unwrap();
    // A slow build, so that there is time to look at the running process.
    fx.server.delay(".deb", Duration::from_millis(800));

    let runs: Vec<(&str, Args, Env)> = vec![
        (
            "-vv, passphrase in the environment",
            vec!["-vv", "--sign-key", key_arg],
            vec![("RELEASE_SIGN_KEY_PASSPHRASE", PASS)],
        ),
        (
            "MINI_MIRROR_LOG=trace, passphrase in the environment",
            vec!["--force", "--sign-key", key_arg],
            vec![
                ("RELEASE_SIGN_KEY_PASSPHRASE", PASS),
                ("MINI_MIRROR_LOG", "trace"),
            ],
        ),
        (
            "-vv and MINI_MIRROR_LOG=trace, --passphrase-file",
            vec![
                "-vv",
                "--force",
                "--sign-key",
                key_arg,
                "--passphrase-file",
                pass_file.to_str().unwrap(),
            ],
            vec![("MINI_MIRROR_LOG", "trace")],
        ),
    ];
    for (what, args, env) in &runs {
        let (r, samples, leaks) = run_sampling_cmdline(fx.command(args, env), PASS);
        r.assert_success();
        assert!(samples > 0, "{what}: never saw the running process");
        assert!(leaks.is_empty(), "{what}: passphrase in {leaks:?}");
        // Make sure the verbose setting took effect (MINI_MIRROR_LOG=trace also turns on the
        // HTTP stack's own trace output; -vv alone adds little: the builder logs at info).
        let want = if env.iter().any(|(k, _)| *k == "MINI_MIRROR_LOG") {
            "TRACE"
        } else {
            "INFO"
        };
        assert!(
            r.stderr.contains(want),
            "{what}: no {want} lines:\n{}",
            r.stderr
        );
        for (name, out) in [("stdout", &r.stdout), ("stderr", &r.stderr)] {
            assert!(!out.contains(PASS), "{what}: passphrase in {name}");
        }
    }
    let keyring = fx.ws.published("p").join("mini-mirror-archive-keyring.gpg");
    assert_eq!(
        key_fingerprints(&keyring),
        vec![signer.fingerprint().to_string()]
    );
    for dir in [fx.ws.output(), fx.ws.cache(), fx.ws.state()] {
        let hits = files_containing(&dir, PASS.as_bytes());
        assert!(hits.is_empty(), "passphrase written to {hits:?}");
    }
}

/// A wrong passphrase is a clear error ("wrong passphrase") that does not contain it, at any
/// verbosity, from the environment or a file; nothing is published.
#[test]
fn wrong_passphrase_is_a_clear_error_without_the_passphrase() {
    let fx = Fx::basic();
    let signer = GpgKey::generate_with_passphrase("Repo Signer <repo@example.org>", PASS);
    let key_file = fx.ws.root().join("signing-key.asc");
    fs::write(&key_file, signer.secret_armor()).unwrap();
    let wrong_file = fx.ws.root().join("wrong.txt");
    fs::write(&wrong_file, format!("{WRONG}\n")).unwrap();
    let key_arg = key_file.to_str().unwrap();
    let runs: Vec<(Args, Env)> = vec![
        (
            vec!["--sign-key", key_arg],
            vec![("RELEASE_SIGN_KEY_PASSPHRASE", WRONG)],
        ),
        (
            vec!["-vv", "--sign-key", key_arg],
            vec![("RELEASE_SIGN_KEY_PASSPHRASE", WRONG)],
        ),
        (
            vec!["--sign-key", key_arg],
            vec![
                ("RELEASE_SIGN_KEY_PASSPHRASE", WRONG),
                ("MINI_MIRROR_LOG", "trace"),
            ],
        ),
        (
            vec![
                "-vv",
                "--sign-key",
                key_arg,
                "--passphrase-file",
                wrong_file.to_str().unwrap(),
            ],
            vec![("MINI_MIRROR_LOG", "trace")],
        ),
    ];
    for (args, env) in &runs {
        let r = fx.build_with(args, env);
        r.assert_failure_mentioning(&["wrong passphrase"]);
        for out in [&r.stdout, &r.stderr] {
            assert!(
                !out.contains(WRONG),
                "wrong passphrase leaked ({args:?}):\n{out}"
            );
            assert!(!out.contains(PASS));
        }
        assert!(
            !fx.ws.published("p").exists(),
            "published with a wrong passphrase"
        );
    }
    for dir in [fx.ws.output(), fx.ws.cache(), fx.ws.state()] {
        assert!(files_containing(&dir, WRONG.as_bytes()).is_empty());
    }
}

/// apt 3's policy for upstreams: a vendor Release signed with a DSA key (which bookworm's gpgv
/// still accepts) is refused; `legacy_signatures = true` on that source accepts it, with a
/// warning on every build, and the mirror re-signs it with the operator's key.
#[test]
fn dsa_signed_upstream_needs_legacy_signatures() {
    let dsa = GpgKey::generate_with("DSA Vendor <v@example.org>", "dsa2048", "1y", &[]);
    let fx = Fixture::signed_by(dsa, basic_archive);
    fx.source("p", "s").packages("app\n").write();
    let r = fx.ws.build();
    assert!(
        !r.success(),
        "a DSA-signed upstream was accepted:\n{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("InRelease") && r.stderr.contains("legacy_signatures"),
        "{}",
        r.stderr
    );
    assert!(!fx.ws.published("p").exists());
    fx.source("p", "s")
        .packages("app\n")
        .settings("legacy_signatures = true\n")
        .write();
    let r = fx.ws.build();
    r.assert_success();
    assert!(
        r.stderr.contains("legacy_signatures = true"),
        "{}",
        r.stderr
    );
    let keyring = fx.ws.published("p").join("mini-mirror-archive-keyring.gpg");
    assert_gpgv_accepts_dist(&keyring, &fx.ws.published("p").join("dists/bookworm"));
    let again = fx.ws.build();
    again.assert_success();
    assert!(
        again.stderr.contains("legacy_signatures = true"),
        "warned only once"
    );
}
