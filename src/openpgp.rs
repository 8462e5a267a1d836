//! Every OpenPGP operation of mini-mirror, on sequoia-openpgp:
//! verifying upstream Release signatures against a source's keyring, and signing
//! our own Release (InRelease, Release.gpg) with the operator's key.
//!
//! Verification policy (as apt's): accept when at least one signature made by a key
//! of the given keyring is good, and that key is alive and not revoked *now*.

use anyhow::{Context, Result, anyhow, bail};
use pgp::cert::prelude::*;
use pgp::crypto::{KeyPair, Password};
use pgp::parse::Parse;
use pgp::parse::stream::{
    DetachedVerifierBuilder, GoodChecksum, MessageLayer, MessageStructure, VerificationError,
    VerificationHelper, VerifierBuilder,
};
use pgp::policy::StandardPolicy;
use pgp::serialize::stream::{Armorer, Message, Signer};
use pgp::serialize::{Serialize, SerializeInto};
use pgp::types::RevocationStatus;
use pgp::{Cert, Fingerprint, KeyHandle};
use sequoia_openpgp as pgp;
use std::io::{Read, Write};
use std::time::SystemTime;

/// A keyring of one or more certificates that upstream signatures are checked against.
#[derive(Clone)]
pub struct Keyring {
    certs: Vec<Cert>,
    /// Verify under bookworm gpgv's looser rules instead of apt 3's policy.
    legacy: bool,
}

impl Keyring {
    /// Parse a keyring, armored or binary, holding one or more certificates.
    pub fn from_bytes(bytes: &[u8]) -> Result<Keyring> {
        let mut certs = Vec::new();
        for cert in CertParser::from_bytes(bytes).context("not an OpenPGP keyring")? {
            certs.push(cert.context("malformed certificate in keyring")?);
        }
        if certs.is_empty() {
            bail!("the keyring holds no OpenPGP certificate");
        }
        Ok(Keyring {
            certs,
            legacy: false,
        })
    }

    /// Verify signatures by this keyring as bookworm's gpgv would (SHA-1, DSA accepted)
    /// instead of under apt 3's policy: a source's `legacy_signatures = true`.
    pub fn with_legacy_policy(mut self) -> Keyring {
        self.legacy = true;
        self
    }

    fn policy(&self) -> StandardPolicy<'static> {
        if self.legacy {
            crate::policy::bookworm_gpgv()
        } else {
            crate::policy::apt3()
        }
    }

    /// Fingerprints of the primary keys, for messages.
    pub fn fingerprints(&self) -> Vec<Fingerprint> {
        self.certs.iter().map(Cert::fingerprint).collect()
    }
}

/// Whose key made the signature that was accepted.
#[derive(Debug, Clone)]
pub struct GoodSignature {
    /// Fingerprint of the signing (sub)key.
    pub key: Fingerprint,
    /// Fingerprint of the certificate it belongs to.
    pub cert: Fingerprint,
}

struct Helper<'k> {
    keyring: &'k Keyring,
    policy: &'k StandardPolicy<'k>,
    accepted: Option<GoodSignature>,
    rejections: Vec<String>,
    /// Signatures by a known key that do not verify: each fails the file, as in apt.
    bad: Vec<String>,
}

impl VerificationHelper for Helper<'_> {
    fn get_certs(&mut self, _ids: &[KeyHandle]) -> pgp::Result<Vec<Cert>> {
        Ok(self.keyring.certs.clone())
    }

    fn check(&mut self, structure: MessageStructure) -> pgp::Result<()> {
        for layer in structure.into_iter() {
            match layer {
                MessageLayer::SignatureGroup { results } => {
                    for result in results {
                        match result {
                            Ok(good) => match self.alive_now(&good) {
                                Ok(()) => {
                                    if self.accepted.is_none() {
                                        self.accepted = Some(GoodSignature {
                                            key: good.ka.key().fingerprint(),
                                            cert: good.ka.cert().fingerprint(),
                                        });
                                    }
                                }
                                Err(why) => self.rejections.push(why),
                            },
                            // apt fails the whole file on any BADSIG (a signature by a key
                            // it has that does not match the data), even beside a good one;
                            // an unknown key's signature is only ignored.
                            Err(VerificationError::BadSignature { sig, error, .. }) => {
                                self.bad.push(format!(
                                    "BADSIG by {}: {error}",
                                    sig.issuers()
                                        .next()
                                        .map_or_else(|| "an unnamed key".into(), |k| k.to_hex())
                                ));
                            }
                            Err(e) => self.rejections.push(e.to_string()),
                        }
                    }
                }
                _ => {
                    return Err(anyhow!(
                        "unexpected OpenPGP message structure (expected only signatures)"
                    ));
                }
            }
        }
        if !self.bad.is_empty() {
            Err(anyhow!(
                "a bad signature (apt rejects the file): {}",
                self.bad.join("; ")
            ))
        } else if self.accepted.is_some() {
            Ok(())
        } else if self.rejections.is_empty() {
            Err(anyhow!("no signature found"))
        } else {
            Err(anyhow!("no good signature: {}", self.rejections.join("; ")))
        }
    }
}

impl<'k> Helper<'k> {
    fn new(keyring: &'k Keyring, policy: &'k StandardPolicy<'k>) -> Helper<'k> {
        Helper {
            keyring,
            policy,
            accepted: None,
            rejections: Vec::new(),
            bad: Vec::new(),
        }
    }

    fn into_accepted(self) -> Result<GoodSignature> {
        self.accepted
            .ok_or_else(|| anyhow!("signature verification failed: no good signature"))
    }

    /// The signature is good; apt also refuses a key that has expired or been revoked
    /// since, so check the key's state now, not only when it signed.
    fn alive_now(&self, good: &GoodChecksum<'_>) -> std::result::Result<(), String> {
        let fpr = good.ka.key().fingerprint();
        let now = SystemTime::now();
        let cert = good.ka.cert();
        let valid = cert
            .with_policy(self.policy, now)
            .map_err(|e| format!("certificate {} is not valid now: {e}", cert.fingerprint()))?;
        if let RevocationStatus::Revoked(_) = valid.revocation_status() {
            return Err(format!("certificate {} is revoked", cert.fingerprint()));
        }
        valid
            .alive()
            .map_err(|e| format!("certificate {} is expired: {e}", cert.fingerprint()))?;
        let key = valid
            .keys()
            .key_handle(fpr.clone())
            .next()
            .ok_or_else(|| format!("signing key {fpr} is not valid now"))?;
        if let RevocationStatus::Revoked(_) = key.revocation_status() {
            return Err(format!("signing key {fpr} is revoked"));
        }
        key.alive()
            .map_err(|e| format!("signing key {fpr} is expired: {e}"))?;
        if !key.for_signing() {
            return Err(format!("key {fpr} is not a signing key"));
        }
        Ok(())
    }
}

/// Verify a clearsigned file (InRelease) and return the signed text, as the
/// verifier outputs it: only this text may be parsed afterwards.
pub fn verify_cleartext(signed: &[u8], keyring: &Keyring) -> Result<(Vec<u8>, GoodSignature)> {
    let policy = keyring.policy();
    let helper = Helper::new(keyring, &policy);
    let mut verifier = VerifierBuilder::from_bytes(signed)
        .context("not an OpenPGP clearsigned message")?
        .with_policy(&policy, None, helper)
        .map_err(|e| anyhow!("signature verification failed: {e}"))?;
    let mut text = Vec::new();
    verifier
        .read_to_end(&mut text)
        .map_err(|e| anyhow!("signature verification failed: {e}"))?;
    if !verifier.message_processed() {
        bail!("signature verification failed: message not fully processed");
    }
    Ok((text, verifier.into_helper().into_accepted()?))
}

/// Verify a detached signature (Release.gpg) over `data` (Release).
pub fn verify_detached(data: &[u8], signature: &[u8], keyring: &Keyring) -> Result<GoodSignature> {
    let policy = keyring.policy();
    let helper = Helper::new(keyring, &policy);
    let mut verifier = DetachedVerifierBuilder::from_bytes(signature)
        .context("not an OpenPGP detached signature")?
        .with_policy(&policy, None, helper)
        .map_err(|e| anyhow!("signature verification failed: {e}"))?;
    verifier
        .verify_bytes(data)
        .map_err(|e| anyhow!("signature verification failed: {e}"))?;
    verifier.into_helper().into_accepted()
}

/// The operator's signing key(s), unlocked and ready to sign. Several keys (a rotation
/// in progress) each sign every Release, and the exported keyrings hold them all.
pub struct SigningKey {
    keys: Vec<(Cert, KeyPair)>,
}

impl SigningKey {
    /// Load one secret key (armored or binary), or several in one file; `passphrase`
    /// unlocks those that are protected.
    pub fn from_bytes(bytes: &[u8], passphrase: Option<&Password>) -> Result<SigningKey> {
        let mut keys = Vec::new();
        for cert in CertParser::from_bytes(bytes).context("not an OpenPGP secret key")? {
            let cert = cert.context("malformed signing key")?;
            keys.push(unlock(cert, passphrase)?);
        }
        if keys.is_empty() {
            bail!("the signing key file holds no key");
        }
        Ok(SigningKey { keys })
    }

    /// Several keys together (`--sign-key` given more than once).
    pub fn combine(parts: Vec<SigningKey>) -> Result<SigningKey> {
        let mut keys: Vec<(Cert, KeyPair)> = Vec::new();
        for part in parts {
            for (cert, pair) in part.keys {
                if keys
                    .iter()
                    .any(|(c, _)| c.fingerprint() == cert.fingerprint())
                {
                    bail!("the signing key {} is given twice", cert.fingerprint());
                }
                keys.push((cert, pair));
            }
        }
        Ok(SigningKey { keys })
    }

    /// Generate a new signing key (for builds without an operator key).
    pub fn generate(user_id: &str) -> Result<(SigningKey, Vec<u8>)> {
        let (cert, _revocation) = CertBuilder::new()
            .add_userid(user_id)
            .add_signing_subkey()
            .generate()
            .context("generating a signing key")?;
        let armored = cert.as_tsk().armored().to_vec()?;
        let key = SigningKey::from_bytes(&armored, None)?;
        Ok((key, armored))
    }

    /// The first certificate's fingerprint (the one named in messages).
    pub fn fingerprint(&self) -> Fingerprint {
        self.keys[0].0.fingerprint()
    }

    /// Every certificate's fingerprint, in signing order.
    pub fn fingerprints(&self) -> Vec<Fingerprint> {
        self.keys.iter().map(|(c, _)| c.fingerprint()).collect()
    }

    /// The public certificates, binary (for `signed-by=`).
    pub fn public_binary(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        for (cert, _) in &self.keys {
            cert.serialize(&mut out)?;
        }
        Ok(out)
    }

    /// The public certificates, ASCII-armored (one block).
    pub fn public_armored(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        {
            let mut w = pgp::armor::Writer::new(&mut out, pgp::armor::Kind::PublicKey)?;
            for (cert, _) in &self.keys {
                cert.serialize(&mut w)?;
            }
            w.finalize()?;
        }
        Ok(out)
    }

    fn signer<'a>(&self, message: Message<'a>) -> Result<Signer<'a>> {
        let mut signer = Signer::new(message, self.keys[0].1.clone())?;
        for (_, pair) in &self.keys[1..] {
            signer = signer.add_signer(pair.clone())?;
        }
        Ok(signer)
    }

    /// Clearsign `text` (for InRelease).
    pub fn clearsign(&self, text: &[u8]) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        {
            let message = Message::new(&mut out);
            let mut signer = self.signer(message)?.cleartext().build()?;
            signer.write_all(text)?;
            signer.finalize()?;
        }
        Ok(out)
    }

    /// An armored detached signature over `data` (for Release.gpg).
    pub fn sign_detached(&self, data: &[u8]) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        {
            let message = Message::new(&mut out);
            let message = Armorer::new(message)
                .kind(pgp::armor::Kind::Signature)
                .build()?;
            let mut signer = self.signer(message)?.detached().build()?;
            signer.write_all(data)?;
            signer.finalize()?;
        }
        Ok(out)
    }
}

/// One certificate's usable signing key, unlocked.
fn unlock(cert: Cert, passphrase: Option<&Password>) -> Result<(Cert, KeyPair)> {
    let fpr = cert.fingerprint();
    let policy = crate::policy::apt3();
    let valid = cert
        .with_policy(&policy, None)
        .with_context(|| format!("the signing key {fpr} is not valid now under apt 3's policy"))?;
    valid
        .alive()
        .with_context(|| format!("the signing key {fpr} has expired"))?;
    if let RevocationStatus::Revoked(_) = valid.revocation_status() {
        bail!("the signing key {fpr} is revoked");
    }
    let key = valid
        .keys()
        .secret()
        .alive()
        .revoked(false)
        .for_signing()
        .next()
        .ok_or_else(|| anyhow!("{fpr}: no usable secret signing key (is it only a public key?)"))?;
    let mut key = key.key().clone();
    if !key.has_unencrypted_secret() {
        let Some(pw) = passphrase else {
            bail!(
                "the signing key {fpr} is passphrase-protected: set RELEASE_SIGN_KEY_PASSPHRASE or pass --passphrase-file"
            );
        };
        key = key
            .decrypt_secret(pw)
            .map_err(|_| anyhow!("wrong passphrase for the signing key {fpr}"))?;
    }
    let keypair = key.into_keypair().context("unusable signing key")?;
    Ok((cert, keypair))
}

/// The operator's key from `sign_key`, or else the key kept in `state_dir`
/// (generated on first use, with a warning that production should bring its own).
pub fn load_signing_key(
    sign_keys: &[std::path::PathBuf],
    passphrase: Option<&Password>,
    state_dir: &std::path::Path,
) -> Result<SigningKey> {
    if !sign_keys.is_empty() {
        let mut parts = Vec::new();
        for path in sign_keys {
            let bytes = std::fs::read(path)
                .with_context(|| format!("reading the signing key {}", path.display()))?;
            // The lint first: a key apt 3 refuses fails before a passphrase is even asked for.
            for warning in check_key_bytes(&bytes)
                .with_context(|| format!("signing key {}", path.display()))?
            {
                tracing::warn!("signing key {}: {warning}", path.display());
            }
            parts.push(
                SigningKey::from_bytes(&bytes, passphrase)
                    .with_context(|| format!("signing key {}", path.display()))?,
            );
        }
        return SigningKey::combine(parts);
    }
    let path = state_dir.join("signing-key.asc");
    if let Ok(bytes) = std::fs::read(&path) {
        let key = SigningKey::from_bytes(&bytes, None)
            .with_context(|| format!("generated signing key {}", path.display()))?;
        tracing::warn!(
            "signing with the generated key {} ({}); production should pass its own with --sign-key",
            path.display(),
            key.fingerprint()
        );
        return Ok(key);
    }
    std::fs::create_dir_all(state_dir)
        .with_context(|| format!("creating state directory {}", state_dir.display()))?;
    let (key, armored) =
        SigningKey::generate("mini-mirror automatic signing key <mini-mirror@localhost>")?;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = state_dir.join(".signing-key.asc.tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    file.write_all(&armored)?;
    file.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    tracing::warn!(
        "no --sign-key given: generated a signing key in {} ({}); it is reused by later builds, \
         but production should pass its own key",
        path.display(),
        key.fingerprint()
    );
    Ok(key)
}

/// Lint every certificate in a key file (secret or public) against apt 3's policy: the
/// warnings, or an error naming why apt 3 clients would refuse its signatures.
pub fn check_key_bytes(bytes: &[u8]) -> Result<Vec<String>> {
    let mut warnings = Vec::new();
    let mut any = false;
    for cert in CertParser::from_bytes(bytes).context("not an OpenPGP key")? {
        let cert = cert.context("malformed key")?;
        any = true;
        warnings.extend(crate::policy::check_signing_key(&cert)?);
    }
    if !any {
        bail!("the key file holds no key");
    }
    Ok(warnings)
}

/// Turn a passphrase string into sequoia's zeroizing password type.
pub fn password(passphrase: &str) -> Password {
    Password::from(passphrase.trim_end_matches(['\n', '\r']))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_then_verify_round_trip() {
        let (key, _) = SigningKey::generate("t <t@example.org>").unwrap();
        let keyring = Keyring::from_bytes(&key.public_binary().unwrap()).unwrap();
        let text = b"Origin: x\nLabel: y\n-dash line\n";
        let signed = key.clearsign(text).unwrap();
        let (out, good) = verify_cleartext(&signed, &keyring).unwrap();
        assert_eq!(out, text);
        assert_eq!(good.cert, key.fingerprint());
        let sig = key.sign_detached(text).unwrap();
        verify_detached(text, &sig, &keyring).unwrap();
        assert!(verify_detached(b"other", &sig, &keyring).is_err());
    }

    #[test]
    fn rejects_other_keys_and_tampering() {
        let (key, _) = SigningKey::generate("a <a@example.org>").unwrap();
        let (other, _) = SigningKey::generate("b <b@example.org>").unwrap();
        let other_ring = Keyring::from_bytes(&other.public_armored().unwrap()).unwrap();
        let signed = key.clearsign(b"A: 1\n").unwrap();
        assert!(verify_cleartext(&signed, &other_ring).is_err());
        let ring = Keyring::from_bytes(&key.public_armored().unwrap()).unwrap();
        let tampered = String::from_utf8(signed).unwrap().replace("A: 1", "A: 2");
        assert!(verify_cleartext(tampered.as_bytes(), &ring).is_err());
    }

    #[test]
    fn unsigned_text_around_a_clearsigned_message_never_reaches_the_output() {
        let (key, _) = SigningKey::generate("a <a@example.org>").unwrap();
        let ring = Keyring::from_bytes(&key.public_binary().unwrap()).unwrap();
        let signed = String::from_utf8(key.clearsign(b"Origin: good\n").unwrap()).unwrap();
        for hostile in [
            format!("Origin: evil\n\n{signed}"),
            format!("{signed}\nOrigin: evil\n"),
        ] {
            // Refusing outright is fine too; accepting must yield only the signed text.
            if let Ok((text, _)) = verify_cleartext(hostile.as_bytes(), &ring) {
                assert_eq!(text, b"Origin: good\n");
            }
        }
    }

    #[test]
    fn protected_key_needs_the_right_passphrase() {
        let (cert, _) = CertBuilder::new()
            .add_userid("p <p@example.org>")
            .add_signing_subkey()
            .set_password(Some("s3cret".into()))
            .generate()
            .unwrap();
        let bytes = cert.as_tsk().armored().to_vec().unwrap();
        assert!(SigningKey::from_bytes(&bytes, None).is_err());
        let wrong = SigningKey::from_bytes(&bytes, Some(&password("nope")))
            .err()
            .unwrap();
        assert!(wrong.to_string().contains("wrong passphrase"));
        assert!(!wrong.to_string().contains("nope"));
        SigningKey::from_bytes(&bytes, Some(&password("s3cret\n"))).unwrap();
    }
}
