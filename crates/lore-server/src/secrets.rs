//! Secrets at rest: provider keys, webhook secrets and data-source credentials are sealed with
//! ChaCha20-Poly1305 under a master key, from `LORE_MASTER_KEY` (base64, 32 bytes) or a key file
//! created with mode 0600 in the data directory on first start. They are never logged.

use std::fmt;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use lore_core::error::{Error, Result};

/// Ciphertexts start with this, so a value's format can evolve.
const PREFIX: &str = "v1:";
pub const KEY_FILE: &str = "master.key";
pub const KEY_ENV: &str = "LORE_MASTER_KEY";
/// The cluster setting that holds the master key's check value.
pub const CHECK_SETTING: &str = "master_key_check";

#[derive(Clone)]
pub struct MasterKey([u8; 32]);

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

impl MasterKey {
    pub fn generate() -> Result<MasterKey> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| Error::internal(format!("no randomness: {e}")))?;
        Ok(MasterKey(bytes))
    }

    pub fn from_base64(text: &str) -> Result<MasterKey> {
        let bytes = STANDARD.decode(text.trim()).map_err(|_| Error::internal("the master key is not valid base64"))?;
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|_| Error::internal("the master key must be 32 bytes (base64 of 32 random bytes)"))?;
        Ok(MasterKey(bytes))
    }

    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }

    /// The key from the environment, else from the data directory's key file, which is created
    /// (readable by the owner only) when it does not exist yet.
    pub fn load_or_create(data_dir: &Path) -> Result<MasterKey> {
        if let Ok(text) = std::env::var(KEY_ENV)
            && !text.trim().is_empty()
        {
            return MasterKey::from_base64(&text);
        }
        let path = data_dir.join(KEY_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => MasterKey::from_base64(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = MasterKey::generate()?;
                key.write(&path)?;
                tracing::info!(path = %path.display(), "created a new master key for secrets at rest");
                Ok(key)
            }
            Err(e) => Err(Error::internal(format!("cannot read {}: {e}", path.display()))),
        }
    }

    /// Writes the key file atomically with mode 0600.
    pub fn write(&self, path: &Path) -> Result<()> {
        let tmp = path.with_extension("tmp");
        {
            use std::io::Write;
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            let mut file = options.open(&tmp)?;
            file.write_all(self.to_base64().as_bytes())?;
            file.sync_all()?;
        }
        std::fs::rename(&tmp, path)?;
        Ok(())
    }

    /// Tells whether two nodes hold the same key without revealing it: a SHA-256 of the key under
    /// a label of its own (the key is 32 random bytes, so the hash gives nothing to guess from).
    pub fn check_value(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut hash = Sha256::new();
        hash.update(b"lore master key check v1\0");
        hash.update(self.0);
        format!("v1:{}", hex::encode(hash.finalize()))
    }

    /// Holds this key against the installation's check value, which the first node of a new
    /// database writes. A node with another key would seal secrets the others cannot open (and
    /// could not open theirs): it refuses to start, saying what to set.
    pub async fn verify_for(&self, store: &dyn lore_core::store::Store, data_dir: &Path) -> Result<()> {
        let mine = self.check_value();
        for _ in 0..2 {
            match store.cluster_setting(CHECK_SETTING).await? {
                Some(known) if known == mine => return Ok(()),
                Some(_) => {
                    let from = if std::env::var(KEY_ENV).is_ok_and(|v| !v.trim().is_empty()) {
                        KEY_ENV.to_string()
                    } else {
                        data_dir.join(KEY_FILE).display().to_string()
                    };
                    return Err(Error::new(
                        lore_core::error::Code::Unavailable,
                        format!(
                            "refusing to start: this node's master key (from {from}) is not the key this database's \
                             secrets are sealed with. Set {KEY_ENV} to the installation's key, the same on every \
                             node (base64 of 32 bytes; the first node keeps it in master.key in its data directory)"
                        ),
                    ));
                }
                None => {
                    if store.swap_cluster_setting(CHECK_SETTING, None, &mine).await? {
                        return Ok(());
                    }
                    // Another node wrote it first: compare with theirs.
                }
            }
        }
        Err(Error::internal("the master key's check value changed while it was read"))
    }

    pub fn seal(&self, plaintext: &str) -> Result<String> {
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce).map_err(|e| Error::internal(format!("no randomness: {e}")))?;
        let sealed = ChaCha20Poly1305::new(&Key::from(self.0))
            .encrypt(&Nonce::from(nonce), plaintext.as_bytes())
            .map_err(|_| Error::internal("encryption failed"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(format!("{PREFIX}{}", STANDARD.encode(out)))
    }

    pub fn open(&self, sealed: &str) -> Result<String> {
        let body = sealed.strip_prefix(PREFIX).ok_or_else(|| Error::internal("not a sealed secret"))?;
        let bytes = STANDARD.decode(body).map_err(|_| Error::internal("sealed secret is not base64"))?;
        if bytes.len() < 12 + 16 {
            return Err(Error::internal("sealed secret is too short"));
        }
        let (nonce, ciphertext) = bytes.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| Error::internal("bad nonce"))?;
        let plain = ChaCha20Poly1305::new(&Key::from(self.0))
            .decrypt(&Nonce::from(nonce), ciphertext)
            .map_err(|_| Error::internal("a secret could not be decrypted: wrong master key or damaged data"))?;
        String::from_utf8(plain).map_err(|_| Error::internal("decrypted secret is not UTF-8"))
    }
}

/// A master key sealed under a passphrase, for a backup archive: Argon2id turns the passphrase
/// and a random salt into a key, ChaCha20-Poly1305 seals the master key under it.
pub fn seal_with_passphrase(key: &MasterKey, passphrase: &str) -> Result<Vec<u8>> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| Error::internal(format!("no randomness: {e}")))?;
    let wrapping = MasterKey(stretch(passphrase, &salt)?);
    let sealed = wrapping.seal(&key.to_base64())?;
    Ok(format!("lore-sealed-key-v1:{}:{sealed}", STANDARD.encode(salt)).into_bytes())
}

/// The master key from [`seal_with_passphrase`]'s output.
pub fn open_with_passphrase(sealed: &[u8], passphrase: &str) -> Result<MasterKey> {
    let text = std::str::from_utf8(sealed).map_err(|_| Error::internal("the sealed master key is not text"))?;
    let rest = text.strip_prefix("lore-sealed-key-v1:").ok_or_else(|| Error::internal("not a sealed master key"))?;
    let (salt, sealed) = rest.split_once(':').ok_or_else(|| Error::internal("not a sealed master key"))?;
    let salt = STANDARD.decode(salt).map_err(|_| Error::internal("not a sealed master key"))?;
    let wrapping = MasterKey(stretch(passphrase, &salt)?);
    let plain = wrapping.open(sealed).map_err(|_| {
        Error::new(lore_core::error::Code::ValidationFailed, "the passphrase does not open the archive's master key")
    })?;
    MasterKey::from_base64(&plain)
}

fn stretch(passphrase: &str, salt: &[u8]) -> Result<[u8; 32]> {
    let mut out = [0u8; 32];
    argon2::Argon2::default()
        .hash_password_into(passphrase.as_bytes(), salt, &mut out)
        .map_err(|e| Error::internal(format!("cannot derive a key from the passphrase: {e}")))?;
    Ok(out)
}

/// How a secret is shown back: enough to recognise it, never enough to use it.
pub fn mask(secret: &str) -> String {
    let n = secret.chars().count();
    if n <= 8 {
        return "••••".to_string();
    }
    let tail: String = secret.chars().skip(n - 4).collect();
    format!("••••{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_with_fresh_nonces() {
        let key = MasterKey::generate().expect("key");
        let a = key.seal("sk-秘密-1234").expect("seal");
        let b = key.seal("sk-秘密-1234").expect("seal");
        assert_ne!(a, b, "each seal uses a new nonce");
        assert!(!a.contains("1234"));
        assert_eq!(key.open(&a).expect("open"), "sk-秘密-1234");
        let other = MasterKey::generate().expect("key");
        assert!(other.open(&a).is_err());
        // Change one character in the middle (the last one may only carry base64 padding bits).
        let mid = a.len() / 2;
        let swapped = if &a[mid..=mid] == "A" { "B" } else { "A" };
        let tampered = format!("{}{swapped}{}", &a[..mid], &a[mid + 1..]);
        assert!(key.open(&tampered).is_err());
        assert_eq!(format!("{key:?}"), "MasterKey(<redacted>)");
    }

    #[test]
    fn key_file_is_private_and_reloads() {
        let dir = tempfile::tempdir().expect("dir");
        let key = MasterKey::generate().expect("key");
        let path = dir.path().join(KEY_FILE);
        key.write(&path).expect("write");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777, 0o600);
        }
        let again = MasterKey::from_base64(&std::fs::read_to_string(&path).expect("read")).expect("parse");
        assert_eq!(again.open(&key.seal("x").expect("seal")).expect("open"), "x");
        assert_eq!(mask("sk-abcdefghijkl"), "••••ijkl");
        assert_eq!(mask("short"), "••••");
    }
}
