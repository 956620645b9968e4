//! Pure cryptographic helpers (no I/O): keyed hashes of consumer secrets,
//! sealing of stored passwords, Argon2id, random tokens.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use rand::{Rng, RngCore};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    #[error("a key must be 32 bytes written as 64 hex digits")]
    BadKey,
    #[error("sealed value is corrupt or was sealed with another key")]
    Unseal,
    #[error("stored password hash is malformed")]
    BadHash,
}

/// Parses a 32-byte key written as 64 hex digits.
pub fn parse_key(hex_key: &str) -> Result<[u8; 32], CryptoError> {
    let bytes = hex::decode(hex_key.trim()).map_err(|_| CryptoError::BadKey)?;
    bytes.try_into().map_err(|_| CryptoError::BadKey)
}

/// HMAC-SHA-256 under a server key: how consumer secrets (and other bearer
/// secrets with high entropy) are stored. Checking costs microseconds.
#[derive(Clone)]
pub struct SecretHasher {
    key: [u8; 32],
}

impl std::fmt::Debug for SecretHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretHasher(..)")
    }
}

impl SecretHasher {
    pub fn new(key: [u8; 32]) -> Self {
        Self { key }
    }

    /// Lower-case hex of HMAC-SHA-256(key, secret).
    pub fn hash(&self, secret: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(secret.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// Constant-time comparison of the secret's hash with a stored hash.
    pub fn verify(&self, secret: &str, stored_hex: &str) -> bool {
        let computed = self.hash(secret);
        computed.as_bytes().ct_eq(stored_hex.as_bytes()).into()
    }
}

/// XChaCha20-Poly1305 under a server key: how mailbox passwords (and other
/// secrets the server must read back) are stored. Layout: 24-byte nonce, then
/// ciphertext and tag.
#[derive(Clone)]
pub struct SecretBox {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(..)")
    }
}

impl SecretBox {
    pub fn new(key: [u8; 32]) -> Self {
        Self { cipher: XChaCha20Poly1305::new(&key.into()) }
    }

    pub fn seal(&self, plaintext: &str) -> Vec<u8> {
        let mut nonce = [0u8; 24];
        rand::thread_rng().fill_bytes(&mut nonce);
        let ct = self
            .cipher
            .encrypt(XNonce::from_slice(&nonce), plaintext.as_bytes())
            .expect("XChaCha20-Poly1305 encryption cannot fail for in-memory input");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        out
    }

    pub fn open(&self, sealed: &[u8]) -> Result<String, CryptoError> {
        if sealed.len() < 24 + 16 {
            return Err(CryptoError::Unseal);
        }
        let (nonce, ct) = sealed.split_at(24);
        let pt = self.cipher.decrypt(XNonce::from_slice(nonce), ct).map_err(|_| CryptoError::Unseal)?;
        String::from_utf8(pt).map_err(|_| CryptoError::Unseal)
    }
}

/// A random token of `len` ASCII letters and digits (about 5.95 bits each).
pub fn random_token(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    (0..len).map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char).collect()
}

/// The signature of an outgoing webhook (`X-Helpdesk-Signature`): `sha256=`
/// and the lower-case hex of HMAC-SHA-256 keyed with the subscription's
/// secret (its UTF-8 bytes, as printed) over the signed string
/// `"<timestamp>.<body>"`: the decimal Unix seconds of
/// `X-Helpdesk-Timestamp`, a full stop, and the request body byte for byte.
pub fn webhook_signature(secret: &str, timestamp: i64, body: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// What a receiver does with a webhook: the signature is the one of this
/// secret, timestamp and body (compared in constant time), and the
/// timestamp is within `tolerance_secs` of `now` (against replays).
pub fn verify_webhook_signature(
    secret: &str,
    timestamp: i64,
    body: &str,
    signature: &str,
    now: i64,
    tolerance_secs: i64,
) -> bool {
    let fresh = (now - timestamp).abs() <= tolerance_secs;
    let expected = webhook_signature(secret, timestamp, body);
    let same: bool = expected.as_bytes().ct_eq(signature.trim().as_bytes()).into();
    fresh && same
}

/// Lower-case hex SHA-256: for keys that need no secret (dedupe keys).
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Argon2id's cost for new hashes: 7 MiB of memory, 5 passes, one lane.
/// One of OWASP's equivalent settings (Password Storage Cheat Sheet: 19 MiB
/// and 2 passes, 12 MiB and 3, 9 MiB and 4, 7 MiB and 5 "provide an equal
/// level of defense"), chosen for the least memory: the server verifies a
/// password per core at once, and each verification holds this much
/// (docs/decisions.md, "Password hashes").
pub const ARGON2_MEMORY_KIB: u32 = 7168;
pub const ARGON2_PASSES: u32 = 5;

fn argon2() -> Argon2<'static> {
    let params = argon2::Params::new(ARGON2_MEMORY_KIB, ARGON2_PASSES, 1, None)
        .expect("constant Argon2 parameters within the algorithm's bounds");
    Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
}

/// Argon2id with [`ARGON2_MEMORY_KIB`] and [`ARGON2_PASSES`]. Costs tens of
/// milliseconds: call it from a blocking thread.
pub fn hash_password(password: &str) -> String {
    let salt = SaltString::generate(&mut rand::thread_rng());
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .expect("Argon2 with constant parameters and a fresh salt cannot fail")
        .to_string()
}

/// Whether a stored hash was made with other parameters than new ones get
/// (an older cost, or another algorithm): after a successful login the
/// password is hashed again, as Laravel's `Hash::needsRehash` does.
pub fn needs_rehash(phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else { return true };
    let current = argon2::Params::new(ARGON2_MEMORY_KIB, ARGON2_PASSES, 1, None).ok();
    parsed.algorithm != argon2::Algorithm::Argon2id.ident()
        || parsed.version != Some(argon2::Version::V0x13.into())
        || argon2::Params::try_from(&parsed).ok().map(|p| (p.m_cost(), p.t_cost(), p.p_cost()))
            != current.map(|p| (p.m_cost(), p.t_cost(), p.p_cost()))
}

/// Verifies a password against a PHC string (with the parameters it names).
/// A malformed stored hash is an error (a broken row), not a wrong password.
pub fn verify_password(password: &str, phc: &str) -> Result<bool, CryptoError> {
    let parsed = PasswordHash::new(phc).map_err(|_| CryptoError::BadHash)?;
    Ok(Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
}

/// Argon2's working memory (7 MiB with our parameters), kept between
/// verifications. A thread that verifies password after password reuses it
/// instead of taking fresh memory from the system for each hash: with large
/// blocks mapped and unmapped per hash, the kernel zeroing and faulting in
/// every page cost about a quarter of each login's CPU time.
#[derive(Default)]
pub struct Argon2Memory(Vec<argon2::Block>);

impl Argon2Memory {
    /// Bytes held.
    pub fn size(&self) -> usize {
        self.0.len() * argon2::Block::SIZE
    }
}

/// [`verify_password`] in `memory` (grown to the hash's cost if needed).
pub fn verify_password_in(password: &str, phc: &str, memory: &mut Argon2Memory) -> Result<bool, CryptoError> {
    use argon2::{Algorithm, Params, Version};
    let parsed = PasswordHash::new(phc).map_err(|_| CryptoError::BadHash)?;
    let mut computed = || -> Option<bool> {
        let (salt, expected) = (parsed.salt?, parsed.hash?);
        let algorithm = Algorithm::try_from(parsed.algorithm).ok()?;
        let version = parsed.version.map(Version::try_from).transpose().ok()?.unwrap_or_default();
        let params = Params::try_from(&parsed).ok()?;
        let blocks = params.block_count();
        if memory.0.len() < blocks {
            memory.0.resize(blocks, argon2::Block::default());
        }
        let mut salt_bytes = [0u8; 64];
        let salt = salt.decode_b64(&mut salt_bytes).ok()?;
        let mut out = vec![0u8; expected.len()];
        Argon2::new(algorithm, version, params)
            .hash_password_into_with_memory(password.as_bytes(), salt, &mut out, &mut memory.0[..blocks])
            .ok()?;
        // `Output`'s equality is constant-time.
        Some(argon2::password_hash::Output::new(&out).ok()? == expected)
    };
    Ok(computed().unwrap_or(false))
}

/// What a user token says. `sub` is the user id, `aud` the product alias,
/// `jti` the session id recorded in `sesion_usuario` (so it can be revoked).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TokenClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub jti: String,
    pub iat: i64,
    pub exp: i64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("token is malformed, forged, or for another issuer")]
    Invalid,
}

/// Signs and checks user tokens: JWT, HS256 under a server key. Expiry is
/// checked by the caller against its injected clock, not here.
#[derive(Clone)]
pub struct TokenSigner {
    encoding: jsonwebtoken::EncodingKey,
    decoding: jsonwebtoken::DecodingKey,
    issuer: String,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSigner").field("issuer", &self.issuer).finish_non_exhaustive()
    }
}

impl TokenSigner {
    pub fn new(key: [u8; 32], issuer: &str) -> Self {
        Self {
            encoding: jsonwebtoken::EncodingKey::from_secret(&key),
            decoding: jsonwebtoken::DecodingKey::from_secret(&key),
            issuer: issuer.to_string(),
        }
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn sign(&self, claims: &TokenClaims) -> String {
        jsonwebtoken::encode(&jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256), claims, &self.encoding)
            .expect("HS256 signing of plain claims cannot fail")
    }

    /// Checks the signature (HS256 only: `none` and other algorithms are
    /// refused) and the issuer; returns the claims.
    pub fn verify(&self, token: &str) -> Result<TokenClaims, TokenError> {
        let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
        v.validate_exp = false;
        v.validate_aud = false;
        v.required_spec_claims.clear();
        v.set_issuer(&[&self.issuer]);
        jsonwebtoken::decode::<TokenClaims>(token, &self.decoding, &v)
            .map(|d| d.claims)
            .map_err(|_| TokenError::Invalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_only_with_their_key_and_issuer() {
        let claims = TokenClaims {
            iss: "helpdesk".into(),
            sub: "7".into(),
            aud: "mesa".into(),
            jti: "abc".into(),
            iat: 1,
            exp: 2,
        };
        let signer = TokenSigner::new([5; 32], "helpdesk");
        let token = signer.sign(&claims);
        assert_eq!(signer.verify(&token), Ok(claims.clone()));
        assert_eq!(TokenSigner::new([6; 32], "helpdesk").verify(&token), Err(TokenError::Invalid));
        assert_eq!(TokenSigner::new([5; 32], "otro").verify(&token), Err(TokenError::Invalid));
        let mut tampered = token.clone();
        tampered.insert(token.len() / 2, 'x');
        assert_eq!(signer.verify(&tampered), Err(TokenError::Invalid));
        // alg "none" with the same claims is refused.
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let none = format!(
            "{}.{}.",
            b64.encode(r#"{"alg":"none","typ":"JWT"}"#),
            b64.encode(serde_json::to_string(&claims).unwrap())
        );
        assert_eq!(signer.verify(&none), Err(TokenError::Invalid));
        assert_eq!(signer.verify("not a token"), Err(TokenError::Invalid));
    }

    #[test]
    fn hmac_verifies_only_the_right_secret_and_key() {
        let h = SecretHasher::new([7; 32]);
        let stored = h.hash("s3cret");
        assert_eq!(stored.len(), 64);
        assert!(h.verify("s3cret", &stored));
        assert!(!h.verify("s3cret ", &stored));
        assert!(!SecretHasher::new([8; 32]).verify("s3cret", &stored));
    }

    #[test]
    fn sealed_values_open_with_the_same_key_only() {
        let b = SecretBox::new([1; 32]);
        let sealed = b.seal("contraseña");
        assert!(!sealed.windows(5).any(|w| w == b"contr"));
        assert_eq!(b.open(&sealed).unwrap(), "contraseña");
        assert_eq!(SecretBox::new([2; 32]).open(&sealed), Err(CryptoError::Unseal));
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert_eq!(b.open(&tampered), Err(CryptoError::Unseal));
        assert_eq!(b.open(&[0; 10]), Err(CryptoError::Unseal));
    }

    #[test]
    fn keys_must_be_64_hex_digits() {
        assert!(parse_key(&"ab".repeat(32)).is_ok());
        assert_eq!(parse_key("abcd"), Err(CryptoError::BadKey));
        assert_eq!(parse_key(&"zz".repeat(32)), Err(CryptoError::BadKey));
    }

    #[test]
    fn argon2_round_trip() {
        let phc = hash_password("Cyberf4231&459");
        assert!(phc.starts_with("$argon2id$v=19$m=7168,t=5,p=1$"), "{phc}");
        assert_eq!(verify_password("Cyberf4231&459", &phc), Ok(true));
        assert_eq!(verify_password("wrong", &phc), Ok(false));
        assert_eq!(verify_password("x", "not a hash"), Err(CryptoError::BadHash));
    }

    #[test]
    fn verifying_in_kept_memory_agrees_with_the_plain_check() {
        let mut memory = Argon2Memory::default();
        let phc = hash_password("Cyberf4231&459");
        // A cheaper hash (other parameters, another version and output
        // length) in the same memory, before and after the default one.
        let small = argon2::Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x10,
            argon2::Params::new(64, 1, 1, Some(24)).unwrap(),
        )
        .hash_password(b"corta", &SaltString::generate(&mut rand::thread_rng()))
        .unwrap()
        .to_string();
        for _ in 0..2 {
            assert_eq!(verify_password_in("corta", &small, &mut memory), Ok(true));
            assert_eq!(verify_password_in("Corta", &small, &mut memory), Ok(false));
            assert_eq!(verify_password_in("Cyberf4231&459", &phc, &mut memory), Ok(true));
            assert_eq!(verify_password_in("Cyberf4231&45", &phc, &mut memory), Ok(false));
        }
        assert_eq!(memory.size(), 7168 * 1024, "grown to the default cost once, then reused");
        assert_eq!(verify_password_in("x", "not a hash", &mut memory), Err(CryptoError::BadHash));
        let no_hash = phc.rsplit_once('$').unwrap().0;
        assert_eq!(verify_password_in("Cyberf4231&459", no_hash, &mut memory), Ok(false), "a PHC without its hash");
    }

    #[test]
    fn hashes_of_an_older_cost_still_verify_and_ask_to_be_redone() {
        // The crate's defaults: the cost hashes were made with before.
        let old = Argon2::default()
            .hash_password(b"Clave-Antigua-1", &SaltString::generate(&mut rand::thread_rng()))
            .unwrap()
            .to_string();
        assert!(old.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{old}");
        assert_eq!(verify_password("Clave-Antigua-1", &old), Ok(true));
        let mut memory = Argon2Memory::default();
        assert_eq!(verify_password_in("Clave-Antigua-1", &old, &mut memory), Ok(true));
        assert!(needs_rehash(&old));
        let new = hash_password("Clave-Antigua-1");
        assert!(!needs_rehash(&new));
        assert!(needs_rehash("not a hash"));
        assert!(needs_rehash(&new.replace("argon2id", "argon2i")), "another variant");
        assert!(needs_rehash(&new.replace("t=5", "t=6")), "another cost");
    }

    #[test]
    fn webhook_signatures_are_hmac_sha256_of_timestamp_dot_body() {
        let body = r#"{"id":"evt_1"}"#;
        // Python: hmac.new(b"whsec_prueba", b'1764486652.{"id":"evt_1"}', hashlib.sha256).hexdigest()
        let expected = "sha256=fe33f45f666fe07cd3b93f717c73594d9ec6865d38ae3e667b7b70c5ecfc1a18";
        assert_eq!(webhook_signature("whsec_prueba", 1764486652, body), expected);
        assert!(verify_webhook_signature("whsec_prueba", 1764486652, body, expected, 1764486652 + 300, 300));
        assert!(!verify_webhook_signature("whsec_prueba", 1764486652, body, expected, 1764486652 + 301, 300), "old");
        assert!(!verify_webhook_signature("whsec_otro", 1764486652, body, expected, 1764486652, 300), "secret");
        assert!(!verify_webhook_signature("whsec_prueba", 1764486653, body, expected, 1764486652, 300), "time");
        let changed = r#"{"id":"evt_2"}"#;
        assert!(!verify_webhook_signature("whsec_prueba", 1764486652, changed, expected, 1764486652, 300), "body");
    }

    #[test]
    fn random_tokens_differ_and_have_the_length_asked() {
        let a = random_token(40);
        assert_eq!(a.len(), 40);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, random_token(40));
    }
}
