//! `mirror.lock`: the exact set of packages one prefix publishes, and what it answers.
//!
//! Every successful build writes it beside the sources (`sources/<prefix>/mirror.lock`,
//! meant to be committed and reviewed) and into the published tree. `build --locked`
//! publishes exactly what it names again, `diff` and `check` compare two of them, `why`
//! walks the reasons it records. Plain, sorted TOML, one field a line, so that a merge
//! request shows what an update changes.

use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

/// File name of the lock, in `sources/<prefix>/` and in `<output>/<prefix>/`.
pub const LOCK_NAME: &str = "mirror.lock";

/// The format this program writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// One prefix's lock.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Lock {
    /// The prefix it publishes (`<output>/<prefix>/`).
    pub prefix: String,
    /// A digest of every source's requests (queries and settings): see [`requests_digest`].
    pub requests: String,
    /// The sources, by name.
    pub sources: Vec<LockedSource>,
    /// The published Packages files (`dists/<dist>/<component>/binary-<arch>/Packages`).
    pub indices: Vec<LockedIndex>,
    /// Every published package, sorted by dist, component, name, version, architecture.
    pub packages: Vec<LockedPackage>,
}

/// What one source asked and the upstream Release it was answered from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedSource {
    /// `sources/<prefix>/<name>/`.
    pub name: String,
    /// Upstream URL.
    pub url: String,
    /// Dist.
    pub dist: String,
    /// Components.
    pub components: Vec<String>,
    /// SHA256 of the verified Release text (the signed content of InRelease).
    pub release_sha256: String,
    /// Its `Date`, as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_date: Option<String>,
    /// The queries of `packages.txt`, with their lines.
    #[serde(default)]
    pub queries: Vec<LockedQuery>,
    /// The source's settings after defaults (`settings.toml`).
    pub settings: toml::Table,
}

/// One query as written in `packages.txt`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedQuery {
    /// Line in `packages.txt`.
    pub line: usize,
    /// The query (`nginx`, `python3 (>= 3.11)`, `libc6 {i386}`).
    pub query: String,
}

/// One published Packages file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedIndex {
    /// Path below the prefix, e.g. `dists/bookworm/main/binary-amd64/Packages`.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA256.
    pub sha256: String,
}

/// One published package file in one dist and component.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedPackage {
    /// `Package`.
    pub name: String,
    /// `Version`.
    pub version: String,
    /// `Architecture` (`all` included).
    pub architecture: String,
    /// Dist it is published in.
    pub dist: String,
    /// Component.
    pub component: String,
    /// Source package name.
    pub source: String,
    /// The mini-mirror source (`sources/<prefix>/<upstream>/`) it came from.
    pub upstream: String,
    /// Upstream `Filename`.
    pub filename: String,
    /// `Size`.
    pub size: u64,
    /// `SHA256` of the `.deb`.
    pub sha256: String,
    /// SHA256 of its published Packages entry (the upstream paragraph with our Filename),
    /// so that `--locked` republishes it byte for byte.
    pub paragraph_sha256: String,
    /// Index architectures it is listed in (`binary-<arch>`).
    pub indices: Vec<String>,
    /// Why it is there: `query <source>/packages.txt:<line>: <query>`, `seed: <what>`, or
    /// `<name> <version> <arch>: <dependency as written>`.
    pub why: Vec<String>,
    /// Line of its `[[package]]` in the file it was read from (0: built in memory).
    #[serde(skip)]
    pub line: usize,
}

impl LockedPackage {
    /// `name version arch`, the way `why` reasons name a parent.
    pub fn label(&self) -> String {
        format!("{} {} {}", self.name, self.version, self.architecture)
    }

    /// Where `build --locked` puts it below the prefix.
    pub fn pool_path(&self) -> Result<String> {
        crate::pool::pool_path(&self.component, &self.source, &self.filename)
    }
}

/// The digest of what a prefix's sources ask: for each source its URL, dist, components,
/// settings and queries (not their lines: a comment added to packages.txt asks nothing new).
pub fn requests_digest(sources: &[LockedSource]) -> String {
    let mut text = String::new();
    for s in sources {
        let _ = writeln!(
            text,
            "[{}] {} {} {}",
            s.name,
            s.url,
            s.dist,
            s.components.join(" ")
        );
        text.push_str(&toml::to_string(&s.settings).unwrap_or_default());
        for q in &s.queries {
            let _ = writeln!(text, "query {}", q.query);
        }
    }
    crate::sha256::hex_digest(text.as_bytes())
}

/// The settings of a source as the lock records them: what they ask, not where packages
/// may be fetched from or how long snapshots are kept (`snapshot_url` and `keep` can change
/// without changing the answer).
pub fn settings_table(settings: &crate::spec::Settings) -> toml::Table {
    let mut table = toml::Table::try_from(settings).expect("settings are plain data");
    table.remove("snapshot_url");
    table.remove("keep");
    table
}

/// A TOML basic string.
fn quoted(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

fn string_list(items: &[String]) -> String {
    let parts: Vec<String> = items.iter().map(|s| quoted(s)).collect();
    format!("[{}]", parts.join(", "))
}

impl Lock {
    /// The lock as written to disk.
    pub fn to_toml(&self) -> String {
        let mut out = String::new();
        out.push_str(
            "# mirror.lock: exactly what this prefix publishes, written by `mini-mirror build`.\n\
             # Commit it with the sources; `mini-mirror build --locked` publishes this set again.\n\
             # Do not edit by hand.\n",
        );
        let _ = writeln!(out, "version = {FORMAT_VERSION}");
        let _ = writeln!(out, "prefix = {}", quoted(&self.prefix));
        let _ = writeln!(out, "requests = {}", quoted(&self.requests));
        let _ = writeln!(out, "package_count = {}", self.packages.len());
        for s in &self.sources {
            out.push_str("\n[[source]]\n");
            let _ = writeln!(out, "name = {}", quoted(&s.name));
            let _ = writeln!(out, "url = {}", quoted(&s.url));
            let _ = writeln!(out, "dist = {}", quoted(&s.dist));
            let _ = writeln!(out, "components = {}", string_list(&s.components));
            let _ = writeln!(out, "release_sha256 = {}", quoted(&s.release_sha256));
            if let Some(d) = &s.release_date {
                let _ = writeln!(out, "release_date = {}", quoted(d));
            }
            out.push_str("queries = [\n");
            for q in &s.queries {
                let _ = writeln!(
                    out,
                    "  {{ line = {}, query = {} }},",
                    q.line,
                    quoted(&q.query)
                );
            }
            out.push_str("]\n");
            out.push_str("[source.settings]\n");
            out.push_str(&toml::to_string(&s.settings).expect("settings serialize"));
        }
        for i in &self.indices {
            out.push_str("\n[[index]]\n");
            let _ = writeln!(out, "path = {}", quoted(&i.path));
            let _ = writeln!(out, "size = {}", i.size);
            let _ = writeln!(out, "sha256 = {}", quoted(&i.sha256));
        }
        for p in &self.packages {
            out.push_str("\n[[package]]\n");
            let _ = writeln!(out, "name = {}", quoted(&p.name));
            let _ = writeln!(out, "version = {}", quoted(&p.version));
            let _ = writeln!(out, "architecture = {}", quoted(&p.architecture));
            let _ = writeln!(out, "dist = {}", quoted(&p.dist));
            let _ = writeln!(out, "component = {}", quoted(&p.component));
            let _ = writeln!(out, "source = {}", quoted(&p.source));
            let _ = writeln!(out, "upstream = {}", quoted(&p.upstream));
            let _ = writeln!(out, "filename = {}", quoted(&p.filename));
            let _ = writeln!(out, "size = {}", p.size);
            let _ = writeln!(out, "sha256 = {}", quoted(&p.sha256));
            let _ = writeln!(out, "paragraph_sha256 = {}", quoted(&p.paragraph_sha256));
            let _ = writeln!(out, "indices = {}", string_list(&p.indices));
            out.push_str("why = [\n");
            for w in &p.why {
                let _ = writeln!(out, "  {},", quoted(w));
            }
            out.push_str("]\n");
        }
        out
    }

    /// Put packages, indices and reasons in their canonical order.
    pub fn normalize(&mut self) {
        self.packages.sort_by(|a, b| {
            (
                &a.dist,
                &a.component,
                &a.name,
                &a.version,
                &a.architecture,
                &a.filename,
            )
                .cmp(&(
                    &b.dist,
                    &b.component,
                    &b.name,
                    &b.version,
                    &b.architecture,
                    &b.filename,
                ))
        });
        for p in &mut self.packages {
            p.indices.sort();
            p.indices.dedup();
            p.why.sort();
            p.why.dedup();
        }
        self.indices.sort_by(|a, b| a.path.cmp(&b.path));
        self.sources.sort_by(|a, b| a.name.cmp(&b.name));
        self.requests = requests_digest(&self.sources);
    }

    /// An empty lock for a prefix that has published nothing yet.
    pub fn empty(prefix: &str) -> Lock {
        Lock {
            prefix: prefix.to_owned(),
            requests: requests_digest(&[]),
            sources: Vec::new(),
            indices: Vec::new(),
            packages: Vec::new(),
        }
    }

    /// Read a lock file: any damage (syntax, an unknown format version, a malformed hash,
    /// duplicate entries, a count that does not match) is an error naming the file and line.
    pub fn read(path: &Path) -> Result<Lock> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Lock::parse(&text).map_err(|e| anyhow!("{}:{e:#}", path.display()))
    }

    /// Parse the text of a lock file; errors start with `<line>: `.
    pub fn parse(text: &str) -> Result<Lock> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            version: toml::Spanned<u32>,
            prefix: String,
            requests: toml::Spanned<String>,
            package_count: toml::Spanned<usize>,
            #[serde(default)]
            source: Vec<toml::Spanned<LockedSource>>,
            #[serde(default)]
            index: Vec<toml::Spanned<LockedIndex>>,
            #[serde(default)]
            package: Vec<toml::Spanned<LockedPackage>>,
        }
        // Line numbers by binary search over the line ends (a lock of 7,600 packages is 5 MB).
        let line_ends: Vec<usize> = text.match_indices('\n').map(|(i, _)| i).collect();
        let line_of = |offset: usize| line_ends.partition_point(|&end| end < offset) + 1;
        // The format version first, so that a newer format says so rather than failing on
        // a field this version does not know.
        let table: toml::Table = toml::from_str(text).map_err(|e| toml_error(text, &e))?;
        match table.get("version").and_then(toml::Value::as_integer) {
            Some(v) if v == i64::from(FORMAT_VERSION) => {}
            Some(v) => {
                let line = text
                    .lines()
                    .position(|l| l.trim_start().starts_with("version"))
                    .map_or(1, |i| i + 1);
                bail!(
                    "{line}: unknown lock format version {v} (this mini-mirror reads version \
                     {FORMAT_VERSION}): written by another mini-mirror version?"
                )
            }
            None => bail!("1: not a mirror.lock: no `version`"),
        }
        let raw: Raw = toml::from_str(text).map_err(|e| toml_error(text, &e))?;
        let _ = raw.version;
        let mut problems = Vec::new();
        let mut sources = Vec::new();
        let mut source_names = BTreeSet::new();
        for s in raw.source {
            let line = line_of(s.span().start);
            let s = s.into_inner();
            check_sha256(&s.release_sha256, line, "release_sha256", &mut problems);
            if !source_names.insert(s.name.clone()) {
                problems.push(format!("{line}: source {:?} is listed twice", s.name));
            }
            sources.push(s);
        }
        let mut indices = Vec::new();
        for i in raw.index {
            let line = line_of(i.span().start);
            let i = i.into_inner();
            check_sha256(&i.sha256, line, "sha256", &mut problems);
            if !crate::spec::is_safe_relative_path(&i.path) || !i.path.starts_with("dists/") {
                problems.push(format!(
                    "{line}: index path {:?} is not below dists/",
                    i.path
                ));
            }
            indices.push(i);
        }
        let mut packages = Vec::new();
        let mut seen: BTreeMap<(String, String, String, String, String), usize> = BTreeMap::new();
        for p in raw.package {
            let line = line_of(p.span().start);
            // The span may cover only the `[[package]]` header: the table runs to the next one.
            let start = p.span().start;
            let end = text[start + 1..]
                .find("\n[")
                .map_or(text.len(), |i| start + 1 + i);
            let field_line = |field: &str| {
                text[start..end]
                    .lines()
                    .position(|l| l.trim_start().starts_with(&format!("{field} =")))
                    .map_or(line, |i| line + i)
            };
            let mut p = p.into_inner();
            p.line = line;
            check_sha256(&p.sha256, field_line("sha256"), "sha256", &mut problems);
            check_sha256(
                &p.paragraph_sha256,
                field_line("paragraph_sha256"),
                "paragraph_sha256",
                &mut problems,
            );
            if !source_names.contains(&p.upstream) {
                problems.push(format!(
                    "{line}: {} names upstream {:?}, which is not a [[source]] of this lock",
                    p.label(),
                    p.upstream
                ));
            }
            if let Err(e) = p.pool_path() {
                problems.push(format!("{line}: {}: {e:#}", p.label()));
            }
            if !crate::spec::is_safe_relative_path(&p.dist)
                || !crate::spec::is_safe_relative_path(&p.component)
            {
                problems.push(format!("{line}: {}: invalid dist or component", p.label()));
            }
            if p.indices.is_empty()
                || p.indices
                    .iter()
                    .any(|a| !crate::spec::is_safe_component(a) || a.contains('/'))
            {
                problems.push(format!("{line}: {}: invalid `indices`", p.label()));
            }
            let key = (
                p.dist.clone(),
                p.component.clone(),
                p.name.clone(),
                p.version.clone(),
                p.architecture.clone(),
            );
            if let Some(first) = seen.insert(key, line) {
                problems.push(format!(
                    "{line}: {} in {}/{} is listed twice (first at line {first})",
                    p.label(),
                    p.dist,
                    p.component
                ));
            }
            packages.push(p);
        }
        if *raw.package_count.get_ref() != packages.len() {
            problems.push(format!(
                "{}: package_count says {} but the lock lists {} packages (truncated or edited?)",
                line_of(raw.package_count.span().start),
                raw.package_count.get_ref(),
                packages.len()
            ));
        }
        let digest = requests_digest(&sources);
        if *raw.requests.get_ref() != digest {
            problems.push(format!(
                "{}: `requests` does not match the sources' queries and settings recorded here \
                 (edited by hand?)",
                line_of(raw.requests.span().start)
            ));
        }
        if !problems.is_empty() {
            bail!("{}", problems.join("\n"));
        }
        Ok(Lock {
            prefix: raw.prefix,
            requests: digest,
            sources,
            indices,
            packages,
        })
    }

    /// Write the lock to `path` atomically (a temporary file renamed over it).
    pub fn write_atomically(&self, path: &Path) -> Result<()> {
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut tmp = tempfile::Builder::new()
            .prefix(".mirror.lock-")
            .tempfile_in(dir)
            .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
        std::io::Write::write_all(&mut tmp, self.to_toml().as_bytes())
            .with_context(|| format!("writing {}", tmp.path().display()))?;
        std::fs::set_permissions(
            tmp.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o644),
        )?;
        tmp.persist(path)
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }

    /// Does this lock answer what `specs` (one prefix's sources) ask today? Every difference
    /// is named: a query added or removed, a setting changed, a source added or removed.
    pub fn check_answers(
        &self,
        specs: &[&crate::spec::SourceSpec],
        lock_path: &Path,
    ) -> Result<()> {
        let mut problems = Vec::new();
        let by_name: BTreeMap<&str, &LockedSource> =
            self.sources.iter().map(|s| (s.name.as_str(), s)).collect();
        for spec in specs {
            let Some(locked) = by_name.get(spec.name.as_str()) else {
                problems.push(format!(
                    "source {}/{} is not in the lock (added since it was written)",
                    spec.prefix, spec.name
                ));
                continue;
            };
            if locked.url != spec.url
                || locked.dist != spec.dist
                || locked.components != spec.components
            {
                problems.push(format!(
                    "{}/source.txt: `{} {} {}` but the lock has `{} {} {}`",
                    spec.dir.display(),
                    spec.url,
                    spec.dist,
                    spec.components.join(" "),
                    locked.url,
                    locked.dist,
                    locked.components.join(" ")
                ));
            }
            let now = settings_table(&spec.settings);
            let keys: BTreeSet<&String> = now.keys().chain(locked.settings.keys()).collect();
            for key in keys {
                let (a, b) = (locked.settings.get(key), now.get(key));
                if a != b {
                    let show = |v: Option<&toml::Value>| {
                        v.map_or("(unset)".to_owned(), ToString::to_string)
                    };
                    problems.push(format!(
                        "{}: setting `{key}` is {} but the lock was made with {}",
                        spec.dir.join("settings.toml").display(),
                        show(b),
                        show(a)
                    ));
                }
            }
            let locked_queries: BTreeSet<&str> =
                locked.queries.iter().map(|q| q.query.as_str()).collect();
            let queries: BTreeSet<String> = spec.queries.iter().map(ToString::to_string).collect();
            for q in &spec.queries {
                if !locked_queries.contains(q.to_string().as_str()) {
                    problems.push(format!(
                        "{}:{}: query `{q}` is not in the lock (added since it was written)",
                        q.location.file.display(),
                        q.location.line
                    ));
                }
            }
            for q in &locked.queries {
                if !queries.contains(&q.query) {
                    problems.push(format!(
                        "{}: the lock answers query `{}` (line {}), which is no longer there",
                        spec.dir.join("packages.txt").display(),
                        q.query,
                        q.line
                    ));
                }
            }
        }
        for locked in &self.sources {
            if !specs.iter().any(|s| s.name == locked.name) {
                problems.push(format!(
                    "the lock has source {}/{}, which is no longer in the sources",
                    self.prefix, locked.name
                ));
            }
        }
        if !problems.is_empty() {
            bail!(
                "{} does not answer the current sources:\n  {}\nrun `mini-mirror build` without \
                 --locked to resolve again and update the lock",
                lock_path.display(),
                problems.join("\n  ")
            );
        }
        Ok(())
    }
}

fn check_sha256(value: &str, line: usize, field: &str, problems: &mut Vec<String>) {
    if value.len() != 64
        || !value
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        problems.push(format!(
            "{line}: `{field}` {value:?} is not a SHA256 (64 lowercase hex digits)"
        ));
    }
}

fn toml_error(text: &str, e: &toml::de::Error) -> anyhow::Error {
    let line = e.span().map_or(1, |s| {
        text[..s.start.min(text.len())].matches('\n').count() + 1
    });
    anyhow!("{line}: {}", e.message())
}

/// How one package name and architecture in one dist changed between two locks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// `added`, `removed`, `upgraded`, `downgraded` or `rebuilt` (same version, other file).
    pub kind: ChangeKind,
    /// Package name.
    pub name: String,
    /// Architecture.
    pub architecture: String,
    /// Version before (none when added).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Version after (none when removed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// Source package (after, else before).
    pub source: String,
}

/// What kind of change (`--json` and the text say it in lowercase).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    /// In the new lock only.
    Added,
    /// In the old lock only.
    Removed,
    /// A higher version replaces a lower one.
    Upgraded,
    /// A lower version replaces a higher one.
    Downgraded,
    /// The same version with another file (upstream rebuilt it).
    Rebuilt,
}

impl ChangeKind {
    /// The word for it, as `--json` writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Added => "added",
            ChangeKind::Removed => "removed",
            ChangeKind::Upgraded => "upgraded",
            ChangeKind::Downgraded => "downgraded",
            ChangeKind::Rebuilt => "rebuilt",
        }
    }
}

/// The changes of one dist of one prefix.
#[derive(Debug, Clone, Serialize)]
pub struct DistDiff {
    /// Prefix.
    pub prefix: String,
    /// Dist.
    pub dist: String,
    /// Changes, by name and architecture.
    pub changes: Vec<Change>,
}

/// What changes from lock `old` to lock `new`, per dist (dists without changes left out).
pub fn diff(old: &Lock, new: &Lock) -> Vec<DistDiff> {
    type Key = (String, String, String); // dist, name, arch
    let group = |lock: &Lock| {
        let mut map: BTreeMap<Key, Vec<(String, String, String)>> = BTreeMap::new();
        for p in &lock.packages {
            let versions = map
                .entry((p.dist.clone(), p.name.clone(), p.architecture.clone()))
                .or_default();
            let v = (p.version.clone(), p.sha256.clone(), p.source.clone());
            if !versions.contains(&v) {
                versions.push(v);
            }
        }
        map
    };
    let (a, b) = (group(old), group(new));
    let keys: BTreeSet<&Key> = a.keys().chain(b.keys()).collect();
    let mut per_dist: BTreeMap<String, Vec<Change>> = BTreeMap::new();
    for key in keys {
        let (dist, name, arch) = key;
        let empty = Vec::new();
        let (before, after) = (a.get(key).unwrap_or(&empty), b.get(key).unwrap_or(&empty));
        let change = |kind,
                      from: Option<&(String, String, String)>,
                      to: Option<&(String, String, String)>| Change {
            kind,
            name: name.clone(),
            architecture: arch.clone(),
            from: from.map(|v| v.0.clone()),
            to: to.map(|v| v.0.clone()),
            source: to.or(from).map(|v| v.2.clone()).unwrap_or_default(),
        };
        let changes = per_dist.entry(dist.clone()).or_default();
        match (before.as_slice(), after.as_slice()) {
            ([x], [y]) if x == y => {}
            ([x], [y]) => {
                let order = match (
                    crate::relation::parse_version(&x.0),
                    crate::relation::parse_version(&y.0),
                ) {
                    (Ok(a), Ok(b)) => a.cmp(&b),
                    _ => x.0.cmp(&y.0),
                };
                let kind = match order {
                    std::cmp::Ordering::Less => ChangeKind::Upgraded,
                    std::cmp::Ordering::Greater => ChangeKind::Downgraded,
                    std::cmp::Ordering::Equal => ChangeKind::Rebuilt,
                };
                changes.push(change(kind, Some(x), Some(y)));
            }
            _ => {
                // Several versions on a side (or none): compare as sets.
                for x in before.iter().filter(|x| !after.contains(x)) {
                    changes.push(change(ChangeKind::Removed, Some(x), None));
                }
                for y in after.iter().filter(|y| !before.contains(y)) {
                    changes.push(change(ChangeKind::Added, None, Some(y)));
                }
            }
        }
    }
    per_dist
        .into_iter()
        .filter(|(_, c)| !c.is_empty())
        .map(|(dist, changes)| DistDiff {
            prefix: new.prefix.clone(),
            dist,
            changes,
        })
        .collect()
}

/// One way from a request to a package: each step a package and the reason it is there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    /// From the request (first) to the package asked about (last): (package label, reason
    /// that brought it in).
    pub steps: Vec<(String, String)>,
}

/// Every chain (up to `limit`) from a request to a package named `name` (of `arch`, if
/// given), walking the `why` reasons of `lock` upwards. Shortest first.
pub fn chains_to(lock: &Lock, name: &str, arch: Option<&str>, limit: usize) -> Vec<Chain> {
    let by_label: BTreeMap<String, &LockedPackage> =
        lock.packages.iter().map(|p| (p.label(), p)).collect();
    let mut out = Vec::new();
    let targets: BTreeSet<String> = lock
        .packages
        .iter()
        .filter(|p| p.name == name && arch.is_none_or(|a| p.architecture == a))
        .map(LockedPackage::label)
        .collect();
    for target in targets {
        // Breadth first over partial chains (target first), so shorter chains come first.
        let mut queue = std::collections::VecDeque::from([vec![target.clone()]]);
        let mut found = 0;
        while let Some(path) = queue.pop_front() {
            if found >= limit || queue.len() > 100_000 {
                break;
            }
            let last = path.last().expect("never empty");
            let Some(pkg) = by_label.get(last) else {
                continue;
            };
            for reason in &pkg.why {
                if reason.starts_with("query ") || reason.starts_with("seed") {
                    // A root: the chain is complete.
                    let mut steps = vec![(last.clone(), reason.clone())];
                    for pair in path.windows(2).rev() {
                        let (child, parent) = (&pair[0], &pair[1]);
                        let via = by_label[child]
                            .why
                            .iter()
                            .find_map(|w| w.strip_prefix(&format!("{parent}: ")))
                            .unwrap_or_default()
                            .to_owned();
                        steps.push((child.clone(), via));
                    }
                    out.push(Chain { steps });
                    found += 1;
                } else if let Some((parent, _)) = reason.split_once(": ")
                    && by_label.contains_key(parent)
                    && !path.iter().any(|p| p == parent)
                {
                    let mut longer = path.clone();
                    longer.push(parent.to_owned());
                    queue.push_back(longer);
                }
            }
        }
    }
    out
}
