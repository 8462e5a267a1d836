//! Micro-benchmark of the CPU-bound core: parse a real Packages index into a universe
//! and resolve queries in it. Prints the median of several runs.
//!
//!     cargo run --release --example parse_resolve -- Packages[.xz|.gz] [query...]
//!
//! `bench/parse-resolve.sh` fetches bookworm main amd64 (63k entries) and runs it.

use mini_mirror::index_text::{self, Compression};
use mini_mirror::resolve::{Request, resolve};
use mini_mirror::spec::{Location, Query, Settings};
use mini_mirror::universe::{Client, IndexRef, Origin, Universe};
use std::time::{Duration, Instant};

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .expect("usage: parse_resolve PACKAGES [query...]");
    let mut queries: Vec<String> = args.collect();
    if queries.is_empty() {
        queries = ["nginx", "curl", "openssh-server", "python3"]
            .map(String::from)
            .to_vec();
    }
    let t = Instant::now();
    // Decoded as a build decodes it: into a file-backed text beside the input.
    let dir = tempfile::tempdir().expect("temporary directory");
    let (text, _) = index_text::decode(
        std::fs::File::open(&path).expect("open index"),
        Compression::of_path(&path),
        dir.path(),
    )
    .expect("decode index");
    let decompress = t.elapsed();
    let queries: Vec<Query> = queries
        .iter()
        .enumerate()
        .map(|(i, q)| Query {
            name: q.clone(),
            version: None,
            arch: None,
            location: Location {
                file: "cli".into(),
                line: i + 1,
            },
        })
        .collect();
    let settings = Settings::default();
    let (mut parse, mut solve) = (Vec::new(), Vec::new());
    let mut selected = 0;
    let mut entries = 0;
    for _ in 0..7 {
        let t = Instant::now();
        let indices = [IndexRef {
            text: &text,
            path: &path,
            origin: Origin {
                source: 0,
                url: "http://upstream",
                dist: "d",
                component: "main",
                pin: 500,
            },
        }];
        let universe = Universe::build(
            &Client {
                native: "amd64".into(),
                foreign: Vec::new(),
            },
            &indices,
            &|_, _| false,
        )
        .expect("parse");
        parse.push(t.elapsed());
        let t = Instant::now();
        let requests = [Request {
            source: 0,
            settings: &settings,
            queries: &queries,
            bootstrap_names: vec![],
        }];
        let selection = resolve(&universe, &requests).expect("resolve");
        solve.push(t.elapsed());
        selected = selection.packages.len();
        entries = universe.packages.len();
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (p, s) = (median(&mut parse), median(&mut solve));
    println!(
        "index: {} MB, {entries} entries; decompress {:.3}s",
        text.as_str().len() / 1_000_000,
        decompress.as_secs_f64()
    );
    println!(
        "parse {:.3}s ({:.0} MB/s), resolve {:.4}s ({selected} packages), parse+resolve {:.3}s",
        p.as_secs_f64(),
        text.as_str().len() as f64 / 1e6 / p.as_secs_f64(),
        s.as_secs_f64(),
        (p + s).as_secs_f64()
    );
}
