//! User tokens: JWTs signed with HS256 under the issuing app's signing key.
//!
//! Only the one header we issue is accepted (no `alg` negotiation, so no `none` or
//! algorithm confusion). The app id rides in the claims so a verifier can find the
//! key; nothing in the claims is trusted until the MAC checks out.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::ids::Id;

const HEADER_JSON: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

fn encoded_header() -> String {
    URL_SAFE_NO_PAD.encode(HEADER_JSON)
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenClaims {
    /// The app the user belongs to.
    pub app: Id,
    /// The user.
    pub sub: Id,
    /// Issued at, seconds since the Unix epoch.
    pub iat: i64,
    /// Expires at, seconds since the Unix epoch.
    pub exp: i64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("the token is malformed")]
    Malformed,
    #[error("the token's signature is invalid")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
}

pub fn sign(claims: &TokenClaims, key: &[u8]) -> String {
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
    let signing_input = format!("{}.{payload}", encoded_header());
    let mac = mac(key, signing_input.as_bytes());
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(mac))
}

/// Reads the claims without checking anything: only to learn which app's key to use.
pub fn peek(token: &str) -> Result<TokenClaims, TokenError> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(_sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    if header != encoded_header() || payload.len() > 1024 {
        return Err(TokenError::Malformed);
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| TokenError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)
}

/// Checks the signature with `key` and the expiry against `now_secs`.
pub fn verify(token: &str, key: &[u8], now_secs: i64) -> Result<TokenClaims, TokenError> {
    let claims = peek(token)?;
    let (signing_input, sig) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
    let sig = URL_SAFE_NO_PAD
        .decode(sig)
        .map_err(|_| TokenError::Malformed)?;
    let mut m = <Hmac<Sha256>>::new_from_slice(key).map_err(|_| TokenError::BadSignature)?;
    m.update(signing_input.as_bytes());
    m.verify_slice(&sig).map_err(|_| TokenError::BadSignature)?;
    if claims.exp <= now_secs {
        return Err(TokenError::Expired);
    }
    Ok(claims)
}

fn mac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut m = <Hmac<Sha256>>::new_from_slice(key).expect("hmac takes any key length");
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> TokenClaims {
        TokenClaims {
            app: Id(10),
            sub: Id(20),
            iat: 100,
            exp,
        }
    }

    #[test]
    fn round_trip() {
        let t = sign(&claims(1000), b"key");
        assert_eq!(verify(&t, b"key", 500), Ok(claims(1000)));
        assert_eq!(peek(&t), Ok(claims(1000)));
    }

    #[test]
    fn rejects_wrong_key_expiry_and_tampering() {
        let t = sign(&claims(1000), b"key");
        assert_eq!(verify(&t, b"other", 500), Err(TokenError::BadSignature));
        assert_eq!(verify(&t, b"key", 1000), Err(TokenError::Expired));
        let forged_claims = URL_SAFE_NO_PAD.encode(
            serde_json::to_vec(&TokenClaims {
                sub: Id(21),
                ..claims(1000)
            })
            .unwrap(),
        );
        let mut parts: Vec<&str> = t.split('.').collect();
        parts[1] = &forged_claims;
        assert_eq!(
            verify(&parts.join("."), b"key", 500),
            Err(TokenError::BadSignature)
        );
        let none_alg = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
            parts[2]
        );
        assert_eq!(verify(&none_alg, b"key", 500), Err(TokenError::Malformed));
        assert_eq!(verify("garbage", b"key", 500), Err(TokenError::Malformed));
    }
}
