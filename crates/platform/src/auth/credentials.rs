use rand::Rng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::ids::Id;
use crate::model::{App, AppCredentials};

const KEY_CHARS: usize = 24;
const SECRET_CHARS: usize = 43;

fn random_alnum(n: usize) -> String {
    rand::thread_rng()
        .sample_iter(&rand::distributions::Alphanumeric)
        .take(n)
        .map(char::from)
        .collect()
}

/// A new app with fresh credentials. The returned [`AppCredentials`] hold the only
/// copy of the secret.
pub fn generate_app(id: Id, name: &str, now_ms: i64) -> (App, AppCredentials) {
    let key = format!("ak_{}", random_alnum(KEY_CHARS));
    // 43 alphanumerics carry about 256 bits.
    let secret = format!("as_{}", random_alnum(SECRET_CHARS));
    let mut signing_key = vec![0u8; 32];
    rand::thread_rng().fill(&mut signing_key[..]);
    let app = App {
        id,
        name: name.to_owned(),
        key: key.clone(),
        secret_sha256: Sha256::digest(secret.as_bytes()).into(),
        signing_key,
        created_at_ms: now_ms,
    };
    let credentials = AppCredentials {
        app_id: id,
        app_key: key,
        app_secret: secret,
    };
    (app, credentials)
}

/// Constant-time check of a presented secret against the stored digest.
pub fn verify_secret(app: &App, presented: &str) -> bool {
    let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
    digest.ct_eq(&app.secret_sha256).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secret_verifies_and_others_do_not() {
        let (app, creds) = generate_app(Id(1), "shop", 0);
        assert!(verify_secret(&app, &creds.app_secret));
        assert!(!verify_secret(&app, "as_wrong"));
        let (other, _) = generate_app(Id(2), "other", 0);
        assert_ne!(app.key, other.key);
        assert_ne!(app.signing_key, other.signing_key);
    }
}
