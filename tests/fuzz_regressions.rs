//! Replays every input kept in tests/fuzz_regressions/<target>/ (seeds, and every crash the
//! fuzzers of fuzz/ ever found) through the same parsers: each must return, never panic.

use mini_mirror::index_text::IndexText;
use mini_mirror::openpgp::GoodSignature;
use mini_mirror::universe::{Client, IndexRef, Origin, Universe};
use std::path::Path;

fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz_regressions")
        .join(target);
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let path = e.unwrap().path();
            (path.display().to_string(), std::fs::read(&path).unwrap())
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no inputs in {}", dir.display());
    out
}

#[test]
fn deb822_inputs_never_panic() {
    for (name, data) in inputs("deb822") {
        let Ok(text) = std::str::from_utf8(&data) else {
            continue;
        };
        let text = IndexText::from(text.to_owned());
        let indices = [IndexRef {
            text: &text,
            path: &name,
            origin: Origin {
                source: 0,
                url: "http://upstream",
                dist: "d",
                component: "main",
                pin: 500,
            },
        }];
        let _ = Universe::build(
            &Client {
                native: "amd64".into(),
                foreign: Vec::new(),
            },
            &indices,
            &|_, _| false,
        );
    }
}

#[test]
fn relation_inputs_never_panic() {
    for (_, data) in inputs("relation") {
        let Ok(text) = std::str::from_utf8(&data) else {
            continue;
        };
        let _ = mini_mirror::relation::parse_depends(text);
        let _ = mini_mirror::relation::parse_provides(text);
        let _ = mini_mirror::relation::parse_version_req(text);
    }
}

#[test]
fn release_inputs_never_panic() {
    let fpr = sequoia_openpgp::Fingerprint::from_bytes(4, &[0u8; 20]).unwrap();
    for (_, data) in inputs("release") {
        let Ok(text) = std::str::from_utf8(&data) else {
            continue;
        };
        let signed_by = GoodSignature {
            key: fpr.clone(),
            cert: fpr.clone(),
        };
        let _ = mini_mirror::upstream::parse_release(
            "http://x/dists/d".into(),
            text.to_owned(),
            signed_by,
        );
    }
}
