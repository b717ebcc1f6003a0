use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

use crate::error::{Error, Result};

/// argon2id hashing off the async runtime, with a bound on how many run at once:
/// each one holds `memory_kib` of RAM and a core for tens of milliseconds, so an
/// unbounded burst of logins would otherwise take the whole machine.
#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    permits: Arc<Semaphore>,
    /// A hash of a random password, verified against when the user does not exist so
    /// that a login for an unknown name costs the same as one with a wrong password.
    decoy: Arc<str>,
}

#[derive(Clone, Debug)]
pub struct PasswordConfig {
    pub memory_kib: u32,
    pub iterations: u32,
    pub max_concurrent: usize,
}

impl Default for PasswordConfig {
    /// OWASP's argon2id baseline: 19 MiB, 2 iterations, 1 lane.
    fn default() -> Self {
        Self {
            memory_kib: 19 * 1024,
            iterations: 2,
            max_concurrent: std::thread::available_parallelism().map_or(2, |n| n.get()),
        }
    }
}

impl PasswordHasher {
    pub fn new(config: &PasswordConfig) -> Result<Self> {
        let params = Params::new(config.memory_kib, config.iterations, 1, None)
            .map_err(|e| Error::Internal(format!("argon2 parameters: {e}")))?;
        let decoy = hash_with(&params, &random_password())?;
        Ok(Self {
            params,
            permits: Arc::new(Semaphore::new(config.max_concurrent.max(1))),
            decoy: decoy.into(),
        })
    }

    pub async fn hash(&self, password: &str) -> Result<String> {
        let _permit = self.permits.acquire().await.map_err(|_| shutting_down())?;
        let params = self.params.clone();
        let password = password.to_owned();
        tokio::task::spawn_blocking(move || hash_with(&params, &password))
            .await
            .map_err(|e| Error::Internal(format!("password hashing task: {e}")))?
    }

    /// Verifies `password` against `phc`, or against the decoy when there is no hash,
    /// so both paths take the same time. Returns false in the decoy case.
    pub async fn verify(&self, password: &str, phc: Option<&str>) -> Result<bool> {
        let _permit = self.permits.acquire().await.map_err(|_| shutting_down())?;
        let known = phc.is_some();
        let phc = phc.map_or_else(|| self.decoy.to_string(), str::to_owned);
        let password = password.to_owned();
        let matched = tokio::task::spawn_blocking(move || {
            let parsed = PasswordHash::new(&phc)
                .map_err(|e| Error::Internal(format!("stored hash: {e}")))?;
            Ok::<_, Error>(
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok(),
            )
        })
        .await
        .map_err(|e| Error::Internal(format!("password verification task: {e}")))??;
        Ok(known && matched)
    }
}

fn hash_with(params: &Params, password: &str) -> Result<String> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Internal(format!("argon2: {e}")))
}

fn random_password() -> String {
    use rand::Rng;
    rand::thread_rng()
        .sample_iter(&rand::distributions::Alphanumeric)
        .take(32)
        .map(char::from)
        .collect()
}

fn shutting_down() -> Error {
    Error::Unavailable {
        detail: "shutting down".into(),
        retry_after_secs: 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast() -> PasswordConfig {
        PasswordConfig {
            memory_kib: 1024,
            iterations: 1,
            max_concurrent: 2,
        }
    }

    #[tokio::test]
    async fn hash_and_verify() {
        let hasher = PasswordHasher::new(&fast()).unwrap();
        let phc = hasher.hash("correct horse").await.unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(hasher.verify("correct horse", Some(&phc)).await.unwrap());
        assert!(!hasher.verify("wrong horse", Some(&phc)).await.unwrap());
        assert!(!hasher.verify("correct horse", None).await.unwrap());
    }
}
