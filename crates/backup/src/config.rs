//! The `config` and `keys/<id>` files: small JSON documents in clear, each with a BLAKE3
//! checksum of its other fields so damage is told apart from a wrong password.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::crypto::WrappedKey;
use crate::error::{Error, Result};
use crate::format::Compression;

pub const REPO_MAGIC: &str = "strata-repository";
pub const REPO_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoConfig {
    pub magic: String,
    pub version: u32,
    /// 32 hex digits, random at init.
    pub id: String,
    /// RFC 3339.
    pub created: String,
    /// `aes-256-gcm` or `none`.
    pub encryption: String,
    /// `zstd:<level>` or `none`.
    pub compression: String,
}

impl RepoConfig {
    pub fn encrypted(&self) -> bool {
        self.encryption == "aes-256-gcm"
    }

    pub fn compression(&self) -> Result<Compression> {
        parse_compression(&self.compression)
    }

    pub fn check(&self) -> Result<()> {
        if self.magic != REPO_MAGIC {
            return Err(Error::corrupt("config", "not a Strata repository config"));
        }
        if self.version != REPO_VERSION {
            return Err(Error::UnsupportedVersion {
                name: "config".into(),
                found: self.version,
                supported: REPO_VERSION,
            });
        }
        if !matches!(self.encryption.as_str(), "aes-256-gcm" | "none") {
            return Err(Error::corrupt(
                "config",
                format!("unknown encryption '{}'", self.encryption),
            ));
        }
        self.compression()?;
        Ok(())
    }
}

pub fn parse_compression(s: &str) -> Result<Compression> {
    if s == "none" {
        return Ok(Compression::None);
    }
    let level = s
        .strip_prefix("zstd")
        .map(|l| l.strip_prefix(':').unwrap_or(l))
        .ok_or_else(|| {
            Error::InvalidArgument(format!("compression '{s}': use zstd:LEVEL or none"))
        })?;
    if level.is_empty() {
        return Ok(Compression::Zstd(3));
    }
    let n: i32 = level
        .parse()
        .map_err(|_| Error::InvalidArgument(format!("compression '{s}': bad level")))?;
    if !(1..=22).contains(&n) {
        return Err(Error::InvalidArgument(format!(
            "compression '{s}': zstd level must be 1..22"
        )));
    }
    Ok(Compression::Zstd(n))
}

/// A document and the BLAKE3 of its canonical JSON encoding.
#[derive(Debug, Serialize, Deserialize)]
struct Checked<T> {
    body: T,
    blake3: String,
}

pub fn seal_doc<T: Serialize>(doc: &T) -> Result<Vec<u8>> {
    let body = serde_json::to_value(doc)
        .map_err(|e| Error::InvalidArgument(format!("encoding document: {e}")))?;
    let canon = serde_json::to_vec(&body)
        .map_err(|e| Error::InvalidArgument(format!("encoding document: {e}")))?;
    let c = Checked {
        blake3: blake3::hash(&canon).to_hex().to_string(),
        body,
    };
    serde_json::to_vec_pretty(&c).map_err(|e| Error::InvalidArgument(format!("encoding: {e}")))
}

pub fn open_doc<T: DeserializeOwned>(name: &str, bytes: &[u8]) -> Result<T> {
    let c: Checked<serde_json::Value> = serde_json::from_slice(bytes)
        .map_err(|e| Error::corrupt(name, format!("not valid JSON: {e}")))?;
    let canon = serde_json::to_vec(&c.body).map_err(|e| Error::corrupt(name, e.to_string()))?;
    if blake3::hash(&canon).to_hex().as_str() != c.blake3 {
        return Err(Error::corrupt(name, "checksum mismatch"));
    }
    serde_json::from_value(c.body).map_err(|e| Error::corrupt(name, format!("bad fields: {e}")))
}

/// Body of `keys/<id>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyFile {
    pub created: String,
    pub wrapped: WrappedKey,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn checked_docs_detect_damage() {
        let cfg = RepoConfig {
            magic: REPO_MAGIC.into(),
            version: 1,
            id: "ab".into(),
            created: "now".into(),
            encryption: "none".into(),
            compression: "zstd:3".into(),
        };
        let bytes = seal_doc(&cfg).unwrap();
        let back: RepoConfig = open_doc("config", &bytes).unwrap();
        assert_eq!(back, cfg);
        let s = String::from_utf8(bytes)
            .unwrap()
            .replace("zstd:3", "zstd:4");
        assert!(open_doc::<RepoConfig>("config", s.as_bytes()).is_err());
    }

    #[test]
    fn compression_specs() {
        assert_eq!(parse_compression("none").unwrap(), Compression::None);
        assert_eq!(parse_compression("zstd").unwrap(), Compression::Zstd(3));
        assert_eq!(parse_compression("zstd:9").unwrap(), Compression::Zstd(9));
        assert!(parse_compression("zstd:99").is_err());
        assert!(parse_compression("lz4").is_err());
    }
}
