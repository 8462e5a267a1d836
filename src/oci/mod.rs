//! The mirror as an OCI image, moved through registries and carried bundles.
//!
//! [`image`] turns a published tree into an nginx image (base layers + content-stable pool
//! layers + a small tree layer) without a container engine; [`pull`] extracts and verifies
//! the tree of such an image; [`bundle`] writes and reads OCI archives holding only what the
//! other side of a one-way link lacks. All of them speak to a [`Store`]: a registry
//! ([`registry`]), an OCI layout directory or an OCI archive ([`layout`]). Every blob is
//! checked against its digest before it is used, and a manifest is written only after
//! every blob it names is in place.

pub mod auth;
pub mod bundle;
pub mod image;
pub mod layers;
pub mod layout;
pub mod pull;
pub mod registry;
mod store;

pub use store::{Fetched, Store};

use anyhow::{Result, bail};
use oci_spec::distribution::Reference;
use std::path::PathBuf;

/// The annotation that marks a manifest as a mini-mirror image.
pub const IMAGE_ANNOTATION: &str = "io.mini-mirror.image";
/// The layer annotation saying what a layer holds: `pool`, `tree` or `nginx`.
pub const LAYER_ANNOTATION: &str = "io.mini-mirror.layer";
/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index (a manifest list).
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker schema 2 manifest (base images from Docker registries).
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// OCI image config.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// Uncompressed OCI layer (the mirror's layers: .debs and indices are compressed already).
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";

/// Where an image is.
#[derive(Clone, Debug)]
pub enum Location {
    /// A registry reference (`registry.example/team/mirror:1.4`, `docker://` optional).
    Registry(Reference),
    /// An OCI image layout directory (`oci:DIR[:TAG]`).
    Layout {
        /// The layout directory.
        dir: PathBuf,
        /// The `org.opencontainers.image.ref.name` of the manifest.
        tag: String,
    },
    /// An OCI image layout in a tar file (`oci-archive:FILE[:TAG]`).
    Archive {
        /// The tar file.
        file: PathBuf,
        /// The ref.name to pick (the only manifest when absent).
        tag: Option<String>,
    },
}

impl Location {
    /// Parse a location as skopeo writes them: `oci:DIR[:TAG]`, `oci-archive:FILE[:TAG]`,
    /// `[docker://]REGISTRY/REPO[:TAG|@DIGEST]`.
    pub fn parse(s: &str) -> Result<Location> {
        fn path_and_tag(rest: &str) -> (PathBuf, Option<String>) {
            match rest.rsplit_once(':') {
                Some((p, t)) if !t.contains('/') && !p.is_empty() => {
                    (PathBuf::from(p), Some(t.to_owned()))
                }
                _ => (PathBuf::from(rest), None),
            }
        }
        if let Some(rest) = s.strip_prefix("oci:") {
            let (dir, tag) = path_and_tag(rest);
            return Ok(Location::Layout {
                dir,
                tag: tag.unwrap_or_else(|| "latest".into()),
            });
        }
        if let Some(rest) = s.strip_prefix("oci-archive:") {
            let (file, tag) = path_and_tag(rest);
            return Ok(Location::Archive { file, tag });
        }
        let name = s.strip_prefix("docker://").unwrap_or(s);
        if name.is_empty() || name.contains("://") {
            bail!(
                "{s:?} is not an image reference (REGISTRY/REPO:TAG, docker://..., oci:DIR[:TAG] or oci-archive:FILE[:TAG])"
            );
        }
        let reference: Reference = name
            .parse()
            .map_err(|e| anyhow::anyhow!("{s:?} is not an image reference: {e}"))?;
        Ok(Location::Registry(reference))
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Registry(r) => write!(f, "{r}"),
            Location::Layout { dir, tag } => write!(f, "oci:{}:{tag}", dir.display()),
            Location::Archive { file, tag } => {
                write!(f, "oci-archive:{}", file.display())?;
                match tag {
                    Some(t) => write!(f, ":{t}"),
                    None => Ok(()),
                }
            }
        }
    }
}

/// How registries are reached: extra trust anchors and the hosts allowed plain HTTP.
#[derive(Clone, Debug, Default)]
pub struct Access {
    /// PEM files of CA certificates trusted besides the system roots (`--ca-cert`,
    /// `EXTRA_CA_CERTS`).
    pub ca_certs: Vec<PathBuf>,
    /// Registries (`host[:port]`) spoken to over plain HTTP (`--insecure-registry`).
    pub insecure_registries: Vec<String>,
}

/// `sha256:<hex>`, checked: the only digest algorithm the mirror writes or accepts.
pub fn digest_hex(digest: &str) -> Result<&str> {
    match digest.strip_prefix("sha256:") {
        Some(hex)
            if hex.len() == 64
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) =>
        {
            Ok(hex)
        }
        _ => bail!("unsupported or malformed digest {digest:?} (expected sha256:<64 hex digits>)"),
    }
}

/// A runtime for the async registry client (the commands are synchronous).
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn locations_parse_like_skopeo() {
        assert!(matches!(
            Location::parse("oci:/tmp/x:v1").unwrap(),
            Location::Layout { dir, tag } if dir == Path::new("/tmp/x") && tag == "v1"
        ));
        assert!(matches!(
            Location::parse("oci:/tmp/x").unwrap(),
            Location::Layout { tag, .. } if tag == "latest"
        ));
        assert!(matches!(
            Location::parse("oci-archive:b.tar").unwrap(),
            Location::Archive { tag: None, .. }
        ));
        match Location::parse("docker://127.0.0.1:5000/m/mirror:1").unwrap() {
            Location::Registry(r) => {
                assert_eq!(r.registry(), "127.0.0.1:5000");
                assert_eq!(r.repository(), "m/mirror");
                assert_eq!(r.tag(), Some("1"));
            }
            other => panic!("{other:?}"),
        }
        assert!(Location::parse("http://x/y").is_err());
    }

    #[test]
    fn digests_are_checked() {
        let hex = "a".repeat(64);
        assert_eq!(digest_hex(&format!("sha256:{hex}")).unwrap(), hex);
        assert!(digest_hex("sha256:../../etc").is_err());
        assert!(digest_hex(&format!("sha512:{hex}")).is_err());
        assert!(digest_hex(&format!("sha256:{}", "A".repeat(64))).is_err());
    }
}
