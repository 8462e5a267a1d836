//! `mini-mirror serve` judged by the real apt client and by curl (each header rule, a byte
//! range, HEAD, /healthz, a dot-file and a `..` path refused, SIGTERM), and the generated
//! shell completions and man page.

mod common;

use common::apt::AptClient;
use common::*;
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// `mini-mirror serve` on a free port of 127.0.0.1: (child, base URL).
fn serve(ws: &Workspace) -> (Child, String) {
    let mut child = ws
        .bare_command()
        .args(["serve", "--listen", "127.0.0.1:0", "--output"])
        .arg(ws.output())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let url = loop {
        let line = lines.next().expect("serve printed its address").unwrap();
        if let Some(rest) = line.strip_prefix("serving on ") {
            break rest.trim_end_matches('/').to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (child, url)
}

#[test]
fn serve_follows_the_image_rules_and_apt_installs_from_it() {
    let fx = Fixture::basic();
    fx.source("p", "s").packages("app\n").write();
    fx.ws.build().assert_success();
    let (mut child, url) = serve(&fx.ws);

    // The real apt client, against the server alone.
    let client = AptClient::new("amd64", &[]);
    let keyring = fx.ws.published("p").join("mini-mirror-archive-keyring.gpg");
    client.sources(&format!(
        "deb [signed-by={}] {url}/p bookworm main\n",
        keyring.display()
    ));
    let (ok, log) = client.update();
    assert!(ok, "apt-get update --error-on=any against serve:\n{log}");
    let (ok, log) = client.download(&["app"]);
    assert!(ok, "apt-get install --download-only app:\n{log}");

    let (code, h, _) = curl(&[&format!("{url}/p/dists/bookworm/InRelease")]);
    assert_eq!(code, 200);
    assert!(h.contains("cache-control: no-cache"), "{h}");
    let (code, h, _) = curl(&[&format!(
        "{url}/p/dists/bookworm/main/binary-amd64/Packages.xz"
    )]);
    assert_eq!(code, 200);
    assert!(h.contains("cache-control: no-cache"), "{h}");
    let packages = fx.ws.packages("p", "bookworm", "main", "amd64");
    let deb = packages[0].req("Filename");
    let (code, h, body) = curl(&[&format!("{url}/p/{deb}")]);
    assert_eq!(code, 200);
    assert!(
        h.contains("cache-control: public, max-age=31536000, immutable"),
        "{h}"
    );
    assert_eq!(sha256_hex(&body), packages[0].req("SHA256"));
    let packages_sha = sha256_hex(
        &fx.ws
            .read_published("p", "dists/bookworm/main/binary-amd64/Packages"),
    );
    let (code, h, _) = curl(&[&format!(
        "{url}/p/dists/bookworm/main/binary-amd64/by-hash/SHA256/{packages_sha}"
    )]);
    assert_eq!(code, 200);
    assert!(h.contains("immutable"), "{h}");
    // A byte range, and HEAD.
    let (code, h, body) = curl(&["-r", "0-9", &format!("{url}/p/{deb}")]);
    assert_eq!(code, 206, "{h}");
    assert_eq!(body.len(), 10);
    // (curl -I prints the headers as its output: no body is sent.)
    let (code, h, body) = curl(&["-I", &format!("{url}/p/{deb}")]);
    assert_eq!(code, 200);
    assert!(
        h.contains(&format!("content-length: {}", packages[0].req("Size"))),
        "{h}"
    );
    assert!(
        body.len() < 1000 && body.starts_with(b"HTTP/1.1 200"),
        "HEAD sent a body"
    );
    // Health, dot-files, traversal.
    let (code, _, body) = curl(&[&format!("{url}/healthz")]);
    assert_eq!((code, body.as_slice()), (200, &b"ok\n"[..]));
    let (code, _, _) = curl(&[&format!("{url}/p/.mini-mirror-fingerprint")]);
    assert_eq!(code, 404, "dot-files are refused");
    let (code, _, body) = curl(&[&format!("{url}/p/../../../../etc/passwd")]);
    assert!(code == 404 || code == 400, "`..` refused: {code}");
    assert!(
        !String::from_utf8_lossy(&body).contains("root:"),
        "served a file outside the output"
    );

    // SIGTERM ends it within a second, and it logged each request.
    let stdout = child.stdout.take().unwrap();
    // SAFETY: kill(2) on the child's pid, with SIGTERM.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "serve did not stop within 1 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
    let log: Vec<String> = BufReader::new(stdout).lines().map(Result::unwrap).collect();
    assert!(
        log.iter().any(|l| l.contains("\"GET /healthz\" 200")),
        "{log:?}"
    );
    assert!(
        log.iter()
            .any(|l| l.contains("\"GET /p/.mini-mirror-fingerprint\" 404")),
        "{log:?}"
    );
}

#[test]
fn completions_and_man_page_are_generated() {
    let ws = Workspace::new();
    for shell in ["bash", "zsh", "fish"] {
        let r = ws.run(&["completions", shell]);
        r.assert_success();
        assert!(
            r.stdout.len() > 1000 && r.stdout.contains("rollback"),
            "{shell}: {}",
            r.stdout.len()
        );
    }
    let r = ws.run(&["man"]);
    r.assert_success();
    assert!(
        r.stdout.starts_with(".ie") || r.stdout.contains(".TH"),
        "{}",
        &r.stdout[..200.min(r.stdout.len())]
    );
    for sub in [
        "key",
        "build",
        "diff",
        "check",
        "snapshots",
        "rollback",
        "purge",
        "serve",
        "completions",
        "man",
        "why",
    ] {
        assert!(
            r.stdout.contains(&format!("mini\\-mirror\\-{sub}(1)")),
            "the man page does not name `{sub}`"
        );
    }
}
