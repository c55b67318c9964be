//! The issuer key: an Ed25519 biscuit root key that signs the first block of
//! every grant token this host issues.
//!
//! The key file holds biscuit's own text form, `ed25519-private/<hex seed>`,
//! so biscuit's tools can read it too. It is created on first use with mode
//! 0600 and refused when anyone but its owner may read it. The public half
//! is printed `ed25519/<hex>` (`warden grant key`): what another host needs
//! to verify this host's tokens offline.

use super::TokenError;
use biscuit_auth::builder::Algorithm;
use biscuit_auth::{KeyPair, PrivateKey, PublicKey};
use sha2::{Digest, Sha256};
use std::fmt;
use std::path::Path;
use std::str::FromStr;
use zeroize::Zeroizing;

/// The public half of an issuer key: verifies the tokens it issued.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct IssuerPublicKey(PublicKey);

impl IssuerPublicKey {
    /// Parses `ed25519/<64 hex digits>`, as `warden grant key` prints it.
    pub fn parse(text: &str) -> Result<Self, TokenError> {
        let bad = |why: String| TokenError::PublicKey(format!("{:?}: {why}", text.trim()));
        let key = PublicKey::from_str(text.trim()).map_err(|e| bad(e.to_string()))?;
        if key.algorithm_string() != "ed25519" {
            return Err(bad("not an Ed25519 key".into()));
        }
        Ok(IssuerPublicKey(key))
    }

    /// A short name for the key, carried in each token as its biscuit root
    /// key id so that a token of another issuer can be told apart from a
    /// forged one: the first four bytes of SHA-256 of the public key.
    pub fn id(&self) -> u32 {
        let digest = Sha256::digest(self.0.to_bytes());
        u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
    }

    pub(crate) fn biscuit(&self) -> PublicKey {
        self.0
    }
}

impl fmt::Display for IssuerPublicKey {
    /// `ed25519/<hex>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for IssuerPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IssuerPublicKey({self}, id {:08x})", self.id())
    }
}

impl FromStr for IssuerPublicKey {
    type Err = TokenError;
    fn from_str(s: &str) -> Result<Self, TokenError> {
        Self::parse(s)
    }
}

/// The issuer's signing key. The secret half stays in this value (biscuit
/// zeroizes it when dropped) and in its key file.
pub struct IssuerKey {
    pair: KeyPair,
    public: IssuerPublicKey,
}

impl fmt::Debug for IssuerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuerKey")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

impl IssuerKey {
    /// A new random key.
    pub fn generate() -> Self {
        Self::from_pair(KeyPair::new())
    }

    fn from_pair(pair: KeyPair) -> Self {
        let public = IssuerPublicKey(pair.public());
        IssuerKey { pair, public }
    }

    /// The public half.
    pub fn public(&self) -> &IssuerPublicKey {
        &self.public
    }

    pub(crate) fn pair(&self) -> &KeyPair {
        &self.pair
    }

    /// Loads the key at `path`, or creates it (mode 0600, never replacing
    /// an existing file).
    ///
    /// # Errors
    /// A key file that its group or others may read is refused: anyone who
    /// can read it can issue grants.
    pub fn load_or_create(path: &Path) -> Result<Self, TokenError> {
        use crate::audit::keys::{KeyFileError, load_or_create};
        let fail = |why: String| TokenError::Key {
            path: path.to_path_buf(),
            why,
        };
        let text =
            load_or_create(path, || Ok(Self::generate().private_text())).map_err(|e| match e {
                KeyFileError::Readable { mode, .. } => fail(format!(
                    "readable by others (mode {mode:o}); anyone who can read it can issue grants: \
                     chmod 600 it, or remove it and revoke what it issued"
                )),
                KeyFileError::Io { error, .. } => fail(error.to_string()),
                other => fail(other.to_string()),
            })?;
        Self::parse(&text).map_err(fail)
    }

    /// `ed25519-private/<hex seed>`, biscuit's text form, and a newline.
    fn private_text(&self) -> Zeroizing<String> {
        let seed = self.pair.private().to_bytes();
        let mut text = Zeroizing::new(String::with_capacity(16 + 2 * seed.len() + 1));
        text.push_str("ed25519-private/");
        for b in seed.iter() {
            text.push(char::from_digit(u32::from(b >> 4), 16).unwrap_or('0'));
            text.push(char::from_digit(u32::from(b & 0xf), 16).unwrap_or('0'));
        }
        text.push('\n');
        text
    }

    /// Parses `ed25519-private/<hex seed>`.
    fn parse(text: &str) -> Result<Self, String> {
        let hex = text
            .trim()
            .strip_prefix("ed25519-private/")
            .ok_or("not an issuer key: it should hold ed25519-private/<hex>")?;
        // Decoded here rather than by biscuit, so the seed's bytes are zeroized.
        let digit = |c: u8| char::from(c).to_digit(16);
        let seed = hex
            .as_bytes()
            .chunks(2)
            .map(|pair| match pair {
                [hi, lo] => Some((digit(*hi)? << 4 | digit(*lo)?) as u8),
                _ => None,
            })
            .collect::<Option<Vec<u8>>>()
            .map(Zeroizing::new)
            .ok_or("not an issuer key: the seed is not hex")?;
        let private = PrivateKey::from_bytes(&seed, Algorithm::Ed25519)
            .map_err(|e| format!("not an issuer key: {e}"))?;
        Ok(Self::from_pair(KeyPair::from(&private)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn created_once_with_mode_0600_and_stable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/grant.key");
        let first = IssuerKey::load_or_create(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = IssuerKey::load_or_create(&path).unwrap();
        assert_eq!(first.public(), again.public());
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("ed25519-private/"), "{text}");
    }

    #[test]
    fn a_key_others_can_read_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("grant.key");
        IssuerKey::load_or_create(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = IssuerKey::load_or_create(&path).unwrap_err().to_string();
        assert!(err.contains("readable by others (mode 644)"), "{err}");
        assert!(err.contains("chmod 600"), "{err}");
    }

    #[test]
    fn a_damaged_key_file_is_refused_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("grant.key");
        std::fs::write(&path, "PRIVATE+KEY+something-else\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let err = IssuerKey::load_or_create(&path).unwrap_err().to_string();
        assert!(err.contains("not an issuer key"), "{err}");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "PRIVATE+KEY+something-else\n"
        );
    }

    #[test]
    fn the_public_key_round_trips_as_text() {
        let key = IssuerKey::generate();
        let text = key.public().to_string();
        assert!(text.starts_with("ed25519/"), "{text}");
        assert_eq!(&IssuerPublicKey::parse(&text).unwrap(), key.public());
        assert!(IssuerPublicKey::parse("ed25519/00").is_err());
        assert!(IssuerPublicKey::parse("secp256r1/00").is_err());
    }
}
