//! A client of the OCI distribution API, for what Warden needs of a registry: manifests
//! and blobs in, and the blobs and manifest of a signature out.
//!
//! Written here rather than taken from a crate because what it must refuse is the point:
//! plain HTTP only to a loopback registry and only when asked, redirects and token
//! services held to the same rule, credentials never sent to a host other than the one
//! they were found for or the token service that registry named, and every response
//! bounded in size. (The crates that do this, `oci-client` over `reqwest`, also bring a
//! second TLS provider, which would leave rustls's process default ambiguous for every
//! other client in the process.)

use super::auth::{Auth, Credentials};
use super::spec::{self, Descriptor};
use super::store::BlobWriter;
use super::{OciError, Reference, Sha256};
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use url::Url;
use zeroize::Zeroizing;

/// How a registry is reached.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// Speak plain HTTP: refused unless the registry is on this machine (`localhost`,
    /// 127.0.0.0/8, `::1`).
    pub plain_http: bool,
    /// Where credentials come from.
    pub auth: Auth,
    /// PEM certificates to trust instead of the web's roots (a private registry's CA).
    pub ca_file: Option<std::path::PathBuf>,
}

/// How long connecting, and each read of a response, may take.
const TIMEOUT: Duration = Duration::from_secs(30);
/// Redirects followed for one request.
const MAX_REDIRECTS: usize = 5;
/// The most a token service's answer or an error body may take.
const MAX_SMALL: usize = 1 << 20;

/// One repository of one registry, with the authorisation it has earned so far.
pub struct Registry {
    reference: Reference,
    base: Url,
    plain_http: bool,
    credentials: Option<Credentials>,
    /// The `Authorization` header sent to the registry: the bearer token of the last
    /// challenge answered, or the configured credentials.
    authorization: Option<HeaderValue>,
    tls: Arc<rustls::ClientConfig>,
}

impl Registry {
    /// A client of `reference`'s repository; refuses plain HTTP to a registry elsewhere.
    pub fn new(reference: &Reference, options: &RegistryOptions) -> Result<Registry, OciError> {
        if options.plain_http && !reference.is_loopback() {
            return Err(OciError::PlainHttp {
                url: format!("http://{}", reference.registry()),
            });
        }
        let scheme = if options.plain_http { "http" } else { "https" };
        let base =
            Url::parse(&format!("{scheme}://{}/v2/", reference.registry())).map_err(|e| {
                OciError::Unreachable {
                    registry: reference.registry().into(),
                    reason: format!("not a URL: {e}"),
                }
            })?;
        let credentials = options
            .auth
            .credentials(reference.registry())?
            .map(|(c, _)| c);
        let authorization = match &credentials {
            Some(Credentials::Bearer(token)) => Some(sensitive(&format!("Bearer {}", &**token))?),
            _ => None,
        };
        Ok(Registry {
            reference: reference.clone(),
            base,
            plain_http: options.plain_http,
            credentials,
            authorization,
            tls: tls_config(options.ca_file.as_deref())?,
        })
    }

    fn url(&self, path: &str) -> Url {
        self.base
            .join(&format!("{}/{path}", self.reference.repository()))
            .expect("repository names and digests are URL-safe")
    }

    /// The manifest `version` (a tag or `sha256:…`) names, and its digest, checked; `None`
    /// if the registry has none by that name.
    pub async fn manifest(&mut self, version: &str) -> Result<Option<(Vec<u8>, Sha256)>, OciError> {
        let url = self.url(&format!("manifests/{version}"));
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static(
                "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json",
            ),
        );
        let response = self
            .send(Method::GET, url.clone(), headers, Bytes::new())
            .await?;
        match response.status() {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => return Ok(None),
            _ => return Err(self.status_error(&url, response).await),
        }
        let claimed = response
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<Sha256>().ok());
        let bytes = read_limited(response, spec::MAX_MANIFEST, &url).await?;
        let digest = Sha256::of(&bytes);
        if let Some(claimed) = claimed
            && claimed != digest
        {
            return Err(OciError::DigestMismatch {
                what: format!("the manifest of {url} (as its Docker-Content-Digest says)"),
                expected: claimed,
                actual: digest,
            });
        }
        Ok(Some((bytes, digest)))
    }

    /// Streams the blob of `descriptor` into `writer`, at most its declared size; the
    /// caller checks the digest by finishing the writer.
    pub async fn blob(
        &mut self,
        descriptor: &Descriptor,
        writer: &mut BlobWriter,
    ) -> Result<(), OciError> {
        let (response, url) = self.get_blob(descriptor).await?;
        let mut body = response.into_body();
        while let Some(frame) = read_step(body.frame(), &url).await? {
            let frame = frame.map_err(|e| unreachable(&url, &e))?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            if writer.written() + data.len() as u64 > descriptor.size {
                return Err(OciError::DigestMismatch {
                    what: format!(
                        "blob {} (longer than the {} bytes its manifest says)",
                        descriptor.digest, descriptor.size
                    ),
                    expected: descriptor.digest,
                    actual: Sha256::of(&[]),
                });
            }
            writer.write(&data)?;
        }
        Ok(())
    }

    /// The response to a GET of `descriptor`'s blob, and the URL asked.
    async fn get_blob(
        &mut self,
        descriptor: &Descriptor,
    ) -> Result<(hyper::Response<Incoming>, Url), OciError> {
        let url = self.url(&format!("blobs/{}", descriptor.digest));
        let response = self
            .send(Method::GET, url.clone(), HeaderMap::new(), Bytes::new())
            .await?;
        Ok((self.expect(response, StatusCode::OK, &url).await?, url))
    }

    /// The blob of `descriptor`, at most [`MAX_SIGNATURE_BLOB`](super::MAX_SIGNATURE_BLOB)
    /// bytes, checked against its digest.
    pub async fn small_blob(&mut self, descriptor: &Descriptor) -> Result<Vec<u8>, OciError> {
        let (response, url) = self.get_blob(descriptor).await?;
        let bytes = read_limited(response, super::MAX_SIGNATURE_BLOB as usize, &url).await?;
        let actual = Sha256::of(&bytes);
        if actual != descriptor.digest {
            return Err(OciError::DigestMismatch {
                what: format!("blob {}", descriptor.digest),
                expected: descriptor.digest,
                actual,
            });
        }
        Ok(bytes)
    }

    /// Uploads `bytes` as a blob, unless the registry has it already.
    pub async fn push_blob(&mut self, bytes: &[u8]) -> Result<Sha256, OciError> {
        let digest = Sha256::of(bytes);
        let url = self.url(&format!("blobs/{digest}"));
        let head = self
            .send(Method::HEAD, url, HeaderMap::new(), Bytes::new())
            .await?;
        if head.status() == StatusCode::OK {
            return Ok(digest);
        }
        let url = self.url("blobs/uploads/");
        let response = self
            .send(Method::POST, url.clone(), HeaderMap::new(), Bytes::new())
            .await?;
        let response = self.expect(response, StatusCode::ACCEPTED, &url).await?;
        let location = response
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| OciError::Protocol {
                url: url.to_string(),
                reason: "an upload was accepted without a Location".into(),
            })?;
        let mut put = url.join(location).map_err(|e| OciError::Protocol {
            url: url.to_string(),
            reason: format!("the upload Location {location:?} is not a URL: {e}"),
        })?;
        put.query_pairs_mut()
            .append_pair("digest", &digest.to_string());
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        let response = self
            .send(
                Method::PUT,
                put.clone(),
                headers,
                Bytes::copy_from_slice(bytes),
            )
            .await?;
        self.expect(response, StatusCode::CREATED, &put).await?;
        Ok(digest)
    }

    /// Uploads a manifest under `tag`.
    pub async fn push_manifest(
        &mut self,
        tag: &str,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<Sha256, OciError> {
        let url = self.url(&format!("manifests/{tag}"));
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_str(media_type).map_err(|e| OciError::Protocol {
                url: url.to_string(),
                reason: e.to_string(),
            })?,
        );
        let response = self
            .send(
                Method::PUT,
                url.clone(),
                headers,
                Bytes::copy_from_slice(bytes),
            )
            .await?;
        self.expect(response, StatusCode::CREATED, &url).await?;
        Ok(Sha256::of(bytes))
    }

    /// Sends one request to the registry, answering one authentication challenge and
    /// following redirects of reads.
    async fn send(
        &mut self,
        method: Method,
        url: Url,
        headers: HeaderMap,
        body: Bytes,
    ) -> Result<hyper::Response<Incoming>, OciError> {
        let mut answered = false;
        loop {
            let mut url = url.clone();
            let mut hops = 0;
            let response = loop {
                let mut h = headers.clone();
                // Credentials go to the registry only: a redirect elsewhere (a blob store)
                // carries its own authorisation in its URL.
                if same_origin(&url, &self.base)
                    && let Some(a) = &self.authorization
                {
                    h.insert(header::AUTHORIZATION, a.clone());
                }
                let response = self.request(method.clone(), &url, h, body.clone()).await?;
                let redirect = matches!(
                    response.status(),
                    StatusCode::MOVED_PERMANENTLY
                        | StatusCode::FOUND
                        | StatusCode::SEE_OTHER
                        | StatusCode::TEMPORARY_REDIRECT
                        | StatusCode::PERMANENT_REDIRECT
                ) && matches!(method, Method::GET | Method::HEAD);
                if !redirect {
                    break response;
                }
                hops += 1;
                if hops > MAX_REDIRECTS {
                    return Err(OciError::Protocol {
                        url: url.to_string(),
                        reason: format!("more than {MAX_REDIRECTS} redirects"),
                    });
                }
                let location = response
                    .headers()
                    .get(header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                url = url.join(location).map_err(|e| OciError::Protocol {
                    url: url.to_string(),
                    reason: format!("redirect to {location:?}, not a URL: {e}"),
                })?;
                self.check_scheme(&url)?;
            };
            if response.status() != StatusCode::UNAUTHORIZED || answered {
                if response.status() == StatusCode::UNAUTHORIZED {
                    return Err(OciError::Unauthorized {
                        registry: self.reference.registry().into(),
                        had_credentials: self.credentials.is_some(),
                    });
                }
                return Ok(response);
            }
            answered = true;
            let challenge = response
                .headers()
                .get(header::WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            self.answer(&challenge).await?;
        }
    }

    /// Earns the authorisation `challenge` (a `WWW-Authenticate` value) asks for.
    async fn answer(&mut self, challenge: &str) -> Result<(), OciError> {
        let (scheme, params) = parse_challenge(challenge);
        let registry = self.reference.registry().to_owned();
        match scheme.to_ascii_lowercase().as_str() {
            "basic" => match &self.credentials {
                Some(Credentials::Basic { user, password }) => {
                    self.authorization = Some(basic(user, password)?);
                    Ok(())
                }
                _ => Err(OciError::Unauthorized {
                    registry,
                    had_credentials: self.credentials.is_some(),
                }),
            },
            "bearer" => {
                if let Some(Credentials::Bearer(_)) = &self.credentials {
                    // The token was sent and refused; there is nothing to exchange.
                    return Err(OciError::Unauthorized {
                        registry,
                        had_credentials: true,
                    });
                }
                let realm = params
                    .iter()
                    .find(|(k, _)| k == "realm")
                    .map(|(_, v)| v.as_str());
                let Some(realm) = realm else {
                    return Err(OciError::Protocol {
                        url: self.base.to_string(),
                        reason: format!("a Bearer challenge without a realm: {challenge:?}"),
                    });
                };
                let mut url = Url::parse(realm).map_err(|e| OciError::Protocol {
                    url: self.base.to_string(),
                    reason: format!("the token realm {realm:?} is not a URL: {e}"),
                })?;
                self.check_scheme(&url)?;
                for (k, v) in &params {
                    if k == "service" || k == "scope" {
                        url.query_pairs_mut().append_pair(k, v);
                    }
                }
                let mut headers = HeaderMap::new();
                if let Some(Credentials::Basic { user, password }) = &self.credentials {
                    headers.insert(header::AUTHORIZATION, basic(user, password)?);
                }
                let response = self
                    .request(Method::GET, &url, headers, Bytes::new())
                    .await?;
                if response.status() != StatusCode::OK {
                    if matches!(
                        response.status(),
                        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
                    ) {
                        return Err(OciError::Unauthorized {
                            registry,
                            had_credentials: self.credentials.is_some(),
                        });
                    }
                    let mut error = self.status_error(&url, response).await;
                    if self.credentials.is_none()
                        && let OciError::Status { said, .. } = &mut error
                    {
                        said.push_str(&format!(
                            " (asked for an anonymous token: no credentials were found for \
                             {registry}; log in with `docker login`, or pass \
                             --registry-token-file)"
                        ));
                    }
                    return Err(error);
                }
                let body = Zeroizing::new(read_limited(response, MAX_SMALL, &url).await?);
                let reply: serde_json::Value =
                    serde_json::from_slice(&body).map_err(|e| OciError::Protocol {
                        url: url.to_string(),
                        reason: format!(
                            "the token service answered something other than JSON: {e}"
                        ),
                    })?;
                let token = reply["token"]
                    .as_str()
                    .or_else(|| reply["access_token"].as_str())
                    .ok_or_else(|| OciError::Protocol {
                        url: url.to_string(),
                        reason: "the token service's answer holds no token".into(),
                    })?;
                self.authorization = Some(sensitive(&format!("Bearer {token}"))?);
                Ok(())
            }
            _ => Err(OciError::Protocol {
                url: self.base.to_string(),
                reason: format!("an authentication challenge Warden does not know: {challenge:?}"),
            }),
        }
    }

    /// A URL the registry sent us to is held to the rule for the registry itself.
    fn check_scheme(&self, url: &Url) -> Result<(), OciError> {
        match url.scheme() {
            "https" => Ok(()),
            "http" if self.plain_http && url_is_loopback(url) => Ok(()),
            _ => Err(OciError::PlainHttp {
                url: url.to_string(),
            }),
        }
    }

    /// One request on a fresh connection.
    async fn request(
        &self,
        method: Method,
        url: &Url,
        headers: HeaderMap,
        body: Bytes,
    ) -> Result<hyper::Response<Incoming>, OciError> {
        let host = url.host_str().ok_or_else(|| OciError::Protocol {
            url: url.to_string(),
            reason: "no host".into(),
        })?;
        let port = url.port_or_known_default().unwrap_or(443);
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let tcp = tokio::time::timeout(TIMEOUT, TcpStream::connect((bare, port)))
            .await
            .map_err(|_| unreachable(url, &"connecting timed out"))?
            .map_err(|e| unreachable(url, &e))?;
        let mut target = url.path().to_owned();
        if let Some(q) = url.query() {
            target.push('?');
            target.push_str(q);
        }
        let authority = match url.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_owned(),
        };
        let mut request = Request::builder()
            .method(method)
            .uri(target)
            .header(header::HOST, authority)
            .header(
                header::USER_AGENT,
                concat!("warden/", env!("CARGO_PKG_VERSION")),
            )
            .body(Full::new(body))
            .map_err(|e| OciError::Protocol {
                url: url.to_string(),
                reason: e.to_string(),
            })?;
        request.headers_mut().extend(headers);
        if url.scheme() == "https" {
            use rustls::pki_types::ServerName;
            let name = match bare.parse::<std::net::IpAddr>() {
                Ok(ip) => ServerName::from(ip),
                Err(_) => {
                    ServerName::try_from(bare.to_owned()).map_err(|e| unreachable(url, &e))?
                }
            };
            let tls = tokio::time::timeout(
                TIMEOUT,
                tokio_rustls::TlsConnector::from(self.tls.clone()).connect(name, tcp),
            )
            .await
            .map_err(|_| unreachable(url, &"the TLS handshake timed out"))?
            .map_err(|e| {
                let hint = if url_is_loopback(url) {
                    "; a registry on this machine that speaks plain HTTP needs --plain-http"
                } else {
                    ""
                };
                unreachable(url, &format_args!("TLS: {e}{hint}"))
            })?;
            exchange(tls, request, url).await
        } else {
            exchange(tcp, request, url).await
        }
    }

    /// `response` if it has the status `want`; else the registry's error, as it said it.
    async fn expect(
        &self,
        response: hyper::Response<Incoming>,
        want: StatusCode,
        url: &Url,
    ) -> Result<hyper::Response<Incoming>, OciError> {
        if response.status() == want {
            Ok(response)
        } else {
            Err(self.status_error(url, response).await)
        }
    }

    async fn status_error(&self, url: &Url, response: hyper::Response<Incoming>) -> OciError {
        let status = response.status();
        let body = read_limited(response, MAX_SMALL, url)
            .await
            .unwrap_or_default();
        // The distribution API says what went wrong in {"errors":[{"code","message"}]}.
        let said = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| {
                let errors = v["errors"].as_array()?;
                Some(
                    errors
                        .iter()
                        .map(|e| {
                            format!(
                                "{} {}",
                                e["code"].as_str().unwrap_or("?"),
                                e["message"].as_str().unwrap_or("")
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("; "),
                )
            })
            .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned());
        OciError::Status {
            url: url.to_string(),
            status: status.as_u16(),
            said,
        }
    }
}

async fn exchange<IO>(
    io: IO,
    request: Request<Full<Bytes>>,
    url: &Url,
) -> Result<hyper::Response<Incoming>, OciError>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| unreachable(url, &e))?;
    // The connection lives as long as the response's body is read, then ends.
    tokio::spawn(connection);
    tokio::time::timeout(TIMEOUT, sender.send_request(request))
        .await
        .map_err(|_| unreachable(url, &"no response in time"))?
        .map_err(|e| unreachable(url, &e))
}

async fn read_step<F, T>(frame: F, url: &Url) -> Result<T, OciError>
where
    F: std::future::Future<Output = T>,
{
    tokio::time::timeout(TIMEOUT, frame)
        .await
        .map_err(|_| unreachable(url, &"the response stalled"))
}

async fn read_limited(
    response: hyper::Response<Incoming>,
    limit: usize,
    url: &Url,
) -> Result<Vec<u8>, OciError> {
    let mut body = response.into_body();
    let mut out = Vec::new();
    while let Some(frame) = read_step(body.frame(), url).await? {
        let frame = frame.map_err(|e| unreachable(url, &e))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if out.len() + data.len() > limit {
            return Err(OciError::Protocol {
                url: url.to_string(),
                reason: format!("the response is larger than {limit} bytes"),
            });
        }
        out.extend_from_slice(&data);
    }
    Ok(out)
}

fn unreachable(url: &Url, error: &dyn std::fmt::Display) -> OciError {
    OciError::Unreachable {
        registry: url
            .host_str()
            .map_or_else(String::new, |h| match url.port() {
                Some(p) => format!("{h}:{p}"),
                None => h.to_owned(),
            }),
        reason: error.to_string(),
    }
}

fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host() == b.host()
        && a.port_or_known_default() == b.port_or_known_default()
}

fn url_is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

fn sensitive(value: &str) -> Result<HeaderValue, OciError> {
    let mut v = HeaderValue::from_str(value).map_err(|_| OciError::Protocol {
        url: String::new(),
        reason: "a credential holds characters an HTTP header cannot".into(),
    })?;
    v.set_sensitive(true);
    Ok(v)
}

fn basic(user: &str, password: &str) -> Result<HeaderValue, OciError> {
    use base64::Engine as _;
    let pair = Zeroizing::new(format!("{user}:{password}"));
    let encoded = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(pair.as_bytes()));
    sensitive(&format!("Basic {}", &*encoded))
}

/// `Bearer realm="…",service="…",scope="…"` as its scheme and parameters.
fn parse_challenge(text: &str) -> (String, Vec<(String, String)>) {
    let text = text.trim();
    let (scheme, rest) = text.split_once(' ').unwrap_or((text, ""));
    let mut params = Vec::new();
    let mut rest = rest.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let after = after.trim_start();
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, c)) = chars.next() {
                            value.push(c);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => value.push(c),
                }
            }
            (value, &quoted[end.min(quoted.len())..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_owned(), &after[end..])
        };
        params.push((key, value));
        rest = next.trim_start().trim_start_matches(',').trim_start();
    }
    (scheme.to_owned(), params)
}

fn tls_config(ca_file: Option<&std::path::Path>) -> Result<Arc<rustls::ClientConfig>, OciError> {
    use warden_host_api::tls;
    let Some(path) = ca_file else {
        return Ok(tls::web_client_config());
    };
    let bad = |reason: String| OciError::Credentials {
        path: path.to_owned(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| bad(format!("cannot read the CA file: {e}")))?;
    Ok(tls::client_config(tls::roots_from_pem(&pem).map_err(bad)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse_as_registries_write_them() {
        let (scheme, params) = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/ubuntu:pull,push""#,
        );
        assert_eq!(scheme, "Bearer");
        assert_eq!(
            params,
            [
                ("realm".into(), "https://auth.docker.io/token".into()),
                ("service".into(), "registry.docker.io".into()),
                ("scope".into(), "repository:library/ubuntu:pull,push".into()),
            ]
        );
        let (scheme, params) = parse_challenge(r#"Basic realm="Registry Realm""#);
        assert_eq!((scheme.as_str(), params.len()), ("Basic", 1));
    }

    /// A hostile registry on 127.0.0.1 (no real registry misbehaves on purpose): answers
    /// every request with `response`, and keeps the request heads it saw.
    fn hostile(response: String) -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut buf = vec![0u8; 8192];
                let n = stream.read(&mut buf).unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]).into_owned();
                log.lock().unwrap().push(head.clone());
                let _ = stream.write_all(response.as_bytes());
            }
        });
        (port, seen)
    }

    /// Plain HTTP, no credentials.
    fn plain() -> RegistryOptions {
        RegistryOptions {
            plain_http: true,
            ..Default::default()
        }
    }

    /// Why fetching a manifest from the registry on `port` fails.
    async fn manifest_error(port: u16, options: &RegistryOptions) -> String {
        let r: Reference = format!("oci://127.0.0.1:{port}/x:1").parse().unwrap();
        let mut registry = Registry::new(&r, options).unwrap();
        registry.manifest("1").await.unwrap_err().to_string()
    }

    /// Plain HTTP, with `token` in a token file (kept while the directory lives).
    fn options(token: &str) -> (RegistryOptions, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, token).unwrap();
        let options = RegistryOptions {
            plain_http: true,
            auth: Auth {
                token_file: Some(file),
                docker_config: None,
            },
            ca_file: None,
        };
        (options, dir)
    }

    #[tokio::test]
    async fn a_registry_cannot_redirect_to_plain_http_elsewhere() {
        let (port, _) = hostile("HTTP/1.1 307 Temporary Redirect\r\nLocation: http://example.com/v2/x/manifests/1\r\nContent-Length: 0\r\n\r\n".into());
        let (options, _dir) = options("t0ken");
        let err = manifest_error(port, &options).await;
        assert!(
            err.contains("http://example.com/") && err.contains("plain HTTP"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn credentials_are_not_sent_where_a_registry_redirects() {
        // The redirect target, another origin (another port), records what it is sent.
        let (elsewhere, seen) =
            hostile("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".into());
        let (port, at_registry) = hostile(format!(
            "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://127.0.0.1:{}/blob\r\nContent-Length: 0\r\n\r\n",
            elsewhere
        ));
        let r: Reference = format!("oci://127.0.0.1:{port}/x:1").parse().unwrap();
        let (options, _dir) = options("s3cret-t0ken");
        let mut registry = Registry::new(&r, &options).unwrap();
        assert!(registry.manifest("1").await.unwrap().is_none());
        let at_registry = at_registry.lock().unwrap();
        assert!(
            at_registry[0].contains("authorization: Bearer s3cret-t0ken"),
            "{at_registry:?}"
        );
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        assert!(
            !seen[0].to_ascii_lowercase().contains("authorization"),
            "{seen:?}"
        );
    }

    #[tokio::test]
    async fn a_token_service_is_held_to_the_registry_s_rule() {
        let (port, _) = hostile("HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"http://auth.example.com/token\",service=\"x\"\r\nContent-Length: 0\r\n\r\n".into());
        let err = manifest_error(port, &plain()).await;
        assert!(
            err.contains("http://auth.example.com/token") && err.contains("plain HTTP"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_manifest_larger_than_any_is_refused() {
        let (port, _) = hostile(format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{}",
            5 << 20,
            "x".repeat(5 << 20)
        ));
        let err = manifest_error(port, &plain()).await;
        assert!(err.contains("larger than"), "{err}");
    }

    #[test]
    fn plain_http_is_for_loopback_registries_only() {
        let options = plain();
        for remote in [
            "oci://ghcr.io/a:1",
            "oci://10.0.0.1:5000/a:1",
            "oci://127.0.0.1.nip.io/a:1",
        ] {
            let r: Reference = remote.parse().unwrap();
            let err = Registry::new(&r, &options).err().expect(remote).to_string();
            assert!(err.contains("plain HTTP"), "{err}");
        }
        for local in [
            "oci://127.0.0.1:5000/a:1",
            "oci://localhost:5000/a:1",
            "oci://[::1]:5000/a:1",
        ] {
            let r: Reference = local.parse().unwrap();
            assert!(Registry::new(&r, &options).is_ok(), "{local}");
        }
    }
}
