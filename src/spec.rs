//! Reads the declarative `sources/` tree:
//!
//! ```text
//! sources/settings.toml                      optional defaults for every source
//! sources/<prefix>/<name>/source.txt         <upstream_url> <key> <dist> <component>...
//! sources/<prefix>/<name>/packages.txt       one query a line
//! sources/<prefix>/<name>/settings.toml      optional, overrides the defaults
//! ```
//!
//! Every error names the file (and line) at fault.

use crate::relation::{VersionReq, check_package_name, parse_version_req};
use anyhow::{Context, Result, anyhow, bail};
use serde::Deserialize;
use std::fmt;
use std::path::{Path, PathBuf};

/// Where a query came from, printed as `file:line`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Location {
    /// The file, as reached from the `--sources` argument.
    pub file: PathBuf,
    /// 1-based line number.
    pub line: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// One line of `packages.txt`: `name`, `name (op version)`, optionally `{arch}`.
#[derive(Debug, Clone)]
pub struct Query {
    /// Package name asked for.
    pub name: String,
    /// Version requirement, if any.
    pub version: Option<VersionReq>,
    /// Restrict to one architecture, if given.
    pub arch: Option<String>,
    /// Where the query was written.
    pub location: Location,
}

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if let Some(v) = &self.version {
            write!(f, " ({v})")?;
        }
        if let Some(a) = &self.arch {
            write!(f, " {{{a}}}")?;
        }
        Ok(())
    }
}

/// Where the upstream's signing key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// Downloaded over http(s).
    Url(String),
    /// A local file (armored or binary, one or more certificates).
    Path(PathBuf),
}

/// What to do with a dependency nothing can satisfy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum MissingPolicy {
    /// Fail the build (the default).
    #[default]
    Error,
    /// Warn and publish without it.
    Warn,
}

/// Essential seeding: what `debootstrap` needs to bootstrap a system from the mirror.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Essential {
    /// No seeding (the default).
    #[default]
    Off,
    /// `debootstrap --variant=minbase`: `Priority: required`, `Essential: yes`, `apt`
    /// (`essential = true` or `"minbase"`).
    Minbase,
    /// `debootstrap` without `--variant`: also `Priority: important` (`"default"`).
    Default,
}

impl<'de> Deserialize<'de> for Essential {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Flag(bool),
            Variant(String),
        }
        match Raw::deserialize(d)? {
            Raw::Flag(false) => Ok(Essential::Off),
            Raw::Flag(true) => Ok(Essential::Minbase),
            Raw::Variant(v) => match v.as_str() {
                "minbase" => Ok(Essential::Minbase),
                "default" => Ok(Essential::Default),
                "off" | "none" => Ok(Essential::Off),
                other => Err(serde::de::Error::custom(format!(
                    "unknown essential variant {other:?}: expected true, false, \"minbase\" or \"default\""
                ))),
            },
        }
    }
}

/// Per-source settings, after applying defaults (serialized into `mirror.lock`, which
/// records what it answers).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Settings {
    /// Architectures to mirror, each for clients of that native architecture (a fleet):
    /// every query must exist in each (arch `all` packages come along with each).
    pub architectures: Vec<String>,
    /// Foreign architectures those clients add (`dpkg --add-architecture`): mirrored
    /// only for queries qualified with them and what their closure needs there.
    pub foreign_architectures: Vec<String>,
    /// Follow `Recommends`.
    pub recommends: bool,
    /// Follow `Suggests`.
    pub suggests: bool,
    /// Add everything `debootstrap` needs for this dist.
    pub essential: Essential,
    /// Unsatisfiable dependencies: error or warning.
    pub missing: MissingPolicy,
    /// Override the published Release's `Origin`.
    pub origin: Option<String>,
    /// Override the published Release's `Label`.
    pub label: Option<String>,
    /// apt's pin priority for this source's packages, as an apt preferences file would
    /// set it (`Pin-Priority`); `None`: apt's default from the Release (500, or 1 / 100
    /// for `NotAutomatic` / `ButAutomaticUpgrades`).
    pub pin: Option<i32>,
    /// Days the published Release stays valid (`Valid-Until`); `None`: no expiry.
    pub valid_until_days: Option<u32>,
    /// Minutes the published Date is set behind the build clock, so that clients whose
    /// clock lags accept it (apt refuses a Date ahead of its clock).
    pub date_margin_minutes: u32,
    /// Verify this upstream as bookworm's gpgv would (SHA-1, DSA), not under apt 3's policy.
    pub legacy_signatures: bool,
    /// Where old versions of this upstream stay available (the snapshot.debian.org /
    /// snapshot.ubuntu.com layout: `<snapshot_url>/<YYYYMMDDTHHMMSSZ>/dists/...`), for
    /// `build --locked` once upstream has dropped what the lock names.
    pub snapshot_url: Option<String>,
    /// Snapshots of the prefix kept by each publish, the new one included (the largest
    /// among a prefix's sources wins); `None`: the default, 5.
    pub keep: Option<usize>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            architectures: vec!["amd64".into()],
            foreign_architectures: Vec::new(),
            recommends: false,
            suggests: false,
            essential: Essential::Off,
            missing: MissingPolicy::Error,
            origin: None,
            label: None,
            pin: None,
            valid_until_days: None,
            date_margin_minutes: 5,
            legacy_signatures: false,
            snapshot_url: None,
            keep: None,
        }
    }
}

/// The on-disk form of `settings.toml`; every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsFile {
    architectures: Option<Vec<String>>,
    foreign_architectures: Option<Vec<String>>,
    recommends: Option<bool>,
    suggests: Option<bool>,
    essential: Option<Essential>,
    pin: Option<i32>,
    missing: Option<MissingPolicy>,
    origin: Option<String>,
    label: Option<String>,
    valid_until_days: Option<u32>,
    date_margin_minutes: Option<u32>,
    legacy_signatures: Option<bool>,
    snapshot_url: Option<String>,
    keep: Option<usize>,
}

impl SettingsFile {
    fn read(path: &Path) -> Result<Option<SettingsFile>> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let parsed: SettingsFile = toml::from_str(&text).map_err(|e| {
                    let message = e.to_string();
                    let hint = closest_field(&message)
                        .map(|f| format!("\ndid you mean `{f}`?"))
                        .unwrap_or_default();
                    anyhow!("{}: {}{hint}", path.display(), message.trim_end())
                })?;
                Ok(Some(parsed))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    fn apply(self, s: &mut Settings, path: &Path) -> Result<()> {
        if let Some(a) = self.architectures {
            if a.is_empty() {
                bail!("{}: `architectures` must not be empty", path.display());
            }
            for arch in &a {
                if arch == "all" || !is_safe_component(arch) || arch.contains('/') {
                    bail!("{}: invalid architecture {arch:?}", path.display());
                }
            }
            s.architectures = a;
        }
        if let Some(a) = self.foreign_architectures {
            for arch in &a {
                if arch == "all" || !is_safe_component(arch) || arch.contains('/') {
                    bail!("{}: invalid foreign architecture {arch:?}", path.display());
                }
            }
            s.foreign_architectures = a;
        }
        if let Some(pin) = self.pin {
            if !(-32768..=32767).contains(&pin) {
                bail!(
                    "{}: `pin` must fit apt's Pin-Priority (-32768..32767), found {pin}",
                    path.display()
                );
            }
            s.pin = Some(pin);
        }
        if let Some(days) = self.valid_until_days {
            if !(1..=3650).contains(&days) {
                bail!(
                    "{}: `valid_until_days` must be 1..3650, found {days}",
                    path.display()
                );
            }
            s.valid_until_days = Some(days);
        }
        if let Some(m) = self.date_margin_minutes {
            if m > 24 * 60 {
                bail!(
                    "{}: `date_margin_minutes` must be at most 1440 (a day), found {m}",
                    path.display()
                );
            }
            s.date_margin_minutes = m;
        }
        macro_rules! set {
            ($($f:ident),*) => { $( if let Some(v) = self.$f { s.$f = v; } )* };
        }
        set!(recommends, suggests, essential, missing, legacy_signatures);
        if self.origin.is_some() {
            s.origin = self.origin;
        }
        if self.label.is_some() {
            s.label = self.label;
        }
        if let Some(keep) = self.keep {
            if !(1..=1000).contains(&keep) {
                bail!("{}: `keep` must be 1..1000, found {keep}", path.display());
            }
            s.keep = Some(keep);
        }
        if let Some(url) = self.snapshot_url {
            let url = url.trim_end_matches('/');
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                bail!(
                    "{}: `snapshot_url` must be http:// or https://, found {url:?}",
                    path.display()
                );
            }
            s.snapshot_url = Some(url.to_owned());
        }
        Ok(())
    }
}

/// For serde's "unknown field `x`, expected one of `a`, `b`": the known field closest to
/// `x`, when it is close enough to be a typo.
fn closest_field(message: &str) -> Option<String> {
    let rest = message.split("unknown field `").nth(1)?;
    let (unknown, rest) = rest.split_once('`')?;
    let expected = rest.split_once("expected")?.1;
    expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(|known| (strsim::damerau_levenshtein(unknown, known), known))
        .filter(|(d, known)| *d <= 3.max(known.len() / 4))
        .min()
        .map(|(_, known)| known.to_owned())
}

/// One `sources/<prefix>/<name>/` folder, fully read and checked.
#[derive(Debug, Clone)]
pub struct SourceSpec {
    /// The published tree this source belongs to (`<output>/<prefix>/`).
    pub prefix: String,
    /// The folder name inside the prefix.
    pub name: String,
    /// The source folder itself.
    pub dir: PathBuf,
    /// Upstream archive root, without a trailing slash.
    pub url: String,
    /// The key that must have signed the upstream Release.
    pub key: KeySource,
    /// Distribution (suite or codename) as in `dists/<dist>`.
    pub dist: String,
    /// Components to mirror.
    pub components: Vec<String>,
    /// The queries of `packages.txt`.
    pub queries: Vec<Query>,
    /// Settings after defaults.
    pub settings: Settings,
}

/// Read every source under `sources_dir`, sorted by prefix then name.
pub fn read_sources(sources_dir: &Path) -> Result<Vec<SourceSpec>> {
    let meta = std::fs::metadata(sources_dir)
        .with_context(|| format!("sources directory {}", sources_dir.display()))?;
    if !meta.is_dir() {
        bail!("{} is not a directory", sources_dir.display());
    }
    let mut defaults = Settings::default();
    let defaults_path = sources_dir.join("settings.toml");
    if let Some(file) = SettingsFile::read(&defaults_path)? {
        file.apply(&mut defaults, &defaults_path)?;
    }
    let mut specs = Vec::new();
    for prefix in sorted_subdirs(sources_dir)? {
        let prefix_dir = sources_dir.join(&prefix);
        for name in sorted_subdirs(&prefix_dir)? {
            let dir = prefix_dir.join(&name);
            if !dir.join("source.txt").exists() {
                bail!("{}: missing source.txt", dir.display());
            }
            specs.push(read_source(&prefix, &name, &dir, &defaults)?);
        }
    }
    if specs.is_empty() {
        bail!(
            "{}: no sources found (expected <prefix>/<name>/source.txt)",
            sources_dir.display()
        );
    }
    Ok(specs)
}

fn sorted_subdirs(dir: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        if !entry.file_type()?.is_dir() {
            continue;
        }
        let name = entry
            .file_name()
            .into_string()
            .map_err(|n| anyhow!("{}: folder name {n:?} is not UTF-8", dir.display()))?;
        if name.starts_with('.') {
            continue;
        }
        if !is_safe_component(&name) || name.contains('/') {
            bail!("{}: folder name {name:?} is not allowed", dir.display());
        }
        names.push(name);
    }
    names.sort();
    Ok(names)
}

fn read_source(prefix: &str, name: &str, dir: &Path, defaults: &Settings) -> Result<SourceSpec> {
    let source_path = dir.join("source.txt");
    let text = std::fs::read_to_string(&source_path)
        .with_context(|| format!("reading {}", source_path.display()))?;
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'));
    let Some((line_no, line)) = lines.next() else {
        bail!(
            "{}: empty, expected `<upstream_url> <key> <dist> <component>...`",
            source_path.display()
        );
    };
    if let Some((extra, _)) = lines.next() {
        bail!(
            "{}:{extra}: only one source line is allowed per source.txt",
            source_path.display()
        );
    }
    let at = |msg: String| anyhow!("{}:{line_no}: {msg}", source_path.display());
    let words: Vec<&str> = line.split_whitespace().collect();
    if words.len() < 4 {
        return Err(at(format!(
            "expected `<upstream_url> <key> <dist> <component>...`, found {line:?}"
        )));
    }
    let url = words[0].trim_end_matches('/');
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(at(format!(
            "upstream URL must be http:// or https://, found {url:?}"
        )));
    }
    let key = if words[1].starts_with("http://") || words[1].starts_with("https://") {
        KeySource::Url(words[1].to_owned())
    } else {
        let p = Path::new(words[1]);
        let path = if p.is_absolute() {
            p.to_path_buf()
        } else {
            dir.join(p)
        };
        if !path.is_file() {
            return Err(at(format!("key file {} not found", path.display())));
        }
        KeySource::Path(path)
    };
    let dist = words[2];
    if !is_safe_relative_path(dist) {
        return Err(at(format!("invalid dist {dist:?}")));
    }
    let mut components: Vec<String> = Vec::new();
    for c in &words[3..] {
        if !is_safe_relative_path(c) {
            return Err(at(format!("invalid component {c:?}")));
        }
        if !components.iter().any(|x| x == c) {
            components.push((*c).to_owned());
        }
    }

    let mut settings = defaults.clone();
    let settings_path = dir.join("settings.toml");
    if let Some(file) = SettingsFile::read(&settings_path)? {
        file.apply(&mut settings, &settings_path)?;
    }
    if let Some(both) = settings
        .foreign_architectures
        .iter()
        .find(|a| settings.architectures.contains(a))
    {
        bail!(
            "{}: {both:?} is in both `architectures` and `foreign_architectures`: a client has it natively or as a foreign architecture, not both",
            settings_path.display()
        );
    }
    let packages_path = dir.join("packages.txt");
    let queries = if packages_path.exists() {
        read_queries(&packages_path, &settings)?
    } else if settings.essential != Essential::Off {
        Vec::new()
    } else {
        bail!(
            "{}: missing (one package query a line)",
            packages_path.display()
        );
    };
    Ok(SourceSpec {
        prefix: prefix.to_owned(),
        name: name.to_owned(),
        dir: dir.to_path_buf(),
        url: url.to_owned(),
        key,
        dist: dist.to_owned(),
        components,
        queries,
        settings,
    })
}

/// Read `packages.txt`; every malformed line is reported with `file:line`.
pub fn read_queries(path: &Path, settings: &Settings) -> Result<Vec<Query>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut queries = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let location = Location {
            file: path.to_path_buf(),
            line: i + 1,
        };
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let query = parse_query(line, location.clone())
            .map_err(|e| anyhow!("{location}: {e:#} (in {line:?})"))?;
        if let Some(arch) = &query.arch
            && arch != "all"
            && !settings.architectures.contains(arch)
            && !settings.foreign_architectures.contains(arch)
        {
            bail!(
                "{location}: architecture {{{arch}}} is not among this source's architectures {:?} or foreign_architectures {:?}",
                settings.architectures,
                settings.foreign_architectures
            );
        }
        queries.push(query);
    }
    Ok(queries)
}

fn parse_query(line: &str, location: Location) -> Result<Query> {
    let mut rest = line;
    let mut arch = None;
    if let Some(open) = rest.find('{') {
        let tail = &rest[open + 1..];
        let close = tail.find('}').ok_or_else(|| anyhow!("unclosed `{{`"))?;
        if !tail[close + 1..].trim().is_empty() {
            bail!("unexpected text after `{{{}}}`", &tail[..close]);
        }
        let a = tail[..close].trim();
        if a.is_empty() || !a.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            bail!("invalid architecture {a:?}");
        }
        arch = Some(a.to_owned());
        rest = rest[..open].trim_end();
    }
    let name_end = rest
        .find(|c: char| c.is_whitespace() || c == '(')
        .unwrap_or(rest.len());
    let name = &rest[..name_end];
    check_package_name(name)?;
    let after = rest[name_end..].trim();
    let version = if after.is_empty() {
        None
    } else {
        let inner = after
            .strip_prefix('(')
            .and_then(|a| a.strip_suffix(')'))
            .ok_or_else(|| anyhow!("expected `name`, `name (OP version)` or `name {{arch}}`"))?;
        Some(parse_version_req(inner)?)
    };
    Ok(Query {
        name: name.to_owned(),
        version,
        arch,
        location,
    })
}

/// A single path component that is safe to use in an output path.
pub fn is_safe_component(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && !s.contains('\0')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-._~".contains(&b))
}

/// A relative path of safe components (no `..`, no leading `/`, no empty parts).
pub fn is_safe_relative_path(s: &str) -> bool {
    !s.is_empty() && !s.starts_with('/') && s.split('/').all(is_safe_component)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(line: &str) -> Result<Query> {
        parse_query(
            line,
            Location {
                file: "p".into(),
                line: 1,
            },
        )
    }

    #[test]
    fn query_forms() {
        let a = q("nginx").unwrap();
        assert_eq!(
            (a.name.as_str(), a.version.is_none(), a.arch.is_none()),
            ("nginx", true, true)
        );
        let b = q("python3 (>= 3.11)").unwrap();
        assert_eq!(b.version.unwrap().to_string(), ">= 3.11");
        let c = q("libc6 (= 2.36-9) {arm64}").unwrap();
        assert_eq!(c.arch.as_deref(), Some("arm64"));
        let d = q("foo(<<1:2)").unwrap();
        assert_eq!(d.version.unwrap().to_string(), "<< 1:2");
    }

    #[test]
    fn malformed_queries() {
        for bad in [
            "Nginx",
            "nginx (>= )",
            "nginx >= 1",
            "nginx (=> 1)",
            "nginx {amd64",
            "a b",
        ] {
            assert!(q(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn packages_file_errors_name_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("packages.txt");
        std::fs::write(&p, "# comment\n\nnginx\ncurl (>>\n").unwrap();
        let err = read_queries(&p, &Settings::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("packages.txt:4"), "{err}");
        std::fs::write(&p, "nginx {arm64}\n").unwrap();
        let err = read_queries(&p, &Settings::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("packages.txt:1"), "{err}");
    }

    #[test]
    fn safe_paths() {
        assert!(is_safe_relative_path("updates/main"));
        assert!(!is_safe_relative_path("../x"));
        assert!(!is_safe_relative_path("/x"));
        assert!(!is_safe_relative_path("a//b"));
        assert!(!is_safe_relative_path("a b"));
    }
}
