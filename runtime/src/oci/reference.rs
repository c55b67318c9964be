//! `oci://HOST[:PORT]/REPOSITORY(:TAG|@sha256:HEX|:TAG@sha256:HEX)`: where a component is
//! published, and which version of it.

use std::fmt;
use std::str::FromStr;

/// A sha256 digest of OCI content, written `sha256:` and 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sha256([u8; 32]);

impl Sha256 {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Sha256 {
        use sha2::Digest as _;
        Sha256(sha2::Sha256::digest(bytes).into())
    }

    /// The 64 hex digits, without `sha256:`.
    pub fn hex(&self) -> String {
        warden_host_api::hex::encode(&self.0)
    }

    /// The tag a signature of the content with this digest is published under, beside it
    /// in the same repository: `sha256-<hex>.<suffix>` (cosign's `sig`, Warden's
    /// `minisig`).
    pub fn tag(&self, suffix: &str) -> String {
        format!("sha256-{}.{suffix}", self.hex())
    }

    pub(crate) fn from_bytes(bytes: [u8; 32]) -> Sha256 {
        Sha256(bytes)
    }
}

impl fmt::Display for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

impl fmt::Debug for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Sha256 {
    type Err = String;

    fn from_str(s: &str) -> Result<Sha256, String> {
        let bad =
            || format!("expected \"sha256:\" followed by 64 lowercase hex digits, found {s:?}");
        let hex = s.strip_prefix("sha256:").ok_or_else(bad)?;
        if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(bad());
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
        }
        Ok(Sha256(out))
    }
}

/// Where a component is published: a registry, a repository in it, and a tag, a digest, or
/// both. With a digest, the reference is pinned: what the tag points to later changes
/// nothing.
///
/// ```
/// use warden::oci::Reference;
///
/// let r: Reference = "oci://127.0.0.1:5000/tools/search:1.2".parse().unwrap();
/// assert_eq!((r.registry(), r.repository(), r.tag()), ("127.0.0.1:5000", "tools/search", Some("1.2")));
/// assert!(r.digest().is_none());
/// assert_eq!(r.to_string(), "oci://127.0.0.1:5000/tools/search:1.2");
///
/// // Without the scheme, as `warden pull` takes it.
/// let pinned: Reference = "ghcr.io/acme/search@sha256:0000000000000000000000000000000000000000000000000000000000000000".parse().unwrap();
/// assert!(pinned.digest().is_some() && pinned.tag().is_none());
///
/// let err = "oci://ghcr.io/acme/search".parse::<Reference>().unwrap_err();
/// assert!(err.contains("name a tag"), "{err}");
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Sha256>,
}

impl Reference {
    /// `HOST[:PORT]`, as written (lowercased).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path, e.g. `acme/tools/search`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, if the reference names one.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The manifest digest the reference is pinned to, if any.
    pub fn digest(&self) -> Option<Sha256> {
        self.digest
    }

    /// The same repository at `digest`, keeping the tag it was reached by.
    pub fn at(&self, digest: Sha256) -> Reference {
        Reference {
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// The same repository at tag `tag`, with no digest.
    pub fn tagged(&self, tag: &str) -> Reference {
        Reference {
            tag: Some(tag.to_owned()),
            digest: None,
            ..self.clone()
        }
    }

    /// What a registry's manifest URL names: the digest if pinned, else the tag.
    pub fn version(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => unreachable!("parsing requires a tag or a digest"),
        }
    }

    /// The registry's host, without its port; `[::1]` is `::1`.
    pub fn host(&self) -> &str {
        let r = &self.registry;
        if let Some(rest) = r.strip_prefix('[') {
            return rest.split(']').next().unwrap_or(rest);
        }
        r.rsplit_once(':').map_or(r, |(h, _)| h)
    }

    /// Whether the registry is on this machine: `localhost`, 127.0.0.0/8 or `::1`. Only such
    /// a registry may be spoken to in plain HTTP, and only when the user asks.
    pub fn is_loopback(&self) -> bool {
        let host = self.host();
        host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "oci://{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Reference {
    type Err = String;

    /// Takes the reference with or without `oci://`; the error says what is wrong in it.
    fn from_str(s: &str) -> Result<Reference, String> {
        let rest = s.strip_prefix("oci://").unwrap_or(s);
        let (registry, path) = rest
            .split_once('/')
            .ok_or_else(|| format!("{s:?}: expected oci://HOST[:PORT]/REPOSITORY:TAG"))?;
        if !valid_registry(registry) {
            return Err(format!("{s:?}: {registry:?} is not a registry host[:port]"));
        }
        let (path, digest) = match path.split_once('@') {
            Some((p, d)) => (
                p,
                Some(d.parse::<Sha256>().map_err(|e| format!("{s:?}: {e}"))?),
            ),
            None => (path, None),
        };
        // A tag follows the last ':' after the last '/'.
        let last = path.rsplit('/').next().unwrap_or(path);
        let (repository, tag) = match last.rsplit_once(':') {
            Some((_, tag)) => (&path[..path.len() - tag.len() - 1], Some(tag)),
            None => (path, None),
        };
        if !valid_repository(repository) {
            return Err(format!(
                "{s:?}: {repository:?} is not a repository name (lowercase letters and digits, \
                 separated by '.', '_', '-' or '/')"
            ));
        }
        if let Some(tag) = tag
            && !valid_tag(tag)
        {
            return Err(format!(
                "{s:?}: {tag:?} is not a tag (up to 128 letters, digits, '_', '.' or '-', not \
                 starting with '.' or '-')"
            ));
        }
        if tag.is_none() && digest.is_none() {
            return Err(format!(
                "{s:?}: name a tag (:1.0) or a digest (@sha256:…); Warden never assumes \
                 \"latest\""
            ));
        }
        Ok(Reference {
            registry: registry.to_ascii_lowercase(),
            repository: repository.to_owned(),
            tag: tag.map(str::to_owned),
            digest,
        })
    }
}

fn valid_registry(r: &str) -> bool {
    let (host, port) = if let Some(v6) = r.strip_prefix('[') {
        match v6.split_once(']') {
            Some((ip, port)) => {
                if ip.parse::<std::net::Ipv6Addr>().is_err() {
                    return false;
                }
                (None, port.strip_prefix(':').map(Some).unwrap_or(Some("")))
            }
            None => return false,
        }
    } else {
        match r.rsplit_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(r), None),
        }
    };
    let port_ok = match port {
        None | Some("") if r.starts_with('[') => true,
        None => true,
        Some(p) => !p.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0),
    };
    let host_ok = host.is_none_or(|h| {
        !h.is_empty()
            && h.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            })
    });
    port_ok && host_ok
}

/// The distribution spec's `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`.
fn valid_repository(repo: &str) -> bool {
    !repo.is_empty()
        && repo.len() <= 255
        && repo.split('/').all(|part| {
            let bytes = part.as_bytes();
            let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
            !bytes.is_empty()
                && bytes.first().is_some_and(alnum)
                && bytes.last().is_some_and(alnum)
                && bytes
                    .iter()
                    .all(|b| alnum(b) || matches!(b, b'.' | b'_' | b'-'))
                && !part.contains("..")
                && !part.contains("___")
                && !part.contains("._")
                && !part.contains("_.")
                && !part.contains(".-")
                && !part.contains("-.")
        })
}

/// The distribution spec's `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
fn valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_and_print_back() {
        for text in [
            "oci://127.0.0.1:5000/echo:1",
            "oci://localhost/a/b/c:v1.0-rc_1",
            "oci://[::1]:5000/echo:1",
            "oci://ghcr.io/acme/echo@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "oci://ghcr.io/acme/echo:2@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ] {
            let r: Reference = text.parse().unwrap();
            assert_eq!(r.to_string(), text);
        }
        let r: Reference = "oci://[::1]:5000/echo:1".parse().unwrap();
        assert_eq!(r.host(), "::1");
        assert!(r.is_loopback());
        let r: Reference = "oci://127.0.0.2:5000/echo:1".parse().unwrap();
        assert!(r.is_loopback());
        let r: Reference = "oci://registry.local:5000/echo:1".parse().unwrap();
        assert_eq!(r.host(), "registry.local");
        assert!(!r.is_loopback());
    }

    #[test]
    fn bad_references_say_what_is_wrong() {
        for (text, says) in [
            ("oci://echo:1", "expected oci://HOST"),
            ("oci://host:0/echo:1", "not a registry"),
            ("oci://ho st/echo:1", "not a registry"),
            ("oci://host/Echo:1", "not a repository"),
            ("oci://host/echo/:1", "not a repository"),
            ("oci://host/../x:1", "not a repository"),
            ("oci://host/echo:-1", "not a tag"),
            ("oci://host/echo", "name a tag"),
            ("oci://host/echo@sha256:12", "64 lowercase hex"),
            ("oci://host/echo@md5:12", "sha256"),
        ] {
            let err = text.parse::<Reference>().unwrap_err();
            assert!(err.contains(says), "{text}: {err}");
        }
    }
}
