//! Credentials: JWT access and refresh tokens that name their session. The bearer check itself,
//! with its session cache, is `AppState::authenticate`.
//!
//! Beside it: bcrypt behind a queue shared fairly between clients (`hashing`), the cache of
//! sessions checked in the last seconds (`session_cache`) and the throttles on guessing
//! (`throttle`).

pub mod hashing;
pub mod secrets;
pub mod session_cache;
pub mod throttle;

pub use hashing::{PasswordHasher, Source};

use chrono::{Duration, Utc};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::proto::{self, UserId};
use crate::server::store::NewRefresh;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("token expired")]
    Expired,
    #[error("invalid token")]
    Invalid,
    #[error("wrong token type")]
    WrongType,
    #[error("cannot sign token: {0}")]
    Sign(#[source] jsonwebtoken::errors::Error),
    #[error("password hashing failed: {0}")]
    Hash(#[from] bcrypt::BcryptError),
    #[error("password hashing task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("too many passwords being checked at once")]
    Busy,
}

/// The `type` claim: what a token may be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    Access,
    Refresh,
}

/// How tokens are signed (`--algorithm`, the seed's `ALGORITHM`): HMAC with SHA-256, -384 or -512.
/// Anything else is refused at start-up, never silently replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum JwtAlgorithm {
    #[value(name = "HS256")]
    Hs256,
    #[value(name = "HS384")]
    Hs384,
    #[value(name = "HS512")]
    Hs512,
}

impl From<JwtAlgorithm> for Algorithm {
    fn from(a: JwtAlgorithm) -> Algorithm {
        match a {
            JwtAlgorithm::Hs256 => Algorithm::HS256,
            JwtAlgorithm::Hs384 => Algorithm::HS384,
            JwtAlgorithm::Hs512 => Algorithm::HS512,
        }
    }
}

/// Who may create an account (`--registration`). Whatever the rule, a server's first account
/// needs no invite and becomes its owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Registration {
    /// Anyone who can reach the server (the seed's behaviour).
    Open,
    /// Only with an invite code from someone already on the server.
    Invite,
    /// Nobody new.
    Closed,
}

/// The seed's claims (`sub` = user id as a string, `exp`, `type`) plus what makes every token unique
/// (`jti`, `iat`) and revocable (`sid`, the session it belongs to).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub exp: i64,
    pub iat: i64,
    pub jti: Uuid,
    #[serde(rename = "type")]
    pub kind: TokenKind,
    pub sid: Uuid,
}

impl Claims {
    pub fn user_id(&self) -> Result<UserId, AuthError> {
        self.sub.parse().map_err(|_| AuthError::Invalid)
    }
}

/// A fresh pair of tokens, and the refresh token as the database keeps it.
pub struct IssuedTokens {
    pub tokens: proto::Tokens,
    pub refresh: NewRefresh,
}

pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    algorithm: Algorithm,
    access_ttl: Duration,
    refresh_ttl: Duration,
}

impl TokenKeys {
    pub fn new(
        secret: &[u8],
        algorithm: JwtAlgorithm,
        access_minutes: u32,
        refresh_days: u32,
    ) -> Self {
        TokenKeys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            algorithm: algorithm.into(),
            access_ttl: Duration::minutes(access_minutes.into()),
            refresh_ttl: Duration::days(refresh_days.into()),
        }
    }

    pub fn issue(&self, user_id: UserId, session_id: Uuid) -> Result<IssuedTokens, AuthError> {
        let now = Utc::now();
        let access = self.sign(
            user_id,
            session_id,
            TokenKind::Access,
            now + self.access_ttl,
        )?;
        let refresh_expires = now + self.refresh_ttl;
        let refresh = self.sign(user_id, session_id, TokenKind::Refresh, refresh_expires)?;
        Ok(IssuedTokens {
            refresh: NewRefresh {
                session_id,
                token_hash: hash_refresh_token(&refresh),
                expires_at: refresh_expires,
            },
            tokens: proto::Tokens {
                access_token: access,
                refresh_token: refresh,
                token_type: "bearer".into(),
            },
        })
    }

    /// How long a refresh token (and so a login) lasts.
    pub fn refresh_ttl(&self) -> Duration {
        self.refresh_ttl
    }

    /// Signs a token with explicit claims; tests use it to make expired tokens.
    pub fn sign_claims(&self, claims: &Claims) -> Result<String, AuthError> {
        jsonwebtoken::encode(&Header::new(self.algorithm), claims, &self.encoding)
            .map_err(AuthError::Sign)
    }

    fn sign(
        &self,
        user_id: UserId,
        session_id: Uuid,
        kind: TokenKind,
        expires: chrono::DateTime<Utc>,
    ) -> Result<String, AuthError> {
        self.sign_claims(&Claims {
            sub: user_id.to_string(),
            exp: expires.timestamp(),
            iat: Utc::now().timestamp(),
            jti: Uuid::new_v4(),
            kind,
            sid: session_id,
        })
    }

    /// Checks signature, expiry and type.
    pub fn verify(&self, token: &str, kind: TokenKind) -> Result<Claims, AuthError> {
        self.decode(token, kind, true)
    }

    /// Checks signature and type only: logging out with an expired refresh token still ends its
    /// session.
    pub fn verify_ignoring_expiry(
        &self,
        token: &str,
        kind: TokenKind,
    ) -> Result<Claims, AuthError> {
        self.decode(token, kind, false)
    }

    fn decode(&self, token: &str, kind: TokenKind, check_exp: bool) -> Result<Claims, AuthError> {
        let mut validation = Validation::new(self.algorithm);
        validation.leeway = 0;
        validation.validate_exp = check_exp;
        validation.set_required_spec_claims(&["exp", "sub"]);
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation).map_err(
            |e| match e.kind() {
                ErrorKind::ExpiredSignature => AuthError::Expired,
                _ => AuthError::Invalid,
            },
        )?;
        if data.claims.kind != kind {
            return Err(AuthError::WrongType);
        }
        Ok(data.claims)
    }
}

/// Refresh tokens are kept as a SHA-256 digest: a leaked table cannot be replayed. (They are long
/// random-bearing JWTs, so a fast hash is enough, unlike passwords.)
pub fn hash_refresh_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> TokenKeys {
        TokenKeys::new(
            b"0123456789abcdef0123456789abcdef",
            JwtAlgorithm::Hs256,
            30,
            7,
        )
    }

    #[test]
    fn every_token_is_unique_even_within_one_second() {
        let keys = keys();
        let sid = Uuid::new_v4();
        let a = keys.issue(1, sid).unwrap();
        let b = keys.issue(1, sid).unwrap();
        assert_ne!(a.tokens.access_token, b.tokens.access_token);
        assert_ne!(a.tokens.refresh_token, b.tokens.refresh_token);
        assert_ne!(a.refresh.token_hash, b.refresh.token_hash);
    }

    #[test]
    fn token_types_are_not_interchangeable() {
        let keys = keys();
        let t = keys.issue(7, Uuid::new_v4()).unwrap().tokens;
        assert_eq!(
            keys.verify(&t.access_token, TokenKind::Access)
                .unwrap()
                .user_id()
                .unwrap(),
            7
        );
        assert!(matches!(
            keys.verify(&t.refresh_token, TokenKind::Access),
            Err(AuthError::WrongType)
        ));
        assert!(matches!(
            keys.verify(&t.access_token, TokenKind::Refresh),
            Err(AuthError::WrongType)
        ));
        let other = TokenKeys::new(
            b"another secret, another signature",
            JwtAlgorithm::Hs256,
            30,
            7,
        );
        assert!(matches!(
            other.verify(&t.access_token, TokenKind::Access),
            Err(AuthError::Invalid)
        ));
    }
}
