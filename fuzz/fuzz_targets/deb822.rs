//! Any bytes as a Packages index: the paragraph reader and the package-entry parser
//! must return errors, never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mini_mirror::universe::{Client, IndexRef, Origin, Universe};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for p in mini_mirror::deb822::paragraphs(text) {
        if p.is_err() {
            break;
        }
    }
    let text = mini_mirror::index_text::IndexText::from(text.to_owned());
    let indices = [IndexRef {
        text: &text,
        path: "fuzz",
        origin: Origin {
                source: 0,
                url: "http://upstream",
                dist: "d",
                component: "main",
                pin: 500,
            },
    }];
    let _ = Universe::build(&Client { native: "amd64".into(), foreign: Vec::new() }, &indices, &|_, _| false);
});
