//! SHA256, the hash every byte that reaches the output is checked against.
//!
//! ring's implementation (BoringSSL's assembly): on CPUs without SHA extensions it is
//! about twice as fast as the pure-Rust `sha2` (50 MB: 0.145 s against 0.265 s on the
//! benchmark machine), and every downloaded byte is hashed once or twice.

/// An incremental SHA256.
pub struct Sha256(ring::digest::Context);

impl Sha256 {
    /// A hash of nothing yet.
    pub fn new() -> Sha256 {
        Sha256(ring::digest::Context::new(&ring::digest::SHA256))
    }

    /// Hash `data` next.
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    /// The digest, lowercase hex.
    pub fn hex(self) -> String {
        hex::encode(self.0.finish().as_ref())
    }
}

impl Default for Sha256 {
    fn default() -> Sha256 {
        Sha256::new()
    }
}

/// SHA256 of `data`, lowercase hex.
pub fn hex_digest(data: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(data);
    h.hex()
}

/// SHA256 of a file's contents, lowercase hex.
pub fn hex_digest_file(path: &std::path::Path) -> anyhow::Result<String> {
    use anyhow::Context;
    use std::io::Read;
    let mut file =
        std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(h.hex());
        }
        h.update(&buf[..n]);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn known_digests() {
        assert_eq!(
            super::hex_digest(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let mut h = super::Sha256::new();
        h.update(b"a");
        h.update(b"bc");
        assert_eq!(
            h.hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
