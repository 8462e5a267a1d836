//! Any text as a dependency field, a Provides field or a query version.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mini_mirror::relation;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(groups) = relation::parse_depends(text) {
        for g in &groups {
            let _ = g.to_string();
        }
    }
    let _ = relation::parse_provides(text);
    let _ = relation::parse_version_req(text);
});
