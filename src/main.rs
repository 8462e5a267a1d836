//! The `mini-mirror` command: parses flags and calls the library.

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

#[derive(Subcommand)]
enum Command {
    /// The signing key.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// Build (or rebuild) the published trees from a sources/ tree.
    Build {
        /// The sources tree: <prefix>/<name>/{source.txt,packages.txt,settings.toml}.
        #[arg(long, default_value = "sources")]
        sources: PathBuf,
        /// Where to publish: <output>/<prefix>/{dists,pool}.
        #[arg(long, default_value = "public")]
        output: PathBuf,
        /// Download cache shared across builds [default: /var/cache/mini-mirror for root, ~/.cache/mini-mirror otherwise].
        #[arg(long, env = "MINI_MIRROR_CACHE")]
        cache: Option<PathBuf>,
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
        /// Accept an upstream Release whose Origin, Label or Codename changed since the
        /// last one accepted (apt-get update --allow-releaseinfo-change); check why first.
        #[arg(long)]
        allow_releaseinfo_change: bool,
        /// Publish even when more than half of a live tree's packages would go (by default
        /// such a build is refused, naming how many).
        #[arg(long)]
        allow_shrink: bool,
    },
}

/// `mini-mirror key check`: the verdict on one line each, then `ok` or the refusal.
fn key_check(sign_key: Option<PathBuf>, state_dir: Option<PathBuf>) -> ExitCode {
    let path = sign_key.unwrap_or_else(|| {
        state_dir
            .unwrap_or_else(mini_mirror::cache::default_state_dir)
            .join("signing-key.asc")
    });
    let verdict = std::fs::read(&path)
        .map_err(anyhow::Error::from)
        .and_then(|bytes| mini_mirror::openpgp::check_key_bytes(&bytes));
    match verdict {
        Ok(warnings) => {
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
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {}: {e:#}", path.display());
            ExitCode::FAILURE
        }
    }
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
    let command = match cli.command {
        Command::Key {
            command:
                KeyCommand::Check {
                    sign_key,
                    state_dir,
                },
        } => return key_check(sign_key, state_dir),
        build => build,
    };
    let Command::Build {
        sources,
        output,
        cache,
        state_dir,
        sign_key,
        passphrase_file,
        jobs,
        timings,
        force,
        allow_releaseinfo_change,
        allow_shrink,
    } = command
    else {
        unreachable!("key commands returned above");
    };
    let passphrase = match passphrase_file {
        Some(path) => match std::fs::read_to_string(&path) {
            Ok(p) => Some(mini_mirror::openpgp::password(&p)),
            Err(e) => {
                eprintln!("error: reading passphrase file {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
        },
        None => env_passphrase
            .as_deref()
            .map(mini_mirror::openpgp::password),
    };
    let opts = mini_mirror::BuildOptions {
        sources,
        output,
        cache: cache.unwrap_or_else(mini_mirror::cache::default_dir),
        state_dir: state_dir.unwrap_or_else(mini_mirror::cache::default_state_dir),
        sign_keys: sign_key,
        passphrase,
        jobs,
        force,
        release_rules: mini_mirror::upstream::ReleaseRules {
            allow_releaseinfo_change,
        },
        allow_shrink,
    };
    match mini_mirror::build(&opts) {
        Ok(r) => {
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
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
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
