//! Any text as the signed text of a Release (what comes out of the verifier).
#![no_main]
use libfuzzer_sys::fuzz_target;
use mini_mirror::openpgp::GoodSignature;
use sequoia_openpgp::Fingerprint;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let fpr = Fingerprint::from_bytes(4, &[0u8; 20]).unwrap();
    let signed_by = GoodSignature { key: fpr.clone(), cert: fpr };
    let _ = mini_mirror::upstream::parse_release("http://x/dists/d".into(), text.to_owned(), signed_by);
});
