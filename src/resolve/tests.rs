//! Unit tests of the selection rules on small hand-written indices. The same rules are
//! checked against the real apt in tests/apt_differential.rs.

use super::*;
use crate::index_text::IndexText;
use crate::spec::{Location, Query, Settings};
use crate::universe::{Client, IndexRef, Origin};

/// A Packages text from `(name, version, arch, extra fields)`.
fn index(entries: &[(&str, &str, &str, &str)]) -> String {
    let mut out = String::new();
    for (name, version, arch, extra) in entries {
        let sha = crate::sha256::hex_digest(format!("{name} {version} {arch}").as_bytes());
        out.push_str(&format!(
            "Package: {name}\nVersion: {version}\nArchitecture: {arch}\nFilename: pool/main/{name}_{version}_{arch}.deb\nSize: 1\nSHA256: {sha}\n{extra}\n"
        ));
    }
    out
}

fn query(text: &str, line: usize) -> Query {
    let (text, arch) = match text.split_once(" {") {
        Some((t, a)) => (t, Some(a.trim_end_matches('}').to_owned())),
        None => (text, None),
    };
    let (name, version) = match text.split_once(' ') {
        Some((n, v)) => (
            n,
            Some(crate::relation::parse_version_req(v.trim_matches(['(', ')'])).unwrap()),
        ),
        None => (text, None),
    };
    Query {
        name: name.into(),
        version,
        arch,
        location: Location {
            file: "sources/p/s/packages.txt".into(),
            line,
        },
    }
}

/// One source of a test: its dist, index text, pin, queries and settings.
struct Src<'t> {
    dist: &'t str,
    text: String,
    pin: i32,
    queries: Vec<&'t str>,
    settings: Settings,
}

fn src<'t>(dist: &'t str, text: String) -> Src<'t> {
    Src {
        dist,
        text,
        pin: 500,
        queries: Vec::new(),
        settings: Settings::default(),
    }
}

impl<'t> Src<'t> {
    fn pin(mut self, pin: i32) -> Self {
        self.pin = pin;
        self
    }
    fn ask(mut self, queries: &[&'t str]) -> Self {
        self.queries = queries.to_vec();
        self
    }
    fn settings(mut self, settings: Settings) -> Self {
        self.settings = settings;
        self
    }
}

/// What a resolution gave: the selected `name=version@dist` (`:arch` when not the
/// native), its warnings, or its error.
struct Run {
    selected: Vec<String>,
    warnings: Vec<String>,
}

fn run_client(client: Client, sources: &[Src]) -> Result<Run, String> {
    let texts: Vec<IndexText> = sources
        .iter()
        .map(|s| IndexText::from(s.text.clone()))
        .collect();
    let indices: Vec<IndexRef> = sources
        .iter()
        .zip(&texts)
        .enumerate()
        .map(|(source, (s, text))| IndexRef {
            text,
            path: s.dist,
            origin: Origin {
                source,
                url: "http://up",
                dist: s.dist,
                component: "main",
                pin: s.pin,
            },
        })
        .collect();
    let queries: Vec<Vec<Query>> = sources
        .iter()
        .map(|s| {
            s.queries
                .iter()
                .enumerate()
                .map(|(i, q)| query(q, i + 1))
                .collect()
        })
        .collect();
    let asked = |name: &str, source: usize| queries[source].iter().any(|q| q.name == name);
    let universe = Universe::build(&client, &indices, &asked).unwrap();
    let requests: Vec<Request> = sources
        .iter()
        .enumerate()
        .map(|(source, s)| Request {
            source,
            settings: &s.settings,
            queries: &queries[source],
            bootstrap_names: Vec::new(),
        })
        .collect();
    match resolve(&universe, &requests) {
        Ok(sel) => Ok(Run {
            selected: sel
                .packages
                .iter()
                .map(|&id| {
                    let p = universe.get(id);
                    let arch = if universe.slot_arch(id) == client.native {
                        String::new()
                    } else {
                        format!(":{}", p.arch)
                    };
                    format!("{}{arch}={}@{}", p.name, p.version_text, p.origin.dist)
                })
                .collect(),
            warnings: sel.warnings,
        }),
        Err(e) => Err(e.to_string()),
    }
}

fn amd64() -> Client {
    Client {
        native: "amd64".into(),
        foreign: Vec::new(),
    }
}

fn run_sources(sources: &[Src]) -> Result<Run, String> {
    run_client(amd64(), sources)
}

/// Resolve `queries` over one index; the selected `name=version` strings, or the error.
fn run(text: &str, queries: &[&str], settings: Settings) -> Result<Vec<String>, String> {
    run_sources(&[src("d", text.to_owned()).ask(queries).settings(settings)]).map(|r| {
        r.selected
            .into_iter()
            .map(|s| s.trim_end_matches("@d").to_owned())
            .collect()
    })
}

#[test]
fn query_picks_the_candidate_or_the_best_version_that_fits() {
    let text = index(&[
        ("app", "1.0", "amd64", ""),
        ("app", "2.0", "amd64", ""),
        ("app", "1:0.5", "amd64", ""),
    ]);
    assert_eq!(
        run(&text, &["app"], Settings::default()).unwrap(),
        ["app=1:0.5"]
    );
    assert_eq!(
        run(&text, &["app (<< 1:0)"], Settings::default()).unwrap(),
        ["app=2.0"]
    );
    assert_eq!(
        run(&text, &["app (<< 2.0)"], Settings::default()).unwrap(),
        ["app=1.0"]
    );
    let err = run(&text, &["app (>> 3:0)"], Settings::default()).unwrap_err();
    assert!(err.contains("sources/p/s/packages.txt:1"), "{err}");
}

#[test]
fn queries_and_dependencies_take_the_newest_build_across_equal_pins() {
    // bookworm's nginx-light pins bookworm's nginx; security has both, newer.
    let main = index(&[
        (
            "nginx-light",
            "1-1",
            "amd64",
            "Depends: nginx (<< 1-1.1~)\n",
        ),
        ("nginx", "1-1", "amd64", ""),
        ("tool", "1", "amd64", "Depends: nginx\n"),
    ]);
    let security = index(&[
        (
            "nginx-light",
            "1-2",
            "amd64",
            "Depends: nginx (<< 1-2.1~)\n",
        ),
        ("nginx", "1-2", "amd64", ""),
    ]);
    let chosen = run_sources(&[
        src("bookworm", main).ask(&["nginx-light", "tool"]),
        src("bookworm-security", security),
    ])
    .unwrap();
    assert_eq!(
        chosen.selected,
        [
            "nginx=1-2@bookworm-security",
            "nginx-light=1-2@bookworm-security",
            "tool=1@bookworm"
        ]
    );
}

#[test]
fn a_lower_pinned_dist_is_used_only_where_apt_would_use_it() {
    // bookworm-backports: NotAutomatic + ButAutomaticUpgrades, pin 100.
    let stable = index(&[
        ("app", "1", "amd64", "Depends: libfoo\n"),
        ("libfoo", "1", "amd64", ""),
        ("tool", "1", "amd64", "Depends: libfoo (>= 1)\n"),
    ]);
    let backports = index(&[
        ("libfoo", "2", "amd64", ""),
        ("tool", "2", "amd64", "Depends: libfoo (>= 2)\n"),
        ("extra", "1", "amd64", "Depends: libfoo\n"),
    ]);
    let sources = |queries: &[&'static str]| {
        run_sources(&[
            src("bookworm", stable.clone()).ask(queries),
            src("bookworm-backports", backports.clone()).pin(100),
        ])
        .unwrap()
        .selected
    };
    // The stable closure stays in stable, although backports has a newer libfoo.
    assert_eq!(sources(&["app"]), ["app=1@bookworm", "libfoo=1@bookworm"]);
    // A name only backports has comes from there, with stable's dependencies.
    assert_eq!(
        sources(&["extra"]),
        ["extra=1@bookworm-backports", "libfoo=1@bookworm"]
    );
    // A version only backports has: `tool/bookworm-backports`, whose dependency
    // switches to backports where stable's version does not do.
    assert_eq!(
        sources(&["tool (>= 2)"]),
        ["libfoo=2@bookworm-backports", "tool=2@bookworm-backports"]
    );
    // A per-source pin above stable's (an operator preferring backports) wins.
    let preferred = run_sources(&[
        src("bookworm", stable.clone()).ask(&["app"]),
        src("bookworm-backports", backports.clone()).pin(990),
    ])
    .unwrap();
    assert_eq!(
        preferred.selected,
        ["app=1@bookworm", "libfoo=2@bookworm-backports"]
    );
}

#[test]
fn alternatives_follow_apt_with_the_requests_marked_first() {
    let text = index(&[
        ("app", "1", "amd64", "Depends: missing | bb | cc\n"),
        ("tool", "1", "amd64", "Depends: cc\n"),
        ("bb", "1", "amd64", ""),
        ("cc", "1", "amd64", ""),
    ]);
    assert_eq!(
        run(&text, &["app"], Settings::default()).unwrap(),
        ["app=1", "bb=1"]
    );
    // apt installs app's dependencies before tool's (package order), so app takes bb.
    assert_eq!(
        run(&text, &["tool", "app"], Settings::default()).unwrap(),
        ["app=1", "bb=1", "cc=1", "tool=1"]
    );
}

#[test]
fn an_alternative_whose_dependencies_cannot_be_met_gives_way_to_the_next() {
    let text = index(&[
        ("app", "1", "amd64", "Depends: aa | bb\n"),
        ("aa", "1", "amd64", "Depends: gone (>= 2)\n"),
        ("gone", "1", "amd64", ""),
        ("bb", "1", "amd64", ""),
    ]);
    assert_eq!(
        run(&text, &["app"], Settings::default()).unwrap(),
        ["app=1", "bb=1"]
    );
}

#[test]
fn conflicts_of_a_requested_package_steer_the_alternatives() {
    // gpr Depends: lprng | cups-bsd; cups-client Conflicts: lprng (bookworm).
    let text = index(&[
        ("gpr", "1", "amd64", "Depends: lprng | cups-bsd\n"),
        ("lprng", "1", "amd64", ""),
        ("cups-bsd", "1", "amd64", "Depends: cups-client\n"),
        ("cups-client", "1", "amd64", "Conflicts: lprng\n"),
    ]);
    // Alone, gpr takes lprng, as apt does.
    assert_eq!(
        run(&text, &["gpr"], Settings::default()).unwrap(),
        ["gpr=1", "lprng=1"]
    );
    // Together with cups-client, apt takes cups-bsd: the mirror holds both choices.
    assert_eq!(
        run(&text, &["gpr", "cups-client"], Settings::default()).unwrap(),
        ["cups-bsd=1", "cups-client=1", "gpr=1", "lprng=1"]
    );
}

#[test]
fn requests_that_exclude_each_other_each_install_and_are_named() {
    let text = index(&[
        (
            "exim4",
            "1",
            "amd64",
            "Provides: mail-transport-agent\nConflicts: mail-transport-agent\n",
        ),
        (
            "postfix",
            "1",
            "amd64",
            "Provides: mail-transport-agent\nConflicts: mail-transport-agent\n",
        ),
    ]);
    let r = run_sources(&[src("d", text).ask(&["exim4", "postfix"])]).unwrap();
    assert_eq!(r.selected, ["exim4=1@d", "postfix=1@d"]);
    let w = r.warnings.join("\n");
    assert!(w.contains("cannot be installed together"), "{w}");
    assert!(
        w.contains("packages.txt:1") && w.contains("packages.txt:2"),
        "{w}"
    );
}

#[test]
fn virtual_and_versioned_provides() {
    let text = index(&[
        ("app", "1", "amd64", "Depends: mta, libabi (>= 2)\n"),
        ("exim", "1", "amd64", "Provides: mta\nPriority: standard\n"),
        (
            "postfix",
            "1",
            "amd64",
            "Provides: mta\nPriority: optional\n",
        ),
        ("libold", "1", "amd64", "Provides: libabi (= 1)\n"),
        ("libunversioned", "1", "amd64", "Provides: libabi\n"),
        ("libnew", "1", "amd64", "Provides: libabi (= 2.1)\n"),
    ]);
    assert_eq!(
        run(&text, &["app"], Settings::default()).unwrap(),
        ["app=1", "exim=1", "libnew=1"]
    );
    // A virtual query with several providers: apt asks to choose, so do we.
    let err = run(&text, &["mta"], Settings::default()).unwrap_err();
    assert!(
        err.contains("virtual package provided by exim, postfix"),
        "{err}"
    );
    // With one provider apt takes it.
    assert_eq!(
        run(&text, &["libabi (= 2.1)"], Settings::default()).unwrap(),
        ["libnew=1"]
    );
}

#[test]
fn any_needs_multi_arch_allowed_for_packages_and_providers() {
    let text = index(&[
        ("app", "1", "amd64", "Depends: python3:any, data\n"),
        ("python3", "3", "amd64", "Multi-Arch: allowed\n"),
        ("data", "1", "all", ""),
        ("bad", "1", "amd64", "Depends: perl:any\n"),
        ("perl", "1", "amd64", ""),
        ("virt", "1", "amd64", "Depends: awk:any\n"),
        ("gawk", "1", "amd64", "Provides: awk\n"),
        ("other", "1", "arm64", ""),
    ]);
    assert_eq!(
        run(&text, &["app"], Settings::default()).unwrap(),
        ["app=1", "data=1", "python3=3"]
    );
    assert!(run(&text, &["bad"], Settings::default()).is_err());
    assert!(
        run(&text, &["virt"], Settings::default()).is_err(),
        "a provider that is not Multi-Arch: allowed does not satisfy :any"
    );
    assert!(
        run(&text, &["other"], Settings::default()).is_err(),
        "arm64 is not visible to amd64"
    );
}

#[test]
fn foreign_architectures_resolve_only_what_is_asked_there() {
    let amd = index(&[
        ("curl", "1", "amd64", "Depends: libc6\n"),
        ("libc6", "2", "amd64", "Multi-Arch: same\n"),
        ("amd64-only", "1", "amd64", ""),
        ("wine", "1", "amd64", "Depends: libwine:i386\n"),
        ("tool", "1", "amd64", "Multi-Arch: foreign\n"),
    ]);
    let i386 = index(&[
        ("libc6", "2", "i386", "Multi-Arch: same\n"),
        ("libwine", "1", "i386", "Depends: libc6, tool\n"),
        ("curl", "1", "i386", "Depends: libc6\n"),
    ]);
    let client = Client {
        native: "amd64".into(),
        foreign: vec!["i386".into()],
    };
    let r = run_client(
        client,
        &[src("d", [amd, i386].concat()).ask(&["curl", "libc6 {i386}", "amd64-only", "wine"])],
    )
    .unwrap();
    assert_eq!(
        r.selected,
        [
            "amd64-only=1@d",
            "curl=1@d",
            "libc6=2@d",
            "libc6:i386=2@d",
            "libwine:i386=1@d",
            "tool=1@d",
            "wine=1@d"
        ],
        "the unqualified curl stays native; libwine:i386 takes the native Multi-Arch: foreign tool"
    );
}

#[test]
fn cycles_terminate() {
    let text = index(&[
        ("aa", "1", "amd64", "Depends: bb\n"),
        ("bb", "1", "amd64", "Pre-Depends: aa\n"),
    ]);
    assert_eq!(
        run(&text, &["aa"], Settings::default()).unwrap(),
        ["aa=1", "bb=1"]
    );
}

#[test]
fn unsatisfiable_dependency_shows_the_chain() {
    let text = index(&[
        ("nginx", "1", "amd64", "Depends: libmid\n"),
        ("libmid", "1", "amd64", "Depends: libssl3 (>= 3.0.9)\n"),
        ("libssl3", "3.0.8", "amd64", ""),
    ]);
    let err = run(&text, &["nginx"], Settings::default()).unwrap_err();
    assert!(
        err.contains("packages.txt:1: nginx → libmid → libssl3 (>= 3.0.9) → ?"),
        "{err}"
    );
    assert!(
        err.contains("3.0.8"),
        "the error lists what is available: {err}"
    );
    let warn = Settings {
        missing: MissingPolicy::Warn,
        ..Settings::default()
    };
    // missing = "warn": everything that can be had is published.
    assert_eq!(
        run(&text, &["nginx"], warn).unwrap(),
        ["libmid=1", "nginx=1"]
    );
}

#[test]
fn a_needed_entry_that_could_not_be_read_is_named() {
    let mut text = index(&[("app", "1", "amd64", "Depends: mytool\n")]);
    text.push_str("Package: mytool\nVersion: 1.0 beta\nArchitecture: amd64\nFilename: pool/t.deb\nSize: 1\nSHA256: 00\n\n");
    let err = run(&text, &["app"], Settings::default()).unwrap_err();
    assert!(
        err.contains("d:9") && err.contains("could not be read"),
        "{err}"
    );
}

#[test]
fn recommends_and_suggests_follow_each_sources_settings() {
    let text = index(&[
        (
            "app",
            "1",
            "amd64",
            "Recommends: rec, gone\nSuggests: sug\n",
        ),
        ("rec", "1", "amd64", "Depends: dep\n"),
        ("dep", "1", "amd64", ""),
        ("sug", "1", "amd64", ""),
    ]);
    assert_eq!(
        run(&text, &["app"], Settings::default()).unwrap(),
        ["app=1"]
    );
    let rec = Settings {
        recommends: true,
        ..Settings::default()
    };
    assert_eq!(
        run(&text, &["app"], rec.clone()).unwrap(),
        ["app=1", "dep=1", "rec=1"]
    );
    let sug = Settings {
        suggests: true,
        ..Settings::default()
    };
    assert_eq!(run(&text, &["app"], sug).unwrap(), ["app=1", "sug=1"]);
    // One source without Recommends asks for app first; another with them asks too:
    // the second's Recommends are not lost.
    let both = run_sources(&[
        src("a", text.clone()).ask(&["app"]),
        src("b", String::new()).ask(&["app"]).settings(rec),
    ])
    .unwrap();
    assert_eq!(both.selected, ["app=1@a", "dep=1@a", "rec=1@a"]);
}

#[test]
fn essential_seeding_takes_what_debootstrap_takes() {
    let text = index(&[
        (
            "base-files",
            "1",
            "amd64",
            "Priority: required\nDepends: mawk | awk\n",
        ),
        ("dash", "1", "amd64", "Essential: yes\nPriority: optional\n"),
        ("apt", "2", "amd64", ""),
        ("mawk", "1", "amd64", "Priority: optional\n"),
        ("gawk", "1", "amd64", "Provides: awk\nPriority: optional\n"),
        ("ca-certificates", "1", "all", "Priority: optional\n"),
        ("cron", "1", "amd64", "Priority: important\n"),
        ("extra", "1", "amd64", "Priority: optional\n"),
    ]);
    let minbase = Settings {
        essential: Essential::Minbase,
        ..Settings::default()
    };
    assert_eq!(
        run(&text, &[], minbase).unwrap(),
        [
            "apt=2",
            "base-files=1",
            "ca-certificates=1",
            "dash=1",
            "mawk=1"
        ]
    );
    let default = Settings {
        essential: Essential::Default,
        ..Settings::default()
    };
    assert_eq!(
        run(&text, &[], default).unwrap(),
        [
            "base-files=1",
            "ca-certificates=1",
            "cron=1",
            "dash=1",
            "mawk=1"
        ]
    );
}

#[test]
fn the_same_file_in_two_dists_is_selected_once_and_kept_in_both() {
    let stable = index(&[("tzdata", "1", "all", "Priority: required\n")]);
    let security = index(&[("tzdata", "1", "all", "Priority: required\n")]);
    let r = run_sources(&[
        src("stable", stable).ask(&["tzdata"]),
        src("security", security),
    ])
    .unwrap();
    assert_eq!(r.selected, ["tzdata=1@stable"]);
}
