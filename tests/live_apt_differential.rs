//! LIVE: the real apt judges the resolver on Debian's real archive. Conflict-heavy query
//! sets (printing systems, MTAs, syslog daemons, init systems, logind, Java, PHP, database
//! clients), one prefix each, are built in one run from bookworm main; then for every set
//! `apt-get -s install <the set>` and each query alone must give the same outcome against
//! deb.debian.org and against the mirror. Prints `N/M query sets agree with apt`.
//! Bounded in time; needs the network (the only other such test is `live_debian.rs`).

mod common;

use common::{AptClient, mini_mirror_bin, run_with_timeout};
use std::fmt::Write as _;
use std::process::Command;
use std::time::{Duration, Instant};

const TIME_LIMIT: Duration = Duration::from_secs(900);
const UPSTREAM: &str = "http://deb.debian.org/debian";
const KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

/// (prefix, queries): each set is one packages.txt; apt must install it as a whole.
const SETS: &[(&str, &[&str])] = &[
    ("lpr-cups", &["gpr", "cups-client"]),
    ("spamd-elogind", &["spamd", "elogind"]),
    ("lprng", &["lprng", "magicfilter"]),
    ("postfix", &["postfix", "mailutils"]),
    ("exim", &["exim4-daemon-light", "bsd-mailx"]),
    ("msmtp", &["msmtp-mta", "s-nail"]),
    ("rsyslog", &["rsyslog", "logrotate", "logcheck"]),
    ("syslog-ng", &["syslog-ng-core", "logcheck"]),
    ("sysvinit", &["sysvinit-core", "openssh-server"]),
    ("runit", &["runit-init", "cron"]),
    (
        "libpam-elogind",
        &["libpam-elogind", "policykit-1", "udisks2"],
    ),
    ("java", &["default-jre-headless", "ca-certificates-java"]),
    ("php", &["php-cli", "php-fpm", "php-mysql"]),
    ("apache-php", &["apache2", "libapache2-mod-php"]),
    ("mariadb", &["default-mysql-client", "mariadb-server"]),
];

#[test]
fn live_apt_installs_the_same_from_the_mirror_as_from_debian() {
    let work = tempfile::tempdir().unwrap();
    let sources = work.path().join("sources");
    for (prefix, queries) in SETS {
        let dir = sources.join(prefix).join("bookworm");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("source.txt"),
            format!("{UPSTREAM} {KEYRING} bookworm main\n"),
        )
        .unwrap();
        std::fs::write(dir.join("packages.txt"), queries.join("\n") + "\n").unwrap();
    }
    let out = work.path().join("public");
    let started = Instant::now();
    // Not the Workspace's cleaned command: a live build must keep the proxy settings.
    let mut build = Command::new(mini_mirror_bin());
    build
        .args(["build", "--sources"])
        .arg(&sources)
        .arg("--output")
        .arg(&out)
        .arg("--cache")
        .arg(work.path().join("cache"))
        .arg("--state-dir")
        .arg(work.path().join("state"));
    let status = run_with_timeout(build, TIME_LIMIT).status;
    assert!(status.success(), "live build failed");
    eprintln!("live build of {} sets: {:?}", SETS.len(), started.elapsed());

    let upstream = AptClient::new("amd64", &[]);
    upstream.sources(&format!(
        "deb [signed-by={KEYRING}] {UPSTREAM} bookworm main\n"
    ));
    let (ok, log) = upstream.update();
    assert!(ok, "apt-get update against {UPSTREAM} failed:\n{log}");

    let mut agree = 0;
    let mut report = String::new();
    for (prefix, queries) in SETS {
        let published = out.join(prefix);
        let mirror = AptClient::new("amd64", &[]);
        mirror.sources(&format!(
            "deb [signed-by={}] file:{} bookworm main\n",
            published.join("mini-mirror-archive-keyring.gpg").display(),
            published.display()
        ));
        let (ok, log) = mirror.update();
        assert!(
            ok,
            "apt-get update against the mirror of {prefix} failed:\n{log}"
        );
        let mut runs: Vec<Vec<&str>> = vec![queries.to_vec()];
        runs.extend(queries.iter().map(|q| vec![*q]));
        let mut same = true;
        for args in &runs {
            let up = upstream.simulate(args, false);
            let mi = mirror.simulate(args, false);
            if up.ok != mi.ok || up.installs != mi.installs {
                same = false;
                let only_up: Vec<_> = up.installs.difference(&mi.installs).collect();
                let only_mi: Vec<_> = mi.installs.difference(&up.installs).collect();
                let _ = writeln!(
                    report,
                    "{prefix}: `apt-get install {}` upstream {} / mirror {}; only upstream {only_up:?}; only mirror {only_mi:?}\n{}",
                    args.join(" "),
                    if up.ok { "ok" } else { "fails" },
                    if mi.ok { "ok" } else { "fails" },
                    if mi.ok { String::new() } else { mi.log.clone() }
                );
            } else if args.len() == queries.len() {
                assert!(
                    up.ok,
                    "{prefix}: apt cannot install the set upstream either; pick another set:\n{}",
                    up.log
                );
                eprintln!("{prefix}: agree ({} packages)", up.installs.len());
            }
        }
        if same {
            agree += 1;
        }
    }
    eprintln!("{agree}/{} query sets agree with apt", SETS.len());
    assert_eq!(agree, SETS.len(), "apt disagrees:\n{report}");
}
