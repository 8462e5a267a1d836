//! The real apt is the judge of the resolver: the same `apt-get -s install` against the
//! fixture upstream and against the published mirror must give the same outcome (same
//! success or failure, same `Inst` lines). One hermetic scenario per defect the resolver
//! once had; each also asserts what apt does upstream, so that it can fail.
//!
//! The live counterpart (the real Debian archive, `N/M query sets agree with apt`) is
//! `tests/live_apt_differential.rs`.

mod common;

use common::apt::Simulation;
use common::*;

/// An upstream dist as a client's sources.list names it.
struct Line<'a> {
    url: String,
    key: &'a GpgKey,
    dist: &'a str,
    comps: &'a str,
}

fn line<'a>(server: &Server, key: &'a GpgKey, dist: &'a str, comps: &'a str) -> Line<'a> {
    Line {
        url: server.url(),
        key,
        dist,
        comps,
    }
}

/// Clients of upstream and of the published `prefix`, both updated.
struct Judge {
    upstream: AptClient,
    mirror: AptClient,
    _keys: tempfile::TempDir,
}

impl Judge {
    fn new(ws: &Workspace, prefix: &str, lines: &[Line], arch: &str, foreign: &[&str]) -> Judge {
        let keys = tempfile::tempdir().unwrap();
        let upstream = AptClient::new(arch, foreign);
        let mut up_list = String::new();
        for (i, l) in lines.iter().enumerate() {
            let key = keys.path().join(format!("key{i}.gpg"));
            std::fs::write(&key, l.key.public_binary()).unwrap();
            up_list += &format!(
                "deb [signed-by={}] {} {} {}\n",
                key.display(),
                l.url,
                l.dist,
                l.comps
            );
        }
        upstream.sources(&up_list);
        let (ok, up_log) = upstream.update();
        // Warnings about upstream's own content (apt ignoring a non-equal Provides, say)
        // are upstream's; the mirror republishes that content and may show the same ones.
        let warnings = |log: &str| -> Vec<String> {
            log.lines()
                .filter(|l| l.starts_with("W: "))
                .map(str::to_owned)
                .collect()
        };
        let upstream_warnings = warnings(&up_log);
        assert!(
            ok || (!up_log.contains("E:") && !upstream_warnings.is_empty()),
            "apt-get update against the fixture upstream failed:\n{up_log}"
        );
        let mirror = AptClient::new(arch, foreign);
        let published = ws.published(prefix);
        let keyring = published.join("mini-mirror-archive-keyring.gpg");
        let mut list = String::new();
        let mut seen = Vec::new();
        for l in lines {
            if seen.contains(&l.dist) {
                continue;
            }
            seen.push(l.dist);
            let comps: Vec<&str> = lines
                .iter()
                .filter(|x| x.dist == l.dist)
                .flat_map(|x| x.comps.split(' '))
                .collect();
            list += &format!(
                "deb [signed-by={}] file:{} {} {}\n",
                keyring.display(),
                published.display(),
                l.dist,
                comps.join(" ")
            );
        }
        mirror.sources(&list);
        let (ok, log) = mirror.update();
        let only_upstreams = warnings(&log).iter().all(|w| upstream_warnings.contains(w));
        assert!(
            ok || (!log.contains("E:") && only_upstreams),
            "apt-get update against the mirror failed (or warned where upstream did not):\n{log}"
        );
        Judge {
            upstream,
            mirror,
            _keys: keys,
        }
    }

    /// The common case: prefix `p` of `fx`, component `main` of each of `dists`, an amd64
    /// client without foreign architectures.
    fn of(fx: &Fixture, dists: &[&str]) -> Judge {
        let lines: Vec<Line> = dists
            .iter()
            .map(|d| line(&fx.server, &fx.key, d, "main"))
            .collect();
        Judge::new(&fx.ws, "p", &lines, "amd64", &[])
    }

    fn preferences(&self, text: &str) {
        self.upstream.preferences(text);
        self.mirror.preferences(text);
    }

    /// Run `apt-get -s install args` on both; panics on any difference. Returns upstream's.
    #[track_caller]
    fn agree(&self, args: &[&str], recommends: bool) -> Simulation {
        let up = self.upstream.simulate(args, recommends);
        let mirror = self.mirror.simulate(args, recommends);
        assert!(
            up.ok == mirror.ok && up.installs == mirror.installs,
            "apt disagrees for `apt-get install {}`:\nupstream ({}): {:?}\n{}\nmirror ({}): {:?}\n{}",
            args.join(" "),
            if up.ok { "ok" } else { "fails" },
            up.installs,
            up.log,
            if mirror.ok { "ok" } else { "fails" },
            mirror.installs,
            mirror.log
        );
        eprintln!(
            "agree: apt-get install {} → {}",
            args.join(" "),
            if up.ok {
                format!("{} packages", up.installs.len())
            } else {
                "fails on both".into()
            }
        );
        up
    }
}

fn has(sim: &Simulation, name_arch_version: &str) -> bool {
    sim.installs.contains(name_arch_version)
}

/// `gpr` + `cups-client`: gpr's `lprng | cups-bsd | lpr` must become cups-bsd beside
/// cups-client (which Conflicts: lprng), as apt does upstream; gpr alone takes lprng.
/// The same with syslog daemons: `spamd` + `elogind` (Conflicts: systemd).
#[test]
fn conflicting_alternatives_co_install_as_upstream() {
    let fx = Fixture::new(|up| {
        up.dist("bookworm")
            .component("main")
            .package(Pkg::new("gpr", "0.15").depends("lprng | cups-bsd | lpr"))
            .package(Pkg::new("lprng", "3.8"))
            .package(Pkg::new("lpr", "1:2008"))
            .package(Pkg::new("cups-bsd", "2.4").depends("cups-client"))
            .package(Pkg::new("cups-client", "2.4").field("Conflicts", "lprng"))
            .package(Pkg::new("spamd", "4.0").depends("systemd | rsyslog | system-log-daemon"))
            .package(Pkg::new("systemd", "252").provides("system-log-daemon"))
            .package(Pkg::new("rsyslog", "8.2").provides("system-log-daemon"))
            .package(Pkg::new("elogind", "246").field("Conflicts", "systemd"))
    });
    fx.source("p", "s")
        .packages("gpr\ncups-client\nspamd\nelogind\n")
        .write();
    fx.ws.build().assert_success();
    let judge = Judge::of(&fx, &["bookworm"]);
    let both = judge.agree(&["gpr", "cups-client"], false);
    assert!(
        both.ok && has(&both, "cups-bsd:amd64=2.4"),
        "{:?}",
        both.installs
    );
    let alone = judge.agree(&["gpr"], false);
    assert!(has(&alone, "lprng:amd64=3.8"), "{:?}", alone.installs);
    judge.agree(&["cups-client"], false);
    let log = judge.agree(&["spamd", "elogind"], false);
    assert!(
        log.ok && has(&log, "rsyslog:amd64=8.2"),
        "{:?}",
        log.installs
    );
    judge.agree(&["spamd"], false);
    judge.agree(&["gpr", "cups-client", "spamd", "elogind"], false);
}

/// bookworm-backports (NotAutomatic + ButAutomaticUpgrades, pin 100) beside bookworm: the
/// stable closure stays in stable, a name only backports has comes from there, and
/// `tool/bookworm-backports` takes the backports libraries it needs.
#[test]
fn backports_are_pinned_as_apt_pins_them() {
    let fx = Fixture::new(|up| {
        up.dist("bookworm")
            .component("main")
            .package(Pkg::new("app", "1.0").depends("libfoo"))
            .package(Pkg::new("libfoo", "1.0"))
            .package(Pkg::new("tool", "1.0").depends("libfoo (>= 1.0)"))
            .dist("bookworm-backports")
            .release_field("NotAutomatic", "yes")
            .release_field("ButAutomaticUpgrades", "yes")
            .component("main")
            .package(Pkg::new("libfoo", "2.0~bpo12+1"))
            .package(Pkg::new("tool", "2.0~bpo12+1").depends("libfoo (>= 2.0~)"))
            .package(Pkg::new("extra", "1.0~bpo12+1").depends("libfoo"))
    });
    fx.source("p", "stable").packages("app\ntool\n").write();
    fx.source("p", "backports")
        .dist("bookworm-backports")
        .packages("extra\ntool (>= 2.0~)\n")
        .write();
    fx.ws.build().assert_success();
    let judge = Judge::of(&fx, &["bookworm", "bookworm-backports"]);
    let app = judge.agree(&["app"], false);
    assert!(
        has(&app, "libfoo:amd64=1.0"),
        "stable's libfoo: {:?}",
        app.installs
    );
    judge.agree(&["tool"], false);
    let extra = judge.agree(&["extra"], false);
    assert!(has(&extra, "libfoo:amd64=1.0"), "{:?}", extra.installs);
    let bpo = judge.agree(&["tool/bookworm-backports"], false);
    assert!(
        bpo.ok && has(&bpo, "libfoo:amd64=2.0~bpo12+1"),
        "{:?}",
        bpo.installs
    );
    judge.agree(&["app", "tool", "extra"], false);
    // The stable version the stable closure needs is in the mirror, the backports one too.
    let names = fx.ws.published_versions("p", "bookworm", "main", "amd64");
    assert!(
        names.contains(&("libfoo".into(), "1.0".into())),
        "{names:?}"
    );
}

/// A site that pins backports up (apt preferences `Pin-Priority: 500`) sets the same `pin`
/// on the source; the closure then follows backports, as that site's apt does.
#[test]
fn a_pin_setting_matches_the_sites_apt_preferences() {
    let fx = Fixture::new(|up| {
        up.dist("bookworm")
            .component("main")
            .package(Pkg::new("app", "1.0").depends("libfoo"))
            .package(Pkg::new("libfoo", "1.0"))
            .dist("bookworm-backports")
            .release_field("NotAutomatic", "yes")
            .release_field("ButAutomaticUpgrades", "yes")
            .component("main")
            .package(Pkg::new("libfoo", "2.0~bpo12+1"))
    });
    fx.source("p", "stable").packages("app\n").write();
    fx.source("p", "backports")
        .dist("bookworm-backports")
        .packages("# only what the stable closure pulls\n")
        .settings("pin = 500\n")
        .write();
    fx.ws.build().assert_success();
    let judge = Judge::of(&fx, &["bookworm", "bookworm-backports"]);
    judge.preferences("Package: *\nPin: release a=bookworm-backports\nPin-Priority: 500\n");
    let app = judge.agree(&["app"], false);
    assert!(
        has(&app, "libfoo:amd64=2.0~bpo12+1"),
        "the pinned-up backports libfoo: {:?}",
        app.installs
    );
}

/// `app Depends: aa | bb` where aa's own dependencies cannot be met: apt installs bb.
#[test]
fn an_alternative_that_cannot_install_gives_way() {
    let fx = Fixture::new(|up| {
        up.dist("bookworm")
            .component("main")
            .package(Pkg::new("app", "1.0").depends("aa | bb"))
            .package(Pkg::new("aa", "1.0").depends("libgone (>= 2)"))
            .package(Pkg::new("libgone", "1.0"))
            .package(Pkg::new("bb", "1.0"))
    });
    fx.source("p", "s").packages("app\n").write();
    fx.ws.build().assert_success();
    let judge = Judge::of(&fx, &["bookworm"]);
    let app = judge.agree(&["app"], false);
    assert!(app.ok && has(&app, "bb:amd64=1.0"), "{:?}", app.installs);
}

/// The same tzdata file in bookworm and bookworm-security, folders named so that
/// `security` sorts first: it is published in both dists, and essential seeding of the
/// stable source keeps it. A second upstream with another file under the same name and
/// version: the one whose packages.txt asked for it wins, with a warning naming both.
#[test]
fn duplicates_are_published_where_listed_and_never_dropped_silently() {
    let fx = Fixture::new(|up| {
        up.dist("bookworm")
            .component("main")
            .package(
                Pkg::new("tzdata", "2024a-0+deb12u1")
                    .arch("all")
                    .priority("required"),
            )
            .package(
                Pkg::new("base-files", "12.4")
                    .priority("required")
                    .essential(),
            )
            .package(Pkg::new("tool", "1.0"))
            .dist("bookworm-security")
            .component("main")
            .package(
                Pkg::new("tzdata", "2024a-0+deb12u1")
                    .arch("all")
                    .priority("required"),
            )
    });
    let vendor_key = GpgKey::generate("Vendor <v@example.org>");
    let vendor = Upstream::new(&vendor_key)
        .dist("vendor")
        .component("main")
        .package(Pkg::new("tool", "1.0").payload_size(4096))
        .build();
    let vendor_server = Server::start(vendor.root());
    fx.source("p", "security")
        .dist("bookworm-security")
        .packages("tzdata\n")
        .write();
    fx.source("p", "stable")
        .packages("")
        .settings("essential = true\n")
        .write();
    fx.ws
        .source("p", "vendor")
        .url(&vendor_server.url())
        .key(&vendor_key)
        .dist("vendor")
        .packages("tool\n")
        .write();
    let r = fx.ws.build();
    r.assert_success();
    for dist in ["bookworm", "bookworm-security"] {
        let names = fx.ws.published_names("p", dist, "main", "amd64");
        assert!(names.contains(&"tzdata".to_string()), "{dist}: {names:?}");
    }
    assert!(
        r.stderr
            .contains("tool 1.0 (amd64) is listed with two different files")
            && r.stderr.contains(&vendor_server.url())
            && r.stderr.contains(&fx.server.url()),
        "{}",
        r.stderr
    );
    let tool = fx.ws.packages("p", "vendor", "main", "amd64");
    let published = tool
        .iter()
        .find(|s| s.package() == "tool")
        .expect("tool from vendor");
    let vendor_index =
        String::from_utf8(vendor.read("dists/vendor/main/binary-amd64/Packages")).unwrap();
    assert!(
        vendor_index.contains(published.req("SHA256")),
        "the vendor's file is the one published"
    );
    let judge = Judge::of(&fx, &["bookworm", "bookworm-security"]);
    judge.agree(&["tzdata"], false);
}

/// A signed vendor index with entries apt skips (`Package: MyTool`, `Version: 1.0 beta`)
/// and a `Provides: x (>= 1)` apt ignores: the build goes on with one counted warning and
/// installs like upstream; a malformed entry that is needed is an error naming its line.
#[test]
fn unreadable_vendor_entries_nobody_needs_are_skipped() {
    let fx = Fixture::new(|up| {
        up.dist("vendor")
            .component("main")
            .package(Pkg::new("app", "1.0").depends("libv"))
            .package(Pkg::new("libv", "1.0").provides("libv-abi (>= 1), libv-api"))
            .package(Pkg::new("mytool", "1.0").index_field("Package", "MyTool"))
            .package(Pkg::new("beta", "1.0").index_field("Version", "1.0 beta"))
    });
    fx.source("p", "s").dist("vendor").packages("app\n").write();
    let r = fx.ws.build();
    r.assert_success();
    assert!(
        r.stderr.contains("skipped 2 unreadable entries")
            && r.stderr.contains("ignored 1 Provides"),
        "{}",
        r.stderr
    );
    let judge = Judge::of(&fx, &["vendor"]);
    judge.agree(&["app"], false);
    // Asking for the unreadable one is an error naming the index and line.
    fx.source("p", "s")
        .dist("vendor")
        .packages("app\nbeta\n")
        .write();
    fx.ws.build().assert_failure_mentioning(&[
        "binary-amd64/Packages",
        "1.0 beta",
        "packages.txt:2",
    ]);
}

/// `pkg:any` only through `Multi-Arch: allowed`; `pkg:i386` in i386 when the client adds it;
/// `Multi-Arch: foreign` packages satisfy the other architecture.
#[test]
fn multi_arch_as_apt() {
    let fx = Fixture::new(|up| {
        up.dist("bookworm")
            .component("main")
            .architectures(&["amd64", "i386"])
            .package(Pkg::new("app", "1.0").depends("python3:any, awk"))
            .package(Pkg::new("python3", "3.11").multi_arch("allowed"))
            .package(
                Pkg::new("mawk", "1.3")
                    .provides("awk")
                    .multi_arch("foreign"),
            )
            .package(Pkg::new("bad", "1.0").depends("awk:any"))
            .package(Pkg::new("libc6", "2.36").multi_arch("same"))
            .package(Pkg::new("libc6", "2.36").arch("i386").multi_arch("same"))
            .package(Pkg::new("wine", "8.0").depends("libwine:i386"))
            .package(
                Pkg::new("libwine", "8.0")
                    .arch("i386")
                    .depends("libc6, mawk")
                    .multi_arch("same"),
            )
            .package(Pkg::new("only-amd64", "1.0"))
    });
    fx.source("p", "s")
        .packages("app\nwine\nlibc6 {i386}\nonly-amd64\n")
        .settings("foreign_architectures = [\"i386\"]\n")
        .write();
    fx.ws.build().assert_success();
    let judge = Judge::new(
        &fx.ws,
        "p",
        &[line(&fx.server, &fx.key, "bookworm", "main")],
        "amd64",
        &["i386"],
    );
    judge.agree(&["app"], false);
    let wine = judge.agree(&["wine"], false);
    assert!(
        wine.ok && has(&wine, "libc6:i386=2.36") && has(&wine, "mawk:amd64=1.3"),
        "{:?}",
        wine.installs
    );
    judge.agree(&["libc6:i386"], false);
    judge.agree(&["only-amd64"], false);
    judge.agree(&["app", "wine", "libc6:i386", "only-amd64"], false);
    // awk:any is not satisfied by a provider that is not Multi-Arch: allowed.
    fx.source("p", "s")
        .packages("bad\n")
        .settings("foreign_architectures = [\"i386\"]\n")
        .write();
    fx.ws.build().assert_failure_mentioning(&["bad", "awk:any"]);
    let bad = judge.upstream.simulate(&["bad"], false);
    assert!(!bad.ok, "apt refuses it upstream too:\n{}", bad.log);
}

/// One source asks for `app` without Recommends, another with: the second's Recommends
/// are mirrored although the first selected app already.
#[test]
fn recommends_of_each_request_are_kept() {
    // `plain` reaches libshared first, without Recommends; `tool`'s source follows them.
    let fx = Fixture::new(|up| {
        up.dist("bookworm")
            .component("main")
            .package(Pkg::new("plain", "1.0").depends("libshared"))
            .package(Pkg::new("tool", "1.0").depends("libshared"))
            .package(Pkg::new("libshared", "1.0").recommends("helper"))
            .package(Pkg::new("helper", "1.0").depends("libhelp"))
            .package(Pkg::new("libhelp", "1.0"))
            .dist("bookworm-updates")
            .component("main")
            .package(Pkg::new("other", "1.0"))
    });
    fx.source("p", "a-plain").packages("plain\n").write();
    fx.source("p", "b-recommends")
        .dist("bookworm-updates")
        .packages("tool\nother\n")
        .settings("recommends = true\n")
        .write();
    fx.ws.build().assert_success();
    let judge = Judge::of(&fx, &["bookworm", "bookworm-updates"]);
    judge.agree(&["plain"], false);
    let with = judge.agree(&["tool"], true);
    assert!(has(&with, "libhelp:amd64=1.0"), "{:?}", with.installs);
    judge.agree(&["plain", "tool", "other"], true);
}

/// Two MTAs asked for: each installs on its own, the build says they exclude each other,
/// and apt refuses them together on both sides.
#[test]
fn requests_that_exclude_each_other_are_named_and_each_installs() {
    let fx = Fixture::new(|up| {
        up.dist("bookworm")
            .component("main")
            .package(
                Pkg::new("exim4-daemon-light", "4.96")
                    .provides("mail-transport-agent")
                    .field("Conflicts", "mail-transport-agent"),
            )
            .package(
                Pkg::new("postfix", "3.7")
                    .provides("mail-transport-agent")
                    .field("Conflicts", "mail-transport-agent"),
            )
    });
    fx.source("p", "s")
        .packages("exim4-daemon-light\npostfix\n")
        .write();
    let r = fx.ws.build();
    r.assert_success();
    assert!(
        r.stderr.contains("cannot be installed together")
            && r.stderr.contains("packages.txt:1")
            && r.stderr.contains("packages.txt:2"),
        "{}",
        r.stderr
    );
    let judge = Judge::of(&fx, &["bookworm"]);
    judge.agree(&["exim4-daemon-light"], false);
    judge.agree(&["postfix"], false);
    let both = judge.agree(&["exim4-daemon-light", "postfix"], false);
    assert!(!both.ok);
}

/// A published tree for a Path-only check (used by the essential case below).
fn packages_named(ws: &Workspace, dist: &str) -> Vec<String> {
    ws.published_names("p", dist, "main", "amd64")
}

/// `essential = "default"` seeds `Priority: important` and `ca-certificates` (what
/// debootstrap without `--variant` installs, and what it adds for an https mirror).
#[test]
fn essential_default_seeds_important_and_ca_certificates() {
    let fx = Fixture::new(|up| {
        up.dist("bookworm")
            .component("main")
            .package(
                Pkg::new("base-files", "12.4")
                    .priority("required")
                    .essential(),
            )
            .package(Pkg::new("cron", "3.0").priority("important"))
            .package(Pkg::new("apt", "2.6").priority("required"))
            .package(
                Pkg::new("ca-certificates", "2023")
                    .arch("all")
                    .priority("optional"),
            )
            .package(Pkg::new("nano", "7.2").priority("optional"))
    });
    fx.source("p", "s")
        .packages("")
        .settings("essential = \"default\"\n")
        .write();
    fx.ws.build().assert_success();
    let names = packages_named(&fx.ws, "bookworm");
    for want in ["base-files", "cron", "apt", "ca-certificates"] {
        assert!(names.contains(&want.to_string()), "{want}: {names:?}");
    }
    assert!(!names.contains(&"nano".to_string()));
    fx.source("p", "s")
        .packages("")
        .settings("essential = true\n")
        .write();
    fx.ws.build().assert_success();
    let names = packages_named(&fx.ws, "bookworm");
    assert!(
        names.contains(&"ca-certificates".to_string()) && !names.contains(&"cron".to_string()),
        "{names:?}"
    );
}
