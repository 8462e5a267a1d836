//! The `mini-mirror` command: parses flags and calls the library.

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    version,
    about = "Build a verified, dependency-closed, re-signed partial APT repository"
)]
struct Cli {
    /// More detail (-v: debug, -vv: trace). MINI_MIRROR_LOG also sets the filter.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Only warnings and errors.
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Check a signing key against apt 3's (Debian trixie's) policy: prints warnings, exits
    /// non-zero when trixie clients would refuse its signatures.
    Check {
        /// The key file (secret or public, armored or binary) [default: the key builds use].
        #[arg(long, env = "RELEASE_SIGN_KEY_PATH")]
        sign_key: Option<PathBuf>,
        /// Where the generated key is kept (used when no --sign-key is given).
        #[arg(long, env = "MINI_MIRROR_STATE")]
        state_dir: Option<PathBuf>,
    },
}

/// Where the sources, the published trees and the cache are (shared by the commands that
/// read upstream).
#[derive(clap::Args, Clone)]
struct Places {
    /// The sources tree: <prefix>/<name>/{source.txt,packages.txt,settings.toml}.
    #[arg(long, default_value = "sources")]
    sources: PathBuf,
    /// Where to publish: <output>/<prefix>/{dists,pool}.
    #[arg(long, default_value = "public")]
    output: PathBuf,
    /// Download cache shared across builds [default: /var/cache/mini-mirror for root, ~/.cache/mini-mirror otherwise].
    #[arg(long, env = "MINI_MIRROR_CACHE")]
    cache: Option<PathBuf>,
    /// Accept an upstream Release whose Origin, Label or Codename changed since the
    /// last one accepted (apt-get update --allow-releaseinfo-change); check why first.
    #[arg(long)]
    allow_releaseinfo_change: bool,
}

/// The signing key of a publish (`build`, `rollback`).
#[derive(clap::Args)]
struct Signing {
    /// Where a generated signing key is kept when no --sign-key is given
    /// [default: /var/lib/mini-mirror for root, ~/.local/state/mini-mirror otherwise].
    #[arg(long, env = "MINI_MIRROR_STATE")]
    state_dir: Option<PathBuf>,
    /// The operator's OpenPGP secret key (armored or binary). Give it twice (old and
    /// new key) during a key rotation: every Release is signed by each.
    #[arg(long, env = "RELEASE_SIGN_KEY_PATH")]
    sign_key: Vec<PathBuf>,
    /// File holding the key's passphrase (else env RELEASE_SIGN_KEY_PASSPHRASE).
    #[arg(long)]
    passphrase_file: Option<PathBuf>,
}

/// A publish's key settings, resolved: state dir, key files, passphrase.
type ResolvedSigning = (
    PathBuf,
    Vec<PathBuf>,
    Option<sequoia_openpgp::crypto::Password>,
);

impl Signing {
    /// Defaults applied; the passphrase from `--passphrase-file`, else the environment.
    fn resolve(self, env_passphrase: Option<String>) -> anyhow::Result<ResolvedSigning> {
        let passphrase = match self.passphrase_file {
            Some(path) => {
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    anyhow::anyhow!("reading passphrase file {}: {e}", path.display())
                })?;
                Some(mini_mirror::openpgp::password(&text))
            }
            None => env_passphrase
                .as_deref()
                .map(mini_mirror::openpgp::password),
        };
        Ok((
            self.state_dir
                .unwrap_or_else(mini_mirror::cache::default_state_dir),
            self.sign_key,
            passphrase,
        ))
    }
}

/// `mini-mirror build`'s flags.
#[derive(clap::Args)]
struct BuildArgs {
    #[command(flatten)]
    places: Places,
    #[command(flatten)]
    signing: Signing,
    /// Requests to upstream at once, byte ranges of large files included. Archives
    /// answer each request with some latency, so a mirror of many small packages is
    /// latency-bound: 32 halves jammy's pool phase against 16 (uv's default is 50).
    /// Lower it for a strict proxy or a small mirror.
    #[arg(long, short, default_value_t = 32)]
    jobs: usize,
    /// Print the wall time of each phase before the summary.
    #[arg(long)]
    timings: bool,
    /// Rebuild and re-sign even when upstream and sources are unchanged since the
    /// live tree was published (by default such a prefix is left as it is).
    #[arg(long)]
    force: bool,
    /// Publish even when more than half of a live tree's packages would go (by default
    /// such a build is refused, naming how many).
    #[arg(long)]
    allow_shrink: bool,
    /// Publish exactly what sources/<prefix>/mirror.lock names, resolving nothing:
    /// packages from the cache, upstream or the source's snapshot_url, each checked
    /// against the lock.
    #[arg(long)]
    locked: bool,
    /// Print one JSON object on stdout at the end (logs stay on stderr).
    #[arg(long)]
    json: bool,
    /// Snapshots kept per prefix, the new one included [default: the sources' `keep`,
    /// else 5]; older ones go, with the pool files only they refer to.
    #[arg(long)]
    keep: Option<usize>,
    /// The URL clients reach the output at (http://mirror:8080): published Releases then
    /// say `Snapshots: <URL>/<prefix>/snapshots/@SNAPSHOTID@/`, so that
    /// `apt update --snapshot ID` is served by the mirror (without it: `Snapshots: no`).
    #[arg(long, env = "MINI_MIRROR_BASE_URL")]
    base_url: Option<String>,
}

/// How registries are reached (`image`, `pull`, `digest`, `export`, `import`).
#[derive(clap::Args)]
struct RegistryFlags {
    /// PEM file of CA certificates to trust besides the system roots (repeatable).
    #[arg(long = "ca-cert", env = "EXTRA_CA_CERTS", value_delimiter = ':')]
    ca_certs: Vec<PathBuf>,
    /// A registry (host[:port]) to speak plain HTTP to (repeatable; loopback registries
    /// that only speak HTTP are detected without it).
    #[arg(long = "insecure-registry")]
    insecure_registries: Vec<String>,
    /// Cache for blobs (shared with the download cache).
    #[arg(long, env = "MINI_MIRROR_CACHE")]
    cache: Option<PathBuf>,
}

impl RegistryFlags {
    fn split(self) -> (mini_mirror::oci::Access, PathBuf) {
        (
            mini_mirror::oci::Access {
                ca_certs: self.ca_certs,
                insecure_registries: self.insecure_registries,
            },
            self.cache.unwrap_or_else(mini_mirror::cache::default_dir),
        )
    }
}

/// Parse an image location (registry reference, oci:DIR[:TAG], oci-archive:FILE[:TAG]).
fn location(s: &str) -> anyhow::Result<mini_mirror::oci::Location> {
    mini_mirror::oci::Location::parse(s)
}

#[derive(Subcommand)]
enum Command {
    /// The signing key.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// Build (or rebuild) the published trees from a sources/ tree.
    Build(BuildArgs),
    /// What changes between two locks (files, or published prefixes); with one, from it to
    /// what a build would publish now; with none, from each live publish to that.
    Diff {
        /// The old side: a mirror.lock, or a directory holding one.
        a: Option<PathBuf>,
        /// The new side.
        b: Option<PathBuf>,
        #[command(flatten)]
        places: Places,
        /// JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Exit 0 when a build would publish what is live, 1 when it would change it (printing
    /// the changes), 2 on error. Downloads indices, never packages. For CI schedules.
    Check {
        #[command(flatten)]
        places: Places,
        /// JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// List each prefix's snapshots: ID, packages, bytes, bytes only it refers to, current.
    Snapshots {
        /// Where the published trees are.
        #[arg(long, default_value = "public")]
        output: PathBuf,
        /// Only this prefix.
        #[arg(long)]
        prefix: Option<String>,
        /// JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Make an earlier snapshot current again, as a new snapshot (new Date, new
    /// signatures, so clients take it); downloads nothing.
    Rollback {
        /// Where the published trees are.
        #[arg(long, default_value = "public")]
        output: PathBuf,
        /// The prefix (needed when several are published).
        #[arg(long)]
        prefix: Option<String>,
        /// The snapshot to publish again [default: the one before the current].
        #[arg(long)]
        to: Option<String>,
        /// Snapshots kept, the new one included.
        #[arg(long, default_value_t = 5)]
        keep: usize,
        /// Download cache.
        #[arg(long, env = "MINI_MIRROR_CACHE")]
        cache: Option<PathBuf>,
        #[command(flatten)]
        signing: Signing,
    },
    /// Remove cache entries no kept snapshot, sources lock or cached Release refers to.
    Purge {
        /// Download cache.
        #[arg(long, env = "MINI_MIRROR_CACHE")]
        cache: Option<PathBuf>,
        /// Where the published trees are (their snapshots are kept).
        #[arg(long, default_value = "public")]
        output: PathBuf,
        /// The sources tree (its locks are kept).
        #[arg(long, default_value = "sources")]
        sources: PathBuf,
        /// Only entries not modified for this many days.
        #[arg(long, default_value_t = 0)]
        older_than: u64,
        /// Say what would go; remove nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Serve the published trees over HTTP, with the image's cache and access rules (for a
    /// first look, small sites and tests; the image is the production server).
    Serve {
        /// Where the published trees are.
        #[arg(long, default_value = "public")]
        output: PathBuf,
        /// Address to listen on (127.0.0.1:0 picks a free port, printed on stderr).
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
    },
    /// Make the mirror's container image without a container engine: the base image
    /// (nginx), the nginx configuration, the pool in content-stable layers and a small
    /// layer with dists/ and keyrings; pushes only the blobs the target lacks.
    Image {
        /// The published tree.
        #[arg(long, default_value = "public")]
        tree: PathBuf,
        /// The base image: REGISTRY/REPO:TAG, oci:DIR[:TAG] or oci-archive:FILE[:TAG].
        #[arg(long, value_parser = location)]
        base: mini_mirror::oci::Location,
        /// Where the image goes: REGISTRY/REPO:TAG or oci:DIR[:TAG].
        #[arg(long, value_parser = location)]
        tag: mini_mirror::oci::Location,
        /// Expected size of a pool layer in bytes [default: 32 MiB, more for pools
        /// above 3 GiB so that there are at most ~96 pool layers].
        #[arg(long)]
        layer_size: Option<u64>,
        /// A label KEY=VALUE (repeatable).
        #[arg(long = "label", value_parser = key_value)]
        labels: Vec<(String, String)>,
        /// Manifest format.
        #[arg(long, value_enum, default_value = "docker")]
        format: mini_mirror::oci::image::Format,
        #[command(flatten)]
        registry: RegistryFlags,
        /// JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Extract the tree of a mini-mirror image into DIR, every blob checked against its
    /// digest and every prefix's InRelease against the keyring, then switched into place.
    Pull {
        /// The image.
        #[arg(value_parser = location)]
        image: mini_mirror::oci::Location,
        /// Where the tree goes (an output directory).
        dir: PathBuf,
        /// Keyring the tree's signatures must verify with.
        #[arg(
            long,
            required_unless_present = "keyring_sha256",
            conflicts_with = "keyring_sha256"
        )]
        keyring: Option<PathBuf>,
        /// Trust each prefix's own published keyring only if its SHA256 is this.
        #[arg(long)]
        keyring_sha256: Option<String>,
        /// Replace the trees DIR already holds.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        registry: RegistryFlags,
        /// JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Print an image's manifest digest; exit 2 when it does not exist.
    Digest {
        /// The image.
        #[arg(value_parser = location)]
        image: mini_mirror::oci::Location,
        #[command(flatten)]
        registry: RegistryFlags,
    },
    /// Write an image as an OCI archive for a one-way link: manifest, config and the blobs
    /// the far side lacks (all without --since).
    Export {
        /// The image.
        #[arg(value_parser = location)]
        image: mini_mirror::oci::Location,
        /// The bundle file to write.
        #[arg(long)]
        to: PathBuf,
        /// What the far side has: a previous bundle file, an image reference, or a manifest
        /// digest in the image's repository.
        #[arg(long)]
        since: Option<String>,
        #[command(flatten)]
        registry: RegistryFlags,
        /// JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Push a bundle into a registry (or oci:DIR): every digest checked, only missing
    /// blobs sent, the manifest last.
    Import {
        /// The bundle file.
        file: PathBuf,
        /// Where it goes: REGISTRY/REPO:TAG or oci:DIR[:TAG].
        #[arg(long, value_parser = location)]
        to: mini_mirror::oci::Location,
        #[command(flatten)]
        registry: RegistryFlags,
        /// JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff).
    Man,
    /// Why a package is in the mirror: every chain from a query to it. Reads the published
    /// lock and indices only.
    Why {
        /// Package name.
        package: String,
        /// Only this published prefix.
        #[arg(long)]
        prefix: Option<String>,
        /// Only this architecture.
        #[arg(long)]
        arch: Option<String>,
        /// Where the published trees are.
        #[arg(long, default_value = "public")]
        output: PathBuf,
    },
}

impl Places {
    fn options(self) -> mini_mirror::BuildOptions {
        mini_mirror::BuildOptions {
            sources: self.sources,
            output: self.output,
            cache: self.cache.unwrap_or_else(mini_mirror::cache::default_dir),
            state_dir: mini_mirror::cache::default_state_dir(),
            sign_keys: Vec::new(),
            passphrase: None,
            jobs: 32,
            force: false,
            release_rules: mini_mirror::upstream::ReleaseRules {
                allow_releaseinfo_change: self.allow_releaseinfo_change,
            },
            allow_shrink: false,
            locked: false,
            keep: None,
            base_url: None,
        }
    }
}

fn key_value(s: &str) -> anyhow::Result<(String, String)> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| anyhow::anyhow!("{s:?}: expected KEY=VALUE"))?;
    Ok((k.to_owned(), v.to_owned()))
}

/// `diff` and `check`: print the changes; `check` turns them into its exit code.
fn diff_command(
    a: Option<PathBuf>,
    b: Option<PathBuf>,
    places: Places,
    json: bool,
    check: bool,
) -> anyhow::Result<ExitCode> {
    let opts = places.options();
    let diffs = match (&a, &b) {
        (Some(a), Some(b)) => mini_mirror::commands::diff_locks(a, b),
        (Some(a), None) => mini_mirror::commands::diff_against_now(a, &opts),
        _ => mini_mirror::commands::diff_live(&opts),
    }?;
    if json {
        println!("{}", mini_mirror::commands::diff_json(&diffs));
    } else if check && diffs.is_empty() {
        println!("up to date: a build would publish what is live");
    } else {
        print!("{}", mini_mirror::commands::diff_text(&diffs));
    }
    Ok(if check && !diffs.is_empty() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// `mini-mirror key check`: the verdict on one line each, then `ok` or the refusal.
fn key_check(sign_key: Option<PathBuf>, state_dir: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let path = sign_key.unwrap_or_else(|| {
        state_dir
            .unwrap_or_else(mini_mirror::cache::default_state_dir)
            .join("signing-key.asc")
    });
    let warnings = std::fs::read(&path)
        .map_err(anyhow::Error::from)
        .and_then(|bytes| mini_mirror::openpgp::check_key_bytes(&bytes))
        .with_context(|| path.display().to_string())?;
    for w in &warnings {
        println!("warning: {w}");
    }
    println!(
        "ok: {} is accepted by apt 3 (Debian trixie) clients{}",
        path.display(),
        if warnings.is_empty() {
            ""
        } else {
            ", with the warnings above"
        }
    );
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    // Take the passphrase out of the environment first, while we are single-threaded,
    // so that no child process or later code can see it.
    let env_passphrase = std::env::var("RELEASE_SIGN_KEY_PASSPHRASE").ok();
    // SAFETY: no other thread exists yet.
    unsafe { std::env::remove_var("RELEASE_SIGN_KEY_PASSPHRASE") };

    // Buffers of a megabyte or more (downloaded indices, decompressed text) go straight to
    // mmap and back to the system when freed; glibc's default raises this threshold after
    // the first large free, which keeps freed index buffers resident for the whole build.
    // SAFETY: mallopt only tunes the allocator; called before any thread exists.
    unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20) };

    let cli = Cli::parse();
    init_logging(cli.verbose, cli.quiet);
    // `check`, `diff` and `why` answer 0/1 as their result: an error is 2.
    let error_code = match cli.command {
        Command::Check { .. } | Command::Diff { .. } | Command::Why { .. } => 2,
        _ => 1,
    };
    match run(cli.command, env_passphrase) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            let disk_full = e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::StorageFull)
            });
            if disk_full {
                eprintln!(
                    "hint: a filesystem is full (the file named above): free space or point \
                     --cache/--output elsewhere, and run again; nothing was published"
                );
            }
            ExitCode::from(error_code)
        }
    }
}

/// Run one command; its errors are printed by `main`.
fn run(command: Command, env_passphrase: Option<String>) -> anyhow::Result<ExitCode> {
    use mini_mirror::cache::default_dir;
    match command {
        Command::Key {
            command:
                KeyCommand::Check {
                    sign_key,
                    state_dir,
                },
        } => key_check(sign_key, state_dir),
        Command::Diff { a, b, places, json } => diff_command(a, b, places, json, false),
        Command::Check { places, json } => diff_command(None, None, places, json, true),
        Command::Why {
            package,
            prefix,
            arch,
            output,
        } => match mini_mirror::commands::why::why(
            &output,
            &package,
            prefix.as_deref(),
            arch.as_deref(),
        )? {
            Some(text) => {
                print!("{text}");
                Ok(ExitCode::SUCCESS)
            }
            None => {
                println!("{package} is not in the mirror ({})", output.display());
                Ok(ExitCode::FAILURE)
            }
        },
        Command::Snapshots {
            output,
            prefix,
            json,
        } => snapshots_command(&output, prefix.as_deref(), json),
        Command::Rollback {
            output,
            prefix,
            to,
            keep,
            cache,
            signing,
        } => {
            let (state_dir, sign_keys, passphrase) = signing.resolve(env_passphrase)?;
            let (prefix, from, id) = mini_mirror::rollback(&mini_mirror::RollbackOptions {
                output,
                prefix,
                to,
                keep,
                cache: cache.unwrap_or_else(default_dir),
                state_dir,
                sign_keys,
                passphrase,
            })?;
            println!("{prefix}: snapshot {from} is current again, published as snapshot {id}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Purge {
            cache,
            output,
            sources,
            older_than,
            dry_run,
        } => {
            let cache = cache.unwrap_or_else(default_dir);
            let age = std::time::Duration::from_secs(older_than * 86_400);
            let r = mini_mirror::purge(&cache, &output, &sources, age, dry_run)?;
            println!(
                "{} {} cache files ({} bytes); kept {}",
                if dry_run { "would remove" } else { "removed" },
                r.files,
                r.bytes,
                r.kept
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve { output, listen } => {
            mini_mirror::serve::serve(output, listen)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "mini-mirror",
                &mut std::io::stdout(),
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Man => {
            use clap::CommandFactory;
            clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Build(args) => build_command(args, env_passphrase),
        Command::Image {
            tree,
            base,
            tag,
            layer_size,
            labels,
            format,
            registry,
            json,
        } => {
            let (access, cache) = registry.split();
            let r = mini_mirror::oci::image::build_image(&mini_mirror::oci::image::ImageOptions {
                tree,
                base,
                target: tag,
                access,
                cache,
                layer_size,
                labels,
                format,
            })?;
            eprintln!(
                "image: {} layers ({} pool); uploaded {} blobs ({} bytes), {} already there ({} bytes)",
                r.layers,
                r.pool_layers,
                r.pushed_blobs,
                r.pushed_bytes,
                r.reused_blobs,
                r.reused_bytes
            );
            print_result(json, &r, &format!("{}@{}", r.target, r.digest))
        }
        Command::Pull {
            image,
            dir,
            keyring,
            keyring_sha256,
            force,
            registry,
            json,
        } => {
            let (access, cache) = registry.split();
            let trust = match (keyring, keyring_sha256) {
                (Some(k), _) => mini_mirror::verify::Trust::Keyring(k),
                (None, Some(h)) => mini_mirror::verify::Trust::PinnedKeyring(h),
                (None, None) => unreachable!("clap requires one"),
            };
            let r = mini_mirror::oci::pull::pull(&mini_mirror::oci::pull::PullOptions {
                source: image,
                dir: dir.clone(),
                access,
                cache,
                force,
                trust,
            })?;
            let text = format!(
                "pulled {} into {}: {} layers ({} bytes), {} dists and {} pool files verified ({})",
                r.digest,
                dir.display(),
                r.layers,
                r.layer_bytes,
                r.verified.dists,
                r.verified.pool_files,
                r.verified.prefixes.join(", ")
            );
            print_result(json, &r, &text)
        }
        Command::Digest { image, registry } => {
            let (access, _) = registry.split();
            match mini_mirror::oci::pull::digest(&image, &access)? {
                Some(d) => {
                    println!("{d}");
                    Ok(ExitCode::SUCCESS)
                }
                None => {
                    eprintln!("{image}: no such image");
                    Ok(ExitCode::from(2))
                }
            }
        }
        Command::Export {
            image,
            to,
            since,
            registry,
            json,
        } => {
            let (access, cache) = registry.split();
            let r =
                mini_mirror::oci::bundle::export(&image, &to, since.as_deref(), &access, &cache)?;
            let text = format!(
                "wrote {} ({} bytes): {} blobs ({} bytes); left out {} blobs ({} bytes) the far side has",
                to.display(),
                r.file_bytes,
                r.blobs,
                r.bytes,
                r.skipped_blobs,
                r.skipped_bytes
            );
            print_result(json, &r, &text)
        }
        Command::Import {
            file,
            to,
            registry,
            json,
        } => {
            let (access, cache) = registry.split();
            let r = mini_mirror::oci::bundle::import(&file, &to, &access, &cache)?;
            let text = format!(
                "imported {} into {to}: uploaded {} blobs ({} bytes), {} already there ({} bytes)",
                r.digest, r.blobs, r.bytes, r.skipped_blobs, r.skipped_bytes
            );
            print_result(json, &r, &text)
        }
    }
}

/// Print a command's result: JSON, or its line of text.
fn print_result(
    json: bool,
    report: &impl serde::Serialize,
    text: &str,
) -> anyhow::Result<ExitCode> {
    if json {
        println!("{}", serde_json::to_string(report)?);
    } else {
        println!("{text}");
    }
    Ok(ExitCode::SUCCESS)
}

fn snapshots_command(
    output: &std::path::Path,
    prefix: Option<&str>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let prefixes = match prefix {
        Some(p) => vec![p.to_owned()],
        None => mini_mirror::snapshot::prefixes(output)?,
    };
    let mut list = Vec::new();
    for p in prefixes {
        list.extend(mini_mirror::snapshot::list(output, &p)?);
    }
    if json {
        println!("{}", serde_json::to_string(&list).expect("serializes"));
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<12} {:<17} {:>8} {:>14} {:>14}",
        "PREFIX", "ID", "PACKAGES", "BYTES", "UNIQUE BYTES"
    );
    for s in &list {
        println!(
            "{:<12} {:<17} {:>8} {:>14} {:>14}{}",
            s.prefix,
            s.id,
            s.packages,
            s.bytes,
            s.unique_bytes,
            if s.current { "  (current)" } else { "" }
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn build_command(args: BuildArgs, env_passphrase: Option<String>) -> anyhow::Result<ExitCode> {
    let BuildArgs {
        places,
        signing,
        jobs,
        timings,
        force,
        allow_shrink,
        locked,
        json,
        keep,
        base_url,
    } = args;
    let (state_dir, sign_keys, passphrase) = signing.resolve(env_passphrase)?;
    let opts = mini_mirror::BuildOptions {
        state_dir,
        sign_keys,
        passphrase,
        jobs,
        force,
        allow_shrink,
        locked,
        keep,
        base_url,
        ..places.options()
    };
    let r = mini_mirror::build(&opts)?;
    if timings {
        for phase in &r.phases {
            let peak = phase
                .peak_rss
                .map(|b| format!("  peak so far {:>4} MB", b / 1_000_000))
                .unwrap_or_default();
            eprintln!(
                "timing: {:<8} {:>8.3}s{peak}",
                phase.name,
                phase.wall.as_secs_f64()
            );
        }
    }
    eprintln!(
        "summary: {} packages, {} downloaded ({} bytes), {} from cache, {:.1}s",
        r.packages,
        r.downloaded,
        r.bytes,
        r.from_cache,
        r.elapsed.as_secs_f64()
    );
    if json {
        println!(
            "{}",
            serde_json::to_string(&r).expect("the report serializes")
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn init_logging(verbose: u8, quiet: bool) {
    let default = match (quiet, verbose) {
        (true, _) => "warn",
        (false, 0) => "info",
        (false, 1) => "debug",
        _ => "trace",
    };
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("MINI_MIRROR_LOG").unwrap_or_else(|_| {
            tracing_subscriber::EnvFilter::new(format!("mini_mirror={default},warn"))
        });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .without_time()
        .with_target(false)
        .init();
}
