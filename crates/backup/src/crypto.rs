//! Key hierarchy of an encrypted repository.
//!
//! password --Argon2id(salt, params)--> key-encryption key --AES-256-GCM--> master key material
//! (64 random bytes: a 32-byte data key and a 32-byte id key). Each object gets its own AES key
//! derived from the data key and a random 32-byte salt stored in the object header, so the
//! frame counter can serve as the GCM nonce without ever repeating a (key, nonce) pair.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, Result};

/// Argon2id cost parameters, recorded in each key file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_cost: u32,
    pub t_cost: u32,
    pub p_cost: u32,
}

impl Default for KdfParams {
    fn default() -> Self {
        // 64 MiB, 3 passes: OWASP's second recommended Argon2id setting.
        KdfParams {
            m_cost: 64 * 1024,
            t_cost: 3,
            p_cost: 1,
        }
    }
}

/// The unwrapped master key material. Never persisted in clear.
#[derive(Clone)]
pub struct Keys {
    data_key: [u8; 32],
    id_key: [u8; 32],
}

impl Drop for Keys {
    fn drop(&mut self) {
        self.data_key.zeroize();
        self.id_key.zeroize();
    }
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(..)")
    }
}

pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    rand::rng().fill_bytes(&mut b);
    b
}

impl Keys {
    pub fn generate() -> Keys {
        Keys {
            data_key: random_bytes(),
            id_key: random_bytes(),
        }
    }

    /// Keyed object id: equal plaintexts get equal ids (dedup) but the id reveals nothing of the
    /// content without the key.
    pub fn object_id(&self, digest: &[u8; 32]) -> [u8; 32] {
        *blake3::keyed_hash(&self.id_key, digest).as_bytes()
    }

    /// Per-object AES-256-GCM cipher from the data key and the object's random salt.
    pub fn object_cipher(&self, salt: &[u8; 32]) -> Aes256Gcm {
        let mut material = [0u8; 64];
        material[..32].copy_from_slice(&self.data_key);
        material[32..].copy_from_slice(salt);
        let key = blake3::derive_key("strata repository v1 object key", &material);
        aes_cipher(&key)
    }

    fn to_bytes(&self) -> [u8; 64] {
        let mut b = [0u8; 64];
        b[..32].copy_from_slice(&self.data_key);
        b[32..].copy_from_slice(&self.id_key);
        b
    }

    fn from_bytes(b: &[u8]) -> Option<Keys> {
        if b.len() != 64 {
            return None;
        }
        let mut data_key = [0u8; 32];
        let mut id_key = [0u8; 32];
        data_key.copy_from_slice(&b[..32]);
        id_key.copy_from_slice(&b[32..]);
        Some(Keys { data_key, id_key })
    }
}

pub fn aes_cipher(key: &[u8; 32]) -> Aes256Gcm {
    // A 32-byte slice is always a valid AES-256 key.
    match Aes256Gcm::new_from_slice(key) {
        Ok(c) => c,
        Err(_) => unreachable!("32-byte key"),
    }
}

pub fn gcm_nonce(bytes: [u8; 12]) -> Nonce<aes_gcm::aes::cipher::consts::U12> {
    Nonce::from(bytes)
}

/// A master key wrapped by a password (the body of a `keys/<id>` file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrappedKey {
    pub kdf: String,
    pub params: KdfParams,
    /// Hex, 32 bytes.
    pub salt: String,
    /// Hex, 12 bytes.
    pub nonce: String,
    /// Hex: AES-256-GCM of the 64-byte master key material, 16-byte tag appended.
    pub ciphertext: String,
}

/// Upper bounds accepted for key files: 4 GiB of memory, 64 passes, 16 lanes.
const MAX_M_COST_KIB: u32 = 4 * 1024 * 1024;
const MAX_T_COST: u32 = 64;
const MAX_P_COST: u32 = 16;

fn derive_kek(password: &[u8], salt: &[u8], p: KdfParams) -> Result<[u8; 32]> {
    let params = argon2::Params::new(p.m_cost, p.t_cost, p.p_cost, Some(32))
        .map_err(|e| Error::InvalidArgument(format!("Argon2id parameters: {e}")))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut out = [0u8; 32];
    argon
        .hash_password_into(password, salt, &mut out)
        .map_err(|e| Error::InvalidArgument(format!("Argon2id: {e}")))?;
    Ok(out)
}

/// Associated data binding a wrapped key to its repository.
fn wrap_aad(repo_id: &str) -> Vec<u8> {
    format!("strata repository key v1 {repo_id}").into_bytes()
}

pub fn wrap(keys: &Keys, password: &[u8], repo_id: &str, params: KdfParams) -> Result<WrappedKey> {
    let salt: [u8; 32] = random_bytes();
    let nonce: [u8; 12] = random_bytes();
    let kek = derive_kek(password, &salt, params)?;
    let aad = wrap_aad(repo_id);
    let material = keys.to_bytes();
    let ct = aes_cipher(&kek)
        .encrypt(
            &gcm_nonce(nonce),
            Payload {
                msg: &material,
                aad: &aad,
            },
        )
        .map_err(|_| Error::InvalidArgument("key wrapping failed".into()))?;
    Ok(WrappedKey {
        kdf: "argon2id".into(),
        params,
        salt: hex::encode(salt),
        nonce: hex::encode(nonce),
        ciphertext: hex::encode(ct),
    })
}

/// Unwraps with `password`. A failed tag means a wrong password: the key file's own checksum
/// (checked by the caller) has already ruled out damage.
pub fn unwrap(w: &WrappedKey, password: &[u8], repo_id: &str, name: &str) -> Result<Keys> {
    let kek = password_kek(w, password, name)?;
    unwrap_with_kek(w, &kek, repo_id, name)
}

/// The key-encryption key `password` derives for key file `w` (the costly Argon2id step),
/// for [`unwrap_with_kek`] now or later (`strata agent` holds it in memory).
pub fn password_kek(w: &WrappedKey, password: &[u8], name: &str) -> Result<Zeroizing<[u8; 32]>> {
    if w.kdf != "argon2id" {
        return Err(Error::corrupt(name, format!("unknown KDF '{}'", w.kdf)));
    }
    // The parameters come from a file anyone with write access to the repository can edit:
    // bound them so a hostile key file cannot make unlocking eat all memory or run for ever.
    let p = w.params;
    if p.m_cost > MAX_M_COST_KIB || p.t_cost > MAX_T_COST || p.p_cost == 0 || p.p_cost > MAX_P_COST
    {
        return Err(Error::corrupt(
            name,
            format!(
                "Argon2id parameters out of range (m_cost {} KiB, t_cost {}, p_cost {}; \
                 at most {MAX_M_COST_KIB} KiB, {MAX_T_COST}, {MAX_P_COST})",
                p.m_cost, p.t_cost, p.p_cost
            ),
        ));
    }
    let salt = hex::decode(&w.salt).map_err(|_| Error::corrupt(name, "bad salt"))?;
    Ok(Zeroizing::new(derive_kek(password, &salt, w.params)?))
}

/// Opens key file `w` with a key-encryption key: a failed tag is [`Error::WrongPassword`]
/// (the key does not belong to this key file, or to this repository).
pub fn unwrap_with_kek(w: &WrappedKey, kek: &[u8; 32], repo_id: &str, name: &str) -> Result<Keys> {
    let bad = |what: &str| Error::corrupt(name, format!("bad {what}"));
    let nonce: [u8; 12] = hex::decode(&w.nonce)
        .ok()
        .and_then(|n| n.try_into().ok())
        .ok_or_else(|| bad("nonce"))?;
    let ct = hex::decode(&w.ciphertext).map_err(|_| bad("ciphertext"))?;
    let aad = wrap_aad(repo_id);
    let material = Zeroizing::new(
        aes_cipher(kek)
            .decrypt(
                &gcm_nonce(nonce),
                Payload {
                    msg: &ct,
                    aad: &aad,
                },
            )
            .map_err(|_| Error::WrongPassword)?,
    );
    Keys::from_bytes(&material).ok_or_else(|| bad("key length"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const FAST: KdfParams = KdfParams {
        m_cost: 64,
        t_cost: 1,
        p_cost: 1,
    };

    #[test]
    fn wrap_unwrap_and_wrong_password() {
        let k = Keys::generate();
        let w = wrap(&k, b"secret", "repo1", FAST).unwrap();
        let back = unwrap(&w, b"secret", "repo1", "keys/x").unwrap();
        assert_eq!(back.to_bytes(), k.to_bytes());
        assert!(matches!(
            unwrap(&w, b"nope", "repo1", "keys/x"),
            Err(Error::WrongPassword)
        ));
        // Bound to the repository id: a key file copied into another repository fails.
        assert!(unwrap(&w, b"secret", "repo2", "keys/x").is_err());
    }

    #[test]
    fn object_ids_are_keyed() {
        let a = Keys::generate();
        let b = Keys::generate();
        let d = [7u8; 32];
        assert_eq!(a.object_id(&d), a.object_id(&d));
        assert_ne!(a.object_id(&d), b.object_id(&d));
        assert_ne!(a.object_id(&d), d);
    }
}
