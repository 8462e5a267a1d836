//! Any bytes as a Packages index: the paragraph reader and the package-entry parser
//! must return errors, never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mini_mirror::universe::{IndexRef, Origin, Universe};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for p in mini_mirror::deb822::paragraphs(text) {
        if p.is_err() {
            break;
        }
    }
    let indices = [IndexRef {
        text,
        path: "fuzz",
        origin: Origin { source: 0, dist: "d", component: "main" },
    }];
    let _ = Universe::build("amd64", &indices);
});
