//! Registry credentials, from where a user already keeps them: a token file, Docker's
//! `config.json` (`auths`, or a credential helper it names), never a manifest.

use super::OciError;
use base64::Engine as _;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// What a request to a registry is authorised with.
#[derive(Clone)]
pub enum Credentials {
    /// A user and password (or access token), sent as HTTP Basic to the registry or to the
    /// token service its challenge names.
    Basic {
        /// The user.
        user: String,
        /// The password.
        password: Zeroizing<String>,
    },
    /// A bearer token, sent as it is on every request.
    Bearer(Zeroizing<String>),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Basic { user, .. } => write!(f, "Basic({user}, <redacted>)"),
            Credentials::Bearer(_) => f.write_str("Bearer(<redacted>)"),
        }
    }
}

/// Where credentials are looked up, in this order: the token file, then the Docker config.
#[derive(Debug, Clone, Default)]
pub struct Auth {
    /// A file holding a bearer token for the registry (`--registry-token-file`).
    pub token_file: Option<PathBuf>,
    /// Docker's `config.json`; `None` looks in `$DOCKER_CONFIG/config.json`, then
    /// `~/.docker/config.json`.
    pub docker_config: Option<PathBuf>,
}

impl Auth {
    /// The credentials for `registry` (`host[:port]`), if any are configured; an error if a
    /// file that names them cannot be read or makes no sense, naming the file.
    pub fn credentials(&self, registry: &str) -> Result<Option<(Credentials, String)>, OciError> {
        if let Some(path) = &self.token_file {
            let text = read_private(path)?;
            let token = text.trim();
            if token.is_empty() {
                return Err(OciError::Credentials {
                    path: path.clone(),
                    reason: "the token file is empty".into(),
                });
            }
            return Ok(Some((
                Credentials::Bearer(Zeroizing::new(token.to_owned())),
                format!("the token in {}", path.display()),
            )));
        }
        let path = match &self.docker_config {
            Some(p) => p.clone(),
            None => match default_docker_config() {
                Some(p) if p.exists() => p,
                _ => return Ok(None),
            },
        };
        docker_credentials(&path, registry)
            .map(|c| c.map(|c| (c, format!("{} for {registry}", path.display()))))
    }
}

fn default_docker_config() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker/config.json"))
}

fn read_private(path: &Path) -> Result<Zeroizing<String>, OciError> {
    std::fs::read_to_string(path)
        .map(Zeroizing::new)
        .map_err(|e| OciError::Credentials {
            path: path.to_owned(),
            reason: format!("cannot read: {e}"),
        })
}

/// The credentials `config.json` at `path` holds for `registry`: a credential helper
/// named for it (`credHelpers`), its entry in `auths`, or the default helper
/// (`credsStore`), as the Docker CLI looks them up.
fn docker_credentials(path: &Path, registry: &str) -> Result<Option<Credentials>, OciError> {
    let bad = |reason: String| OciError::Credentials {
        path: path.to_owned(),
        reason,
    };
    let text = read_private(path)?;
    let config: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| bad(format!("not JSON: {e}")))?;
    if let Some(helper) = config["credHelpers"][registry].as_str() {
        return helper_credentials(helper, registry).map_err(bad);
    }
    if let Some(auths) = config["auths"].as_object() {
        for (key, entry) in auths {
            if auth_key_host(key) != registry {
                continue;
            }
            let field = |name: &str| entry[name].as_str().filter(|s| !s.is_empty());
            if let Some(token) = field("registrytoken") {
                return Ok(Some(Credentials::Bearer(Zeroizing::new(token.into()))));
            }
            if let (Some(user), Some(password)) = (field("username"), field("password")) {
                return Ok(Some(Credentials::Basic {
                    user: user.into(),
                    password: Zeroizing::new(password.into()),
                }));
            }
            if let Some(auth) = field("auth") {
                let decoded = Zeroizing::new(
                    base64::engine::general_purpose::STANDARD
                        .decode(auth)
                        .map_err(|e| bad(format!("auths.{key:?}.auth is not base64: {e}")))?,
                );
                let decoded = std::str::from_utf8(&decoded)
                    .map_err(|_| bad(format!("auths.{key:?}.auth is not user:password")))?;
                let (user, password) = decoded
                    .split_once(':')
                    .ok_or_else(|| bad(format!("auths.{key:?}.auth is not user:password")))?;
                return Ok(Some(Credentials::Basic {
                    user: user.into(),
                    password: Zeroizing::new(password.into()),
                }));
            }
            if field("identitytoken").is_some() {
                return Err(bad(format!(
                    "auths.{key:?} holds only an identitytoken (an OAuth2 refresh token), which \
                     Warden does not exchange; log in with a password or access token, or \
                     use --registry-token-file"
                )));
            }
        }
    }
    if let Some(helper) = config["credsStore"].as_str() {
        return helper_credentials(helper, registry).map_err(bad);
    }
    Ok(None)
}

/// The host an `auths` key names: `ghcr.io`, `https://ghcr.io`, `https://index.docker.io/v1/`.
fn auth_key_host(key: &str) -> &str {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    key.split('/').next().unwrap_or(key)
}

/// Asks `docker-credential-<helper>` for `registry`'s credentials, as Docker does; a helper
/// that knows none answers with an error that says so, which is no credentials.
fn helper_credentials(helper: &str, registry: &str) -> Result<Option<Credentials>, String> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    if !helper
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(format!("{helper:?} is not a credential helper's name"));
    }
    let program = format!("docker-credential-{helper}");
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(registry.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("{program}: {e}"))?;
    let stdout = Zeroizing::new(out.stdout);
    if !out.status.success() {
        let said =
            String::from_utf8_lossy(&stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
        if said.contains("credentials not found") {
            return Ok(None);
        }
        return Err(format!(
            "{program} get failed ({}): {}",
            out.status,
            said.trim()
        ));
    }
    let reply: serde_json::Value = serde_json::from_slice(&stdout)
        .map_err(|e| format!("{program} answered something other than JSON: {e}"))?;
    let (Some(user), Some(secret)) = (reply["Username"].as_str(), reply["Secret"].as_str()) else {
        return Err(format!("{program} answered without Username and Secret"));
    };
    if user == "<token>" {
        return Err(format!(
            "{program} holds an identity token (an OAuth2 refresh token) for {registry}, \
             which Warden does not exchange; use --registry-token-file"
        ));
    }
    Ok(Some(Credentials::Basic {
        user: user.into(),
        password: Zeroizing::new(secret.into()),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auths_keys_name_hosts_in_every_spelling_docker_writes() {
        assert_eq!(auth_key_host("127.0.0.1:5000"), "127.0.0.1:5000");
        assert_eq!(auth_key_host("https://ghcr.io"), "ghcr.io");
        assert_eq!(
            auth_key_host("https://index.docker.io/v1/"),
            "index.docker.io"
        );
    }

    #[test]
    fn a_docker_config_gives_basic_credentials_for_its_registry_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let auth = base64::engine::general_purpose::STANDARD.encode("ci:s3cret:with:colons");
        std::fs::write(
            &path,
            format!(r#"{{"auths":{{"https://127.0.0.1:5000":{{"auth":"{auth}"}}}}}}"#),
        )
        .unwrap();
        let auth = Auth {
            token_file: None,
            docker_config: Some(path.clone()),
        };
        match auth.credentials("127.0.0.1:5000").unwrap() {
            Some((Credentials::Basic { user, password }, _)) => {
                assert_eq!(
                    (user.as_str(), password.as_str()),
                    ("ci", "s3cret:with:colons")
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(auth.credentials("127.0.0.1:5001").unwrap().is_none());
        std::fs::write(&path, r#"{"auths":{"h":{"auth":"!!"}}}"#).unwrap();
        let err = auth.credentials("h").unwrap_err().to_string();
        assert!(
            err.contains("config.json") && err.contains("not base64"),
            "{err}"
        );
    }
}
