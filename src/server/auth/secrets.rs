//! The random secrets a server hands out besides JWTs: invite codes, password reset codes,
//! personal access tokens and webhook addresses. Each carries 128 or 256 random bits, is shown
//! once, and is kept only as its SHA-256 digest. A secret is found by its digest (a unique index):
//! the database never compares a secret itself, and what a timing of that lookup could reveal
//! (the first bytes of a digest) brings nobody closer to a secret that produces it.

use rand::RngCore;
use sha2::{Digest, Sha256};

/// What a secret is for: its prefix says so to the person holding it and to secret scanners.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    Invite,
    PasswordReset,
    AccessToken,
    Webhook,
}

impl SecretKind {
    fn prefix(self) -> &'static str {
        match self {
            SecretKind::Invite => "rtci_",
            SecretKind::PasswordReset => "rtcr_",
            SecretKind::AccessToken => "rtcp_",
            SecretKind::Webhook => "rtch_",
        }
    }

    /// Codes people paste carry 128 bits; tokens that live for months carry 256.
    fn random_bytes(self) -> usize {
        match self {
            SecretKind::Invite | SecretKind::PasswordReset => 16,
            SecretKind::AccessToken | SecretKind::Webhook => 32,
        }
    }

    /// Whether `text` looks like a secret of this kind (the prefix only: it says which lookup
    /// to try, never whether the secret is good).
    pub fn marks(self, text: &str) -> bool {
        text.starts_with(self.prefix())
    }
}

/// A new secret, as shown once to whoever asked for it, and its digest, as kept.
pub struct NewSecret {
    pub text: String,
    pub digest: Vec<u8>,
}

pub fn generate(kind: SecretKind) -> NewSecret {
    let mut bytes = vec![0u8; kind.random_bytes()];
    rand::rng().fill_bytes(&mut bytes);
    let text = format!("{}{}", kind.prefix(), hex::encode(bytes));
    NewSecret {
        digest: digest(&text),
        text,
    }
}

/// The digest a secret is kept and looked up as. Surrounding spaces (a paste) do not count.
pub fn digest(text: &str) -> Vec<u8> {
    Sha256::digest(text.trim().as_bytes()).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_random_and_kept_as_digests() {
        let a = generate(SecretKind::Invite);
        let b = generate(SecretKind::Invite);
        assert_ne!(a.text, b.text);
        assert!(a.text.starts_with("rtci_"));
        assert_eq!(a.text.len(), 5 + 32, "128 bits in hex");
        assert_eq!(generate(SecretKind::AccessToken).text.len(), 5 + 64);
        assert_eq!(a.digest, digest(&format!(" {}\n", a.text)));
        assert_ne!(a.digest, a.text.as_bytes());
        assert!(SecretKind::Invite.marks(&a.text));
        assert!(!SecretKind::AccessToken.marks(&a.text));
    }
}
