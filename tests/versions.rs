//! Debian version ordering must match dpkg exactly: every pair of a list of tricky
//! versions (tildes, epochs, revisions, letters against punctuation) is compared by
//! `dpkg --compare-versions` and by mini-mirror's version requirements.

use mini_mirror::relation::{parse_version, parse_version_req};
use std::process::Command;

const VERSIONS: &[&str] = &[
    "0",
    "1",
    "1.0",
    "1.0-1",
    "1.0-1.1",
    "1.0-2",
    "1.0-10",
    "1.0~rc1",
    "1.0~rc1-1",
    "1.0~~",
    "1.0~",
    "1.0+b1",
    "1.0+dfsg-1",
    "1.0.1",
    "1.0a",
    "1.0-1ubuntu1",
    "1.0-1ubuntu0.1",
    "1.0-1+deb12u1",
    "1:0.9",
    "1:1.0",
    "2:0",
    "0:1.0",
    "1.00",
    "1.000-1",
    "1.0-0",
    "10",
    "9",
    "1.10",
    "1.9",
    "3.11.2-1+b1",
    "3.11~rc1",
    "3.11",
    "2.36-9+deb12u4",
    "2.36-9+deb12u10",
    "1.2.3~alpha",
    "1.2.3~beta",
    "1.2.3",
    "7.88.1-10+deb12u5",
    "a",
    "a1",
    "1a",
    "1.a",
    "1-a",
    "1~~a",
    "1~",
];

fn dpkg_says(a: &str, op: &str, b: &str) -> bool {
    Command::new("dpkg")
        .args(["--compare-versions", a, op, b])
        .status()
        .expect("dpkg is installed")
        .success()
}

#[test]
fn ordering_matches_dpkg_on_every_pair() {
    let mut checked = 0;
    let mut mismatches = Vec::new();
    for a in VERSIONS {
        let va = parse_version(a).unwrap();
        for b in VERSIONS {
            let ours_lt = va < parse_version(b).unwrap();
            let ours_eq = va == parse_version(b).unwrap();
            let dpkg_lt = dpkg_says(a, "lt", b);
            let dpkg_eq = dpkg_says(a, "eq", b);
            if ours_lt != dpkg_lt || ours_eq != dpkg_eq {
                mismatches.push(format!(
                    "{a} vs {b}: ours lt={ours_lt} eq={ours_eq}, dpkg lt={dpkg_lt} eq={dpkg_eq}"
                ));
            }
            checked += 1;
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {checked} pairs differ:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

#[test]
fn every_operator_matches_dpkg() {
    let ops = [
        ("<<", "lt"),
        ("<=", "le"),
        ("=", "eq"),
        (">=", "ge"),
        (">>", "gt"),
    ];
    for a in ["1.0~rc1", "1:1.0", "1.0-1", "1.0"] {
        for b in ["1.0", "1.0-1", "1:0.9", "1.0~"] {
            for (ours, theirs) in ops {
                let req = parse_version_req(&format!("{ours} {b}")).unwrap();
                assert_eq!(
                    req.matches(&parse_version(a).unwrap()),
                    dpkg_says(a, theirs, b),
                    "{a} {ours} {b}"
                );
            }
        }
    }
}
