//! The software bill of materials of a publish: `<output>/<prefix>/sbom.cdx.json`,
//! CycloneDX 1.5 JSON, one component per published package with its `pkg:deb` purl,
//! SHA256, source package and the upstream it came from. Made from the lock, so the two
//! always agree.

use crate::lock::Lock;
use crate::publish::PrefixPlan;
use serde_json::json;

/// File name of the SBOM in a published prefix.
pub const FILE_NAME: &str = "sbom.cdx.json";

/// The CycloneDX document for one prefix.
pub fn cyclonedx(lock: &Lock, plan: &PrefixPlan) -> String {
    let header = |dist: &str, field: &str| {
        plan.dists
            .iter()
            .find(|d| d.dist == dist)
            .and_then(|d| d.header.iter().find(|(k, _)| k == field))
            .map(|(_, v)| v.clone())
    };
    let url_of = |upstream: &str| {
        lock.sources
            .iter()
            .find(|s| s.name == upstream)
            .map(|s| s.url.clone())
            .unwrap_or_default()
    };
    let components: Vec<serde_json::Value> = lock
        .packages
        .iter()
        .map(|p| {
            let vendor = header(&p.dist, "Origin")
                .map(|o| o.to_ascii_lowercase())
                .filter(|o| {
                    !o.is_empty()
                        && o.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
                })
                .unwrap_or_else(|| "debian".to_owned());
            let distro = header(&p.dist, "Codename").unwrap_or_else(|| p.dist.clone());
            let purl = format!(
                "pkg:deb/{vendor}/{}@{}?arch={}&distro={}",
                encode(&p.name),
                encode(&p.version),
                encode(&p.architecture),
                encode(&distro)
            );
            let upstream = url_of(&p.upstream);
            json!({
                "type": "library",
                "bom-ref": format!("{purl}#{}/{}", p.dist, p.component),
                "name": p.name,
                "version": p.version,
                "purl": purl,
                "hashes": [{ "alg": "SHA-256", "content": p.sha256 }],
                "externalReferences": [
                    { "type": "distribution", "url": format!("{upstream}/{}", p.filename) }
                ],
                "properties": [
                    { "name": "mini-mirror:source-package", "value": p.source },
                    { "name": "mini-mirror:upstream", "value": upstream },
                    { "name": "mini-mirror:dist", "value": p.dist },
                    { "name": "mini-mirror:component", "value": p.component },
                ],
            })
        })
        .collect();
    // Deterministic: the serial number comes from the lock, the timestamp from the newest
    // upstream Release, so that an identical publish has an identical SBOM.
    let digest = crate::sha256::hex_digest(lock.to_toml().as_bytes());
    let serial = format!(
        "urn:uuid:{}-{}-4{}-8{}-{}",
        &digest[0..8],
        &digest[8..12],
        &digest[13..16],
        &digest[17..20],
        &digest[20..32]
    );
    let newest = lock
        .sources
        .iter()
        .filter_map(|s| s.release_date.as_deref())
        .filter_map(|d| crate::upstream::parse_date(d).ok())
        .max();
    let mut metadata = json!({
        "tools": { "components": [{
            "type": "application",
            "name": "mini-mirror",
            "version": env!("CARGO_PKG_VERSION"),
        }]},
        "component": {
            "type": "data",
            "bom-ref": format!("mini-mirror:{}", lock.prefix),
            "name": lock.prefix,
            "description": "a partial APT repository published by mini-mirror",
        },
    });
    if let Some(t) = newest {
        metadata["timestamp"] = json!(t.format("%Y-%m-%dT%H:%M:%SZ").to_string());
    }
    let doc = json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": serial,
        "version": 1,
        "metadata": metadata,
        "components": components,
    });
    let mut text = serde_json::to_string_pretty(&doc).expect("JSON values serialize");
    text.push('\n');
    text
}

/// Percent-encode what a purl part may not hold as is (all but `A-Za-z0-9-._~`).
fn encode(s: &str) -> String {
    const PURL_PART: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(s, PURL_PART).to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn purl_parts_are_percent_encoded() {
        assert_eq!(super::encode("1:2.0+dfsg-1~bpo"), "1%3A2.0%2Bdfsg-1~bpo");
    }
}
