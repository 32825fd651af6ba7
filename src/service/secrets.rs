//! Secrets the service makes: random tokens (setup links, invitations, API keys) and password
//! hashes (argon2id at the parameters OWASP recommends: 19 MiB, 2 passes, 1 lane). Their stored
//! digests are [`crate::model::secret`]'s.

use std::sync::{LazyLock, Mutex};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::distributions::{Alphanumeric, DistString};

use crate::model::secret::{constant_time_eq, digest};

/// A random, URL-safe token of `len` alphanumeric characters (about 5.95 bits each).
pub fn random_token(len: usize) -> String {
    Alphanumeric.sample_string(&mut rand::rngs::OsRng, len)
}

fn argon2() -> Argon2<'static> {
    // m = 19456 KiB, t = 2, p = 1: OWASP Password Storage Cheat Sheet, argon2id minimum.
    let params = Params::new(19 * 1024, 2, 1, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password into a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$...`).
pub fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Verifies a password against a stored PHC string; false for a malformed hash.
pub fn verify_password(password: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => argon2().verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

/// A hash of nothing anyone knows, verified against when the e-mail address is unknown so that
/// "no such member" and "wrong password" take the same time.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| hash_password(&random_token(32)).unwrap_or_default());

/// Spends the time of one verification without a member.
pub fn verify_against_dummy(password: &str) {
    let _ = verify_password(password, &DUMMY_HASH);
}

/// The first-run token: set while no member exists, consumed by the first admin's creation.
#[derive(Debug, Default)]
pub struct SetupToken(Mutex<Option<String>>);

impl SetupToken {
    pub(super) fn slot(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the token if `token` is it: of two requests with the right token, one gets it.
    pub(super) fn claim(&self, token: &str) -> Option<String> {
        let mut slot = self.slot();
        let digest_of_token = digest(token);
        if slot
            .as_deref()
            .is_some_and(|d| constant_time_eq(d, &digest_of_token))
        {
            slot.take()
        } else {
            None
        }
    }

    /// Puts back a claimed token whose setup failed.
    pub(super) fn restore(&self, claimed: String) {
        *self.slot() = Some(claimed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_of_the_asked_length() {
        let a = random_token(32);
        assert_eq!(a.len(), 32);
        assert_ne!(a, random_token(32));
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
    }

    #[test]
    fn a_hash_verifies_its_password_only() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("correct horse battery!", &hash));
        assert!(!verify_password("anything", "not a hash"));
    }
}
