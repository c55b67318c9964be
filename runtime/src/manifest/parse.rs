//! Reading a manifest: the file as written, each section resolved by its capability, every
//! path made absolute.

use std::path::{Path, PathBuf};

use super::error::Context;
use super::{
    AuditLevel, AuditSection, ComponentSource, Digest, Manifest, ManifestError, Protected,
    ToolSection,
};
use crate::trust::TrustedKey;
use cap_std::AmbientAuthority;
use serde::Deserialize;
use toml::Spanned;
use toml::de::DeTable;
use warden_host_api::capability::{Capability, ResolveCx, Sections};
use warden_host_api::policy::manifest::RawPolicySection;
use warden_host_api::secrets::Source;

macro_rules! raw_manifest {
    ($($key:ident: $cap:ty,)*) => {
        /// The whole file as written: `[tool]`, `[policy]`, `[audit]`, and each capability's
        /// section under its key, as defined in `warden_host_api`.
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct RawManifest {
            tool: Option<RawTool>,
            $(
                #[serde(default)]
                $key: <$cap as Capability>::Section,
            )*
            #[serde(default)]
            policy: Option<RawPolicySection>,
            #[serde(default)]
            audit: RawAudit,
        }

        impl RawManifest {
            /// The capabilities' sections, and the rest.
            fn split(self) -> (Sections, Option<RawTool>, Option<RawPolicySection>, RawAudit) {
                (Sections { $($key: self.$key,)* }, self.tool, self.policy, self.audit)
            }
        }
    };
}

warden_host_api::for_each_capability!(raw_manifest);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTool {
    name: Spanned<String>,
    component: Spanned<PathBuf>,
    #[serde(default)]
    digest: Option<Spanned<Digest>>,
    #[serde(default, rename = "signed-by")]
    signed_by: Vec<Spanned<String>>,
    #[serde(default)]
    idempotent: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawAudit {
    #[serde(default)]
    level: AuditLevel,
    #[serde(default, rename = "max-records")]
    max_records: Option<Spanned<u64>>,
}

impl Manifest {
    /// Reads and validates the manifest at `path`.
    ///
    /// Relative paths inside it are resolved against its directory.
    ///
    /// # Ambient Authority
    ///
    /// Reads the manifest and the `[policy]` file, and checks each `[[fs]]` host directory
    /// by path, with the authority of the process.
    pub fn load(path: &Path) -> Result<Manifest, ManifestError> {
        let src = std::fs::read_to_string(path).map_err(|error| ManifestError::Read {
            path: path.to_owned(),
            error,
        })?;
        Manifest::parse(&src, path, cap_std::ambient_authority())
    }

    /// Validates the manifest text `src` as if it had been read from `path`.
    ///
    /// `path` prefixes every error, and relative paths in the manifest are resolved against
    /// its directory (against the current directory if it has none).
    ///
    /// # Ambient Authority
    ///
    /// Reads and compiles the `[policy]` file and checks each `[[fs]]` host directory by
    /// path, with the authority of the process, which `ambient` stands for.
    pub fn parse(
        src: &str,
        path: &Path,
        ambient: AmbientAuthority,
    ) -> Result<Manifest, ManifestError> {
        let cx = Context { src, path };
        let doc = DeTable::parse(src).map_err(|e| cx.syntax(&e))?;
        let raw: RawManifest = toml::from_str(src).map_err(|e| cx.serde(&e, doc.get_ref()))?;
        let (sections, tool, policy, audit) = raw.split();

        let base_dir = path.parent().unwrap_or(Path::new(""));
        let tool = tool.ok_or_else(|| cx.invalid(0, "tool", "missing required section"))?;
        if tool.name.get_ref().trim().is_empty() {
            return Err(cx.invalid(tool.name.span().start, "tool.name", "must not be empty"));
        }
        if tool.component.get_ref().as_os_str().is_empty() {
            return Err(cx.invalid(
                tool.component.span().start,
                "tool.component",
                "must not be empty",
            ));
        }
        let component = match tool.component.get_ref().to_str() {
            Some(text) if text.starts_with("oci://") => {
                ComponentSource::Oci(text.parse().map_err(|e: String| {
                    cx.invalid(tool.component.span().start, "tool.component", e)
                })?)
            }
            _ => {
                let component = base_dir.join(tool.component.get_ref());
                ComponentSource::File(std::path::absolute(&component).unwrap_or(component))
            }
        };
        let mut signed_by = Vec::new();
        for (i, entry) in tool.signed_by.iter().enumerate() {
            let key = TrustedKey::parse(entry.get_ref(), base_dir)
                .map_err(|e| cx.invalid(entry.span().start, format!("tool.signed-by[{i}]"), e))?;
            if !signed_by.contains(&key) {
                signed_by.push(key);
            }
        }
        let digest_line = tool.digest.as_ref().map_or(0, |d| cx.line(d.span().start));

        let resolve = ResolveCx { base_dir, ambient };
        let declared = (sections.resolve(&resolve))
            .map_err(|e| cx.invalid(e.span.start, e.field, e.message))?;
        let fs_lines = (sections.fs.iter())
            .map(|r| cx.line(r.host.span().start))
            .collect();
        // A variable a secret is read from is the secret: passing it to the tool would hand
        // the tool the value that `[[secrets]]` keeps on the host.
        for (i, name) in sections.env.pass.iter().enumerate() {
            let source = (declared.secrets.specs.iter())
                .find(|s| matches!(&s.source, Source::Env { var } if var == name.get_ref()));
            if let Some(s) = source {
                return Err(cx.invalid(
                    name.span().start,
                    format!("env.pass[{i}]"),
                    format_args!(
                        "{:?} is where {} is read from (source = \"env:{}\"); passing it would give the tool the secret's value: remove it from env.pass",
                        name.get_ref(),
                        s.label(),
                        name.get_ref()
                    ),
                ));
            }
        }
        let policy = policy
            .as_ref()
            .map(|p| p.resolve(base_dir, ambient))
            .transpose()
            .map_err(|e| cx.invalid(e.span().start, e.field(), e))?;

        Manifest {
            path: path.to_owned(),
            tool: ToolSection {
                name: tool.name.into_inner(),
                component,
                digest: tool.digest.map(Spanned::into_inner),
                signed_by,
                idempotent: tool.idempotent.unwrap_or(true),
            },
            declared,
            policy,
            audit: AuditSection {
                level: audit.level,
                max_records: match &audit.max_records {
                    Some(n) if *n.get_ref() == 0 => {
                        return Err(cx.invalid(
                            n.span().start,
                            "audit.max-records",
                            "must be at least 1: every task writes records",
                        ));
                    }
                    Some(n) => *n.get_ref(),
                    None => AuditSection::default().max_records,
                },
            },
            digest_line,
            fs_lines,
        }
        .exposing_nothing(&Protected::defaults())
    }

    /// This manifest, if none of its `[[fs]]` grants overlaps what `protected` names.
    fn exposing_nothing(self, protected: &Protected) -> Result<Manifest, ManifestError> {
        self.check_exposure(protected)?;
        Ok(self)
    }
}
