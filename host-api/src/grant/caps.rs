//! [`Capabilities`]: everything one task may touch, section by section.

use crate::env::manifest::EnvSection;
use crate::fs::manifest::FsGrant;
use crate::http::Egress;
use crate::http::manifest::HttpGrant;
use crate::limits::manifest::Limits;
use crate::secrets::manifest::SecretSpec;
use crate::sockets::TcpPolicy;
use crate::sockets::manifest::TcpRule;

/// The capability set of one task: which directories, URLs, TCP endpoints, secrets and
/// environment variables it may use, and its limits.
///
/// Deny by default: an empty list grants nothing of its kind (no files, no requests, no
/// sockets, no secrets, an empty environment). A task's set is either the manifest's
/// ceiling ([`Capabilities::new`]) or derived from its parent's by
/// [`Capabilities::narrow`], which checks the result with [`Capabilities::covers`]. A set
/// decoded from JSON is validated as a manifest is (see the [module docs](super)).
///
/// The fields are private so that a set can only be made in those three ways; read them
/// with the accessors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    pub(super) fs: Vec<FsGrant>,
    pub(super) http: Vec<HttpGrant>,
    pub(crate) tcp: Vec<TcpRule>,
    pub(super) secrets: Vec<SecretGrant>,
    pub(crate) env: EnvSection,
    pub(crate) limits: Limits,
}

/// A secret a task may use, by name; the [`SecretSpec`] (source, purpose, injection) stays
/// in the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretGrant {
    /// The secret's name, as `[[secrets]] name` binds it, e.g. `github`.
    pub name: String,
    /// Whether the host may add it to requests, as the manifest entry's `inject` says.
    /// Never true unless the entry has `inject`; a child may drop it, never add it, and so
    /// for the other uses.
    pub inject: bool,
    /// Whether `warden:tool/secrets` `hmac-*` may sign with it (`hmac = true`).
    pub hmac: bool,
    /// Whether `warden:tool/secrets` `reveal` may hand the value to the tool
    /// (`reveal = true`).
    pub reveal: bool,
}

impl SecretGrant {
    /// The uses it allows, as a narrowing names them: `inject`, `hmac`, `reveal`.
    pub fn uses(&self) -> impl Iterator<Item = &'static str> {
        [
            ("inject", self.inject),
            ("hmac", self.hmac),
            ("reveal", self.reveal),
        ]
        .into_iter()
        .filter_map(|(name, on)| on.then_some(name))
    }
}

impl Capabilities {
    /// The manifest's ceiling: every section exactly as the manifest grants it.
    ///
    /// The arguments are the validated manifest sections (`resolve_grants`,
    /// `resolve_rules`, ... of each capability module); of each secret only its name and
    /// the uses it allows are kept.
    pub fn new(
        fs: Vec<FsGrant>,
        http: Vec<HttpGrant>,
        tcp: Vec<TcpRule>,
        secrets: &[SecretSpec],
        env: EnvSection,
        limits: Limits,
    ) -> Capabilities {
        let secrets = secrets
            .iter()
            .map(|spec| SecretGrant {
                name: spec.name.clone(),
                inject: spec.inject.is_some(),
                hmac: spec.hmac,
                reveal: spec.reveal,
            })
            .collect();
        Capabilities {
            fs,
            http,
            tcp,
            secrets,
            env,
            limits,
        }
    }

    /// The directory grants, each a preopen.
    ///
    /// In a derived set, a grant's `host` is the sub-directory of the parent's grant that
    /// its guest path names, joined by path only. Open it through the parent's directory
    /// capability, never by its host path with ambient authority: a symlink inside the
    /// parent's directory must not lead out of it. [`crate::fs::dirs::open`] does so,
    /// one component at a time without following symlinks.
    pub fn fs(&self) -> &[FsGrant] {
        &self.fs
    }

    /// The `[[http]]` rules with their per-request limits, in order; the first that
    /// matches a request decides.
    pub fn http(&self) -> &[HttpGrant] {
        &self.http
    }

    /// The `[[tcp]]` rules.
    pub fn tcp(&self) -> &[TcpRule] {
        &self.tcp
    }

    /// The secrets the task may use, in manifest order.
    pub fn secrets(&self) -> &[SecretGrant] {
        &self.secrets
    }

    /// The secret named `name`, if the task may use it.
    pub fn secret(&self, name: &str) -> Option<&SecretGrant> {
        self.secrets.iter().find(|s| s.name == name)
    }

    /// Of the manifest's `[[secrets]]` `specs`, those this set holds, in manifest order, each
    /// with only the uses it holds: what a task under this set may fetch and use.
    pub fn secret_specs(&self, specs: &[SecretSpec]) -> Vec<SecretSpec> {
        specs
            .iter()
            .filter_map(|spec| {
                let held = self.secret(&spec.name)?;
                let mut spec = spec.clone();
                spec.reveal = spec.reveal && held.reveal;
                spec.hmac = spec.hmac && held.hmac;
                if !held.inject {
                    spec.inject = None;
                }
                Some(spec)
            })
            .collect()
    }

    /// The environment: literal variables and names passed from the host.
    pub fn env(&self) -> &EnvSection {
        &self.env
    }

    /// Memory, time, fuel and output limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The `[[http]]` rule engine for these rules.
    pub fn egress(&self) -> Egress {
        Egress::new(self.http.iter().map(|g| g.rule.clone()).collect())
    }

    /// The `[[tcp]]` policy for these rules.
    pub fn tcp_policy(&self) -> TcpPolicy {
        TcpPolicy::new(self.tcp.clone())
    }
}
