//! `[[secrets]]` as a [`Capability`]: resolved from the manifest, narrowed by name and use,
//! carried in tokens, and described.

use super::manifest::{RawSecret, SecretSpec, SpecError, is_secret_name, resolve_secrets};
use crate::WardenView;
use crate::capability::{Capability, ResolveCx, TaskSetup, WireError, list_args};
use crate::grant::{Capabilities, NarrowingReason, Widening, Wider, names, widening_list};
use crate::limits::manifest::format_duration;
use std::fmt;
use wasmtime::component::Linker;

/// Credentials the host holds for a tool and uses on its behalf. A grant holds secrets by
/// name with the uses it allows; the source and purpose stay in the manifest.
#[derive(Debug, Clone, Copy)]
pub struct Secrets;

/// The `[[secrets]]` entries as a manifest declares them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeclaredSecrets {
    /// Each entry, in manifest order.
    pub specs: Vec<SecretSpec>,
    /// The names of those with `approval = "required"`: every use asks an approver.
    pub approval: Vec<String>,
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
    /// What the manifest entry `spec` allows.
    pub fn of(spec: &SecretSpec) -> SecretGrant {
        SecretGrant {
            name: spec.name.clone(),
            inject: spec.inject.is_some(),
            hmac: spec.hmac,
            reveal: spec.reveal,
        }
    }

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

    /// `github:inject+hmac`, as a narrowing writes it: the name and every use it allows.
    fn label(&self) -> String {
        let uses: Vec<&str> = self.uses().collect();
        format!("{}:{}", self.name, uses.join("+"))
    }

    fn unused(name: &str) -> SecretGrant {
        SecretGrant {
            name: name.to_owned(),
            inject: false,
            hmac: false,
            reveal: false,
        }
    }
}

/// `secrets=NAME[:USES]`: a secret, with the uses asked for, or `None` for the parent's but
/// `reveal`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretNarrowing {
    name: String,
    uses: Option<SecretGrant>,
}

impl SecretNarrowing {
    fn label(&self) -> String {
        match &self.uses {
            Some(grant) => grant.label(),
            None => self.name.clone(),
        }
    }

    /// The child's secret: as asked, or the parent's without `reveal`. A name the parent
    /// does not hold comes out with no use, for `covers` to refuse with the parent's list.
    fn grant(&self, parent: &[SecretGrant]) -> SecretGrant {
        if let Some(asked) = &self.uses {
            return asked.clone();
        }
        match parent.iter().find(|p| p.name == self.name) {
            Some(p) => SecretGrant {
                reveal: false,
                ..p.clone()
            },
            None => SecretGrant::unused(&self.name),
        }
    }

    fn parse(item: &str) -> Result<SecretNarrowing, NarrowingReason> {
        let (name, uses) = match item.split_once(':') {
            Some((name, uses)) => (name, Some(uses)),
            None => (item, None),
        };
        if !is_secret_name(name) {
            return Err(NarrowingReason::invalid(format_args!(
                "invalid secret name {name:?}: use lowercase letters, digits, \"_\" and \"-\", starting with a letter or digit"
            )));
        }
        let uses = uses
            .map(|uses| {
                let mut grant = SecretGrant::unused(name);
                for flag in uses.split('+') {
                    let slot = match flag {
                        "inject" => &mut grant.inject,
                        "hmac" => &mut grant.hmac,
                        "reveal" => &mut grant.reveal,
                        _ => {
                            return Err(NarrowingReason::invalid(format_args!(
                                "expected {name} or {name}:USES with USES from inject, hmac, reveal joined by +, found {flag:?}"
                            )));
                        }
                    };
                    *slot = true;
                }
                Ok(grant)
            })
            .transpose()?;
        Ok(SecretNarrowing {
            name: name.to_owned(),
            uses,
        })
    }
}

/// One secret in a grant's JSON form.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretWire {
    name: String,
    inject: bool,
    hmac: bool,
    reveal: bool,
}

impl Capability for Secrets {
    const KEY: &'static str = "secrets";
    type Section = Vec<RawSecret>;
    type Declared = DeclaredSecrets;
    type Grant = Vec<SecretGrant>;
    /// `secrets=NAME[:USE[+USE...]][,...]`, in order.
    type Narrowing = Vec<SecretNarrowing>;
    type Wire = Vec<SecretWire>;
    type Error = SpecError;

    fn resolve(section: &Self::Section, cx: &ResolveCx<'_>) -> Result<DeclaredSecrets, SpecError> {
        let specs = resolve_secrets(section, cx.base_dir)?;
        // Each entry resolved to one of the same index, in order.
        let approval = (section.iter().zip(&specs))
            .filter(|(raw, _)| raw.approval().is_required())
            .map(|(_, spec)| spec.name.clone())
            .collect();
        Ok(DeclaredSecrets { specs, approval })
    }

    fn ceiling(declared: &DeclaredSecrets) -> Self::Grant {
        declared.specs.iter().map(SecretGrant::of).collect()
    }

    /// Each child secret is the parent's, with only uses the parent's allows.
    fn covers(parent: &Self::Grant, child: &Self::Grant) -> Result<(), Widening> {
        for c in child {
            let Some(p) = parent.iter().find(|p| p.name == c.name) else {
                let parent: Vec<String> = parent.iter().map(SecretGrant::label).collect();
                let reason = format!(
                    "{} is not granted by the parent (parent: {})",
                    c.name,
                    widening_list(&parent)
                );
                return Err(Wider::new("secrets", reason).into());
            };
            if let Some(wider) = c.uses().find(|u| !p.uses().any(|held| held == *u)) {
                let reason = format!(
                    "{} is wider than the parent's {}, which does not allow {wider}",
                    c.label(),
                    p.label()
                );
                return Err(Wider::new("secrets", reason).into());
            }
        }
        Ok(())
    }

    fn push_narrowing(
        narrowing: &mut Self::Narrowing,
        _key: &str,
        value: &str,
    ) -> Result<(), NarrowingReason> {
        for item in names(value) {
            let secret = SecretNarrowing::parse(item)?;
            if narrowing.iter().any(|s| s.name == secret.name) {
                return Err(NarrowingReason::Duplicate(secret.name));
            }
            narrowing.push(secret);
        }
        Ok(())
    }

    fn narrowing_args(narrowing: &Self::Narrowing) -> Vec<String> {
        list_args(Self::KEY, narrowing.iter().map(SecretNarrowing::label))
    }

    fn narrow(parent: &Self::Grant, narrowing: &Self::Narrowing) -> Result<Self::Grant, Widening> {
        Ok(narrowing.iter().map(|s| s.grant(parent)).collect())
    }

    fn to_wire(grant: &Self::Grant) -> Result<Self::Wire, WireError> {
        Ok((grant.iter())
            .map(|s| SecretWire {
                name: s.name.clone(),
                inject: s.inject,
                hmac: s.hmac,
                reveal: s.reveal,
            })
            .collect())
    }

    fn from_wire(wire: Self::Wire) -> Result<Self::Grant, WireError> {
        let mut secrets: Vec<SecretGrant> = Vec::with_capacity(wire.len());
        for (i, entry) in wire.into_iter().enumerate() {
            let field = format!("secrets[{i}].name");
            if !is_secret_name(&entry.name) {
                let reason = format!("{:?} is not a secret name", entry.name);
                return Err(WireError::new(field, reason));
            }
            if let Some(j) = secrets.iter().position(|s| s.name == entry.name) {
                let reason = format!("{:?} is already given in secrets[{j}]", entry.name);
                return Err(WireError::new(field, reason));
            }
            secrets.push(SecretGrant {
                name: entry.name,
                inject: entry.inject,
                hmac: entry.hmac,
                reveal: entry.reveal,
            });
        }
        Ok(secrets)
    }

    /// The names, in manifest order whatever order a grant gives them in.
    fn configure(_grant: &Self::Grant, _setup: &mut TaskSetup<'_>) {
        // The values were fetched before (`TaskSetup::new`), for the specs the grant
        // holds: a fetch is async and can refuse the task.
    }

    fn add_to_linker<T: WardenView>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
        super::add_to_linker(linker)
    }

    fn summary(declared: &DeclaredSecrets, grant: &Self::Grant) -> Option<serde_json::Value> {
        Some(
            (declared.specs.iter())
                .filter(|s| grant.iter().any(|g| g.name == s.name))
                .map(|s| s.name.as_str())
                .collect(),
        )
    }

    fn describe(declared: &DeclaredSecrets, out: &mut dyn fmt::Write) -> fmt::Result {
        if declared.specs.is_empty() {
            return writeln!(out, "secrets: none");
        }
        writeln!(out, "secrets (fetched for each task, never shown):")?;
        for s in &declared.specs {
            let provider = s.source.provider();
            writeln!(out, "  {} from {} (provider {provider})", s.name, s.source)?;
            writeln!(out, "    purpose: {}", s.purpose)?;
            match &s.inject {
                Some(i) => writeln!(
                    out,
                    "    inject: header {} = {:?} into requests matching {}",
                    i.header, i.format, i.url
                )?,
                None => writeln!(out, "    inject: none")?,
            }
            match s.ttl {
                Some(ttl) => {
                    writeln!(out, "    ttl: {}, then fetched again", format_duration(ttl))?
                }
                None => writeln!(
                    out,
                    "    ttl: none (kept for the task, unless a vault lease is shorter)"
                )?,
            }
            if declared.approval.contains(&s.name) {
                writeln!(out, "    approval: required, each use asks an approver")?;
            }
            if s.hmac {
                writeln!(out, "    hmac: yes, the tool may sign with it")?;
            } else {
                writeln!(out, "    hmac: no")?;
            }
            if s.reveal {
                writeln!(out, "    reveal: yes, the tool may read the value itself")?;
            } else {
                writeln!(out, "    reveal: no, the tool never sees the value")?;
            }
        }
        Ok(())
    }

    fn denied(_declared: &DeclaredSecrets) -> Option<&'static str> {
        None
    }

    fn ungranted(declared: &DeclaredSecrets, import: &str) -> Option<String> {
        (import == "warden:tool/secrets" && declared.specs.is_empty())
            .then(|| "no [[secrets]]: every secret the tool opens is unknown".into())
    }
}

impl Capabilities {
    /// The secrets the task may use, in the order its grant gives them.
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
}
