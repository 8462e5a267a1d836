//! `mini-mirror image`: the runnable nginx image `./build.sh` makes, without a container
//! engine. The base image's manifest, config and layers are read from a registry or an OCI
//! layout; the nginx configuration, the pool layers and the tree layer are appended; the
//! config gets the runtime settings of the Dockerfile (uid 101, port 8080, HEALTHCHECK,
//! labels). Blobs the target already has are not uploaded again, and the manifest goes last.

use super::layers::{self, LayerKind};
use super::{Access, Location, Store};
use crate::cache::Cache;
use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// The manifest format written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Docker schema 2 (what build.sh pushes; podman and docker honour its HEALTHCHECK).
    Docker,
    /// OCI image manifest, with `io.mini-mirror.*` annotations on the manifest and layers
    /// (podman ignores HEALTHCHECK in this format; Kubernetes uses the chart's probes).
    Oci,
}

/// What `mini-mirror image` was asked to do.
pub struct ImageOptions {
    /// The published tree (`build --output`).
    pub tree: PathBuf,
    /// The base image (nginx).
    pub base: Location,
    /// Where the image goes.
    pub target: Location,
    /// Registry access.
    pub access: Access,
    /// The cache (base layers pass through it).
    pub cache: PathBuf,
    /// Expected pool layer size in bytes (None: chosen from the pool size).
    pub layer_size: Option<u64>,
    /// Labels added to (or replacing) the defaults.
    pub labels: Vec<(String, String)>,
    /// The manifest format.
    pub format: Format,
}

/// What a push did.
#[derive(Debug, serde::Serialize)]
pub struct PushReport {
    /// Where the image went.
    pub target: String,
    /// The manifest digest.
    pub digest: String,
    /// Layers in the image (base ones included).
    pub layers: usize,
    /// Of which pool layers.
    pub pool_layers: usize,
    /// Blobs uploaded (layers and config).
    pub pushed_blobs: usize,
    /// Their bytes.
    pub pushed_bytes: u64,
    /// Blobs the target already had.
    pub reused_blobs: usize,
    /// Their bytes.
    pub reused_bytes: u64,
}

impl PushReport {
    fn count(&mut self, pushed: bool, size: u64) {
        if pushed {
            self.pushed_blobs += 1;
            self.pushed_bytes += size;
        } else {
            self.reused_blobs += 1;
            self.reused_bytes += size;
        }
    }
}

struct Types {
    manifest: &'static str,
    config: &'static str,
    tar: &'static str,
    tar_gzip: &'static str,
}

impl Format {
    fn types(self) -> Types {
        match self {
            Format::Docker => Types {
                manifest: super::DOCKER_MANIFEST,
                config: "application/vnd.docker.container.image.v1+json",
                tar: "application/vnd.docker.image.rootfs.diff.tar",
                tar_gzip: "application/vnd.docker.image.rootfs.diff.tar.gzip",
            },
            Format::Oci => Types {
                manifest: super::OCI_MANIFEST,
                config: super::OCI_CONFIG,
                tar: super::OCI_LAYER_TAR,
                tar_gzip: "application/vnd.oci.image.layer.v1.tar+gzip",
            },
        }
    }
}

/// Build the image of `opts.tree` and store it at `opts.target`.
pub fn build_image(opts: &ImageOptions) -> Result<PushReport> {
    // No build switches the tree while its layers are read.
    let _tree_lock = crate::cache::lock_file(&opts.tree.join(".mini-mirror.lock"))?;
    let cache = Cache::open(&opts.cache)?;
    super::runtime()?.block_on(build(opts, &cache))
}

async fn build(opts: &ImageOptions, cache: &Cache) -> Result<PushReport> {
    let types = opts.format.types();
    let base = Store::open(&opts.base, &opts.access, false)
        .await
        .with_context(|| format!("base image {}", opts.base))?;
    let (base_manifest, manifest) = base
        .image_manifest(&format!("base image {}", opts.base))
        .await?;
    let config_desc = &manifest["config"];
    let (config_digest, config_size) = descriptor(config_desc)?;
    let mut config: Value =
        serde_json::from_slice(&base.blob_bytes(&config_digest, config_size).await?)
            .with_context(|| format!("base image {}: the config is not JSON", opts.base))?;

    let target = Store::open(&opts.target, &opts.access, true)
        .await
        .with_context(|| format!("target {}", opts.target))?;
    let mut report = PushReport {
        target: opts.target.to_string(),
        digest: String::new(),
        layers: 0,
        pool_layers: 0,
        pushed_blobs: 0,
        pushed_bytes: 0,
        reused_blobs: 0,
        reused_bytes: 0,
    };
    let mut out_layers = Vec::new();
    for layer in manifest["layers"].as_array().into_iter().flatten() {
        let (digest, size) = descriptor(layer)?;
        let media = layer["mediaType"].as_str().unwrap_or_default();
        let mapped = match media {
            super::OCI_LAYER_TAR | "application/vnd.docker.image.rootfs.diff.tar" => types.tar,
            "application/vnd.oci.image.layer.v1.tar+gzip"
            | "application/vnd.docker.image.rootfs.diff.tar.gzip" => types.tar_gzip,
            other if opts.format == Format::Oci => {
                if other.starts_with("application/vnd.oci.image.layer.") {
                    layer["mediaType"].as_str().expect("a string")
                } else {
                    bail!(
                        "base image {}: layer {digest} has media type {other:?}, which mini-mirror cannot carry",
                        opts.base
                    )
                }
            }
            other => bail!(
                "base image {}: layer {digest} has media type {other:?}, which a Docker manifest cannot hold (use --format oci)",
                opts.base
            ),
        };
        let pushed = if target.has_blob(&digest, size).await? {
            false
        } else {
            let path = base.fetch_blob(&digest, size, cache).await?;
            target.put_blob(&digest, size, &path).await?
        };
        report.count(pushed, size);
        out_layers.push(json!({"mediaType": mapped, "digest": digest, "size": size}));
    }
    let base_layers = out_layers.len();

    // The mirror's layers.
    let mut kinds = vec![LayerKind::Nginx];
    let nginx = layers::nginx_layer();
    let nginx_digest = format!("sha256:{}", crate::sha256::hex_digest(&nginx));
    let pushed = put_bytes(&target, cache, &nginx_digest, &nginx).await?;
    report.count(pushed, nginx.len() as u64);
    out_layers.push(layer_json(
        &types,
        opts.format,
        &nginx_digest,
        nginx.len() as u64,
        LayerKind::Nginx,
    ));

    let tree = opts.tree.clone();
    let layer_size = opts.layer_size;
    let plans = tokio::task::spawn_blocking(move || layers::plan(&tree, layer_size)).await??;
    let total = plans.len();
    // The image's creation time is the tree's (its newest signed file): the same tree makes
    // the same image, byte for byte, and a re-run uploads nothing.
    let newest = plans.iter().map(|p| p.newest_mtime()).max().unwrap_or(0);
    let created = chrono::DateTime::from_timestamp(newest as i64, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    for (i, plan) in plans.into_iter().enumerate() {
        let tree = opts.tree.clone();
        let p = plan.clone();
        let (digest, size) = tokio::task::spawn_blocking(move || p.digest(&tree)).await??;
        let pushed = if target.has_blob(&digest, size).await? {
            false
        } else {
            let tree = opts.tree.clone();
            let p = plan.clone();
            let tmp_dir = cache.tmp_dir();
            let (tmp, again, again_size) =
                tokio::task::spawn_blocking(move || layers::write_to_temp(&p, &tree, &tmp_dir))
                    .await??;
            if again != digest || again_size != size {
                bail!(
                    "the tree changed while the image was made (layer {} of {total}); run again",
                    i + 1
                );
            }
            target.put_blob(&digest, size, &tmp).await?
        };
        tracing::info!(
            "layer {}/{total} ({}, {} files, {} bytes): {}",
            i + 1,
            plan.kind.as_str(),
            plan.files(),
            size,
            if pushed { "uploaded" } else { "already there" }
        );
        report.count(pushed, size);
        if plan.kind == LayerKind::Pool {
            report.pool_layers += 1;
        }
        kinds.push(plan.kind);
        out_layers.push(layer_json(&types, opts.format, &digest, size, plan.kind));
    }

    // The config: the base's, with the Dockerfile's runtime settings.
    edit_config(
        &mut config,
        opts,
        &out_layers[base_layers..],
        &kinds,
        &created,
    )?;
    let config_bytes = serde_json::to_vec(&config)?;
    let config_digest = format!("sha256:{}", crate::sha256::hex_digest(&config_bytes));
    let pushed = put_bytes(&target, cache, &config_digest, &config_bytes).await?;
    report.count(pushed, config_bytes.len() as u64);

    let mut out = json!({
        "schemaVersion": 2,
        "mediaType": types.manifest,
        "config": {"mediaType": types.config, "digest": config_digest, "size": config_bytes.len()},
        "layers": out_layers,
    });
    if opts.format == Format::Oci {
        out["annotations"] = json!({
            super::IMAGE_ANNOTATION: "1",
            "org.opencontainers.image.created": created,
            "org.opencontainers.image.base.name": opts.base.to_string(),
            "org.opencontainers.image.base.digest": base_manifest.digest,
        });
    }
    let bytes = serde_json::to_vec(&out)?;
    report.layers = out["layers"].as_array().map_or(0, |l| l.len());
    report.digest = target.put_manifest(&bytes, types.manifest).await?;
    Ok(report)
}

fn layer_json(types: &Types, format: Format, digest: &str, size: u64, kind: LayerKind) -> Value {
    let mut v = json!({"mediaType": types.tar, "digest": digest, "size": size});
    if format == Format::Oci {
        v["annotations"] = json!({super::LAYER_ANNOTATION: kind.as_str()});
    }
    v
}

/// (digest, size) of a descriptor, checked.
pub(crate) fn descriptor(v: &Value) -> Result<(String, u64)> {
    let digest = v["digest"]
        .as_str()
        .context("a descriptor without digest")?;
    super::digest_hex(digest)?;
    let size = v["size"].as_u64().context("a descriptor without size")?;
    Ok((digest.to_owned(), size))
}

/// Store a small blob made in memory (via a checked temporary file in the cache).
async fn put_bytes(target: &Store, cache: &Cache, digest: &str, bytes: &[u8]) -> Result<bool> {
    if target.has_blob(digest, bytes.len() as u64).await? {
        return Ok(false);
    }
    let tmp = cache.temp_path()?;
    std::fs::write(&tmp, bytes)?;
    target.put_blob(digest, bytes.len() as u64, &tmp).await
}

/// The prefixes of a published tree (what the image serves), for its labels.
fn prefixes(tree: &Path) -> String {
    crate::snapshot::prefixes(tree)
        .unwrap_or_default()
        .join(",")
}

fn edit_config(
    config: &mut Value,
    opts: &ImageOptions,
    ours: &[Value],
    kinds: &[LayerKind],
    created: &str,
) -> Result<()> {
    if !config.is_object() {
        bail!("base image {}: the config is not a JSON object", opts.base);
    }
    config["created"] = json!(created);
    let c = &mut config["config"];
    if !c.is_object() {
        *c = json!({});
    }
    c["User"] = json!("101:101");
    c["ExposedPorts"] = json!({"8080/tcp": {}});
    c["StopSignal"] = json!("SIGQUIT");
    c["Entrypoint"] = json!(["nginx", "-e", "stderr", "-g", "daemon off;"]);
    c["Cmd"] = Value::Null;
    c["Healthcheck"] = json!({
        "Test": ["CMD-SHELL", "curl -fsS -o /dev/null http://127.0.0.1:8080/healthz || exit 1"],
        "Interval": 30_000_000_000u64, "Timeout": 5_000_000_000u64,
        "StartPeriod": 5_000_000_000u64, "Retries": 3,
    });
    let mut labels = serde_json::Map::new();
    if let Some(old) = c["Labels"].as_object() {
        labels.extend(old.clone());
    }
    let defaults = [
        ("org.opencontainers.image.title", "mini-mirror".to_owned()),
        (
            "org.opencontainers.image.description",
            "Verified, re-signed partial APT repository served by nginx on :8080 (built by mini-mirror)".to_owned(),
        ),
        ("org.opencontainers.image.created", created.to_owned()),
        ("org.opencontainers.image.licenses", "Apache-2.0".to_owned()),
        ("org.opencontainers.image.base.name", opts.base.to_string()),
        ("io.mini-mirror.prefixes", prefixes(&opts.tree)),
        (super::IMAGE_ANNOTATION, "1".to_owned()),
    ];
    for (k, v) in defaults {
        labels.insert(k.to_owned(), json!(v));
    }
    for (k, v) in &opts.labels {
        labels.insert(k.clone(), json!(v));
    }
    c["Labels"] = Value::Object(labels);
    if !config["rootfs"].is_object() {
        config["rootfs"] = json!({"type": "layers", "diff_ids": []});
    }
    let diff_ids = config["rootfs"]["diff_ids"]
        .as_array_mut()
        .context("the base config has no rootfs.diff_ids")?;
    for l in ours {
        // Uncompressed layers: the diff ID is the digest.
        diff_ids.push(l["digest"].clone());
    }
    if !config["history"].is_array() {
        config["history"] = json!([]);
    }
    let history = config["history"].as_array_mut().expect("an array");
    for kind in kinds {
        history.push(json!({
            "created": created,
            "created_by": format!("{HISTORY_PREFIX}{}", kind.as_str()),
            "comment": "mini-mirror image",
        }));
    }
    Ok(())
}

/// How the history of an image names the layers mini-mirror added (`... pool`).
pub const HISTORY_PREFIX: &str = "mini-mirror image: ";

/// The kind of each layer of a mini-mirror image (None for base layers), from the layer
/// annotations or else the config history; an error when it is not a mini-mirror image.
pub fn layer_kinds(manifest: &Value, config: &Value, what: &str) -> Result<Vec<Option<LayerKind>>> {
    let is_ours = config["config"]["Labels"][super::IMAGE_ANNOTATION] == "1"
        || manifest["annotations"][super::IMAGE_ANNOTATION] == "1";
    if !is_ours {
        bail!(
            "{what} is not a mini-mirror image (no {} label)",
            super::IMAGE_ANNOTATION
        );
    }
    let layers = manifest["layers"]
        .as_array()
        .context("a manifest without layers")?;
    if layers
        .iter()
        .any(|l| l["annotations"][super::LAYER_ANNOTATION].is_string())
    {
        return Ok(layers
            .iter()
            .map(|l| {
                l["annotations"][super::LAYER_ANNOTATION]
                    .as_str()
                    .and_then(LayerKind::parse)
            })
            .collect());
    }
    let history: Vec<&Value> = config["history"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|h| h["empty_layer"] != true)
        .collect();
    if history.len() != layers.len() {
        bail!(
            "{what}: the config history names {} layers, the manifest {}: not an image mini-mirror made",
            history.len(),
            layers.len()
        );
    }
    Ok(history
        .iter()
        .map(|h| {
            h["created_by"]
                .as_str()
                .and_then(|s| s.strip_prefix(HISTORY_PREFIX))
                .and_then(LayerKind::parse)
        })
        .collect())
}
