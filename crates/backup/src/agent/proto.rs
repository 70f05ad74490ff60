//! The agent's wire protocol: one request and one response per connection, each a frame of a
//! 4-byte little-endian body length and a body of at most [`MAX_FRAME`] bytes. A body is the
//! protocol version ([`VERSION`]), a message kind, and the kind's fields: strings as a 2-byte
//! little-endian length and UTF-8, integers as 8-byte little-endian, keys as 32 raw bytes,
//! lists as a 2-byte count of items. Nothing may follow the last field. The normative table is
//! in `docs/format/agent.md`.
//!
//! Decoding never trusts a length: a body longer than the cap is refused before it is read,
//! every field is bounds-checked, and any malformation is one [`ProtoError`] (the agent
//! answers it with an error response and closes the connection).

use std::io::{Read, Write};

use zeroize::Zeroizing;

/// Version of the protocol this build speaks.
pub const VERSION: u8 = 1;
/// Largest body accepted in either direction.
pub const MAX_FRAME: usize = 64 * 1024;
/// Longest string field (a repository URL, an id, an error message).
pub const MAX_STRING: usize = 4096;

/// A key-encryption key: what the password's Argon2id derivation yields for one key file.
pub type Kek = Zeroizing<[u8; 32]>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtoError {
    #[error("message of {0} bytes exceeds the limit of {MAX_FRAME}")]
    TooLarge(u64),
    #[error("protocol version {0} is not supported (this build speaks {VERSION})")]
    Version(u8),
    #[error("unknown message kind {0}")]
    Kind(u8),
    #[error("message truncated in {0}")]
    Truncated(&'static str),
    #[error("{0} bytes after the end of the message")]
    Trailing(usize),
    #[error("{0} is not valid UTF-8")]
    Utf8(&'static str),
    #[error("{0} is longer than {MAX_STRING} bytes")]
    LongString(&'static str),
    #[error("empty message")]
    Empty,
}

/// One key the agent holds.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyEntry {
    /// The repository's id (its config's `id`).
    pub repo_id: String,
    /// The key file it opens, e.g. `keys/3fa4…`.
    pub key_file: String,
    pub kek: Kek,
}

impl std::fmt::Debug for KeyEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyEntry")
            .field("repo_id", &self.repo_id)
            .field("key_file", &self.key_file)
            .finish_non_exhaustive()
    }
}

/// What `list` shows of a held key (never the key).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Listed {
    pub repo_id: String,
    pub key_file: String,
    /// The URL it was added with.
    pub url: String,
    /// Unix seconds.
    pub added: u64,
    /// Unix seconds.
    pub expires: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Hold `key` for `lifetime_secs` (0: the agent's default lifetime).
    Add {
        key: KeyEntry,
        url: String,
        lifetime_secs: u64,
    },
    /// Every held key of repository `repo_id`.
    Get {
        repo_id: String,
    },
    List,
    /// Forget the keys whose URL or repository id is `selector`.
    Remove {
        selector: String,
    },
    Stop,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    Ok,
    Keys(Vec<KeyEntry>),
    Listed(Vec<Listed>),
    Removed(u64),
    Error(String),
}

const REQ_ADD: u8 = 1;
const REQ_GET: u8 = 2;
const REQ_LIST: u8 = 3;
const REQ_REMOVE: u8 = 4;
const REQ_STOP: u8 = 5;
const RESP_OK: u8 = 64;
const RESP_KEYS: u8 = 65;
const RESP_LISTED: u8 = 66;
const RESP_REMOVED: u8 = 67;
const RESP_ERROR: u8 = 68;

struct Writer(Vec<u8>);

impl Writer {
    fn new(kind: u8) -> Writer {
        Writer(vec![VERSION, kind])
    }

    fn str(&mut self, s: &str) {
        // Longer strings are cut at a character boundary: every message stays decodable.
        let mut n = s.len().min(MAX_STRING);
        while !s.is_char_boundary(n) {
            n -= 1;
        }
        self.0.extend_from_slice(&(n as u16).to_le_bytes());
        self.0.extend_from_slice(&s.as_bytes()[..n]);
    }

    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    fn count(&mut self, n: usize) {
        self.0
            .extend_from_slice(&u16::try_from(n).unwrap_or(u16::MAX).to_le_bytes());
    }

    fn key(&mut self, k: &KeyEntry) {
        self.str(&k.repo_id);
        self.str(&k.key_file);
        self.0.extend_from_slice(&k.kek[..]);
    }
}

struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], ProtoError> {
        if self.b.len() < n {
            return Err(ProtoError::Truncated(what));
        }
        let (h, t) = self.b.split_at(n);
        self.b = t;
        Ok(h)
    }

    fn u16(&mut self, what: &'static str) -> Result<usize, ProtoError> {
        let b = self.take(2, what)?;
        Ok(usize::from(u16::from_le_bytes([b[0], b[1]])))
    }

    fn u64(&mut self, what: &'static str) -> Result<u64, ProtoError> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8, what)?);
        Ok(u64::from_le_bytes(a))
    }

    fn str(&mut self, what: &'static str) -> Result<String, ProtoError> {
        let n = self.u16(what)?;
        if n > MAX_STRING {
            return Err(ProtoError::LongString(what));
        }
        let b = self.take(n, what)?;
        String::from_utf8(b.to_vec()).map_err(|_| ProtoError::Utf8(what))
    }

    fn key(&mut self) -> Result<KeyEntry, ProtoError> {
        let repo_id = self.str("repository id")?;
        let key_file = self.str("key file")?;
        let mut kek = Zeroizing::new([0u8; 32]);
        kek.copy_from_slice(self.take(32, "key")?);
        Ok(KeyEntry {
            repo_id,
            key_file,
            kek,
        })
    }

    /// Items of a list: each at least `min` bytes, so a count cannot promise more than is there.
    fn count(&mut self, what: &'static str, min: usize) -> Result<usize, ProtoError> {
        let n = self.u16(what)?;
        if n.saturating_mul(min) > self.b.len() {
            return Err(ProtoError::Truncated(what));
        }
        Ok(n)
    }

    fn end(&self) -> Result<(), ProtoError> {
        match self.b.len() {
            0 => Ok(()),
            n => Err(ProtoError::Trailing(n)),
        }
    }
}

/// The version and kind of a body, and a reader over its fields.
fn open(body: &[u8]) -> Result<(u8, Reader<'_>), ProtoError> {
    match body {
        [] => Err(ProtoError::Empty),
        [v, ..] if *v != VERSION => Err(ProtoError::Version(*v)),
        [_] => Err(ProtoError::Truncated("message kind")),
        [_, kind, rest @ ..] => Ok((*kind, Reader { b: rest })),
    }
}

impl Request {
    pub fn encode(&self) -> Vec<u8> {
        let w = match self {
            Request::Add {
                key,
                url,
                lifetime_secs,
            } => {
                let mut w = Writer::new(REQ_ADD);
                w.key(key);
                w.str(url);
                w.u64(*lifetime_secs);
                w
            }
            Request::Get { repo_id } => {
                let mut w = Writer::new(REQ_GET);
                w.str(repo_id);
                w
            }
            Request::List => Writer::new(REQ_LIST),
            Request::Remove { selector } => {
                let mut w = Writer::new(REQ_REMOVE);
                w.str(selector);
                w
            }
            Request::Stop => Writer::new(REQ_STOP),
        };
        w.0
    }

    pub fn decode(body: &[u8]) -> Result<Request, ProtoError> {
        let (kind, mut r) = open(body)?;
        let req = match kind {
            REQ_ADD => Request::Add {
                key: r.key()?,
                url: r.str("url")?,
                lifetime_secs: r.u64("lifetime")?,
            },
            REQ_GET => Request::Get {
                repo_id: r.str("repository id")?,
            },
            REQ_LIST => Request::List,
            REQ_REMOVE => Request::Remove {
                selector: r.str("selector")?,
            },
            REQ_STOP => Request::Stop,
            k => return Err(ProtoError::Kind(k)),
        };
        r.end()?;
        Ok(req)
    }
}

impl Response {
    pub fn encode(&self) -> Vec<u8> {
        let w = match self {
            Response::Ok => Writer::new(RESP_OK),
            Response::Keys(keys) => {
                let mut w = Writer::new(RESP_KEYS);
                w.count(keys.len());
                for k in keys.iter().take(usize::from(u16::MAX)) {
                    w.key(k);
                }
                w
            }
            Response::Listed(items) => {
                let mut w = Writer::new(RESP_LISTED);
                w.count(items.len());
                for l in items.iter().take(usize::from(u16::MAX)) {
                    w.str(&l.repo_id);
                    w.str(&l.key_file);
                    w.str(&l.url);
                    w.u64(l.added);
                    w.u64(l.expires);
                }
                w
            }
            Response::Removed(n) => {
                let mut w = Writer::new(RESP_REMOVED);
                w.u64(*n);
                w
            }
            Response::Error(m) => {
                let mut w = Writer::new(RESP_ERROR);
                w.str(m);
                w
            }
        };
        w.0
    }

    pub fn decode(body: &[u8]) -> Result<Response, ProtoError> {
        let (kind, mut r) = open(body)?;
        let resp = match kind {
            RESP_OK => Response::Ok,
            RESP_KEYS => {
                let n = r.count("key list", 2 + 2 + 32)?;
                let mut keys = Vec::with_capacity(n);
                for _ in 0..n {
                    keys.push(r.key()?);
                }
                Response::Keys(keys)
            }
            RESP_LISTED => {
                let n = r.count("key listing", 2 * 3 + 16)?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(Listed {
                        repo_id: r.str("repository id")?,
                        key_file: r.str("key file")?,
                        url: r.str("url")?,
                        added: r.u64("added")?,
                        expires: r.u64("expires")?,
                    });
                }
                Response::Listed(items)
            }
            RESP_REMOVED => Response::Removed(r.u64("count")?),
            RESP_ERROR => Response::Error(r.str("error")?),
            k => return Err(ProtoError::Kind(k)),
        };
        r.end()?;
        Ok(resp)
    }
}

/// Either a frame's body or why there is none.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error(transparent)]
    Proto(#[from] ProtoError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Reads one frame. The length is checked against [`MAX_FRAME`] before the body is read, so a
/// hostile length costs nothing. The body is zeroized when dropped (it may hold a key).
pub fn read_frame(r: &mut impl Read) -> Result<Zeroizing<Vec<u8>>, FrameError> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len)?;
    let len = u32::from_le_bytes(len);
    if len as usize > MAX_FRAME {
        return Err(ProtoError::TooLarge(u64::from(len)).into());
    }
    let mut body = Zeroizing::new(vec![0u8; len as usize]);
    r.read_exact(&mut body)?;
    Ok(body)
}

/// Writes one frame (bodies over [`MAX_FRAME`] are refused, not sent).
pub fn write_frame(w: &mut impl Write, body: &[u8]) -> Result<(), FrameError> {
    if body.len() > MAX_FRAME {
        return Err(ProtoError::TooLarge(body.len() as u64).into());
    }
    let mut out = Zeroizing::new(Vec::with_capacity(4 + body.len()));
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(body);
    w.write_all(&out)?;
    w.flush()?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn key(n: u8) -> KeyEntry {
        KeyEntry {
            repo_id: format!("repo{n}"),
            key_file: format!("keys/k{n}"),
            kek: Zeroizing::new([n; 32]),
        }
    }

    fn requests() -> Vec<Request> {
        vec![
            Request::Add {
                key: key(1),
                url: "s3://bucket/prefix".into(),
                lifetime_secs: 3600,
            },
            Request::Get {
                repo_id: "abc".into(),
            },
            Request::List,
            Request::Remove {
                selector: "/tmp/r".into(),
            },
            Request::Stop,
        ]
    }

    fn responses() -> Vec<Response> {
        vec![
            Response::Ok,
            Response::Keys(vec![key(1), key(2)]),
            Response::Keys(Vec::new()),
            Response::Listed(vec![Listed {
                repo_id: "r".into(),
                key_file: "keys/k".into(),
                url: "u".into(),
                added: 1,
                expires: 2,
            }]),
            Response::Removed(3),
            Response::Error("no".into()),
        ]
    }

    #[test]
    fn every_message_round_trips() {
        for r in requests() {
            assert_eq!(Request::decode(&r.encode()).unwrap(), r);
        }
        for r in responses() {
            assert_eq!(Response::decode(&r.encode()).unwrap(), r);
        }
    }

    #[test]
    fn every_truncation_and_every_extra_byte_is_refused() {
        let bodies: Vec<Vec<u8>> = requests()
            .iter()
            .map(Request::encode)
            .chain(responses().iter().map(Response::encode))
            .collect();
        for b in bodies {
            for n in 0..b.len() {
                let cut = &b[..n];
                assert!(
                    Request::decode(cut).is_err() && Response::decode(cut).is_err(),
                    "{b:?} cut at {n}"
                );
            }
            let mut long = b.clone();
            long.push(0);
            assert!(Request::decode(&long).is_err() && Response::decode(&long).is_err());
        }
    }

    #[test]
    fn hostile_lengths_and_versions_are_one_clear_error() {
        assert_eq!(Request::decode(&[2, REQ_LIST]), Err(ProtoError::Version(2)));
        assert_eq!(Request::decode(&[VERSION, 99]), Err(ProtoError::Kind(99)));
        // A key list promising 65,535 entries in a few bytes.
        assert!(matches!(
            Response::decode(&[VERSION, RESP_KEYS, 0xff, 0xff, 0]),
            Err(ProtoError::Truncated(_))
        ));
        // A string longer than the cap.
        let mut b = vec![VERSION, REQ_GET];
        b.extend_from_slice(&(MAX_STRING as u16 + 1).to_le_bytes());
        b.extend(std::iter::repeat_n(b'a', MAX_STRING + 1));
        assert_eq!(
            Request::decode(&b),
            Err(ProtoError::LongString("repository id"))
        );
        // A frame announcing 4 GiB is refused before anything is allocated or read.
        let mut wire: &[u8] = &[0xff, 0xff, 0xff, 0xff, 1, 2, 3];
        assert!(matches!(
            read_frame(&mut wire),
            Err(FrameError::Proto(ProtoError::TooLarge(4294967295)))
        ));
        let mut out = Vec::new();
        write_frame(&mut out, &Request::List.encode()).unwrap();
        let mut wire = &out[..];
        let body = read_frame(&mut wire).unwrap();
        assert_eq!(Request::decode(&body).unwrap(), Request::List);
    }
}
