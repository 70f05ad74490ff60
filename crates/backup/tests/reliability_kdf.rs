//! Regression test for an open defect (RELIABILITY.md, open defects): the Argon2id cost stored
//! in a key file is used as is, so a tampered `keys/<id>` (its checksum is unkeyed) can make
//! every command that opens the repository allocate terabytes or spin for hours. Ignored until
//! `crypto::unwrap` bounds the parameters; then it must pass in well under a second.
#![allow(clippy::unwrap_used)]

use strata_backup::crypto::{KdfParams, Keys, unwrap, wrap};

fn cheap() -> KdfParams {
    KdfParams {
        m_cost: 8,
        t_cost: 1,
        p_cost: 1,
    }
}

#[test]
fn absurd_kdf_parameters_in_a_key_file_are_refused() {
    let good = wrap(&Keys::generate(), b"pw", "repo", cheap()).unwrap();
    for params in [
        KdfParams {
            m_cost: u32::MAX,
            ..cheap()
        },
        KdfParams {
            t_cost: u32::MAX,
            ..cheap()
        },
        KdfParams {
            p_cost: 0xFF_FFFF,
            m_cost: 0xFF_FFFF * 8,
            ..cheap()
        },
    ] {
        let mut w = good.clone();
        w.params = params;
        let err = unwrap(&w, b"pw", "repo", "keys/k1").err().unwrap();
        assert!(err.to_string().contains("keys/k1"), "{err}");
    }
}

#[test]
fn cheap_kdf_parameters_still_unwrap() {
    let keys = Keys::generate();
    let w = wrap(&keys, b"pw", "repo", cheap()).unwrap();
    assert!(unwrap(&w, b"pw", "repo", "keys/k1").is_ok());
    assert!(unwrap(&w, b"wrong", "repo", "keys/k1").is_err());
}
