//! The OpenPGP policy apt 3 verifies with (Debian trixie's `sqv`), in one place: upstream
//! signatures are checked against it, and the operator's signing key is linted against it
//! so that the mirror never publishes a signature that trixie clients will refuse.

use anyhow::Result;
use chrono::{DateTime, NaiveDate, Utc};
use pgp::Cert;
use pgp::packet::Tag;
use pgp::policy::{AsymmetricAlgorithm, HashAlgoSecurity, StandardPolicy};
use pgp::types::{HashAlgorithm, PublicKeyAlgorithm, RevocationStatus};
use sequoia_openpgp as pgp;
use std::time::SystemTime;

/// apt 3.0's `/usr/share/apt/default-sequoia.config` (Debian trixie; source:
/// https://salsa.debian.org/apt-team/apt/-/blob/main/debian/default-sequoia.config):
/// what stops being accepted, and from when. Everything else is sequoia's standard policy,
/// which is what sqv starts from too.
const APT3_ASYMMETRIC_CUTOFFS: &[(AsymmetricAlgorithm, (i32, u32, u32))] = &[
    (AsymmetricAlgorithm::DSA2048, (2024, 2, 1)),
    (AsymmetricAlgorithm::DSA3072, (2024, 2, 1)),
    (AsymmetricAlgorithm::DSA4096, (2024, 2, 1)),
    (AsymmetricAlgorithm::BrainpoolP256, (2028, 2, 1)),
    (AsymmetricAlgorithm::BrainpoolP384, (2028, 2, 1)),
    (AsymmetricAlgorithm::BrainpoolP512, (2028, 2, 1)),
    (AsymmetricAlgorithm::RSA2048, (2030, 2, 1)),
];
/// `sha1.second_preimage_resistance` (SHA-1 binding and data signatures).
const APT3_SHA1_SECOND_PREIMAGE: (i32, u32, u32) = (2026, 2, 1);
/// `sha224`.
const APT3_SHA224: (i32, u32, u32) = (2026, 2, 1);
/// `signature.v3` packets.
const APT3_SIGNATURE_V3: (i32, u32, u32) = (2026, 2, 1);

fn at((y, m, d): (i32, u32, u32)) -> SystemTime {
    let date = NaiveDate::from_ymd_opt(y, m, d).expect("a valid date in the table");
    date.and_hms_opt(0, 0, 0)
        .expect("midnight")
        .and_utc()
        .into()
}

/// The policy apt 3 (sqv) verifies with.
pub fn apt3() -> StandardPolicy<'static> {
    let mut p = StandardPolicy::new();
    for &(algo, date) in APT3_ASYMMETRIC_CUTOFFS {
        p.reject_asymmetric_algo_at(algo, at(date));
    }
    p.reject_hash_property_at(
        HashAlgorithm::SHA1,
        HashAlgoSecurity::SecondPreImageResistance,
        at(APT3_SHA1_SECOND_PREIMAGE),
    );
    p.reject_hash_at(HashAlgorithm::SHA224, at(APT3_SHA224));
    p.reject_packet_tag_version_at(Tag::Signature, 3, at(APT3_SIGNATURE_V3));
    p
}

/// What bookworm's gpgv (apt 2.6) still accepts and apt 3 does not: SHA-1 and SHA-224
/// signatures and bindings, DSA and RSA-1024 keys, v3 signatures. Only for a source with
/// `legacy_signatures = true`; the mirror re-signs, so clients never see these signatures.
pub fn bookworm_gpgv() -> StandardPolicy<'static> {
    let mut p = StandardPolicy::new();
    for algo in [
        AsymmetricAlgorithm::DSA1024,
        AsymmetricAlgorithm::DSA2048,
        AsymmetricAlgorithm::DSA3072,
        AsymmetricAlgorithm::DSA4096,
        AsymmetricAlgorithm::RSA1024,
    ] {
        p.reject_asymmetric_algo_at(algo, None);
    }
    p.reject_hash_at(HashAlgorithm::SHA1, None);
    p.reject_hash_at(HashAlgorithm::SHA224, None);
    p.reject_packet_tag_version_at(Tag::Signature, 3, None);
    p
}

/// How a signing key fares against apt 3's policy.
#[derive(Debug, Default)]
pub struct KeyVerdict {
    /// Reasons apt 3 rejects signatures by this key today: the build refuses the key.
    pub refusals: Vec<String>,
    /// Reasons it will soon (within a year, or an expiry within 90 days): a warning.
    pub warnings: Vec<String>,
}

/// Lint the operator's signing key (its primary key and signing subkeys) against apt 3's
/// policy, now and a year from now.
#[allow(deprecated)] // naming DSA and RSA-sign-only is the point: they are what we refuse
pub fn lint_signing_key(cert: &Cert) -> KeyVerdict {
    let mut v = KeyVerdict::default();
    let policy = apt3();
    let now = SystemTime::now();
    let in_a_year = now + std::time::Duration::from_secs(365 * 86_400);
    let fpr = cert.fingerprint();
    for key in cert.keys() {
        let algo = key.key().pk_algo();
        if matches!(
            algo,
            PublicKeyAlgorithm::DSA | PublicKeyAlgorithm::ElGamalEncryptSign
        ) {
            v.refusals.push(format!(
                "key {} is {algo}: apt 3 rejects DSA since 2024-02-01",
                key.key().fingerprint()
            ));
        }
        if let Some(bits) = key.key().mpis().bits()
            && matches!(
                algo,
                PublicKeyAlgorithm::RSAEncryptSign | PublicKeyAlgorithm::RSASign
            )
        {
            if bits < 2048 {
                v.refusals.push(format!(
                    "key {} is RSA-{bits}: apt rejects RSA keys under 2048 bits",
                    key.key().fingerprint()
                ));
            } else if bits < 3072 {
                v.warnings.push(format!(
                    "key {} is RSA-{bits}: apt 3 stops accepting it on 2030-02-01; plan a rotation to Ed25519 or RSA-3072+",
                    key.key().fingerprint()
                ));
            }
        }
    }
    match cert.with_policy(&policy, now) {
        Err(_) if !v.refusals.is_empty() => {} // its algorithm, already named
        Err(e) => v.refusals.push(format!(
            "certificate {fpr} is not valid under apt 3's policy now ({e}); SHA-1 binding \
             signatures are refused since 2026-02-01: re-certify the key with a SHA-256 digest \
             (gpg --cert-digest-algo SHA256 --quick-set-expire) or make a new one"
        )),
        Ok(valid) => {
            if let RevocationStatus::Revoked(_) = valid.revocation_status() {
                v.refusals.push(format!("certificate {fpr} is revoked"));
            }
            if let Err(e) = valid.alive() {
                v.refusals
                    .push(format!("certificate {fpr} has expired: {e}"));
            }
            let signing: Vec<_> = valid.keys().alive().revoked(false).for_signing().collect();
            if signing.is_empty() {
                v.refusals.push(format!(
                    "certificate {fpr} has no signing key that apt 3 accepts now"
                ));
            }
            let expiry = valid.primary_key().key_expiration_time();
            if let Some(t) = expiry {
                let left = t.duration_since(now).unwrap_or_default();
                if left.as_secs() < 90 * 86_400 {
                    let when: DateTime<Utc> = t.into();
                    v.warnings.push(format!(
                        "certificate {fpr} expires on {}: extend it (gpg --quick-set-expire) and ship the new public key",
                        when.format("%Y-%m-%d")
                    ));
                }
            }
            if v.refusals.is_empty() && cert.with_policy(&policy, in_a_year).is_err() {
                v.warnings.push(format!(
                    "certificate {fpr} will not be valid under apt 3's policy a year from now"
                ));
            }
        }
    }
    v
}

/// The verdict as lines for the operator, and an error when the key is refused.
pub fn check_signing_key(cert: &Cert) -> Result<Vec<String>> {
    let v = lint_signing_key(cert);
    if !v.refusals.is_empty() {
        anyhow::bail!(
            "the signing key {} would be rejected by apt 3 (Debian trixie) clients: {}",
            cert.fingerprint(),
            v.refusals.join("; ")
        );
    }
    Ok(v.warnings)
}
