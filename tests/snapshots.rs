//! Hermetic tests of the snapshot store: every publish a snapshot sharing one pool,
//! `snapshots`, `rollback`, retention, grace for clients mid-update, `purge`, the
//! `Snapshots:` field, and builds killed mid-way.
//!
//! The real apt client (the host's) judges the rollback; a fixture archive served on
//! 127.0.0.1 changes between builds.

mod common;

use common::apt::AptClient;
use common::*;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

/// The archive on day `n`: app n.0 (each day a new file), a stable library.
fn day(key: &GpgKey, n: u32) -> Upstream {
    Upstream::new(key)
        .dist("bookworm")
        .component("main")
        .package(Pkg::new("app", &format!("{n}.0")).depends("libstable"))
        .package(Pkg::new("libstable", "1.0"))
}

/// Publish day 1, 2, 3 (one build each, a second apart so that IDs and Dates differ).
fn three_days(extra: &[&str]) -> Fixture {
    let key = GpgKey::generate("Test Upstream <t@example.org>");
    let fx = Fixture::signed_by(key.clone(), |_| day(&key, 1));
    fx.source("p", "s").packages("app\n").write();
    for n in 1..=3 {
        if n > 1 {
            std::thread::sleep(Duration::from_millis(1100));
            fx.repo.rebuild(&day(&fx.key, n));
        }
        fx.ws.build_with(extra, &[]).assert_success();
    }
    fx
}

fn snapshot_ids(ws: &Workspace) -> Vec<String> {
    let mut ids: Vec<String> = fs::read_dir(ws.published("p").join("snapshots"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    ids.sort();
    ids
}

fn snapshots_json(ws: &Workspace) -> serde_json::Value {
    let r = ws.run(&[
        "snapshots",
        "--output",
        ws.output().to_str().unwrap(),
        "--json",
    ]);
    r.assert_success();
    serde_json::from_str(&r.stdout).unwrap()
}

fn inode(p: &Path) -> u64 {
    fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .ino()
}

/// A client of the published prefix over http: (client, server).
fn client_of(ws: &Workspace) -> (AptClient, Server) {
    let server = Server::start(&ws.output());
    let client = AptClient::new("amd64", &[]);
    let keyring = ws.published("p").join("mini-mirror-archive-keyring.gpg");
    client.sources(&format!(
        "deb [signed-by={}] {}/p bookworm main\n",
        keyring.display(),
        server.url()
    ));
    (client, server)
}

fn apt_version_of(client: &AptClient, pkg: &str) -> String {
    let (ok, log) = client.update();
    assert!(ok, "apt-get update failed:\n{log}");
    let sim = client.simulate(&[pkg], false);
    assert!(sim.ok, "{}", sim.log);
    sim.installs
        .iter()
        .find_map(|i| i.strip_prefix(&format!("{pkg}:amd64=")).map(str::to_owned))
        .unwrap_or_else(|| panic!("{pkg} not installed: {:?}", sim.installs))
}

/// Three builds give three snapshots, each with its own signed dists, lock and a `pool`
/// link to the one shared pool: an unchanged package is one inode in all three (and the
/// cache's), a changed one adds only its own file. The newest is current and served.
#[test]
fn every_publish_is_a_snapshot_sharing_one_pool() {
    let fx = three_days(&[]);
    let ids = snapshot_ids(&fx.ws);
    assert_eq!(ids.len(), 3, "{ids:?}");
    let prefix = fx.ws.published("p");
    let keyring = prefix.join("mini-mirror-archive-keyring.gpg");
    let lib = Pkg::new("libstable", "1.0").pool_path("main");
    for (n, id) in ids.iter().enumerate() {
        let snap = prefix.join("snapshots").join(id);
        assert_gpgv_accepts_dist(&keyring, &snap.join("dists/bookworm"));
        let packages =
            fs::read_to_string(snap.join("dists/bookworm/main/binary-amd64/Packages")).unwrap();
        assert!(
            packages.contains(&format!("Version: {}.0", n + 1)),
            "{id}: {packages}"
        );
        assert!(snap.join("mirror.lock").is_file());
        assert_eq!(
            inode(&snap.join(&lib)),
            inode(&prefix.join(&lib)),
            "{id} shares the pool"
        );
        let app = Pkg::new("app", &format!("{}.0", n + 1)).pool_path("main");
        assert!(snap.join(&app).is_file(), "{id}: its app is in the pool");
    }
    // The served dists are the newest snapshot's.
    assert_eq!(
        fs::read(prefix.join("dists/bookworm/InRelease")).unwrap(),
        fs::read(
            prefix
                .join("snapshots")
                .join(&ids[2])
                .join("dists/bookworm/InRelease")
        )
        .unwrap()
    );
    let list = snapshots_json(&fx.ws);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 3);
    assert_eq!(list[2]["current"], true);
    assert_eq!(list[0]["current"], false);
    assert_eq!(list[0]["packages"], 2);
    let app1 = fs::metadata(prefix.join(Pkg::new("app", "1.0").pool_path("main")))
        .unwrap()
        .len();
    assert_eq!(
        list[0]["unique_bytes"].as_u64(),
        Some(app1),
        "only app 1.0 is unique to the first"
    );
    let text = fx
        .ws
        .run(&["snapshots", "--output", fx.ws.output().to_str().unwrap()]);
    let current_line = text
        .stdout
        .lines()
        .find(|l| l.contains("(current)"))
        .unwrap();
    assert!(current_line.contains(&ids[2]), "{}", text.stdout);
}

/// A client that saw snapshot 3 installs snapshot 2's version after `rollback` and a plain
/// `apt-get update` (the rollback is a new publish with a later Date); `rollback --to` an
/// unknown ID lists the known ones and changes nothing; a snapshot damaged on disk is
/// refused before anything is switched.
#[test]
fn rollback_publishes_the_previous_content_anew() {
    let fx = three_days(&[]);
    let ids = snapshot_ids(&fx.ws);
    let (client, _server) = client_of(&fx.ws);
    assert_eq!(apt_version_of(&client, "app"), "3.0");
    let output = fx.ws.output();
    let out = output.to_str().unwrap();
    let state = fx.ws.state();
    let cache = fx.ws.cache();
    let rollback = |extra: &[&str]| {
        let mut args = vec![
            "rollback",
            "--output",
            out,
            "--state-dir",
            state.to_str().unwrap(),
            "--cache",
            cache.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        fx.ws.run(&args)
    };

    let before = fx.ws.snapshot();
    let r = rollback(&["--to", "20000101T000000Z"]);
    r.assert_failure_mentioning(&["no snapshot 20000101T000000Z", &ids[0], &ids[1], &ids[2]]);
    assert_eq!(fx.ws.snapshot(), before);

    fx.server.clear_requests();
    std::thread::sleep(Duration::from_millis(1100));
    let r = rollback(&[]);
    r.assert_success();
    assert!(
        r.stdout
            .contains(&format!("snapshot {} is current again", ids[1])),
        "{}",
        r.stdout
    );
    assert!(
        fx.server.requests().is_empty(),
        "rollback downloads nothing"
    );
    assert_eq!(
        apt_version_of(&client, "app"),
        "2.0",
        "the client follows the rollback"
    );
    let after = snapshot_ids(&fx.ws);
    assert_eq!(after.len(), 4);
    let new = fx.ws.published("p").join("snapshots").join(&after[3]);
    assert_eq!(
        fs::read(new.join("dists/bookworm/main/binary-amd64/Packages")).unwrap(),
        fs::read(
            fx.ws
                .published("p")
                .join("snapshots")
                .join(&ids[1])
                .join("dists/bookworm/main/binary-amd64/Packages")
        )
        .unwrap(),
        "the same Packages, byte for byte"
    );
    let old_date = ReleaseFile::parse(
        &String::from_utf8(
            fs::read(
                fx.ws
                    .published("p")
                    .join("snapshots")
                    .join(&ids[2])
                    .join("dists/bookworm/Release"),
            )
            .unwrap(),
        )
        .unwrap(),
    )
    .date();
    assert!(
        fx.ws.release("p", "bookworm").date() > old_date,
        "a later Date than the snapshot it replaces"
    );

    // Damage the pool file of the snapshot to roll back to: refused, nothing switched.
    let app1 = fx
        .ws
        .published("p")
        .join(Pkg::new("app", "1.0").pool_path("main"));
    let mut bytes = fs::read(&app1).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    fs::remove_file(&app1).unwrap(); // a new inode: the cache's copy stays intact
    fs::write(&app1, bytes).unwrap();
    let before = fx.ws.snapshot();
    rollback(&["--to", &ids[0]]).assert_failure_mentioning(&["damaged", "app_1.0"]);
    assert_eq!(fx.ws.snapshot(), before);
}

/// `--keep 2` keeps the newest two snapshots, and the pool files only a dropped snapshot
/// named go (after the grace publish); `purge` then removes exactly the cache entries
/// nothing refers to, reporting the bytes.
#[test]
fn retention_and_purge_free_only_what_nothing_refers_to() {
    let fx = three_days(&["--keep", "2"]);
    let ids = snapshot_ids(&fx.ws);
    assert_eq!(ids.len(), 2, "{ids:?}");
    let prefix = fx.ws.published("p");
    assert!(
        !prefix
            .join(Pkg::new("app", "1.0").pool_path("main"))
            .exists(),
        "app 1.0 went with snapshot 1"
    );
    assert!(
        prefix
            .join(Pkg::new("app", "2.0").pool_path("main"))
            .exists()
    );
    assert!(
        prefix
            .join(Pkg::new("app", "3.0").pool_path("main"))
            .exists()
    );

    let cache = fx.ws.cache();
    let sha_of = |p: &Path| sha256_hex(&fs::read(p).unwrap());
    let app2 = sha_of(&prefix.join(Pkg::new("app", "2.0").pool_path("main")));
    let blob = |sha: &str| cache.join("blobs/sha256").join(&sha[..2]).join(sha);
    let blobs_before = walk_files(&cache.join("blobs")).len();
    let purge = |extra: &[&str]| {
        let mut args: Vec<String> = ["purge", "--cache"].map(String::from).to_vec();
        args.push(cache.display().to_string());
        args.extend(["--output".to_owned(), fx.ws.output().display().to_string()]);
        args.extend([
            "--sources".to_owned(),
            fx.ws.sources().display().to_string(),
        ]);
        args.extend(extra.iter().map(|s| s.to_string()));
        fx.ws
            .run(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let r = purge(&["--dry-run"]);
    r.assert_success();
    assert!(
        r.stdout.contains("would remove 1 cache files"),
        "{}",
        r.stdout
    );
    assert_eq!(
        walk_files(&cache.join("blobs")).len(),
        blobs_before,
        "--dry-run removes nothing"
    );
    let r = purge(&[]);
    r.assert_success();
    assert!(r.stdout.contains("removed 1 cache files"), "{}", r.stdout);
    assert_eq!(walk_files(&cache.join("blobs")).len(), blobs_before - 1);
    assert!(
        blob(&app2).is_file(),
        "a kept snapshot's package stays in the cache"
    );
    // What is left still builds without a download.
    fx.server.clear_requests();
    fx.ws
        .build_with(&["--force", "--keep", "2"], &[])
        .assert_success();
    assert_eq!(fx.server.deb_downloads(), 0);
}

/// A client mid-update: it fetched the old InRelease, then a build (keeping one snapshot
/// only) switches; the indices (by hash) and packages the old InRelease named are all
/// still served.
#[test]
fn a_client_mid_update_finds_everything_the_old_release_named() {
    let key = GpgKey::generate("Test Upstream <t@example.org>");
    let fx = Fixture::signed_by(key.clone(), |_| day(&key, 1));
    fx.source("p", "s").packages("app\n").write();
    fx.ws.build_with(&["--keep", "1"], &[]).assert_success();
    let server = Server::start(&fx.ws.output());
    let base = format!("{}/p", server.url());
    let get = |rel: &str| -> (u16, Vec<u8>) {
        let (code, _, body) = curl(&[&format!("{base}/{rel}")]);
        (code, body)
    };
    let (code, inrelease) = get("dists/bookworm/InRelease");
    assert_eq!(code, 200);
    let text = String::from_utf8_lossy(&inrelease).into_owned();
    let named: Vec<(String, String)> = text
        .lines()
        .skip_while(|l| !l.starts_with("SHA256:"))
        .skip(1)
        .take_while(|l| l.starts_with(' '))
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            (w[0].to_owned(), w[2].to_owned())
        })
        .collect();
    assert!(!named.is_empty());
    let old_packages = fx.ws.packages("p", "bookworm", "main", "amd64");

    std::thread::sleep(Duration::from_millis(1100));
    fx.repo.rebuild(&day(&fx.key, 2));
    fx.ws.build_with(&["--keep", "1"], &[]).assert_success();
    assert_eq!(snapshot_ids(&fx.ws).len(), 1);

    for (sha, path) in &named {
        let dir = path.rsplit_once('/').unwrap().0;
        let (code, body) = get(&format!("dists/bookworm/{dir}/by-hash/SHA256/{sha}"));
        assert_eq!(code, 200, "{path} by hash after the switch");
        assert_eq!(&sha256_hex(&body), sha);
    }
    for p in &old_packages {
        let (code, body) = get(p.req("Filename"));
        assert_eq!(code, 200, "{} after the switch", p.req("Filename"));
        assert_eq!(sha256_hex(&body), p.req("SHA256"));
    }
}

/// `--base-url` makes every Release (served and per snapshot) point apt's `--snapshot` at
/// the mirror's own snapshots; without it the field says `no`, so clients never go to the
/// public snapshot servers for an Origin they would otherwise guess.
#[test]
fn snapshots_field_points_at_the_mirror() {
    let fx = Fixture::basic();
    fx.source("p", "s").packages("app\n").write();
    fx.ws.build().assert_success();
    assert_eq!(fx.ws.release("p", "bookworm").get("Snapshots"), Some("no"));
    fx.ws
        .build_with(&["--base-url", "http://mirror.example:8080/"], &[])
        .assert_success();
    assert_eq!(
        fx.ws.release("p", "bookworm").get("Snapshots"),
        Some("http://mirror.example:8080/p/snapshots/@SNAPSHOTID@/"),
        "a new base URL is a new publish"
    );
}

/// A build killed at any point leaves the current snapshot serving, verifiable, with no
/// half snapshot listed; the next build cleans the remains.
#[test]
fn a_build_killed_at_any_point_leaves_a_consistent_tree() {
    let key = GpgKey::generate("Test Upstream <t@example.org>");
    let fx = Fixture::signed_by(key.clone(), |_| day(&key, 1));
    fx.source("p", "s").packages("app\n").write();
    fx.ws.build().assert_success();
    let keyring = fx.ws.published("p").join("mini-mirror-archive-keyring.gpg");
    let mut n = 1;
    for delay_ms in [5u64, 20, 50, 100, 200, 400] {
        n += 1;
        std::thread::sleep(Duration::from_millis(1100));
        fx.repo.rebuild(
            &day(&fx.key, n).package(Pkg::new("big", &format!("{n}.0")).payload_size(3 << 20)),
        );
        fs::write(fx.ws.sources().join("p/s/packages.txt"), "app\nbig\n").unwrap();
        let before_ids = snapshot_ids(&fx.ws);
        let mut child = fx
            .ws
            .build_command()
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let ids = snapshot_ids(&fx.ws);
        assert!(
            ids == before_ids
                || (ids.len() == before_ids.len() + 1 && ids[..before_ids.len()] == before_ids[..]),
            "after a kill at {delay_ms} ms: {before_ids:?} → {ids:?}"
        );
        for id in &ids {
            assert!(
                fx.ws
                    .published("p")
                    .join("snapshots")
                    .join(id)
                    .join("mirror.lock")
                    .is_file(),
                "half snapshot {id}"
            );
        }
        assert_gpgv_accepts_dist(&keyring, &fx.ws.published("p").join("dists/bookworm"));
        for p in fx.ws.packages("p", "bookworm", "main", "amd64") {
            let body = fs::read(fx.ws.published("p").join(p.req("Filename"))).unwrap();
            assert_eq!(
                sha256_hex(&body),
                p.req("SHA256"),
                "after a kill at {delay_ms} ms"
            );
        }
    }
    fx.ws.build().assert_success();
    let leftovers: Vec<String> = fs::read_dir(fx.ws.output())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with(".staging"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
