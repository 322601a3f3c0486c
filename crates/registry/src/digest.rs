//! Content digests (`sha256:<64 hex>`): parsing, computing, and a writer that hashes what passes.

use sha2::{Digest as _, Sha256};
use std::fmt;
use std::io::{self, Read, Write};

/// A validated sha256 content digest; the only algorithm berth stores.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest {
    hex: String,
}

/// Why a digest string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestParseError {
    #[error("digest {0:?}: expected `algorithm:hex`")]
    Shape(String),
    #[error("digest {0:?}: only sha256 is supported")]
    Algorithm(String),
    #[error("digest {0:?}: expected 64 lowercase hex characters after `sha256:`")]
    Hex(String),
}

impl Digest {
    /// Parses `sha256:<64 lowercase hex>`.
    pub fn parse(text: &str) -> Result<Digest, DigestParseError> {
        let (algorithm, hex) = text
            .split_once(':')
            .ok_or_else(|| DigestParseError::Shape(text.to_string()))?;
        if algorithm != "sha256" {
            return Err(DigestParseError::Algorithm(text.to_string()));
        }
        if hex.len() != 64
            || !hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(DigestParseError::Hex(text.to_string()));
        }
        Ok(Digest {
            hex: hex.to_string(),
        })
    }

    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest::from_hasher(Sha256::new_with_prefix(bytes))
    }

    /// The digest of everything `reader` yields.
    pub fn of_reader(mut reader: impl Read) -> io::Result<(Digest, u64)> {
        let mut hashing = HashingWriter::new(io::sink());
        io::copy(&mut reader, &mut hashing)?;
        Ok(hashing.finish())
    }

    fn from_hasher(hasher: Sha256) -> Digest {
        Digest {
            hex: hex::encode(hasher.finalize()),
        }
    }

    /// The 64 hex characters, without the algorithm.
    pub fn hex(&self) -> &str {
        &self.hex
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Digest::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A writer that passes bytes through to `inner` while hashing and counting them.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    n_bytes: u64,
}

impl<W: Write> HashingWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> HashingWriter<W> {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            n_bytes: 0,
        }
    }
    /// The digest and size of what was written.
    pub fn finish(self) -> (Digest, u64) {
        (Digest::from_hasher(self.hasher), self.n_bytes)
    }
    /// The digest, size and the inner writer.
    pub fn into_parts(self) -> (Digest, u64, W) {
        (Digest::from_hasher(self.hasher), self.n_bytes, self.inner)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.n_bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// An incremental hasher for bytes that arrive in pieces (a download).
#[derive(Default)]
pub struct Hasher {
    hasher: Sha256,
    n_bytes: u64,
}

impl Hasher {
    /// Adds `bytes`.
    pub fn update(&mut self, bytes: &[u8]) {
        self.hasher.update(bytes);
        self.n_bytes += bytes.len() as u64;
    }
    /// How many bytes were added.
    pub fn n_bytes(&self) -> u64 {
        self.n_bytes
    }
    /// The digest and size of everything added.
    pub fn finish(self) -> (Digest, u64) {
        (Digest::from_hasher(self.hasher), self.n_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn computes_and_parses() {
        assert_eq!(Digest::of(b"").to_string(), EMPTY);
        assert_eq!(Digest::parse(EMPTY), Ok(Digest::of(b"")));
        let (d, n) = Digest::of_reader(&b"hello"[..]).unwrap();
        assert_eq!(d, Digest::of(b"hello"));
        assert_eq!(n, 5);
    }

    #[test]
    fn refuses_bad_digests() {
        assert!(matches!(
            Digest::parse("e3b0"),
            Err(DigestParseError::Shape(_))
        ));
        assert!(matches!(
            Digest::parse("sha512:abcd"),
            Err(DigestParseError::Algorithm(_))
        ));
        assert!(matches!(
            Digest::parse("sha256:abcd"),
            Err(DigestParseError::Hex(_))
        ));
        let upper = EMPTY.to_uppercase().replace("SHA256", "sha256");
        assert!(matches!(
            Digest::parse(&upper),
            Err(DigestParseError::Hex(_))
        ));
        let bad = format!("{}g", &EMPTY[..EMPTY.len() - 1]);
        assert!(matches!(Digest::parse(&bad), Err(DigestParseError::Hex(_))));
    }

    #[test]
    fn hashing_writer_matches_digest_of() {
        let mut w = HashingWriter::new(Vec::new());
        w.write_all(b"abc").unwrap();
        w.write_all(b"def").unwrap();
        let (d, n, inner) = w.into_parts();
        assert_eq!(d, Digest::of(b"abcdef"));
        assert_eq!(n, 6);
        assert_eq!(inner, b"abcdef");
        let mut h = Hasher::default();
        h.update(b"abc");
        h.update(b"def");
        assert_eq!(h.finish(), (Digest::of(b"abcdef"), 6));
    }
}
