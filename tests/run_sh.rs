//! `./run.sh`'s toolchain set-up, as a newcomer meets it: with no cargo on PATH and no way to
//! download rustup it says exactly what to install; with a cargo older than Cargo.toml's
//! `rust-version` first on PATH the version check triggers. (rustup's download is pointed at a
//! closed port on 127.0.0.1, so nothing is installed here.)

use std::path::Path;
use std::process::Command;

fn run_sh(path: &str, home: &Path) -> (bool, String) {
    let out = Command::new("bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("run.sh"))
        .arg("build")
        .env_clear()
        .env("PATH", path)
        .env("HOME", home)
        .env("RUSTUP_INIT_URL", "https://127.0.0.1:9/rustup-init.sh")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn rust_version() -> String {
    let toml =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    toml.lines()
        .find_map(|l| l.strip_prefix("rust-version = \""))
        .unwrap()
        .trim_end_matches('"')
        .to_owned()
}

#[test]
fn run_sh_without_cargo_says_what_to_install() {
    let home = tempfile::tempdir().unwrap();
    let (ok, err) = run_sh("/usr/sbin:/usr/bin:/sbin:/bin", home.path());
    assert!(!ok, "run.sh succeeded without cargo: {err}");
    assert!(err.contains("found: no cargo"), "{err}");
    assert!(
        err.contains(&format!("Install Rust {} or newer", rust_version())),
        "{err}"
    );
    assert!(err.contains("sh.rustup.rs"), "{err}");
}

#[test]
fn run_sh_with_an_old_cargo_triggers_the_version_check() {
    let home = tempfile::tempdir().unwrap();
    let bin = home.path().join("old-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let cargo = bin.join("cargo");
    std::fs::write(
        &cargo,
        "#!/bin/sh\necho 'cargo 1.63.0 (fd9c4297c 2022-07-01)'\n",
    )
    .unwrap();
    std::os::unix::fs::PermissionsExt::set_mode(
        &mut std::fs::metadata(&cargo).unwrap().permissions(),
        0o755,
    );
    std::fs::set_permissions(&cargo, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let (ok, err) = run_sh(
        &format!("{}:/usr/sbin:/usr/bin:/sbin:/bin", bin.display()),
        home.path(),
    );
    assert!(!ok, "run.sh went on with cargo 1.63: {err}");
    assert!(err.contains("found: cargo 1.63.0"), "{err}");
    assert!(
        err.contains(&format!("Rust {} or newer is needed", rust_version())),
        "{err}"
    );
}
