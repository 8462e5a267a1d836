//! Hermetic tests of what a mirror holds and what would change: `mirror.lock`,
//! `build --locked`, `diff`, `check`, `why`, the SBOM and `build --json`.
//!
//! Each test serves a fixture archive on 127.0.0.1 and runs the `mini-mirror` binary; the
//! lock is read here with the `toml` crate, not with the code under test.

mod common;

use common::*;
use std::fs;
use std::path::{Path, PathBuf};

/// `--sources/--output/--cache` of the workspace, after `command`.
fn places(ws: &Workspace, command: &str) -> Vec<String> {
    vec![
        command.to_owned(),
        "--sources".into(),
        ws.sources().display().to_string(),
        "--output".into(),
        ws.output().display().to_string(),
        "--cache".into(),
        ws.cache().display().to_string(),
    ]
}

fn run(ws: &Workspace, command: &str, extra: &[&str]) -> RunResult {
    let mut args = places(ws, command);
    args.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    ws.run(&refs)
}

fn sources_lock(ws: &Workspace, prefix: &str) -> PathBuf {
    ws.sources().join(prefix).join("mirror.lock")
}

fn read_toml(path: &Path) -> toml::Table {
    toml::from_str(&fs::read_to_string(path).unwrap()).unwrap()
}

/// (name, version) of every `[[package]]` of a lock.
fn locked_versions(path: &Path) -> Vec<(String, String)> {
    let t = read_toml(path);
    let mut v: Vec<(String, String)> = t["package"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_owned(),
                p["version"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    v.sort();
    v
}

fn packages_file(ws: &Workspace) -> Vec<u8> {
    ws.read_published("p", "dists/bookworm/main/binary-amd64/Packages")
}

/// The archive of a later day: app and libfoo moved on, the versions the lock names are gone
/// from the indices and the pool.
fn later_archive(key: &GpgKey) -> Upstream {
    Upstream::new(key)
        .dist("bookworm")
        .component("main")
        .package(Pkg::new("app", "3.0").depends("libfoo (>= 3)"))
        .package(Pkg::new("libfoo", "3.0"))
        .package(Pkg::new("base", "1.0"))
}

/// Copy a directory tree (the upstream as it was, for a snapshot server).
fn copy_tree(from: &Path, to: &Path) {
    for entry in walk_files(from) {
        let rel = entry.strip_prefix(from).unwrap();
        let dest = to.join(rel);
        fs::create_dir_all(dest.parent().unwrap()).unwrap();
        fs::copy(&entry, &dest).unwrap();
    }
}

/// A build writes the lock beside the sources and into the published tree; it names every
/// published package with its upstream Filename and hashes; an identical build (even a
/// forced one) writes the same bytes.
#[test]
fn lock_is_written_complete_and_stable() {
    let fx = Fixture::basic();
    fx.source("p", "s").packages("app\n").write();
    fx.ws.build().assert_success();
    let lock_path = sources_lock(&fx.ws, "p");
    let first = fs::read(&lock_path).unwrap();
    assert_eq!(first, fx.ws.read_published("p", "mirror.lock"));
    let t = read_toml(&lock_path);
    assert_eq!(t["version"].as_integer(), Some(1));
    assert_eq!(t["prefix"].as_str(), Some("p"));
    let published = fx.ws.packages("p", "bookworm", "main", "amd64");
    let pkgs = t["package"].as_array().unwrap();
    assert_eq!(pkgs.len(), published.len());
    assert_eq!(
        t["package_count"].as_integer(),
        Some(published.len() as i64)
    );
    for stanza in &published {
        let locked = pkgs
            .iter()
            .find(|p| p["name"].as_str() == Some(stanza.package()))
            .unwrap_or_else(|| panic!("{} not in the lock", stanza.package()));
        assert_eq!(locked["version"].as_str(), Some(stanza.version()));
        assert_eq!(locked["sha256"].as_str(), Some(stanza.req("SHA256")));
        assert_eq!(
            locked["size"].as_integer().unwrap().to_string(),
            stanza.req("Size")
        );
        let deb = fx.ws.read_published("p", stanza.req("Filename"));
        assert_eq!(sha256_hex(&deb), locked["sha256"].as_str().unwrap());
        let upstream_name = locked["filename"].as_str().unwrap();
        assert_eq!(
            fx.repo.read(upstream_name),
            deb,
            "upstream Filename is recorded"
        );
    }
    let source = &t["source"].as_array().unwrap()[0];
    let release = fx.repo.read("dists/bookworm/InRelease");
    assert!(!release.is_empty());
    assert_eq!(
        source["release_sha256"].as_str().unwrap(),
        sha256_hex(&fx.repo.read("dists/bookworm/Release")),
        "the lock names the verified Release text"
    );
    assert_eq!(
        source["queries"].as_array().unwrap()[0]["query"].as_str(),
        Some("app")
    );
    let index = &t["index"].as_array().unwrap()[0];
    assert_eq!(
        index["sha256"].as_str().unwrap(),
        sha256_hex(&packages_file(&fx.ws))
    );

    fx.ws.build().assert_success();
    assert_eq!(
        fs::read(&lock_path).unwrap(),
        first,
        "unchanged build, same lock"
    );
    fx.ws.build_with(&["--force"], &[]).assert_success();
    assert_eq!(
        fs::read(&lock_path).unwrap(),
        first,
        "a forced rebuild writes the same lock"
    );
    fs::remove_file(&lock_path).unwrap();
    fx.ws.build().assert_success();
    assert_eq!(
        fs::read(&lock_path).unwrap(),
        first,
        "an up-to-date build restores a deleted sources lock from the live tree"
    );
}

/// Months later: upstream has dropped the locked versions (indices and pool). `--locked`
/// republishes the locked set with byte-identical Packages from the cache; with an empty
/// cache it fails naming what is missing, and with a `snapshot_url` it gets everything from
/// the snapshot server; with the cache's Release but no `.deb`s it takes them from upstream's
/// pool by their Filename.
#[test]
fn locked_rebuilds_identical_packages_from_cache_upstream_and_snapshot() {
    let fx = Fixture::basic();
    fx.source("p", "s").packages("app\n").write();
    fx.ws.build().assert_success();
    let lock_path = sources_lock(&fx.ws, "p");
    let lock_text = fs::read(&lock_path).unwrap();
    let packages = packages_file(&fx.ws);
    let versions = locked_versions(&lock_path);
    assert!(versions.contains(&("app".into(), "2.0".into())));

    // The snapshot server keeps the archive as it was, under the ID of its Release's Date.
    let snapshots = tempfile::tempdir().unwrap();
    let date =
        ReleaseFile::parse(&String::from_utf8(fx.repo.read("dists/bookworm/Release")).unwrap())
            .date()
            .with_timezone(&chrono::Utc);
    let id = date.format("%Y%m%dT%H%M%SZ").to_string();
    copy_tree(fx.repo.root(), &snapshots.path().join(&id));
    let snapshot_server = Server::start(snapshots.path());
    let old_pool: Vec<PathBuf> = walk_files(&fx.repo.path("pool"));
    let old_pool_copy = tempfile::tempdir().unwrap();
    copy_tree(&fx.repo.path("pool"), old_pool_copy.path());

    std::thread::sleep(std::time::Duration::from_millis(1100)); // a later Date
    fx.repo.rebuild(&later_archive(&fx.key));
    for p in &old_pool {
        assert!(
            !p.exists() || p.to_string_lossy().contains("base"),
            "old pool file kept: {p:?}"
        );
    }
    let plain = fx.ws.build_with(&["--force"], &[]);
    plain.assert_success();
    assert!(
        locked_versions(&lock_path).contains(&("app".into(), "3.0".into())),
        "a plain build resolves again"
    );
    fs::write(&lock_path, &lock_text).unwrap();

    // 1. From the cache: the locked Release, its indices and the .debs are all there.
    let r = fx.ws.build_with(&["--locked"], &[]);
    r.assert_success();
    assert_eq!(
        packages_file(&fx.ws),
        packages,
        "byte-identical Packages from the cache"
    );
    assert_eq!(fx.ws.read_published("p", "mirror.lock"), lock_text);
    assert_eq!(
        fs::read(&lock_path).unwrap(),
        lock_text,
        "--locked leaves the lock alone"
    );
    assert_gpgv_accepts_dist(
        &fx.ws.published("p").join("mini-mirror-archive-keyring.gpg"),
        &fx.ws.published("p").join("dists/bookworm"),
    );

    // 2. The cache keeps the locked Release and indices but lost the .debs; upstream's pool
    //    still has them (Debian keeps superseded files for a while): fetched by Filename.
    let t = read_toml(&lock_path);
    for p in t["package"].as_array().unwrap() {
        let sha = p["sha256"].as_str().unwrap();
        let _ = fs::remove_file(fx.ws.cache().join("blobs/sha256").join(&sha[..2]).join(sha));
    }
    copy_tree(old_pool_copy.path(), &fx.repo.path("pool"));
    fx.server.clear_requests();
    fx.ws
        .build_with(&["--locked", "--force"], &[])
        .assert_success();
    assert!(
        fx.server.deb_downloads() >= 3,
        "the .debs came from upstream"
    );
    assert_eq!(
        packages_file(&fx.ws),
        packages,
        "byte-identical Packages from upstream"
    );
    fx.repo.rebuild(&later_archive(&fx.key)); // the old pool is gone again

    // 3. A new machine: empty cache, no snapshot_url: the error says what is missing and
    //    nothing changes.
    fs::remove_dir_all(fx.ws.cache()).unwrap();
    let before = fx.ws.snapshot();
    let r = fx.ws.build_with(&["--locked", "--force"], &[]);
    r.assert_failure_mentioning(&["snapshot_url", "the cache does not hold the locked Release"]);
    assert_eq!(
        fx.ws.snapshot(),
        before,
        "a failed --locked build changed the tree"
    );

    // 4. With a snapshot_url (not part of what the lock answers): all from the snapshot.
    fs::write(
        fx.ws.sources().join("p/s/settings.toml"),
        format!("snapshot_url = \"{}\"\n", snapshot_server.url()),
    )
    .unwrap();
    fs::remove_dir_all(fx.ws.cache()).unwrap();
    let r = fx.ws.build_with(&["--locked", "--force"], &[]);
    r.assert_success();
    assert!(
        snapshot_server
            .requests()
            .iter()
            .any(|q| q.path.ends_with(".deb")),
        "the .debs came from the snapshot server"
    );
    assert_eq!(
        packages_file(&fx.ws),
        packages,
        "byte-identical Packages from the snapshot"
    );
    assert_eq!(fx.ws.read_published("p", "mirror.lock"), lock_text);
}

/// `--locked` refuses a lock that does not answer the sources (a query added), and every
/// kind of damaged lock, naming the file and line; nothing is published.
#[test]
fn locked_refuses_stale_and_tampered_locks() {
    let fx = Fixture::basic();
    fx.source("p", "s").packages("app\n").write();
    fx.ws.build().assert_success();
    let lock_path = sources_lock(&fx.ws, "p");
    let good = fs::read_to_string(&lock_path).unwrap();
    let lock_name = lock_path.display().to_string();

    let attempt = |text: &str, needles: &[&str]| {
        fs::write(&lock_path, text).unwrap();
        let before = fx.ws.snapshot();
        let r = fx.ws.build_with(&["--locked", "--force"], &[]);
        r.assert_failure_mentioning(needles);
        assert_eq!(
            fx.ws.snapshot(),
            before,
            "a refused lock changed the published tree"
        );
    };
    // A query added since the lock was written.
    fs::write(fx.ws.sources().join("p/s/packages.txt"), "app\nunrelated\n").unwrap();
    attempt(
        &good,
        &["packages.txt:2", "query `unrelated` is not in the lock"],
    );
    fs::write(fx.ws.sources().join("p/s/packages.txt"), "app\n").unwrap();
    // A setting changed.
    fs::write(
        fx.ws.sources().join("p/s/settings.toml"),
        "recommends = true\n",
    )
    .unwrap();
    attempt(&good, &["setting `recommends`"]);
    fs::remove_file(fx.ws.sources().join("p/s/settings.toml")).unwrap();

    // A package's SHA256 replaced by another well-formed one.
    let pkg_sha = good
        .lines()
        .enumerate()
        .skip_while(|(_, l)| !l.starts_with("[[package]]"))
        .find(|(_, l)| l.starts_with("sha256 = "))
        .unwrap();
    let forged = good.replacen(pkg_sha.1, &format!("sha256 = \"{}\"", "ab".repeat(32)), 1);
    attempt(&forged, &[&lock_name, "is in none of the verified indices"]);
    // Not hex.
    let bad_hex = good.replacen(pkg_sha.1, "sha256 = \"xyz\"", 1);
    attempt(
        &bad_hex,
        &[&format!("{lock_name}:{}", pkg_sha.0 + 1), "is not a SHA256"],
    );
    // Unknown format version.
    attempt(
        &good.replacen("version = 1", "version = 7", 1),
        &[&lock_name, "unknown lock format version 7"],
    );
    // A duplicate entry.
    let first_pkg = good.find("[[package]]").unwrap();
    let second = good[first_pkg + 1..]
        .find("[[package]]")
        .map_or(good.len(), |i| i + first_pkg + 1);
    let dup = format!("{}\n{}", good, &good[first_pkg..second]);
    attempt(&dup, &[&lock_name, "is listed twice"]);
    // Truncated in the middle of the packages.
    let cut = &good[..second];
    attempt(cut, &[&lock_name, "package_count"]);
    // Garbage.
    attempt("this is [not toml", &[&lock_name]);
    // A hand edit of the queries recorded in the lock.
    attempt(
        &good.replacen("query = \"app\"", "query = \"unrelated\"", 1),
        &[&lock_name],
    );
}

/// The second upstream day: app upgraded (its dependency libold replaced by libnew), tool
/// downgraded.
fn day(key: &GpgKey, second: bool) -> Upstream {
    let up = Upstream::new(key).dist("bookworm").component("main");
    if second {
        up.package(Pkg::new("app", "2.0").depends("libnew"))
            .package(Pkg::new("libnew", "1.0"))
            .package(Pkg::new("tool", "1.0"))
    } else {
        up.package(Pkg::new("app", "1.0").depends("libold"))
            .package(Pkg::new("libold", "1.0"))
            .package(Pkg::new("tool", "2.0"))
            .package(Pkg::new("tool", "1.0"))
    }
}

/// `check` exits 0 when nothing would change, 1 (with the changes) when upstream added,
/// removed, upgraded and downgraded packages, 2 on error; `diff` shows the same, as text and
/// JSON, between the live publish and a dry run, and between two lock files.
#[test]
fn diff_and_check_report_every_kind_of_change() {
    let key = GpgKey::generate("Test Upstream <t@example.org>");
    let fx = Fixture::signed_by(key.clone(), |_| day(&key, false));
    fx.source("p", "s").packages("app\ntool\n").write();
    fx.ws.build().assert_success();
    let old_lock = fs::read(sources_lock(&fx.ws, "p")).unwrap();

    let r = run(&fx.ws, "check", &[]);
    assert_eq!(r.status.code(), Some(0), "{r:?}");
    let r = run(&fx.ws, "check", &["--json"]);
    assert_eq!(r.status.code(), Some(0), "{r:?}");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["changed"], false);

    std::thread::sleep(std::time::Duration::from_millis(1100));
    fx.repo.rebuild(&day(&fx.key, true));
    fx.server.clear_requests();
    let before = fx.ws.snapshot();
    let r = run(&fx.ws, "check", &[]);
    assert_eq!(r.status.code(), Some(1), "{r:?}");
    for needle in [
        "upgraded",
        "app amd64 1.0 → 2.0",
        "downgraded",
        "tool amd64 2.0 → 1.0",
        "added",
        "libnew",
        "removed",
        "libold",
        "total: 1 added, 1 removed, 1 upgraded, 1 downgraded",
    ] {
        assert!(
            r.stdout.contains(needle),
            "check output lacks {needle:?}:\n{}",
            r.stdout
        );
    }
    assert_eq!(fx.server.deb_downloads(), 0, "check downloads no package");
    assert_eq!(fx.ws.snapshot(), before, "check changes nothing");

    let r = run(&fx.ws, "diff", &["--json"]);
    assert_eq!(r.status.code(), Some(0), "{r:?}");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["changed"], true);
    assert_eq!(v["total"]["added"], 1);
    assert_eq!(v["total"]["removed"], 1);
    assert_eq!(v["total"]["upgraded"], 1);
    assert_eq!(v["total"]["downgraded"], 1);
    let changes = v["dists"][0]["changes"].as_array().unwrap();
    let app = changes.iter().find(|c| c["name"] == "app").unwrap();
    assert_eq!(
        (
            app["kind"].as_str(),
            app["from"].as_str(),
            app["to"].as_str()
        ),
        (Some("upgraded"), Some("1.0"), Some("2.0"))
    );
    assert_eq!(app["source"], "app");

    // Lock against lock, after the build that takes the update.
    fx.ws.build().assert_success();
    let old = fx.ws.root().join("old.lock");
    fs::write(&old, &old_lock).unwrap();
    let r = fx.ws.run(&[
        "diff",
        old.to_str().unwrap(),
        fx.ws.published("p").to_str().unwrap(),
    ]);
    assert_eq!(r.status.code(), Some(0), "{r:?}");
    assert!(
        r.stdout
            .contains("total: 1 added, 1 removed, 1 upgraded, 1 downgraded"),
        "{}",
        r.stdout
    );
    assert_eq!(run(&fx.ws, "check", &[]).status.code(), Some(0));

    // An error is 2: the upstream's key replaced by another.
    fs::write(
        fx.ws.sources().join("p/s/upstream-key.gpg"),
        GpgKey::generate("Other <o@example.org>").public_binary(),
    )
    .unwrap();
    let r = run(&fx.ws, "check", &[]);
    assert_eq!(r.status.code(), Some(2), "{r:?}");
    assert!(r.stderr.contains("error:"), "{}", r.stderr);
}

/// `why` names the chain from the query (file:line) to the package for a direct query, a
/// transitive dependency, a virtual package's provider and a picked alternative; a package
/// not in the mirror says so (exit 1). No network: the upstream server is stopped.
#[test]
fn why_explains_every_chain() {
    let fx = Fixture::new(|up| {
        up.dist("bookworm")
            .component("main")
            .package(
                Pkg::new("web", "1.0")
                    .depends("libssl3 (>= 3.0.9), mail-transport-agent, absent-pkg | fallback"),
            )
            .package(Pkg::new("libssl3", "3.0.15-1").depends("libc6"))
            .package(Pkg::new("libc6", "2.36"))
            .package(
                Pkg::new("postfix", "3.7")
                    .provides("mail-transport-agent")
                    .depends("libc6"),
            )
            .package(Pkg::new("fallback", "1.0"))
            .package(Pkg::new("unrelated", "1.0"))
    });
    fx.source("p", "s")
        .packages("# the web stack\nweb\n")
        .write();
    fx.ws.build().assert_success();
    let output = fx.ws.output();
    let why = |args: &[&str]| {
        let mut v = vec!["why", "--output", output.to_str().unwrap()];
        v.extend_from_slice(args);
        fx.ws.run(&v)
    };
    drop(fx.server);

    let r = why(&["web"]);
    assert_eq!(r.status.code(), Some(0), "{r:?}");
    assert!(
        r.stdout
            .contains("query s/packages.txt:2: web → web 1.0 amd64"),
        "{}",
        r.stdout
    );

    let r = why(&["libssl3"]);
    assert!(
        r.stdout
            .contains("web 1.0 amd64 → libssl3 (>= 3.0.9) → libssl3 3.0.15-1 amd64"),
        "{}",
        r.stdout
    );

    let r = why(&["libc6"]);
    assert!(
        r.stdout
            .contains("libssl3 3.0.15-1 amd64 → libc6 → libc6 2.36 amd64"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("postfix 3.7 amd64 → libc6 → libc6 2.36 amd64"),
        "every chain: {}",
        r.stdout
    );

    let r = why(&["postfix", "--prefix", "p", "--arch", "amd64"]);
    assert!(
        r.stdout
            .contains("mail-transport-agent → postfix 3.7 amd64"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("postfix provides virtual package mail-transport-agent"),
        "{}",
        r.stdout
    );

    let r = why(&["fallback"]);
    assert!(r.stdout.contains("alternative 2 of 2"), "{}", r.stdout);
    assert!(r.stdout.contains("absent-pkg"), "{}", r.stdout);

    let r = why(&["unrelated"]);
    assert_eq!(r.status.code(), Some(1), "{r:?}");
    assert!(
        r.stdout.contains("unrelated is not in the mirror"),
        "{}",
        r.stdout
    );
}

/// `build --json` prints one JSON object whose counts are those of the published Packages
/// files; the SBOM lists every published package with its purl and SHA256 and passes
/// CycloneDX's own JSON schema validator (cyclonedx-python-lib, in a venv made here).
#[test]
fn build_json_and_sbom_match_the_publish() {
    let fx =
        Fixture::new(|up| basic_archive(up).package(Pkg::new("epoch", "1:2.0+dfsg-1").arch("all")));
    fx.source("p", "s").packages("app\nepoch\n").write();
    let r = fx.ws.build_with(&["--json"], &[]);
    r.assert_success();
    let v: serde_json::Value =
        serde_json::from_str(r.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {:?}", r.stdout));
    let published = fx.ws.packages("p", "bookworm", "main", "amd64");
    let p = &v["prefixes"][0];
    assert_eq!(p["prefix"], "p");
    assert_eq!(p["packages"].as_u64(), Some(published.len() as u64));
    assert_eq!(v["packages"].as_u64(), Some(published.len() as u64));
    let bytes: u64 = published
        .iter()
        .map(|s| s.req("Size").parse::<u64>().unwrap())
        .sum();
    assert_eq!(p["bytes"].as_u64(), Some(bytes));
    assert_eq!(p["downloaded"].as_u64(), Some(published.len() as u64));
    assert!(Path::new(p["lock"].as_str().unwrap()).is_file());
    assert!(
        Path::new(p["published"].as_str().unwrap())
            .join("dists")
            .is_dir()
    );
    assert!(v["phases"].as_array().unwrap().len() >= 4);

    let sbom_path = fx.ws.published("p").join("sbom.cdx.json");
    let sbom: serde_json::Value = serde_json::from_slice(&fs::read(&sbom_path).unwrap()).unwrap();
    let components = sbom["components"].as_array().unwrap();
    assert_eq!(components.len(), published.len());
    for s in &published {
        let c = components
            .iter()
            .find(|c| c["name"] == s.package())
            .unwrap();
        assert_eq!(c["version"], s.version());
        assert_eq!(c["hashes"][0]["content"], s.req("SHA256"));
        assert!(c["purl"].as_str().unwrap().starts_with("pkg:deb/"), "{c}");
    }
    let epoch = components.iter().find(|c| c["name"] == "epoch").unwrap();
    assert_eq!(
        epoch["purl"].as_str().unwrap(),
        "pkg:deb/debian/epoch@1%3A2.0%2Bdfsg-1?arch=all&distro=bookworm"
    );
    validate_cyclonedx(&sbom_path);
}

/// Validate a CycloneDX JSON file with cyclonedx-python-lib's strict JSON validator.
fn validate_cyclonedx(path: &Path) {
    let venv = std::env::temp_dir().join("mini-mirror-test-cyclonedx-venv");
    let python = venv.join("bin/python");
    let ready = venv.join(".ready");
    if !ready.exists() {
        let ok = std::process::Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .unwrap()
            .success();
        assert!(ok, "python3 -m venv failed");
        let out = std::process::Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "-q",
                "cyclonedx-python-lib[json-validation]==8.*",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pip install: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        fs::write(&ready, "").unwrap();
    }
    let script = r#"
import sys
from cyclonedx.validation.json import JsonStrictValidator
from cyclonedx.schema import SchemaVersion
err = JsonStrictValidator(SchemaVersion.V1_5).validate_str(open(sys.argv[1]).read())
if err:
    print(err); sys.exit(1)
print("valid")
"#;
    let out = std::process::Command::new(&python)
        .arg("-c")
        .arg(script)
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "CycloneDX validation failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
