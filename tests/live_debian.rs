//! LIVE: builds the shipped example `sources/` against Debian's real archive (the only
//! test here that needs the network), bounded in time, and checks the result with
//! GnuPG's `gpgv` and by re-hashing every file the published indices name.

use sha2::{Digest, Sha256};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const TIME_LIMIT: Duration = Duration::from_secs(300);

#[test]
fn live_debian_example_sources_build_verifies_with_gpgv_and_hashes() {
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("public");
    // A copy: a build writes sources/<prefix>/mirror.lock, and the shipped tree must stay
    // as committed.
    let sources = work.path().join("sources");
    let copied = Command::new("cp")
        .arg("-r")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("sources"))
        .arg(&sources)
        .status()
        .unwrap();
    assert!(copied.success());
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mini-mirror"))
        .args(["build", "--sources"])
        .arg(&sources)
        .arg("--output")
        .arg(&out)
        .arg("--cache")
        .arg(work.path().join("cache"))
        .arg("--state-dir")
        .arg(work.path().join("state"))
        .spawn()
        .unwrap();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > TIME_LIMIT {
            child.kill().unwrap();
            panic!("live build took longer than {TIME_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(status.success(), "live build failed");
    assert!(
        sources.join("debian/mirror.lock").is_file(),
        "the build writes the lock beside the sources"
    );

    let prefix = out.join("debian");
    let keyring = prefix.join("mini-mirror-archive-keyring.gpg");
    let mut entries = 0;
    for dist in ["bookworm", "bookworm-security"] {
        let dist_dir = prefix.join("dists").join(dist);
        let gpgv = |args: &[&Path]| {
            let ok = Command::new("gpgv")
                .arg("--keyring")
                .arg(&keyring)
                .args(args)
                .output()
                .unwrap();
            assert!(
                ok.status.success(),
                "gpgv: {}",
                String::from_utf8_lossy(&ok.stderr)
            );
        };
        gpgv(&[&dist_dir.join("InRelease")]);
        gpgv(&[&dist_dir.join("Release.gpg"), &dist_dir.join("Release")]);
        let packages =
            std::fs::read_to_string(dist_dir.join("main/binary-amd64/Packages")).unwrap();
        for p in mini_mirror::deb822::paragraphs(&packages) {
            let p = p.unwrap();
            let file = prefix.join(p.get("Filename").unwrap());
            let bytes = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            assert_eq!(
                bytes.len().to_string(),
                p.get("Size").unwrap(),
                "{}",
                file.display()
            );
            assert_eq!(
                hex::encode(Sha256::digest(&bytes)),
                p.get("SHA256").unwrap(),
                "{}",
                file.display()
            );
            entries += 1;
        }
    }
    // A query may be served by bookworm or by bookworm-security (the newest build wins).
    let published: String = ["bookworm", "bookworm-security"]
        .iter()
        .map(|d| {
            std::fs::read_to_string(
                prefix
                    .join("dists")
                    .join(d)
                    .join("main/binary-amd64/Packages"),
            )
            .unwrap()
        })
        .collect();
    for wanted in [
        "nginx-light",
        "curl",
        "openssh-server",
        "python3",
        "jq",
        "libc6",
        "openssl",
    ] {
        assert!(
            published.contains(&format!("Package: {wanted}\n")),
            "{wanted} missing"
        );
    }
    assert!(entries > 50, "only {entries} packages published");
}
