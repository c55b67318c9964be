//! Lowercase hex: how Warden writes hashes, ids and tokens.

/// `bytes` as lowercase hex, two digits a byte.
///
/// ```
/// assert_eq!(warden_host_api::hex::encode(&[0, 0xab, 255]), "00abff");
/// ```
pub fn encode(bytes: &[u8]) -> String {
    // Not `format!` per byte: the audit log hex-encodes a hash for every record.
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}

/// `len` bytes from the operating system's random source, as hex: ids and tokens that
/// nobody can guess or derive from the time.
pub fn random(len: usize) -> Result<String, getrandom::Error> {
    let mut bytes = vec![0u8; len];
    getrandom::fill(&mut bytes)?;
    Ok(encode(&bytes))
}
