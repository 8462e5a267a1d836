//! The commands beside `build`, as library functions: each reads its inputs, calls the
//! stages and returns what `main` prints (text, or JSON with `--json`).

pub mod why;

use crate::lock::{ChangeKind, DistDiff, LOCK_NAME, Lock, diff};
use anyhow::{Context, Result};
use std::path::Path;

/// A lock named on the command line: a `mirror.lock` file, or a published prefix (or
/// sources prefix) directory holding one.
pub fn read_lock_arg(path: &Path) -> Result<Lock> {
    let file = if path.is_dir() {
        path.join(LOCK_NAME)
    } else {
        path.to_path_buf()
    };
    Lock::read(&file).with_context(|| format!("reading the lock {}", path.display()))
}

/// `diff A B`: what changes from A to B.
pub fn diff_locks(a: &Path, b: &Path) -> Result<Vec<DistDiff>> {
    Ok(diff(&read_lock_arg(a)?, &read_lock_arg(b)?))
}

/// `diff` / `check` without arguments: each prefix's live publish (nothing, for a prefix
/// not published yet) against what a build would publish now.
pub fn diff_live(opts: &crate::BuildOptions) -> Result<Vec<DistDiff>> {
    let mut out = Vec::new();
    for new in crate::would_publish(opts)? {
        let live_path = opts.output.join(&new.prefix).join(LOCK_NAME);
        let live = if live_path.exists() {
            Lock::read(&live_path)?
        } else {
            Lock::empty(&new.prefix)
        };
        out.extend(diff(&live, &new));
    }
    Ok(out)
}

/// `diff A` with one argument: A against what a build would publish now.
pub fn diff_against_now(a: &Path, opts: &crate::BuildOptions) -> Result<Vec<DistDiff>> {
    let old = read_lock_arg(a)?;
    let now = crate::would_publish(opts)?;
    let new = now
        .into_iter()
        .find(|l| l.prefix == old.prefix)
        .unwrap_or_else(|| Lock::empty(&old.prefix));
    Ok(diff(&old, &new))
}

/// Counts of each kind of change.
#[derive(Debug, Default, serde::Serialize)]
pub struct Totals {
    /// Packages added.
    pub added: usize,
    /// Packages removed.
    pub removed: usize,
    /// Packages upgraded.
    pub upgraded: usize,
    /// Packages downgraded.
    pub downgraded: usize,
    /// Same version, another file.
    pub rebuilt: usize,
}

/// Count the changes.
pub fn totals(diffs: &[DistDiff]) -> Totals {
    let mut t = Totals::default();
    for c in diffs.iter().flat_map(|d| &d.changes) {
        *match c.kind {
            ChangeKind::Added => &mut t.added,
            ChangeKind::Removed => &mut t.removed,
            ChangeKind::Upgraded => &mut t.upgraded,
            ChangeKind::Downgraded => &mut t.downgraded,
            ChangeKind::Rebuilt => &mut t.rebuilt,
        } += 1;
    }
    t
}

/// The one-line total.
pub fn total_line(t: &Totals) -> String {
    format!(
        "total: {} added, {} removed, {} upgraded, {} downgraded, {} rebuilt",
        t.added, t.removed, t.upgraded, t.downgraded, t.rebuilt
    )
}

/// The diff for people: one line per change, grouped by prefix and dist, then the total.
pub fn diff_text(diffs: &[DistDiff]) -> String {
    let mut out = String::new();
    for d in diffs {
        out.push_str(&format!("{}/{}:\n", d.prefix, d.dist));
        for c in &d.changes {
            let (mark, versions) = match c.kind {
                ChangeKind::Added => ("+", c.to.clone().unwrap_or_default()),
                ChangeKind::Removed => ("-", c.from.clone().unwrap_or_default()),
                ChangeKind::Upgraded | ChangeKind::Downgraded | ChangeKind::Rebuilt => (
                    match c.kind {
                        ChangeKind::Upgraded => "↑",
                        ChangeKind::Downgraded => "↓",
                        _ => "~",
                    },
                    format!(
                        "{} → {}",
                        c.from.as_deref().unwrap_or(""),
                        c.to.as_deref().unwrap_or("")
                    ),
                ),
            };
            out.push_str(&format!(
                "  {mark} {:<10} {} {} {versions} (source {})\n",
                c.kind.as_str(),
                c.name,
                c.architecture,
                c.source
            ));
        }
    }
    out.push_str(&total_line(&totals(diffs)));
    out.push('\n');
    out
}

/// The diff for machines.
pub fn diff_json(diffs: &[DistDiff]) -> serde_json::Value {
    serde_json::json!({
        "changed": diffs.iter().any(|d| !d.changes.is_empty()),
        "dists": diffs,
        "total": totals(diffs),
    })
}
