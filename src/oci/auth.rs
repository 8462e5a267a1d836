//! Registry credentials, from the files users already have: `REGISTRY_AUTH_FILE`, the
//! containers `auth.json` (podman, skopeo, buildah) and `~/.docker/config.json`, looked up
//! the way containers-auth.json(5) describes (first file with an entry wins; within a file
//! the most specific `host/namespace` key wins).

use anyhow::{Context, Result, bail};
use base64::Engine;
use oci_client::secrets::RegistryAuth;
use std::path::PathBuf;

/// Credentials for one registry and the file they came from.
pub struct Credential {
    /// What the client sends (basic credentials also drive the bearer-token flow).
    pub auth: RegistryAuth,
    /// The file the entry is in (named in errors; never the secret itself).
    pub source: Option<PathBuf>,
}

/// The auth files to read, in order.
fn auth_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    if let Some(f) = std::env::var_os("REGISTRY_AUTH_FILE") {
        files.push(PathBuf::from(f));
    }
    if let Some(run) = std::env::var_os("XDG_RUNTIME_DIR") {
        files.push(PathBuf::from(run).join("containers/auth.json"));
    }
    let home = crate::cache::home_dir();
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| home.join(".config"));
    files.push(config.join("containers/auth.json"));
    match std::env::var_os("DOCKER_CONFIG") {
        Some(d) => files.push(PathBuf::from(d).join("config.json")),
        None => files.push(home.join(".docker/config.json")),
    }
    files
}

/// The credential for `registry`/`repository`, anonymous when no file has one.
pub fn lookup(registry: &str, repository: &str) -> Result<Credential> {
    for file in auth_files() {
        let text = match std::fs::read_to_string(&file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("reading {}", file.display())),
        };
        let json: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{}: not valid JSON", file.display()))?;
        if let Some(auth) = entry(&json, registry, repository)
            .with_context(|| format!("{}: the entry for {registry}", file.display()))?
        {
            tracing::debug!("credentials for {registry} from {}", file.display());
            return Ok(Credential {
                auth,
                source: Some(file),
            });
        }
        let helper = json
            .get("credHelpers")
            .and_then(|h| h.get(registry))
            .or_else(|| json.get("credsStore"))
            .and_then(|h| h.as_str());
        if let Some(helper) = helper {
            bail!(
                "{}: the credentials for {registry} are kept by the credential helper \
                 docker-credential-{helper}, which mini-mirror does not run; log in with \
                 `podman login --authfile FILE {registry}` (or `skopeo login`) and point \
                 REGISTRY_AUTH_FILE at that file",
                file.display()
            );
        }
    }
    Ok(Credential {
        auth: RegistryAuth::Anonymous,
        source: None,
    })
}

/// The entry of one parsed auth file, most specific key first.
fn entry(
    json: &serde_json::Value,
    registry: &str,
    repository: &str,
) -> Result<Option<RegistryAuth>> {
    let Some(auths) = json.get("auths").and_then(|a| a.as_object()) else {
        return Ok(None);
    };
    let mut keys = Vec::new();
    let mut path = format!("{registry}/{repository}");
    loop {
        keys.push(path.clone());
        match path.rsplit_once('/') {
            Some((head, _)) => path = head.to_owned(),
            None => break,
        }
    }
    for scheme in ["https://", "http://"] {
        keys.push(format!("{scheme}{registry}"));
        keys.push(format!("{scheme}{registry}/v1/"));
        keys.push(format!("{scheme}{registry}/v2/"));
    }
    if registry == "docker.io" || registry == "index.docker.io" {
        keys.push("https://index.docker.io/v1/".into());
    }
    for key in keys {
        let Some(value) = auths.get(&key) else {
            continue;
        };
        if let Some(token) = value.get("registrytoken").and_then(|t| t.as_str()) {
            return Ok(Some(RegistryAuth::Bearer(token.to_owned())));
        }
        if let Some(encoded) = value.get("auth").and_then(|a| a.as_str())
            && !encoded.is_empty()
        {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .context("`auth` is not base64")?;
            let decoded = String::from_utf8(decoded).context("`auth` is not UTF-8")?;
            let Some((user, pass)) = decoded.split_once(':') else {
                bail!("`auth` is not base64 of user:password");
            };
            return Ok(Some(RegistryAuth::Basic(user.to_owned(), pass.to_owned())));
        }
        if let (Some(u), Some(p)) = (
            value.get("username").and_then(|u| u.as_str()),
            value.get("password").and_then(|p| p.as_str()),
        ) {
            return Ok(Some(RegistryAuth::Basic(u.to_owned(), p.to_owned())));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(a: Option<RegistryAuth>) -> Option<(String, String)> {
        match a {
            Some(RegistryAuth::Basic(u, p)) => Some((u, p)),
            _ => None,
        }
    }

    #[test]
    fn most_specific_entry_wins() {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let json = serde_json::json!({"auths": {
            "reg.example:5000": {"auth": b64("all:one")},
            "reg.example:5000/team": {"auth": b64("team:two")},
            "https://index.docker.io/v1/": {"auth": b64("hub:three")},
        }});
        assert_eq!(
            basic(entry(&json, "reg.example:5000", "team/mirror").unwrap()),
            Some(("team".into(), "two".into()))
        );
        assert_eq!(
            basic(entry(&json, "reg.example:5000", "other/mirror").unwrap()),
            Some(("all".into(), "one".into()))
        );
        assert_eq!(
            basic(entry(&json, "docker.io", "library/nginx").unwrap()),
            Some(("hub".into(), "three".into()))
        );
        assert!(entry(&json, "elsewhere", "x").unwrap().is_none());
        let bad = serde_json::json!({"auths": {"r": {"auth": b64("nocolon")}}});
        assert!(entry(&bad, "r", "x").is_err());
    }
}
