//! The real `apt-get`, in a private root: the judge of what upstream and the mirror offer.
//!
//! Nothing of the host's apt configuration gets in: `APT_CONFIG` names a file that sets
//! `Dir` and every `Dir::Etc::*Parts` directory inside the private root, and apt reads that
//! file before it looks for parts (apt-pkg/init.cc), so a host with `Acquire::Check-Date
//! "false"` or `AllowInsecureRepositories` in /etc/apt/apt.conf.d cannot weaken a check.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use tempfile::TempDir;

/// A client with nothing installed, for one native architecture (and foreign ones).
pub struct AptClient {
    root: TempDir,
}

/// What `apt-get -s install` said.
#[derive(Debug, Clone)]
pub struct Simulation {
    /// apt would install (exit 0, no `E:`).
    pub ok: bool,
    /// `name:arch=version` of every `Inst` line.
    pub installs: BTreeSet<String>,
    /// Everything apt printed.
    pub log: String,
}

impl AptClient {
    /// A client of native architecture `arch` that added `foreign` architectures.
    pub fn new(arch: &str, foreign: &[&str]) -> AptClient {
        let root = tempfile::Builder::new()
            .prefix("apt-client")
            .tempdir()
            .unwrap();
        let r = root.path();
        for d in [
            "etc/apt/sources.list.d",
            "etc/apt/preferences.d",
            "etc/apt/apt.conf.d",
            "etc/apt/trusted.gpg.d",
            "var/lib/apt/lists/partial",
            "var/cache/apt/archives/partial",
            "var/lib/dpkg",
            "var/log/apt",
        ] {
            fs::create_dir_all(r.join(d)).unwrap();
        }
        fs::write(r.join("var/lib/dpkg/status"), "").unwrap();
        let archs: String = std::iter::once(arch)
            .chain(foreign.iter().copied())
            .map(|a| format!("\"{a}\"; "))
            .collect();
        let root_s = r.display();
        fs::write(
            r.join("apt.conf"),
            format!(
                r#"Dir "{root_s}/";
Dir::Etc "{root_s}/etc/apt/";
Dir::Etc::Parts "{root_s}/etc/apt/apt.conf.d/";
Dir::Etc::PreferencesParts "{root_s}/etc/apt/preferences.d/";
Dir::Etc::SourceParts "{root_s}/etc/apt/sources.list.d/";
Dir::Etc::TrustedParts "{root_s}/etc/apt/trusted.gpg.d/";
Dir::State::status "{root_s}/var/lib/dpkg/status";
APT::Architecture "{arch}";
APT::Architectures {{ {archs}}};
APT::Sandbox::User "root";
Debug::NoLocking "1";
Acquire::Languages "none";
APT::Get::List-Cleanup "0";
Dpkg::Lock::Timeout "0";
"#
            ),
        )
        .unwrap();
        AptClient { root }
    }

    /// The private root.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// Write sources.list.
    pub fn sources(&self, lines: &str) {
        fs::write(self.root().join("etc/apt/sources.list"), lines).unwrap();
    }

    /// Write an apt preferences file.
    pub fn preferences(&self, text: &str) {
        fs::write(self.root().join("etc/apt/preferences"), text).unwrap();
    }

    fn command(&self) -> Command {
        let mut c = Command::new("apt-get");
        c.env("APT_CONFIG", self.root().join("apt.conf"))
            .env("DEBIAN_FRONTEND", "noninteractive")
            .env("LC_ALL", "C");
        c
    }

    /// `apt-get update --error-on=any`: (success, output). Warnings count as failure.
    pub fn update(&self) -> (bool, String) {
        let out = self
            .command()
            .args(["update", "--error-on=any"])
            .output()
            .expect("run apt-get update");
        let log = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let ok = out.status.success() && !log.contains("W:") && !log.contains("E:");
        (ok, log)
    }

    /// `apt-get -s install ARGS` on the empty system.
    pub fn simulate(&self, args: &[&str], recommends: bool) -> Simulation {
        let out = self
            .command()
            .args(["-s", "install", "-y"])
            .arg(if recommends {
                "--install-recommends"
            } else {
                "--no-install-recommends"
            })
            .args(args)
            .output()
            .expect("run apt-get -s install");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let installs = stdout.lines().filter_map(parse_inst).collect();
        Simulation {
            ok: out.status.success() && !stderr.contains("E:"),
            installs,
            log: format!("{stdout}{stderr}"),
        }
    }

    /// `apt-get install --download-only ARGS` into the private root: (success, output).
    pub fn download(&self, args: &[&str]) -> (bool, String) {
        let out = self
            .command()
            .args([
                "install",
                "--download-only",
                "--no-install-recommends",
                "-y",
            ])
            .args(args)
            .output()
            .expect("run apt-get install");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let log = format!("{}{stderr}", String::from_utf8_lossy(&out.stdout));
        (out.status.success() && !stderr.contains("E:"), log)
    }

    /// Where downloaded packages land.
    pub fn archives(&self) -> PathBuf {
        self.root().join("var/cache/apt/archives")
    }
}

/// `Inst name[:arch] (version release [arch])` → `name:arch=version`.
fn parse_inst(line: &str) -> Option<String> {
    let rest = line.strip_prefix("Inst ")?;
    let (name, rest) = rest.split_once(' ')?;
    let inner = rest.strip_prefix('(')?;
    let version = inner.split_whitespace().next()?;
    let arch = inner
        .rsplit_once('[')
        .and_then(|(_, a)| a.split(']').next())
        .unwrap_or("?");
    let bare = name.split(':').next().unwrap_or(name);
    Some(format!("{bare}:{arch}={version}"))
}

/// Run `apt-get update` then `install --download-only` of `packages` from a published tree
/// (the tree's own keyring as `signed-by`): (success, combined output).
pub fn apt_download(
    published: &Path,
    dist: &str,
    comps: &str,
    arch: &str,
    packages: &[&str],
) -> (bool, String) {
    let client = AptClient::new(arch, &[]);
    let keyring = published.join("mini-mirror-archive-keyring.gpg");
    client.sources(&format!(
        "deb [signed-by={}] file:{} {dist} {comps}\n",
        keyring.display(),
        published.display()
    ));
    let (ok, log) = client.update();
    if !ok {
        return (false, log);
    }
    let (ok, more) = client.download(packages);
    (ok, log + &more)
}
