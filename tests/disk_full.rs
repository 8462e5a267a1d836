//! A full disk says so: with the cache on a small tmpfs, a build that cannot store a package
//! names the file it was writing and that the device is full (not "corrupt data"), and the
//! published tree stays as it was. Needs root (mount), as the e2e suites do.

mod common;

use common::*;
use std::process::Command;

struct Mounted(std::path::PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_cache_filesystem_is_named_and_publishes_nothing() {
    let fx = Fixture::basic();
    fx.source("p", "s").packages("app\n").write();
    fx.ws.build().assert_success();
    let before = fx.ws.snapshot();

    // A new version too large for a 2 MiB cache filesystem.
    fx.repo.rebuild(
        &basic_archive(Upstream::new(&fx.key))
            .package(Pkg::new("big", "1.0").payload_size(4 << 20)),
    );
    std::fs::write(fx.ws.sources().join("p/s/packages.txt"), "app\nbig\n").unwrap();
    std::fs::remove_dir_all(fx.ws.cache()).unwrap();
    std::fs::create_dir_all(fx.ws.cache()).unwrap();
    let status = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
        .arg(fx.ws.cache())
        .status()
        .unwrap();
    assert!(status.success(), "mount -t tmpfs (this test needs root)");
    let _mounted = Mounted(fx.ws.cache());

    let r = fx.ws.build();
    r.assert_failure_mentioning(&[
        "no space left on device while writing",
        &fx.ws.cache().display().to_string(),
        "hint: a filesystem is full",
    ]);
    assert!(!r.stderr.contains("corrupt"), "{}", r.stderr);
    assert_eq!(
        fx.ws.snapshot(),
        before,
        "a failed build changed the published tree"
    );
}
