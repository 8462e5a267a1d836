//! Hermetic end-to-end tests of `mini-mirror build`.
//!
//! Every test builds a real fixture archive (real `.deb`s, GnuPG-signed Release files), serves
//! it from a private HTTP server on 127.0.0.1 and runs the `mini-mirror` binary against a fresh
//! `sources/` tree. Nothing here uses the crate's own code.

mod common;

use std::fs;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::*;

// ---------------------------------------------------------------------------------------------
// fixtures
// ---------------------------------------------------------------------------------------------

fn names(v: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = v
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    v.sort();
    v
}

/// Run a build that must fail with every `needles` in stderr, and check that the previously
/// published output is byte-for-byte what it was.
#[track_caller]
fn assert_rejected_keeping_tree(ws: &Workspace, needles: &[&str]) -> RunResult {
    let before = ws.snapshot();
    assert!(
        !before.is_empty(),
        "test bug: nothing was published before the hostile build"
    );
    let r = ws.build();
    r.assert_failure_mentioning(needles);
    let after = ws.snapshot();
    assert_eq!(before, after, "a failed build changed the published tree");
    r
}

/// Publish `app` from the basic fixture, then swap the upstream for `hostile` (same URL).
fn published_then(hostile: impl FnOnce(&Fixture) -> Upstream) -> Fixture {
    let fx = Fixture::basic();
    fx.source("p", "s").packages("app\n").write();
    fx.ws.build().assert_success();
    let up = hostile(&fx);
    fx.repo.rebuild(&up);
    fx
}

/// The basic archive plus app 3.0 (a version nothing has cached yet), carrying `tweak`.
fn basic_with_new_app(key: &GpgKey, tweak: impl FnOnce(Pkg) -> Pkg) -> Upstream {
    basic_archive(Upstream::new(key))
        .package(tweak(Pkg::new("app", "3.0").depends("libfoo (>= 2)")))
}

// ---------------------------------------------------------------------------------------------
// packages.txt queries
// ---------------------------------------------------------------------------------------------

/// A bare name selects the highest version by Debian ordering (1.10 > 1.9, epochs win), and
/// nothing that was not asked for (or needed) is published.
#[test]
fn query_plain_name_selects_highest_version() {
    let fx = Fixture::new(|up| {
        up.dist("bookworm")
            .component("main")
            .package(Pkg::new("app", "1.9"))
            .package(Pkg::new("app", "1.10"))
            .package(Pkg::new("tool", "3.0"))
            .package(Pkg::new("tool", "1:0.1"))
            .package(Pkg::new("unrelated", "1.0"))
    });
    fx.source("p", "s").packages("app\ntool\n").write();
    fx.ws.build().assert_success();
    assert_eq!(
        fx.ws.published_versions("p", "bookworm", "main", "amd64"),
        pairs(&[("app", "1.10"), ("tool", "1:0.1")])
    );
}

/// `name (OP version)` for each of `<< <= = >= >>` picks the highest version satisfying the
/// constraint (with `~` sorting before the release).
#[test]
fn query_version_operators_select_highest_satisfying() {
    let fx = Fixture::new(|up| {
        up.dist("bookworm")
            .component("main")
            .package(Pkg::new("tool", "1.0"))
            .package(Pkg::new("tool", "1.5"))
            .package(Pkg::new("tool", "2.0~rc1"))
            .package(Pkg::new("tool", "2.0"))
    });
    let cases = [
        ("lt", "tool (<< 2.0)", "2.0~rc1"),
        ("le", "tool (<= 1.5)", "1.5"),
        ("eq", "tool (= 1.0)", "1.0"),
        ("ge", "tool (>= 1.5)", "2.0"),
        ("gt", "tool (>> 1.0)", "2.0"),
        ("tilde", "tool (<< 2.0~rc1)", "1.5"),
    ];
    for (prefix, query, _) in &cases {
        fx.source(prefix, "s")
            .packages(&format!("{query}\n"))
            .write();
    }
    fx.ws.build().assert_success();
    for (prefix, query, want) in &cases {
        assert_eq!(
            fx.ws
                .published_versions(prefix, "bookworm", "main", "amd64"),
            pairs(&[("tool", want)]),
            "query {query:?}"
        );
    }
}

/// `name {arch}` (also combined with a version constraint) selects the package for that
/// architecture only; a bare name selects it for every configured architecture.
#[test]
fn query_arch_suffix_limits_to_that_architecture() {
    let fx = Fixture::new(|up| {
        up.dist("bookworm")
            .architectures(&["amd64", "arm64"])
            .component("main")
            .package(Pkg::new("app", "1.0"))
            .package(Pkg::new("app", "1.0").arch("arm64"))
            .package(Pkg::new("tool", "1.0"))
            .package(Pkg::new("tool", "1.0").arch("arm64"))
            .package(Pkg::new("util", "1.0"))
            .package(Pkg::new("util", "1.0").arch("arm64"))
            .package(Pkg::new("util", "2.0").arch("arm64"))
    });
    fx.source("p", "s")
        .packages("app\ntool {arm64}\nutil (<< 2.0) {arm64}\n")
        .settings("architectures = [\"amd64\", \"arm64\"]\n")
        .write();
    fx.ws.build().assert_success();
    assert_eq!(
        fx.ws.published_names("p", "bookworm", "main", "amd64"),
        names(&["app"])
    );
    assert_eq!(
        fx.ws.published_versions("p", "bookworm", "main", "arm64"),
        pairs(&[("app", "1.0"), ("tool", "1.0"), ("util", "1.0")])
    );
    let arm = fx.ws.packages("p", "bookworm", "main", "arm64");
    assert!(
        arm.iter().all(|s| s.req("Architecture") == "arm64"),
        "{arm:?}"
    );
}

/// `#` comment lines and blank lines in packages.txt are ignored.
#[test]
fn comments_and_blank_lines_are_ignored() {
    let fx = Fixture::basic();
    fx.source("p", "s")
        .packages("# what we need\n\n   \n  # indented comment\nlibfoo (= 1.0)\n\n# end\n")
        .write();
    fx.ws.build().assert_success();
    assert_eq!(
        fx.ws.published_versions("p", "bookworm", "main", "amd64"),
        pairs(&[("libfoo", "1.0")])
    );
}

/// A malformed query line fails the build and names `sources/<prefix>/<name>/packages.txt:<line>`.
#[test]
fn malformed_query_line_reports_file_and_line() {
    let fx = Fixture::basic();
    for bad in [
        "app (~> 1.0)",
        "app (>= )",
        "app (>= 1.0",
        "app {amd64",
        "app libfoo",
        "(>= 1.0)",
    ] {
        fx.source("p", "s")
            .packages(&format!("# comment\nlibfoo\n{bad}\n"))
            .write();
        let r = fx.ws.build();
        r.assert_failure_mentioning(&["sources/p/s/packages.txt:3"]);
        assert!(
            !fx.ws.published("p").exists(),
            "published something despite {bad:?}"
        );
    }
}

/// A query that matches no package (unknown name, or no version satisfying it) fails the build
/// and names the file and line.
#[test]
fn unmatched_query_reports_file_and_line() {
    let fx = Fixture::basic();
    fx.source("p", "s").packages("app\nnosuchpackage\n").write();
    fx.ws
        .build()
        .assert_failure_mentioning(&["sources/p/s/packages.txt:2"]);

    fx.source("p", "s")
        .packages("app\n\n# x\nlibfoo (>= 9.0)\n")
        .write();
    fx.ws
        .build()
        .assert_failure_mentioning(&["sources/p/s/packages.txt:4"]);
    assert!(!fx.ws.published("p").exists());
}

// ---------------------------------------------------------------------------------------------
// dependency closure
// ---------------------------------------------------------------------------------------------

/// The closure follows Depends and Pre-Depends with their version constraints, and nothing else.
#[test]
fn closure_follows_depends_and_pre_depends() {
    let fx = Fixture::basic();
    fx.source("p", "s").packages("app\n").write();
    fx.ws.build().assert_success();
    assert_eq!(
        fx.ws.published_versions("p", "bookworm", "main", "amd64"),
        pairs(&[("app", "2.0"), ("base", "1.0"), ("libfoo", "2.1")])
    );
}

/// For `a | b`, apt takes an alternative that is already marked; otherwise the first one
/// that can be installed (unsatisfiable ones are skipped). Each query also installs on its
/// own, as apt would install it alone: `app` alone takes `liba`, so the mirror holds it.
#[test]
fn alternatives_prefer_selected_then_first_satisfiable() {
    let fx = Fixture::new(|up| {
        up.dist("bookworm")
            .component("main")
            .package(Pkg::new("app", "1.0").depends("liba | libb"))
            .package(Pkg::new("app2", "1.0").depends("libb, liba | libb"))
            .package(Pkg::new("tool", "1.0").depends("nosuch | libc (>= 3) | libd | liba"))
            .package(Pkg::new("liba", "1.0"))
            .package(Pkg::new("libb", "1.0"))
            .package(Pkg::new("libc", "2.0"))
            .package(Pkg::new("libd", "1.0"))
    });
    fx.source("queried", "s").packages("libb\napp\n").write();
    fx.source("closure", "s").packages("app2\n").write();
    fx.source("first", "s").packages("tool\n").write();
    fx.ws.build().assert_success();
    assert_eq!(
        fx.ws
            .published_names("queried", "bookworm", "main", "amd64"),
        names(&["app", "liba", "libb"])
    );
    assert_eq!(
        fx.ws
            .published_names("closure", "bookworm", "main", "amd64"),
        names(&["app2", "libb"])
    );
    assert_eq!(
        fx.ws.published_names("first", "bookworm", "main", "amd64"),
        names(&["libd", "tool"])
    );
}

/// A dependency on a virtual package is satisfied by a package that Provides it.
#[test]
fn virtual_package_resolved_through_provides() {
    let fx = Fixture::new(|up| {
        up.dist("bookworm")
            .component("main")
            .package(Pkg::new("app", "1.0").depends("mail-transport-agent"))
            .package(Pkg::new("postfix", "3.7").provides("mail-transport-agent"))
    });
    fx.source("p", "s").packages("app\n").write();
    fx.ws.build().assert_success();
    assert_eq!(
        fx.ws.published_names("p", "bookworm", "main", "amd64"),
        names(&["app", "postfix"])
    );
}

/// A versioned dependency on a virtual package is only satisfied by a versioned Provides that
/// meets the constraint.
#[test]
fn versioned_dependency_uses_versioned_provides() {
    let fx = Fixture::new(|up| {
        up.dist("bookworm")
            .component("main")
            .package(Pkg::new("app", "1.0").depends("libapi (>= 2)"))
            .package(Pkg::new("impl-a-old", "1.0").provides("libapi (= 1.0)"))
            .package(Pkg::new("impl-b-new", "1.0").provides("libapi (= 2.0)"))
            .package(Pkg::new("impl-c-unversioned", "1.0").provides("libapi"))
    });
    fx.source("p", "s").packages("app\n").write();
    fx.ws.build().assert_success();
    assert_eq!(
        fx.ws.published_names("p", "bookworm", "main", "amd64"),
        names(&["app", "impl-b-new"])
    );
}

/// `:any` and `:native` architecture qualifiers on dependencies resolve to the named package.
#[test]
fn any_and_native_qualifiers_resolve() {
    let fx = Fixture::new(|up| {
        up.dist("bookworm")
            .component("main")
            .package(Pkg::new("app", "1.0").depends("python3:any (>= 3.9)"))
            .package(
                Pkg::new("tool", "1.0")
                    .depends("base")
                    .index_field("Depends", "perl:native"),
            )
            .package(Pkg::new("python3", "3.11").multi_arch("allowed"))
            .package(Pkg::new("perl", "5.36"))
            .package(Pkg::new("base", "1.0"))
    });
    fx.source("p", "s").packages("app\ntool\n").write();
    fx.ws.build().assert_success();
    assert_eq!(
        fx.ws.published_names("p", "bookworm", "main", "amd64"),
        names(&["app", "perl", "python3", "tool"])
    );
}

/// An `Architecture: all` package is listed in every binary-<arch>/Packages and stored once.
#[test]
fn arch_all_packages_appear_in_every_arch_index() {
    let fx = Fixture::new(|up| {
        up.dist("bookworm")
            .architectures(&["amd64", "arm64"])
            .component("main")
            .package(Pkg::new("app", "1.0").depends("app-data"))
            .package(Pkg::new("app", "1.0").arch("arm64").depends("app-data"))
            .package(Pkg::new("app-data", "1.0").arch("all"))
    });
    fx.source("p", "s")
        .packages("app\n")
        .settings("architectures = [\"amd64\", \"arm64\"]\n")
        .write();
    fx.ws.build().assert_success();
    let mut filenames = Vec::new();
    for arch in ["amd64", "arm64"] {
        let idx = fx.ws.packages("p", "bookworm", "main", arch);
        let data = idx
            .iter()
            .find(|s| s.package() == "app-data")
            .unwrap_or_else(|| panic!("app-data missing from binary-{arch}: {idx:?}"));
        assert_eq!(data.req("Architecture"), "all");
        filenames.push(data.req("Filename").to_string());
        assert!(
            idx.iter()
                .any(|s| s.package() == "app" && s.req("Architecture") == arch)
        );
    }
    assert_eq!(
        filenames[0], filenames[1],
        "arch all package has two pool paths"
    );
    assert!(fx.ws.published("p").join(&filenames[0]).is_file());
}

/// Dependency cycles are resolved without looping.
#[test]
fn dependency_cycle_is_resolved() {
    let fx = Fixture::new(|up| {
        up.dist("bookworm")
            .component("main")
            .package(Pkg::new("cyc-a", "1.0").depends("cyc-b (>= 1)"))
            .package(Pkg::new("cyc-b", "1.0").depends("cyc-c"))
            .package(Pkg::new("cyc-c", "1.0").pre_depends("cyc-a"))
    });
    fx.source("p", "s").packages("cyc-a\n").write();
    fx.ws.build().assert_success();
    assert_eq!(
        fx.ws.published_names("p", "bookworm", "main", "amd64"),
        names(&["cyc-a", "cyc-b", "cyc-c"])
    );
}

fn unsatisfiable_archive(up: Upstream) -> Upstream {
    up.dist("bookworm")
        .component("main")
        .package(Pkg::new("app", "1.0").depends("libfoo (>= 1.0)"))
        .package(Pkg::new("libfoo", "1.5").depends("libmissing (>= 2.0)"))
        .package(Pkg::new("libmissing", "1.0"))
}

/// An unsatisfiable dependency fails the build with the chain from the query to the missing
/// dependency, each dependency as written, ending `→ ?`; nothing is published.
#[test]
fn unsatisfiable_dependency_fails_with_chain() {
    let fx = Fixture::new(unsatisfiable_archive);
    fx.source("p", "s").packages("app\n").write();
    let r = fx.ws.build();
    r.assert_failure_mentioning(&["app → libfoo (>= 1.0) → libmissing (>= 2.0) → ?"]);
    assert!(
        !fx.ws.published("p").exists(),
        "published despite an unsatisfiable dependency"
    );
}

/// With `missing = "warn"`, an unsatisfiable dependency is reported but the rest is published.
#[test]
fn missing_warn_publishes_and_warns() {
    let fx = Fixture::new(unsatisfiable_archive);
    fx.source("p", "s")
        .packages("app\n")
        .settings("missing = \"warn\"\n")
        .write();
    let r = fx.ws.build();
    r.assert_success();
    assert!(
        r.stderr.contains("libmissing (>= 2.0)"),
        "no warning about libmissing:\n{}",
        r.stderr
    );
    assert_eq!(
        fx.ws.published_names("p", "bookworm", "main", "amd64"),
        names(&["app", "libfoo"])
    );
    assert_eq!(r.summary().packages, 2);
}

/// Recommends and Suggests are followed only when enabled; a source folder's settings.toml
/// overrides the defaults in `sources/settings.toml`.
#[test]
fn recommends_and_suggests_followed_only_when_enabled() {
    let fx = Fixture::new(|up| {
        up.dist("bookworm")
            .component("main")
            .package(
                Pkg::new("app", "1.0")
                    .recommends("rec-pkg")
                    .suggests("sug-pkg"),
            )
            .package(Pkg::new("rec-pkg", "1.0").depends("rec-dep"))
            .package(Pkg::new("rec-dep", "1.0"))
            .package(Pkg::new("sug-pkg", "1.0"))
    });
    fx.ws
        .default_settings("recommends = false\nsuggests = false\n");
    fx.source("none", "s").packages("app\n").write();
    fx.source("rec", "s")
        .packages("app\n")
        .settings("recommends = true\n")
        .write();
    fx.source("sug", "s")
        .packages("app\n")
        .settings("suggests = true\n")
        .write();
    fx.ws.build().assert_success();
    assert_eq!(
        fx.ws.published_names("none", "bookworm", "main", "amd64"),
        names(&["app"])
    );
    assert_eq!(
        fx.ws.published_names("rec", "bookworm", "main", "amd64"),
        names(&["app", "rec-dep", "rec-pkg"])
    );
    assert_eq!(
        fx.ws.published_names("sug", "bookworm", "main", "amd64"),
        names(&["app", "sug-pkg"])
    );
}

/// `essential = true` adds the upstream's `Essential: yes` packages (and their dependencies);
/// `essential = false` does not. (Assumed meaning of the `essential` setting.)
#[test]
fn essential_packages_added_only_when_enabled() {
    let fx = Fixture::new(|up| {
        up.dist("bookworm")
            .component("main")
            .package(Pkg::new("app", "1.0"))
            .package(
                Pkg::new("base-files", "12")
                    .essential()
                    .priority("required")
                    .depends("libc"),
            )
            .package(Pkg::new("libc", "2.36"))
    });
    fx.source("with", "s")
        .packages("app\n")
        .settings("essential = true\n")
        .write();
    fx.source("without", "s")
        .packages("app\n")
        .settings("essential = false\n")
        .write();
    fx.ws.build().assert_success();
    assert_eq!(
        fx.ws.published_names("with", "bookworm", "main", "amd64"),
        names(&["app", "base-files", "libc"])
    );
    assert_eq!(
        fx.ws
            .published_names("without", "bookworm", "main", "amd64"),
        names(&["app"])
    );
}

/// Two sources under one prefix: a dependency is found in the other source's dist (signed by
/// another key, given armored and by absolute path), and each package is published in the
/// dist it came from.
#[test]
fn two_sources_under_one_prefix_share_resolution() {
    let key_a = GpgKey::generate("Main Archive <main@example.org>");
    let key_b = GpgKey::generate("Extras Archive <extras@example.org>");
    let repo = Upstream::new(&key_a)
        .dist("bookworm")
        .component("main")
        .package(Pkg::new("app", "1.0").depends("libextra (>= 1.0)"))
        .dist("extras")
        .signed_by(&key_b)
        .component("main")
        .package(Pkg::new("libextra", "1.2"))
        .package(Pkg::new("tool", "1.0"))
        .build();
    let server = Server::start(repo.root());
    let ws = Workspace::new();
    ws.source("p", "main")
        .url(&server.url())
        .key(&key_a)
        .dist("bookworm")
        .packages("app\n")
        .write();
    ws.source("p", "extras")
        .url(&server.url())
        .key_bytes(key_b.public_armor())
        .key_ref(KeyRef::Absolute)
        .dist("extras")
        .packages("tool\n")
        .write();
    ws.build().assert_success();
    assert_eq!(
        ws.published_names("p", "bookworm", "main", "amd64"),
        names(&["app"])
    );
    assert_eq!(
        ws.published_names("p", "extras", "main", "amd64"),
        names(&["libextra", "tool"])
    );
    for dist in ["bookworm", "extras"] {
        for st in ws.packages("p", dist, "main", "amd64") {
            assert!(
                ws.published("p").join(st.req("Filename")).is_file(),
                "{dist}: {st:?}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// upstream verification
// ---------------------------------------------------------------------------------------------

/// When InRelease is missing (404), Release + Release.gpg are used instead.
#[test]
fn missing_inrelease_falls_back_to_release_gpg() {
    let fx = Fixture::new(|up| basic_archive(up).without_inrelease());
    fx.source("p", "s").packages("app\n").write();
    fx.ws.build().assert_success();
    assert!(
        fx.server.requested("/dists/bookworm/Release.gpg") > 0,
        "Release.gpg was never fetched"
    );
    assert_eq!(
        fx.ws.published_names("p", "bookworm", "main", "amd64"),
        names(&["app", "base", "libfoo"])
    );
}

/// A Release whose content no longer matches its signature (InRelease and Release.gpg) is
/// rejected and the published tree is untouched.
#[test]
fn tampered_release_is_rejected() {
    let fx = published_then(|fx| {
        basic_archive(Upstream::new(&fx.key)).package(Pkg::new("extra", "1.0"))
    });
    let evil = |d: &mut Vec<u8>| {
        let s = String::from_utf8(d.clone())
            .unwrap()
            .replace("Label: Test Label", "Label: Evil Label");
        *d = s.into_bytes();
    };
    fx.repo.tamper("dists/bookworm/InRelease", evil);
    fx.repo.tamper("dists/bookworm/Release", evil);
    assert_rejected_keeping_tree(&fx.ws, &["signature"]);
}

/// Release.gpg that does not match Release (no InRelease) is rejected.
#[test]
fn tampered_release_with_detached_signature_is_rejected() {
    let fx = published_then(|fx| basic_archive(Upstream::new(&fx.key)).without_inrelease());
    fx.repo.tamper("dists/bookworm/Release", |d| {
        d.extend_from_slice(b"X-Evil: yes\n")
    });
    assert_rejected_keeping_tree(&fx.ws, &["signature"]);
}

/// A Release signed by a key other than the configured one is rejected.
#[test]
fn release_signed_by_unknown_key_is_rejected() {
    let other = GpgKey::generate("Mallory <m@example.org>");
    let fx = published_then(|fx| basic_archive(Upstream::new(&fx.key)).signed_by(&other));
    assert_rejected_keeping_tree(&fx.ws, &["signature"]);
}

/// A Release signed (back when it was valid) by a key that has since expired is rejected.
#[test]
fn release_signed_by_expired_key_is_rejected() {
    let expired = GpgKey::generate_expired("Expired <e@example.org>");
    let fx = published_then(|fx| basic_archive(Upstream::new(&fx.key)).signed_by(&expired));
    fx.ws
        .write_source_file("p/s/upstream-key.gpg", expired.public_binary());
    assert_rejected_keeping_tree(&fx.ws, &["signature"]);
}

/// A Release signed by a key whose certificate carries a revocation is rejected.
#[test]
fn release_signed_by_revoked_key_is_rejected() {
    let fx = published_then(|fx| {
        basic_archive(Upstream::new(&fx.key)).package(Pkg::new("extra", "1.0"))
    });
    fx.key.revoke();
    fx.ws
        .write_source_file("p/s/upstream-key.gpg", fx.key.public_binary());
    assert_rejected_keeping_tree(&fx.ws, &["signature"]);
}

/// A correctly signed Release whose Valid-Until is in the past is rejected.
#[test]
fn expired_valid_until_is_rejected() {
    // Newer than the Release accepted by the first build (so it is no rollback), but stale.
    let now = chrono::Utc::now();
    let date = rfc2822(now - chrono::Duration::minutes(30));
    let valid_until = rfc2822(now - chrono::Duration::minutes(1));
    let fx = published_then(|fx| {
        basic_archive(Upstream::new(&fx.key))
            .date(&date)
            .valid_until(&valid_until)
    });
    assert_rejected_keeping_tree(&fx.ws, &["Valid-Until"]);
}

/// Index files whose size differs from what the signed Release lists are rejected.
#[test]
fn index_size_mismatch_is_rejected() {
    // The upstream gains a package, so the listed index is not already in the cache.
    let fx = published_then(|fx| {
        basic_archive(Upstream::new(&fx.key)).package(Pkg::new("extra", "1.0"))
    });
    fx.repo.rewrite_index("bookworm", "main", "amd64", |t| {
        format!("{t}\nPackage: injected\nVersion: 1.0\nArchitecture: amd64\nFilename: pool/x.deb\nSize: 1\n")
    });
    assert_rejected_keeping_tree(&fx.ws, &["mismatch"]);
}

/// Index files with exactly the listed size but a different SHA256 are rejected (one byte of
/// each of Packages, Packages.gz and Packages.xz is flipped, whichever the builder fetches).
#[test]
fn index_sha256_mismatch_is_rejected() {
    // The upstream gains a package, so the listed index is not already in the cache.
    let fx = published_then(|fx| {
        basic_archive(Upstream::new(&fx.key)).package(Pkg::new("extra", "1.0"))
    });
    for f in ["Packages", "Packages.gz", "Packages.xz"] {
        fx.repo
            .tamper(&format!("dists/bookworm/main/binary-amd64/{f}"), |d| {
                let mid = d.len() / 2;
                d[mid] ^= 0x01;
            });
    }
    let r = assert_rejected_keeping_tree(&fx.ws, &["mismatch"]);
    assert!(
        !r.stderr.contains("size mismatch"),
        "sizes are unchanged, so this must be a hash mismatch:\n{}",
        r.stderr
    );
}

/// A .deb whose SHA256 differs from its Packages entry is rejected (index lies).
#[test]
fn deb_hash_mismatch_in_index_is_rejected() {
    let fx = published_then(|fx| {
        basic_with_new_app(&fx.key, |p| p.index_field("SHA256", &"0".repeat(64)))
    });
    assert_rejected_keeping_tree(&fx.ws, &["mismatch"]);
}

/// A .deb modified on the server (same size) is rejected.
#[test]
fn tampered_deb_is_rejected() {
    let fx = published_then(|fx| basic_with_new_app(&fx.key, |p| p));
    let pool = Pkg::new("app", "3.0").pool_path("main");
    fx.repo.tamper(&pool, |d| {
        let n = d.len();
        d[n - 10] ^= 0xff;
    });
    assert_rejected_keeping_tree(&fx.ws, &["mismatch"]);
}

/// A Filename containing `..` is refused as unsafe.
#[test]
fn filename_with_dotdot_is_rejected() {
    let fx = published_then(|fx| {
        basic_with_new_app(&fx.key, |p| {
            p.index_field("Filename", "pool/main/a/app/../../../../../escape.deb")
        })
    });
    assert_rejected_keeping_tree(&fx.ws, &["unsafe"]);
}

/// An absolute Filename is refused as unsafe.
#[test]
fn absolute_filename_is_rejected() {
    let fx = published_then(|fx| {
        basic_with_new_app(&fx.key, |p| p.index_field("Filename", "/etc/passwd"))
    });
    assert_rejected_keeping_tree(&fx.ws, &["unsafe"]);
}

/// A build killed with SIGKILL in the middle of a download leaves the previously published
/// tree intact, and the next build (same cache/state) succeeds.
#[test]
fn sigkill_mid_download_keeps_old_tree_and_rebuild_succeeds() {
    let fx = Fixture::basic();
    fx.source("p", "s").packages("app\n").write();
    fx.ws.build().assert_success();
    let before = fx.ws.snapshot();

    fx.repo
        .rebuild(&basic_with_new_app(&fx.key, |p| p.payload_size(256 * 1024)));
    let slow = Pkg::new("app", "3.0").deb_name();
    fx.server.delay(&slow, Duration::from_secs(60));
    let mut cmd = fx.ws.build_command();
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    let mut child = cmd.spawn().expect("spawn mini-mirror");
    let started = wait_for(Duration::from_secs(60), || fx.server.requested(&slow) > 0);
    std::thread::sleep(Duration::from_millis(300));
    child.kill().expect("SIGKILL");
    child.wait().unwrap();
    assert!(started, "the build never requested {slow}");
    assert_eq!(
        before,
        fx.ws.snapshot(),
        "the killed build changed the published tree"
    );

    fx.server.clear_faults();
    fx.ws.build().assert_success();
    assert!(
        fx.ws
            .published_versions("p", "bookworm", "main", "amd64")
            .contains(&("app".into(), "3.0".into())),
        "rebuild did not publish app 3.0"
    );
}

// ---------------------------------------------------------------------------------------------
// published output
// ---------------------------------------------------------------------------------------------

/// The published InRelease and Release.gpg verify with stock `gpgv` against the published
/// keyring, and the armored keyring holds the same key.
#[test]
fn published_release_verifies_with_gpgv() {
    let fx = Fixture::basic();
    fx.source("p", "s").packages("app\n").write();
    fx.ws.build().assert_success();
    let out = fx.ws.published("p");
    let keyring = out.join("mini-mirror-archive-keyring.gpg");
    let dist = out.join("dists/bookworm");
    assert_gpgv_accepts_dist(&keyring, &dist);

    let asc = fs::read_to_string(out.join("mini-mirror-archive-keyring.asc")).unwrap();
    assert!(
        asc.starts_with("-----BEGIN PGP PUBLIC KEY BLOCK-----"),
        "{asc}"
    );
    assert!(
        !asc.contains("PRIVATE KEY"),
        "the .asc keyring contains a secret key"
    );
    let fprs = key_fingerprints(&keyring);
    assert!(!fprs.is_empty());
    assert_eq!(
        fprs,
        key_fingerprints(&out.join("mini-mirror-archive-keyring.asc"))
    );
}

/// Every file named in every published Packages exists with the listed size and SHA256, and
/// Packages.gz / Packages.xz decompress to the same text as Packages.
#[test]
fn published_packages_match_pool_files() {
    let fx = Fixture::new(|up| {
        basic_archive(up)
            .component("contrib")
            .package(Pkg::new("ctool", "1.0").depends("app"))
    });
    fx.source("p", "s")
        .components(&["main", "contrib"])
        .packages("ctool\n")
        .write();
    fx.ws.build().assert_success();
    let out = fx.ws.published("p");
    let mut seen = 0;
    for comp in ["main", "contrib"] {
        let dir = out.join(format!("dists/bookworm/{comp}/binary-amd64"));
        let raw = fs::read(dir.join("Packages")).unwrap();
        assert_eq!(
            gunzip(&fs::read(dir.join("Packages.gz")).unwrap()),
            raw,
            "{comp} Packages.gz"
        );
        assert_eq!(
            unxz(&fs::read(dir.join("Packages.xz")).unwrap()),
            raw,
            "{comp} Packages.xz"
        );
        for st in parse_stanzas(&String::from_utf8(raw).unwrap()) {
            let file = out.join(st.req("Filename"));
            let data = fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            assert_eq!(data.len().to_string(), st.req("Size"), "{}", st.package());
            assert_eq!(sha256_hex(&data), st.req("SHA256"), "{}", st.package());
            seen += 1;
        }
    }
    assert_eq!(seen, 4, "expected ctool, app, libfoo, base");
}

/// Layout: Packages{,.gz,.xz} for every component × arch (even empty ones), pool paths
/// `pool/<comp>/<l|libX>/<source>/<file>.deb`, upstream fields kept except Filename, keyring
/// files, and Release fields taken from upstream.
#[test]
fn published_layout_fields_and_pool_paths() {
    let fx = Fixture::new(|up| {
        up.dist("bookworm")
            .suite("stable")
            .codename("bookworm")
            .origin("Upstream Origin")
            .label("Upstream Label")
            .architectures(&["amd64", "arm64"])
            .component("main")
            .package(
                Pkg::new("app", "2.0-1")
                    .source("app-src (2.0)")
                    .depends("libfoo2 (>= 2.1)")
                    .multi_arch("foreign")
                    .priority("optional")
                    .field("Section", "utils")
                    .field("Homepage", "https://example.org/app"),
            )
            .package(Pkg::new("libfoo2", "2.1").source("libfoo"))
            .package(
                Pkg::new("app", "2.0-1")
                    .arch("arm64")
                    .source("app-src (2.0)")
                    .depends("libfoo2"),
            )
            .package(Pkg::new("libfoo2", "2.1").arch("arm64").source("libfoo"))
            .component("contrib")
            .component("non-free")
    });
    fx.source("p", "s")
        .components(&["main", "contrib"])
        .packages("app\n")
        .settings("architectures = [\"amd64\", \"arm64\"]\n")
        .write();
    fx.ws.build().assert_success();
    let out = fx.ws.published("p");
    for comp in ["main", "contrib"] {
        for arch in ["amd64", "arm64"] {
            for f in ["Packages", "Packages.gz", "Packages.xz"] {
                let p = out.join(format!("dists/bookworm/{comp}/binary-{arch}/{f}"));
                assert!(p.is_file(), "missing {}", p.display());
            }
        }
    }
    assert!(
        fx.ws
            .packages("p", "bookworm", "contrib", "amd64")
            .is_empty()
    );
    assert!(
        fx.ws
            .packages("p", "bookworm", "contrib", "arm64")
            .is_empty()
    );
    assert_eq!(
        fx.ws.published_names("p", "bookworm", "main", "arm64"),
        names(&["app", "libfoo2"])
    );
    assert!(out.join("mini-mirror-archive-keyring.gpg").is_file());
    assert!(out.join("mini-mirror-archive-keyring.asc").is_file());

    let upstream = parse_stanzas(
        &String::from_utf8(fx.repo.read("dists/bookworm/main/binary-amd64/Packages")).unwrap(),
    );
    let published = fx.ws.packages("p", "bookworm", "main", "amd64");
    assert_eq!(published.len(), 2);
    let expected_paths = [
        ("app", "pool/main/a/app-src/app_2.0-1_amd64.deb"),
        ("libfoo2", "pool/main/libf/libfoo/libfoo2_2.1_amd64.deb"),
    ];
    for (name, path) in expected_paths {
        let p = published.iter().find(|s| s.package() == name).unwrap();
        let u = upstream.iter().find(|s| s.package() == name).unwrap();
        assert_eq!(p.req("Filename"), path);
        assert!(out.join(path).is_file(), "{path} missing");
        for (k, v) in &u.0 {
            if k != "Filename" {
                assert_eq!(p.get(k), Some(v.as_str()), "{name}: field {k} not kept");
            }
        }
    }

    let rel = fx.ws.release("p", "bookworm");
    assert_eq!(rel.get("Origin"), Some("Upstream Origin"));
    assert_eq!(rel.get("Label"), Some("Upstream Label"));
    assert_eq!(rel.get("Suite"), Some("stable"));
    assert_eq!(rel.get("Codename"), Some("bookworm"));
    assert_eq!(rel.get("Acquire-By-Hash"), Some("yes"));
    let mut archs: Vec<&str> = rel
        .get("Architectures")
        .unwrap()
        .split_whitespace()
        .collect();
    archs.sort();
    assert_eq!(archs, ["amd64", "arm64"]);
    let mut comps: Vec<&str> = rel.get("Components").unwrap().split_whitespace().collect();
    comps.sort();
    assert_eq!(comps, ["contrib", "main"]);
    let date = rel.date();
    let now = chrono::Utc::now();
    assert!(
        (now.signed_duration_since(date)).num_hours().abs() < 48,
        "odd Date {date}"
    );
}

/// The published Release lists every index with correct MD5Sum/SHA256 and size, and since it
/// says `Acquire-By-Hash: yes`, each index is also reachable under `by-hash/SHA256/<hash>`.
#[test]
fn published_release_hashes_and_by_hash_are_correct() {
    // The upstream itself uses by-hash too, which must not confuse the builder.
    let fx = Fixture::new(|up| basic_archive(up).by_hash());
    fx.source("p", "s").packages("app\n").write();
    fx.ws.build().assert_success();
    let rel = fx.ws.release("p", "bookworm");
    let dist = fx.ws.published("p").join("dists/bookworm");
    for f in ["Packages", "Packages.gz", "Packages.xz"] {
        let key = format!("main/binary-amd64/{f}");
        assert!(
            rel.sha256.contains_key(&key),
            "Release SHA256 does not list {key}"
        );
        assert!(
            rel.md5.contains_key(&key),
            "Release MD5Sum does not list {key}"
        );
    }
    for (path, (hash, size)) in &rel.sha256 {
        let data = fs::read(dist.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(data.len() as u64, *size, "{path} size");
        assert_eq!(&sha256_hex(&data), hash, "{path} SHA256");
        assert_eq!(rel.md5[path].0, md5_hex(&data), "{path} MD5Sum");
        let by_hash = dist
            .join(path)
            .parent()
            .unwrap()
            .join("by-hash/SHA256")
            .join(hash);
        assert_eq!(
            fs::read(&by_hash).ok().as_deref(),
            Some(&data[..]),
            "{}",
            by_hash.display()
        );
    }
}

/// `origin` and `label` in settings.toml override the upstream's values in the Release.
#[test]
fn release_origin_and_label_can_be_overridden() {
    let fx = Fixture::basic();
    fx.source("p", "s")
        .packages("app\n")
        .settings("origin = \"My Origin\"\nlabel = \"My Label\"\n")
        .write();
    fx.ws.build().assert_success();
    let rel = fx.ws.release("p", "bookworm");
    assert_eq!(rel.get("Origin"), Some("My Origin"));
    assert_eq!(rel.get("Label"), Some("My Label"));
    assert_eq!(rel.get("Suite"), Some("bookworm"));
}

/// The same input produces byte-identical Packages files, in a rebuild and in a fresh workspace.
#[test]
fn packages_are_reproducible() {
    let fx = Fixture::basic();
    let write = |ws: &Workspace| {
        ws.source("p", "s")
            .url(&fx.server.url())
            .key(&fx.key)
            .packages("app\nunrelated\n")
            .write();
    };
    write(&fx.ws);
    fx.ws.build_with(&["--jobs", "2"], &[]).assert_success();
    let rel = "dists/bookworm/main/binary-amd64/";
    let read_all = |ws: &Workspace| -> Vec<Vec<u8>> {
        ["Packages", "Packages.gz", "Packages.xz"]
            .iter()
            .map(|f| ws.read_published("p", &format!("{rel}{f}")))
            .collect()
    };
    let first = read_all(&fx.ws);
    fx.ws.build().assert_success();
    assert_eq!(
        read_all(&fx.ws)[0],
        first[0],
        "Packages changed between two builds"
    );

    let other = Workspace::new();
    write(&other);
    other.build().assert_success();
    assert_eq!(
        read_all(&other)[0],
        first[0],
        "Packages differs in a fresh workspace"
    );
}

/// The summary line reports downloads; a second build with the same cache downloads no .deb
/// and reports everything as coming from the cache.
#[test]
fn second_build_uses_cache_and_summary_reports_it() {
    let fx = Fixture::basic();
    fx.source("p", "s").packages("app\n").write();
    let r1 = fx.ws.build();
    r1.assert_success();
    let s1 = r1.summary();
    let deb_bytes: u64 = fx
        .ws
        .packages("p", "bookworm", "main", "amd64")
        .iter()
        .map(|s| s.req("Size").parse::<u64>().unwrap())
        .sum();
    assert_eq!(
        (s1.packages, s1.downloaded, s1.from_cache),
        (3, 3, 0),
        "{s1:?}"
    );
    assert!(
        s1.bytes >= deb_bytes,
        "{s1:?} but the .debs are {deb_bytes} bytes"
    );
    assert_eq!(fx.server.deb_downloads(), 3);

    fx.server.clear_requests();
    let r2 = fx.ws.build();
    r2.assert_success();
    assert_eq!(
        fx.server.deb_downloads(),
        0,
        "second build downloaded .debs again"
    );
    let s2 = r2.summary();
    assert_eq!(
        (s2.packages, s2.downloaded, s2.from_cache),
        (3, 0, 3),
        "every published package is either downloaded or from the cache, also when nothing \
         changed: {s2:?}"
    );
}

/// HTTP_PROXY is honoured: with an unresolvable upstream host, every request reaches the proxy
/// (our server) in absolute form.
#[test]
fn http_proxy_is_honoured() {
    let fx = Fixture::basic();
    fx.source("p", "s")
        .url("http://upstream.invalid/")
        .packages("app\n")
        .write();
    let proxy = format!("http://{}", fx.server.addr());
    fx.ws
        .build_with(&[], &[("HTTP_PROXY", &proxy)])
        .assert_success();
    let reqs = fx.server.requests();
    assert!(!reqs.is_empty());
    for r in &reqs {
        assert!(r.absolute_form, "not a proxy request: {r:?}");
        assert!(r.target.starts_with("http://upstream.invalid/"), "{r:?}");
    }
    assert!(
        reqs.iter().any(|r| r.path.ends_with(".deb")),
        "no .deb went through the proxy"
    );
    assert_eq!(
        fx.ws.published_names("p", "bookworm", "main", "amd64"),
        names(&["app", "base", "libfoo"])
    );
}

/// A passphrase-protected `--sign-key` (gpg `--export-secret-keys`) with the passphrase in
/// RELEASE_SIGN_KEY_PASSPHRASE signs the output, its public key is the published keyring, and
/// the passphrase never appears in stdout/stderr, even when it is wrong.
#[test]
fn passphrase_protected_sign_key_from_flag() {
    const PASS: &str = "correct-horse-7f3a9c";
    const WRONG: &str = "wrong-battery-51e2d0";
    let fx = Fixture::basic();
    fx.source("p", "s").packages("app\n").write();
    let signer = GpgKey::generate_with_passphrase("Repo Signer <repo@example.org>", PASS);
    let key_file = fx.ws.root().join("signing-key.gpg");
    fs::write(&key_file, signer.secret_binary()).unwrap();
    let key_arg = key_file.to_str().unwrap();

    let bad = fx.ws.build_with(
        &["--sign-key", key_arg],
        &[("RELEASE_SIGN_KEY_PASSPHRASE", WRONG)],
    );
    assert!(
        !bad.success(),
        "signed with a wrong passphrase?\n{}",
        bad.stderr
    );
    for out in [&bad.stdout, &bad.stderr] {
        assert!(!out.contains(WRONG), "wrong passphrase leaked:\n{out}");
    }
    assert!(!fx.ws.published("p").exists());

    let r = fx.ws.build_with(
        &["--sign-key", key_arg],
        &[("RELEASE_SIGN_KEY_PASSPHRASE", PASS)],
    );
    r.assert_success();
    for out in [&r.stdout, &r.stderr] {
        assert!(!out.contains(PASS), "passphrase leaked:\n{out}");
    }
    let out = fx.ws.published("p");
    let keyring = out.join("mini-mirror-archive-keyring.gpg");
    assert_eq!(
        key_fingerprints(&keyring),
        vec![signer.fingerprint().to_string()]
    );
    let signer_pub = fx.ws.root().join("signer-pub.gpg");
    fs::write(&signer_pub, signer.public_binary()).unwrap();
    let v = gpgv(&signer_pub, &[&out.join("dists/bookworm/InRelease")]);
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stderr));
}

/// RELEASE_SIGN_KEY_PATH (armored key) with `--passphrase-file` works as well.
#[test]
fn sign_key_from_env_with_passphrase_file() {
    const PASS: &str = "file-pass-2b8e41";
    let fx = Fixture::basic();
    fx.source("p", "s").packages("app\n").write();
    let signer = GpgKey::generate_with_passphrase("Repo Signer <repo@example.org>", PASS);
    let key_file = fx.ws.root().join("signing-key.asc");
    fs::write(&key_file, signer.secret_armor()).unwrap();
    let pass_file = fx.ws.root().join("pass.txt");
    fs::write(&pass_file, format!("{PASS}\n")).unwrap();
    let r = fx.ws.build_with(
        &["--passphrase-file", pass_file.to_str().unwrap()],
        &[("RELEASE_SIGN_KEY_PATH", key_file.to_str().unwrap())],
    );
    r.assert_success();
    assert!(
        !r.stderr.contains(PASS) && !r.stdout.contains(PASS),
        "passphrase leaked"
    );
    let keyring = fx.ws.published("p").join("mini-mirror-archive-keyring.gpg");
    assert_eq!(
        key_fingerprints(&keyring),
        vec![signer.fingerprint().to_string()]
    );
}

/// Without a signing key, one is generated into the state dir once and reused by later builds.
#[test]
fn generated_key_is_reused() {
    let fx = Fixture::basic();
    fx.source("p", "s").packages("app\n").write();
    fx.ws.build().assert_success();
    let keyring1 = fx.ws.read_published("p", "mini-mirror-archive-keyring.gpg");
    assert!(
        fs::read_dir(fx.ws.state())
            .map(|d| d.count() > 0)
            .unwrap_or(false),
        "state dir is empty"
    );
    fs::remove_dir_all(fx.ws.output()).unwrap();
    fx.ws.build().assert_success();
    let keyring2 = fx.ws.read_published("p", "mini-mirror-archive-keyring.gpg");
    assert_eq!(keyring1, keyring2, "a new key was generated");
}

/// MINI_MIRROR_CACHE and MINI_MIRROR_STATE stand in for `--cache` and `--state-dir`.
#[test]
fn cache_and_state_dirs_from_environment() {
    let fx = Fixture::basic();
    fx.source("p", "s").packages("app\n").write();
    let run = || {
        let mut c = fx.ws.bare_command();
        c.arg("build")
            .arg("--sources")
            .arg(fx.ws.sources())
            .arg("--output")
            .arg(fx.ws.output());
        c.env("MINI_MIRROR_CACHE", fx.ws.cache())
            .env("MINI_MIRROR_STATE", fx.ws.state());
        run_with_timeout(c, BUILD_TIMEOUT)
    };
    run().assert_success();
    let non_empty = |p: &Path| fs::read_dir(p).map(|d| d.count() > 0).unwrap_or(false);
    assert!(non_empty(&fx.ws.cache()), "MINI_MIRROR_CACHE not used");
    assert!(non_empty(&fx.ws.state()), "MINI_MIRROR_STATE not used");
    let keyring1 = fx.ws.read_published("p", "mini-mirror-archive-keyring.gpg");
    // Without the output, the second run has to rebuild from the cache and the stored key.
    fs::remove_dir_all(fx.ws.output()).unwrap();
    fx.server.clear_requests();
    run().assert_success();
    assert_eq!(
        fx.server.deb_downloads(),
        0,
        "cache from MINI_MIRROR_CACHE not reused"
    );
    assert_eq!(
        keyring1,
        fx.ws.read_published("p", "mini-mirror-archive-keyring.gpg")
    );
}

/// Consecutive publishes have non-decreasing Release Dates, also when the upstream changed
/// content but kept its Date: the previous publish's Date (moved an hour ahead, as a clock
/// that is behind would leave it) stays the floor for the publish of the new content.
#[test]
fn release_date_never_goes_backwards() {
    let upstream_date = rfc2822(chrono::Utc::now() - chrono::Duration::minutes(5));
    let fx = Fixture::new(|up| basic_archive(up).date(&upstream_date));
    fx.source("p", "s").packages("app\n").write();
    fx.ws.build().assert_success();
    let ahead = move_published_date(&fx.ws, "p", "bookworm", chrono::Duration::hours(1));
    fx.repo.rebuild(
        &basic_archive(Upstream::new(&fx.key))
            .date(&upstream_date)
            .package(Pkg::new("extra", "1.0")),
    );
    fx.source("p", "s").packages("app\nextra\n").write();
    fx.ws.build().assert_success();
    assert!(
        fx.ws
            .published_names("p", "bookworm", "main", "amd64")
            .contains(&"extra".to_string()),
        "the new content was not published"
    );
    let d2 = fx.ws.release("p", "bookworm").date();
    assert!(
        d2.timestamp() >= ahead.timestamp(),
        "Date went backwards: {ahead} then {d2}"
    );
}

/// Moves the published Date of `prefix/dist` by `by` (re-signing is not needed: the builder
/// reads its own previous Release only for the Date floor). Returns the new Date.
fn move_published_date(
    ws: &Workspace,
    prefix: &str,
    dist: &str,
    by: chrono::Duration,
) -> chrono::DateTime<chrono::Utc> {
    let dir = ws.published(prefix).join("dists").join(dist);
    let old = ws.release(prefix, dist).fields.req("Date").to_string();
    let moved = chrono::Utc::now() + by;
    for f in ["Release", "InRelease"] {
        let text = fs::read_to_string(dir.join(f)).unwrap();
        assert!(text.contains(&format!("Date: {old}")));
        let text = text.replace(
            &format!("Date: {old}"),
            &format!("Date: {}", rfc2822(moved)),
        );
        fs::write(dir.join(f), text).unwrap();
    }
    moved
}

// ---------------------------------------------------------------------------------------------
// harness self-checks (independent of mini-mirror: they make the failures above attributable)
// ---------------------------------------------------------------------------------------------

/// The fixture archive is what it claims: signatures verify with gpgv, the Release lists every
/// index with correct hashes, Packages entries match real .debs that dpkg-deb can read, and
/// expired/revoked keys are seen as such by gpgv.
#[test]
fn harness_fixture_archive_is_valid() {
    let fx = Fixture::new(|up| {
        basic_archive(up).by_hash().component("contrib").package(
            Pkg::new("ctool", "1:1.0-1")
                .source("libctool (1.0-1)")
                .arch("all"),
        )
    });
    let dir = fx.repo.path("dists/bookworm");
    let key = fx.ws.root().join("k.gpg");
    fs::write(&key, fx.key.public_binary()).unwrap();
    assert!(gpgv(&key, &[&dir.join("InRelease")]).status.success());
    assert!(
        gpgv(&key, &[&dir.join("Release.gpg"), &dir.join("Release")])
            .status
            .success()
    );
    let rel = ReleaseFile::parse(&fs::read_to_string(dir.join("Release")).unwrap());
    assert_eq!(rel.sha256.len(), 6);
    for (path, (hash, size)) in &rel.sha256 {
        let data = fs::read(dir.join(path)).unwrap();
        assert_eq!(
            (sha256_hex(&data), data.len() as u64),
            (hash.clone(), *size)
        );
        let bh = dir
            .join(path)
            .parent()
            .unwrap()
            .join("by-hash/SHA256")
            .join(hash);
        assert_eq!(fs::read(bh).unwrap(), data);
    }
    let text = fs::read_to_string(dir.join("contrib/binary-amd64/Packages")).unwrap();
    let st = &parse_stanzas(&text)[0];
    assert_eq!(
        st.req("Filename"),
        "pool/contrib/libc/libctool/ctool_1.0-1_all.deb"
    );
    let deb = fx.repo.path(st.req("Filename"));
    assert_eq!(sha256_hex(&fs::read(&deb).unwrap()), st.req("SHA256"));
    let info = std::process::Command::new("dpkg-deb")
        .args(["-f"])
        .arg(&deb)
        .output()
        .unwrap();
    let control = String::from_utf8(info.stdout).unwrap();
    assert!(
        control.contains("Version: 1:1.0-1") && control.contains("Source: libctool (1.0-1)"),
        "{control}"
    );

    // gpgv's own view of expired and revoked keys.
    let status = |key: &GpgKey, up: Upstream| -> String {
        let repo = up.package(Pkg::new("x", "1")).build();
        let k = repo.path("k.gpg");
        fs::write(&k, key.public_binary()).unwrap();
        let home = tempfile::tempdir().unwrap();
        let out = std::process::Command::new("gpgv")
            .env("GNUPGHOME", home.path())
            .args(["--status-fd", "1", "--keyring"])
            .arg(&k)
            .arg(repo.path("dists/bookworm/InRelease"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let expired = GpgKey::generate_expired("Expired <e@example.org>");
    assert!(status(&expired, Upstream::new(&expired)).contains("EXPKEYSIG"));
    let revoked = GpgKey::generate("Revoked <r@example.org>");
    let up = Upstream::new(&revoked).package(Pkg::new("x", "1"));
    let repo = up.build();
    revoked.revoke();
    let k = repo.path("k.gpg");
    fs::write(&k, revoked.public_binary()).unwrap();
    let home = tempfile::tempdir().unwrap();
    let out = std::process::Command::new("gpgv")
        .env("GNUPGHOME", home.path())
        .args(["--status-fd", "1", "--keyring"])
        .arg(&k)
        .arg(repo.path("dists/bookworm/InRelease"))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("REVKEYSIG"));
}

/// The test HTTP server: 200/404, HEAD, `Range: bytes=N-`, absolute-form (proxy) requests,
/// injected statuses, dropped connections and the request log.
#[test]
fn harness_http_server_behaves() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("f.bin"), b"0123456789").unwrap();
    let server = Server::start(dir.path());
    let get = |req: &str| -> String {
        let mut s = std::net::TcpStream::connect(server.addr()).unwrap();
        s.write_all(req.as_bytes()).unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    };
    let r = get("GET /f.bin HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(
        r.starts_with("HTTP/1.1 200") && r.ends_with("\r\n\r\n0123456789"),
        "{r}"
    );
    assert!(get("GET /nope HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
    assert!(get("GET /../etc/passwd HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
    let r = get("HEAD /f.bin HTTP/1.1\r\n\r\n");
    assert!(
        r.starts_with("HTTP/1.1 200")
            && r.contains("Content-Length: 10")
            && r.ends_with("\r\n\r\n"),
        "{r}"
    );
    let r = get("GET /f.bin HTTP/1.1\r\nRange: bytes=4-\r\n\r\n");
    assert!(
        r.starts_with("HTTP/1.1 206")
            && r.contains("Content-Range: bytes 4-9/10")
            && r.ends_with("456789"),
        "{r}"
    );
    let r = get("GET http://upstream.invalid/f.bin HTTP/1.1\r\nHost: upstream.invalid\r\n\r\n");
    assert!(r.ends_with("0123456789"), "{r}");
    server.fail_with("f.bin", 503, 1);
    assert!(get("GET /f.bin HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 503"));
    assert!(get("GET /f.bin HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 200"));
    server.drop_after("f.bin", 3);
    assert!(get("GET /f.bin HTTP/1.1\r\n\r\n").ends_with("\r\n\r\n012"));
    assert!(get("GET /f.bin HTTP/1.1\r\n\r\n").ends_with("0123456789"));
    let reqs = server.requests();
    assert_eq!(reqs.len(), 10);
    let proxied: Vec<_> = reqs.iter().filter(|r| r.absolute_form).collect();
    assert_eq!(proxied.len(), 1);
    assert_eq!(proxied[0].path, "/f.bin");
    assert_eq!(proxied[0].target, "http://upstream.invalid/f.bin");
}

/// A build that fails in resolution (after an earlier successful publish) leaves the published
/// tree byte-identical.
#[test]
fn resolution_failure_keeps_previous_tree() {
    let fx = Fixture::basic();
    fx.source("p", "s").packages("app\n").write();
    fx.ws.build().assert_success();
    fx.source("p", "s").packages("app\nnosuchpackage\n").write();
    assert_rejected_keeping_tree(&fx.ws, &["sources/p/s/packages.txt:2"]);
}

/// The Release Date is never earlier than the previous publish's Date, even when the clock is
/// behind it (simulated by moving the published Date one day into the future).
#[test]
fn release_date_not_before_previous_publish_when_clock_is_behind() {
    let fx = Fixture::basic();
    fx.source("p", "s").packages("app\n").write();
    fx.ws.build().assert_success();
    let future = move_published_date(&fx.ws, "p", "bookworm", chrono::Duration::days(1));
    fx.ws.build().assert_success();
    let d2 = fx.ws.release("p", "bookworm").date();
    assert!(
        d2.timestamp() >= future.timestamp(),
        "published Date {d2} is earlier than the previous publish's {future}"
    );
}

/// The real apt client accepts the published repository: `apt-get update` verifies it with the
/// published keyring (as `signed-by`) and `apt-get install --download-only` resolves and fetches
/// the queried package and its dependencies with matching hashes.
#[test]
fn apt_get_accepts_published_repository() {
    let fx = Fixture::basic();
    fx.source("p", "s").packages("app\n").write();
    fx.ws.build().assert_success();
    let (ok, log) = apt_download(&fx.ws.published("p"), "bookworm", "main", "amd64", &["app"]);
    assert!(ok, "apt-get rejected the published repository:\n{log}");
    for (name, version) in [("app", "2.0"), ("libfoo", "2.1"), ("base", "1.0")] {
        assert!(
            log.contains(&format!(" {name} amd64 {version} [")),
            "apt did not fetch {name} {version}:\n{log}"
        );
    }

    // Harness check: the same apt run does notice a corrupted index.
    let out = fx.ws.published("p");
    for f in ["Packages", "Packages.gz", "Packages.xz"] {
        let path = out.join("dists/bookworm/main/binary-amd64").join(f);
        let mut d = fs::read(&path).unwrap();
        let mid = d.len() / 2;
        d[mid] ^= 1;
        fs::write(&path, d).unwrap();
    }
    let (ok, log) = apt_download(&out, "bookworm", "main", "amd64", &["app"]);
    assert!(
        !ok,
        "apt accepted a corrupted index, the apt check is toothless:\n{log}"
    );
}

// ---------------------------------------------------------------------------------------------
// network robustness (beyond the written contract: the builder documents retries with backoff
// and Range resume, so these pin that behaviour down)
// ---------------------------------------------------------------------------------------------

/// Transient server errors (503 twice on InRelease, on an index and on a .deb) are retried and
/// the build succeeds.
#[test]
fn transient_server_errors_are_retried() {
    let fx = Fixture::basic();
    fx.source("p", "s").packages("app\n").write();
    fx.server.fail_with("/dists/bookworm/InRelease", 503, 2);
    // The builder takes Packages.gz where the Release lists it (xz only when gz is absent).
    fx.server.fail_with("/binary-amd64/Packages.gz", 503, 2);
    fx.server.fail_with("/app_2.0_amd64.deb", 503, 2);
    fx.ws.build().assert_success();
    assert!(fx.server.requested("/dists/bookworm/InRelease") >= 3);
    assert!(fx.server.requested("/binary-amd64/Packages.gz") >= 3);
    assert!(fx.server.requested("/app_2.0_amd64.deb") >= 3);
    assert_eq!(
        fx.ws.published_names("p", "bookworm", "main", "amd64"),
        names(&["app", "base", "libfoo"])
    );
}

/// A .deb download whose connection drops midway is resumed with `Range: bytes=N-` and the
/// published file is complete and correct.
#[test]
fn broken_download_is_resumed_with_range() {
    let fx = Fixture::new(|up| {
        up.dist("bookworm")
            .component("main")
            .package(Pkg::new("big", "1.0").payload_size(400 * 1024))
    });
    fx.source("p", "s").packages("big\n").write();
    let deb = Pkg::new("big", "1.0").deb_name();
    fx.server.drop_after(&deb, 100 * 1024);
    fx.ws.build().assert_success();
    let reqs: Vec<_> = fx
        .server
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with(&deb))
        .collect();
    assert!(
        reqs.iter().any(|r| r
            .range
            .as_deref()
            .is_some_and(|v| v.starts_with("bytes=") && v != "bytes=0-")),
        "no Range resume after the dropped connection: {reqs:?}"
    );
    let st = &fx.ws.packages("p", "bookworm", "main", "amd64")[0];
    let data = fs::read(fx.ws.published("p").join(st.req("Filename"))).unwrap();
    assert_eq!(sha256_hex(&data), st.req("SHA256"));
}

/// A .deb that the upstream no longer has (404) fails the build, names the file, and leaves
/// the published tree byte-identical.
#[test]
fn missing_deb_fails_and_keeps_tree() {
    let fx = published_then(|fx| basic_with_new_app(&fx.key, |p| p));
    fx.repo.remove(&Pkg::new("app", "3.0").pool_path("main"));
    assert_rejected_keeping_tree(&fx.ws, &["app_3.0_amd64.deb"]);
}

/// With the published output gone (a real rebuild is needed), a build with the same cache
/// downloads no .deb and the summary counts every package as coming from the cache.
#[test]
fn rebuild_after_output_loss_comes_from_cache() {
    let fx = Fixture::basic();
    fx.source("p", "s").packages("app\n").write();
    fx.ws.build().assert_success();
    let before = fx.ws.snapshot();
    fs::remove_dir_all(fx.ws.output()).unwrap();
    fx.server.clear_requests();
    let r = fx.ws.build();
    r.assert_success();
    assert_eq!(fx.server.deb_downloads(), 0, "the cache was not used");
    let s = r.summary();
    assert_eq!((s.packages, s.downloaded, s.from_cache), (3, 0, 3), "{s:?}");
    let after = fx.ws.snapshot();
    let pool = |m: &std::collections::BTreeMap<String, String>| -> Vec<(String, String)> {
        m.iter()
            // The prefix's pool (each publish's snapshot ID differs: its `pool` link is not compared).
            .filter(|(k, _)| k.contains("/pool/") && !k.contains("/snapshots/"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    assert_eq!(
        pool(&before),
        pool(&after),
        "pool files differ after the rebuild"
    );
}

/// Wipe protection: a packages.txt cut from four requests (4 packages) to one that publishes
/// one package would drop more than half of the live tree: refused before anything is
/// downloaded, naming how many would go; `--allow-shrink` publishes it.
#[test]
fn a_build_that_drops_most_of_the_live_tree_needs_allow_shrink() {
    let fx = Fixture::basic();
    fx.source("p", "s").packages("app\nunrelated\n").write();
    fx.ws.build().assert_success();
    assert_eq!(
        fx.ws.published_names("p", "bookworm", "main", "amd64"),
        names(&["app", "base", "libfoo", "unrelated"])
    );
    fx.source("p", "s").packages("unrelated\n").write();
    fx.server.clear_requests();
    let r = assert_rejected_keeping_tree(
        &fx.ws,
        &[
            "would publish 1 packages",
            "live tree has 4",
            "3 would go",
            "--allow-shrink",
        ],
    );
    assert_eq!(fx.server.deb_downloads(), 0, "{}", r.stderr);
    fx.ws.build_with(&["--allow-shrink"], &[]).assert_success();
    assert_eq!(
        fx.ws.published_names("p", "bookworm", "main", "amd64"),
        names(&["unrelated"])
    );
}

/// `valid_until_days` publishes a `Valid-Until` that the real apt accepts; the Date is set
/// the default 5 minutes behind the clock (a lagging client still accepts it); and a build
/// with nothing changed re-signs a live Release that is within 20% of its expiry.
#[test]
fn valid_until_is_published_and_renewed_before_it_expires() {
    let fx = Fixture::basic();
    fx.source("p", "s")
        .packages("app\n")
        .settings("valid_until_days = 2\n")
        .write();
    let started = chrono::Utc::now();
    fx.ws.build().assert_success();
    let rel = fx.ws.release("p", "bookworm");
    let date = rel.date().with_timezone(&chrono::Utc);
    assert!(
        date.timestamp() <= (started - chrono::Duration::minutes(4)).timestamp(),
        "Date {date} is not behind the clock ({started})"
    );
    let until = upstream_date(rel.get("Valid-Until").expect("Valid-Until"));
    assert_eq!((until - date).num_hours(), 48, "{date} .. {until}");
    let apt = AptClient::new("amd64", &[]);
    let published = fx.ws.published("p");
    apt.sources(&format!(
        "deb [signed-by={}] file:{} bookworm main\n",
        published.join("mini-mirror-archive-keyring.gpg").display(),
        published.display()
    ));
    let (ok, log) = apt.update();
    assert!(
        ok,
        "apt-get update refused the published Valid-Until:\n{log}"
    );
    // Nothing changed, and the live Release is far from expiry: left as it is.
    let r = fx.ws.build();
    r.assert_success();
    assert!(r.stderr.contains("up to date"), "{}", r.stderr);
    // 47 of its 48 hours have passed (Date and Valid-Until moved back): the next build
    // re-signs it.
    let dir = published.join("dists/bookworm");
    let back = |d: chrono::DateTime<chrono::Utc>| rfc2822(d - chrono::Duration::hours(47));
    for f in ["Release", "InRelease"] {
        let text = fs::read_to_string(dir.join(f)).unwrap();
        let old_until = format!("Valid-Until: {}", rel.get("Valid-Until").unwrap());
        let old_date = format!("Date: {}", rel.get("Date").unwrap());
        assert!(text.contains(&old_until) && text.contains(&old_date));
        let text = text
            .replace(&old_until, &format!("Valid-Until: {}", back(until)))
            .replace(&old_date, &format!("Date: {}", back(date)));
        fs::write(dir.join(f), text).unwrap();
    }
    let r = fx.ws.build();
    r.assert_success();
    assert!(r.stderr.contains("re-signing it now"), "{}", r.stderr);
    let renewed = fx.ws.release("p", "bookworm");
    let until = upstream_date(renewed.get("Valid-Until").unwrap());
    assert!(
        until > chrono::Utc::now() + chrono::Duration::hours(40),
        "not renewed: Valid-Until {until}"
    );
    let (ok, log) = apt.update();
    assert!(ok, "{log}");
}

fn upstream_date(s: &str) -> chrono::DateTime<chrono::Utc> {
    mini_mirror::upstream::parse_date(s).unwrap()
}

/// The signing-key lint, against apt 3's (trixie's sqv) policy: a DSA key and a key whose
/// binding signatures are SHA-1 are refused by `mini-mirror key check` and by a build (the
/// live tree stays as it was); an RSA-2048 key signs, with a warning naming 2030-02-01.
#[test]
fn signing_keys_apt3_refuses_are_refused() {
    let fx = Fixture::basic();
    fx.source("p", "s").packages("app\n").write();
    fx.ws.build().assert_success();
    let cases = [
        (
            "DSA",
            GpgKey::generate_with("DSA Signer <d@example.org>", "dsa2048", "1y", &[]),
            "is DSA",
        ),
        (
            "SHA-1 binding",
            GpgKey::generate_with(
                "SHA1 Signer <s@example.org>",
                "rsa3072",
                "1y",
                &["--cert-digest-algo", "SHA1"],
            ),
            "SHA-1 binding",
        ),
    ];
    for (what, key, needle) in cases {
        let file = fx.ws.root().join(format!("{what}.key"));
        fs::write(&file, key.secret_binary()).unwrap();
        let check = fx
            .ws
            .run(&["key", "check", "--sign-key", file.to_str().unwrap()]);
        assert!(
            !check.success(),
            "{what}: key check accepted it\n{}",
            check.stdout
        );
        assert!(check.stderr.contains(needle), "{what}: {}", check.stderr);
        let before = fx.ws.snapshot();
        let r = fx
            .ws
            .build_with(&["--sign-key", file.to_str().unwrap()], &[]);
        assert!(!r.success(), "{what}: a build signed with it\n{}", r.stderr);
        assert!(r.stderr.contains("apt 3"), "{what}: {}", r.stderr);
        assert_eq!(before, fx.ws.snapshot(), "{what}: the live tree changed");
    }
    let rsa = GpgKey::generate("RSA2048 Signer <r@example.org>");
    let file = fx.ws.root().join("rsa.key");
    fs::write(&file, rsa.secret_binary()).unwrap();
    let check = fx
        .ws
        .run(&["key", "check", "--sign-key", file.to_str().unwrap()]);
    assert!(check.success(), "{}", check.stderr);
    assert!(check.stdout.contains("2030-02-01"), "{}", check.stdout);
    let r = fx
        .ws
        .build_with(&["--sign-key", file.to_str().unwrap()], &[]);
    r.assert_success();
    assert!(r.stderr.contains("2030-02-01"), "{}", r.stderr);
}

/// Key rotation: `--sign-key old --sign-key new` signs InRelease and Release.gpg with both,
/// the published keyrings hold both, and a client that holds only the old key, or only the
/// new one, accepts the mirror (the real apt, and gpgv).
#[test]
fn two_signing_keys_sign_for_clients_of_either() {
    let fx = Fixture::basic();
    fx.source("p", "s").packages("app\n").write();
    let old = GpgKey::generate_with("Old Signer <old@example.org>", "ed25519", "1y", &[]);
    let new = GpgKey::generate_with("New Signer <new@example.org>", "ed25519", "1y", &[]);
    let (old_file, new_file) = (fx.ws.root().join("old.key"), fx.ws.root().join("new.key"));
    fs::write(&old_file, old.secret_binary()).unwrap();
    fs::write(&new_file, new.secret_binary()).unwrap();
    fx.ws
        .build_with(
            &[
                "--sign-key",
                old_file.to_str().unwrap(),
                "--sign-key",
                new_file.to_str().unwrap(),
            ],
            &[],
        )
        .assert_success();
    let published = fx.ws.published("p");
    let mut both = key_fingerprints(&published.join("mini-mirror-archive-keyring.gpg"));
    both.sort();
    let mut want = vec![old.fingerprint().to_string(), new.fingerprint().to_string()];
    want.sort();
    assert_eq!(both, want);
    let dist = published.join("dists/bookworm");
    for (who, key) in [("old", &old), ("new", &new)] {
        let ring = fx.ws.root().join(format!("{who}.pub.gpg"));
        fs::write(&ring, key.public_binary()).unwrap();
        // gpgv exits non-zero when any signature's key is unknown to it (the other key's
        // here); apt reads its status lines and needs one good signature. So: one GOODSIG, no
        // BADSIG.
        for files in [
            vec![dist.join("InRelease")],
            vec![dist.join("Release.gpg"), dist.join("Release")],
        ] {
            let files: Vec<&std::path::Path> = files.iter().map(|p| p.as_path()).collect();
            let out = gpgv(&ring, &files);
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains("Good signature") && !err.contains("BAD signature"),
                "gpgv with only the {who} key: {err}"
            );
        }
        let apt = AptClient::new("amd64", &[]);
        apt.sources(&format!(
            "deb [signed-by={}] file:{} bookworm main\n",
            ring.display(),
            published.display()
        ));
        let (ok, log) = apt.update();
        assert!(ok, "apt with only the {who} key refuses the mirror:\n{log}");
    }
}
