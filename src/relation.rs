//! Dependency fields: `Depends`, `Pre-Depends`, `Recommends`, `Suggests`, `Provides`,
//! and the version relations used by queries in `packages.txt`.
//!
//! `a (>= 1) | b:any, c [amd64]` is a list of groups (`,`) of alternatives (`|`).

use anyhow::{Context, Result, anyhow, bail};
use debversion::Version;
use std::cmp::Ordering;
use std::fmt;

/// A version comparison operator as written in control files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// `<<`
    Less,
    /// `<=` (also the obsolete `<`)
    LessEq,
    /// `=`
    Eq,
    /// `>=` (also the obsolete `>`)
    GreaterEq,
    /// `>>`
    Greater,
}

impl Op {
    /// Parse an operator; `<` and `>` are dpkg's obsolete spellings of `<=` and `>=`.
    pub fn parse(s: &str) -> Option<Op> {
        Some(match s {
            "<<" => Op::Less,
            "<=" | "<" => Op::LessEq,
            "=" => Op::Eq,
            ">=" | ">" => Op::GreaterEq,
            ">>" => Op::Greater,
            _ => return None,
        })
    }

    /// Whether `ord` (candidate compared with the wanted version) satisfies the operator.
    pub fn accepts(self, ord: Ordering) -> bool {
        match self {
            Op::Less => ord == Ordering::Less,
            Op::LessEq => ord != Ordering::Greater,
            Op::Eq => ord == Ordering::Equal,
            Op::GreaterEq => ord != Ordering::Less,
            Op::Greater => ord == Ordering::Greater,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Op::Less => "<<",
            Op::LessEq => "<=",
            Op::Eq => "=",
            Op::GreaterEq => ">=",
            Op::Greater => ">>",
        }
    }
}

/// A version requirement such as `>= 1.2-3`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VersionReq {
    /// The comparison.
    pub op: Op,
    /// The version compared against.
    pub version: Version,
}

impl VersionReq {
    /// Whether `candidate` satisfies this requirement, by Debian version rules.
    pub fn matches(&self, candidate: &Version) -> bool {
        self.op.accepts(candidate.cmp(&self.version))
    }
}

impl fmt::Display for VersionReq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.op.as_str(), self.version)
    }
}

/// The `:qualifier` after a package name in a dependency.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ArchQualifier {
    /// No qualifier: a package of the same architecture (or `all`, or `Multi-Arch: foreign`).
    None,
    /// `:any`: satisfied by a `Multi-Arch: allowed` package.
    Any,
    /// `:native`: a package of the native architecture.
    Native,
    /// `:<arch>`: a package of that architecture.
    Arch(String),
}

/// One alternative of a dependency: `name[:qual] [(op version)] [arch list]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Dependency {
    /// The package (or virtual package) name.
    pub name: String,
    /// The architecture qualifier.
    pub qualifier: ArchQualifier,
    /// The version requirement, if any.
    pub version: Option<VersionReq>,
    /// Architecture restriction list (`[amd64 !i386]`), empty when absent.
    pub arches: Vec<String>,
}

impl Dependency {
    /// Whether this alternative applies on `arch` (architecture restriction lists).
    pub fn applies_to(&self, arch: &str) -> bool {
        if self.arches.is_empty() {
            return true;
        }
        let negated = self.arches.iter().all(|a| a.starts_with('!'));
        if negated {
            !self.arches.iter().any(|a| &a[1..] == arch)
        } else {
            self.arches.iter().any(|a| a == arch || a == "any")
        }
    }
}

impl fmt::Display for Dependency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        match &self.qualifier {
            ArchQualifier::None => {}
            ArchQualifier::Any => f.write_str(":any")?,
            ArchQualifier::Native => f.write_str(":native")?,
            ArchQualifier::Arch(a) => write!(f, ":{a}")?,
        }
        if let Some(v) = &self.version {
            write!(f, " ({v})")?;
        }
        Ok(())
    }
}

/// A group of alternatives (`a | b`); satisfied when any one is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Alternatives(pub Vec<Dependency>);

impl fmt::Display for Alternatives {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

/// Parse a dependency field (`Depends`, `Pre-Depends`, `Recommends`, `Suggests`).
pub fn parse_depends(field: &str) -> Result<Vec<Alternatives>> {
    let mut groups = Vec::new();
    for group in field.split(',') {
        let group = group.trim();
        if group.is_empty() {
            continue; // tolerate trailing commas, as dpkg does
        }
        let alternatives = group
            .split('|')
            .map(|alt| parse_dependency(alt.trim()))
            .collect::<Result<Vec<_>>>()?;
        groups.push(Alternatives(alternatives));
    }
    Ok(groups)
}

/// Parse one `name[:qual] [(op version)] [arch list] [<profiles>]`.
pub fn parse_dependency(text: &str) -> Result<Dependency> {
    let text = text.trim();
    let (name, qualifier, mut rest) = split_name(text);
    check_package_name(name).with_context(|| format!("in dependency {text:?}"))?;
    rest = rest.trim_start();
    let mut version = None;
    if let Some(after) = rest.strip_prefix('(') {
        let close = after
            .find(')')
            .ok_or_else(|| anyhow!("unclosed `(` in dependency {text:?}"))?;
        version = Some(
            parse_version_req(&after[..close])
                .with_context(|| format!("in dependency {text:?}"))?,
        );
        rest = after[close + 1..].trim_start();
    }
    let mut arches = Vec::new();
    if let Some(after) = rest.strip_prefix('[') {
        let close = after
            .find(']')
            .ok_or_else(|| anyhow!("unclosed `[` in dependency {text:?}"))?;
        arches = after[..close]
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        rest = after[close + 1..].trim_start();
    }
    // Build profiles (`<!nocheck>`) only matter for Build-Depends; accept and ignore.
    while let Some(after) = rest.strip_prefix('<') {
        let close = after
            .find('>')
            .ok_or_else(|| anyhow!("unclosed `<` in dependency {text:?}"))?;
        rest = after[close + 1..].trim_start();
    }
    if !rest.is_empty() {
        bail!("unexpected {rest:?} in dependency {text:?}");
    }
    Ok(Dependency {
        name: name.to_owned(),
        qualifier,
        version,
        arches,
    })
}

/// The name, its qualifier, and what follows, of a trimmed dependency.
fn split_name(text: &str) -> (&str, ArchQualifier, &str) {
    let name_end = text
        .find(|c: char| c.is_whitespace() || c == '(' || c == '[' || c == '<')
        .unwrap_or(text.len());
    let (full_name, rest) = text.split_at(name_end);
    match full_name.split_once(':') {
        None => (full_name, ArchQualifier::None, rest),
        Some((n, "any")) => (n, ArchQualifier::Any, rest),
        Some((n, "native")) => (n, ArchQualifier::Native, rest),
        Some((n, arch)) => (n, ArchQualifier::Arch(arch.to_owned()), rest),
    }
}

/// Parse `op version` (the inside of the parentheses).
pub fn parse_version_req(text: &str) -> Result<VersionReq> {
    let text = text.trim();
    let op_len = text
        .find(|c: char| c.is_ascii_alphanumeric() || c.is_whitespace())
        .unwrap_or(text.len());
    let (op, version) = text.split_at(op_len);
    let op = Op::parse(op).ok_or_else(|| {
        anyhow!("unknown version operator {op:?} (expected one of << <= = >= >>)")
    })?;
    Ok(VersionReq {
        op,
        version: parse_version(version.trim())?,
    })
}

/// Parse a Debian version, with a readable error.
pub fn parse_version(text: &str) -> Result<Version> {
    if text.is_empty() {
        bail!("missing version");
    }
    text.parse::<Version>()
        .map_err(|_| anyhow!("invalid Debian version {text:?}"))
}

/// Check a package name against Debian policy (lowercase letters, digits, `+-.`).
pub fn check_package_name(name: &str) -> Result<()> {
    let ok = name.len() >= 2
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-._".contains(&b))
        && name.as_bytes()[0].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        bail!("invalid package name {name:?}")
    }
}

/// One entry of a `Provides` field: a virtual name, optionally with `(= version)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provided {
    /// The provided (virtual) package name.
    pub name: String,
    /// The provided version; an unversioned Provides satisfies only unversioned dependencies.
    pub version: Option<Version>,
}

/// Parse a `Provides` field as apt reads it: entries with an operator other than `=`
/// are ignored (apt warns and drops them). Returns the entries and how many were ignored.
pub fn parse_provides(field: &str) -> Result<(Vec<Provided>, usize)> {
    let mut out = Vec::new();
    let mut ignored = 0;
    for dep in parse_depends(field)? {
        for d in dep.0 {
            let version = match d.version {
                None => None,
                Some(VersionReq {
                    op: Op::Eq,
                    version,
                }) => Some(version),
                Some(_) => {
                    ignored += 1;
                    continue;
                }
            };
            out.push(Provided {
                name: d.name,
                version,
            });
        }
    }
    Ok((out, ignored))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_groups_alternatives_versions_and_qualifiers() {
        let deps = parse_depends(
            "libc6 (>= 2.34), python3:any (>= 3.11~), default-mta | mail-transport-agent, foo [!i386], bar:native,",
        )
        .unwrap();
        assert_eq!(deps.len(), 5);
        assert_eq!(deps[0].0[0].name, "libc6");
        assert_eq!(deps[0].0[0].version.as_ref().unwrap().op, Op::GreaterEq);
        assert_eq!(deps[1].0[0].qualifier, ArchQualifier::Any);
        assert_eq!(deps[1].0[0].to_string(), "python3:any (>= 3.11~)");
        assert_eq!(deps[2].0.len(), 2);
        assert_eq!(deps[2].to_string(), "default-mta | mail-transport-agent");
        assert!(!deps[3].0[0].applies_to("i386"));
        assert!(deps[3].0[0].applies_to("amd64"));
        assert_eq!(deps[4].0[0].qualifier, ArchQualifier::Native);
    }

    #[test]
    fn tight_spacing_and_obsolete_operators() {
        let d = parse_dependency("foo(>>1:2.0-1)").unwrap();
        assert_eq!(d.version.unwrap().op, Op::Greater);
        let d = parse_dependency("foo (< 2)").unwrap();
        assert_eq!(d.version.unwrap().op, Op::LessEq);
    }

    #[test]
    fn rejects_malformed() {
        assert!(parse_dependency("foo (>= 1").is_err());
        assert!(parse_dependency("foo (~= 1)").is_err());
        assert!(parse_dependency("Foo").is_err());
        assert!(parse_dependency("foo bar").is_err());
        assert!(parse_dependency("foo ()").is_err());
    }

    #[test]
    fn version_requirements_follow_debian_rules() {
        let req = parse_version_req(">= 1.0~rc1").unwrap();
        assert!(req.matches(&"1.0".parse().unwrap()));
        assert!(req.matches(&"1.0~rc1".parse().unwrap()));
        assert!(!req.matches(&"1.0~beta".parse().unwrap()));
        let req = parse_version_req("<< 1:0.1").unwrap();
        assert!(req.matches(&"9.9".parse().unwrap()), "epoch wins");
    }

    #[test]
    fn provides_with_and_without_versions() {
        let (p, ignored) = parse_provides("mail-transport-agent, libfoo-abi (= 2.1)").unwrap();
        assert_eq!(p[0].version, None);
        assert_eq!(p[1].version, Some("2.1".parse().unwrap()));
        assert_eq!(ignored, 0);
        // apt drops a Provides with another operator (with a warning) and keeps the rest.
        let (p, ignored) = parse_provides("foo (>= 1), bar").unwrap();
        assert_eq!((p.len(), p[0].name.as_str(), ignored), (1, "bar", 1));
    }
}
