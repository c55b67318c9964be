//! `[env]` as a [`Capability`]: resolved from the manifest, narrowed by name, carried in
//! tokens, and described.

use super::manifest::{EnvError, EnvSection, RawEnvSection, check_var_name};
use crate::WardenView;
use crate::capability::{Capability, FieldError, ResolveCx, TaskSetup, WireError, list_args};
use crate::grant::{Capabilities, NarrowingReason, Widening, Wider, names};
use std::collections::BTreeMap;
use std::fmt;
use toml::Spanned;
use wasmtime::component::Linker;

/// The environment a tool sees: literal variables and names passed from the host. An empty
/// grant is an empty environment.
#[derive(Debug, Clone, Copy)]
pub struct Env;

/// The JSON form: `{"vars": {"LANG": "C.UTF-8"}, "pass": ["TZ"]}`.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvWire {
    vars: BTreeMap<String, String>,
    pass: Vec<String>,
}

impl Capability for Env {
    const KEY: &'static str = "env";
    type Section = RawEnvSection;
    type Declared = Self::Grant;
    type Grant = EnvSection;
    /// `env=NAME[,...]`: variables the parent sets, as the parent has them.
    type Narrowing = Vec<String>;
    type Wire = EnvWire;
    type Error = EnvError;

    fn resolve(section: &Self::Section, _cx: &ResolveCx<'_>) -> Result<Self::Grant, EnvError> {
        section.resolve()
    }

    fn ceiling(declared: &Self::Grant) -> Self::Grant {
        declared.clone()
    }

    /// Each literal variable is the parent's with the same value; each passed name is
    /// passed by the parent.
    fn covers(parent: &Self::Grant, child: &Self::Grant) -> Result<(), Widening> {
        for (name, value) in &child.vars {
            match parent.vars.get(name) {
                Some(v) if v == value => {}
                Some(v) => {
                    let reason =
                        format!("{name} = {value:?} differs from the parent's {name} = {v:?}");
                    return Err(Wider::new("env", reason).into());
                }
                None => {
                    return Err(not_granted(format_args!("{name} = {value:?}"), parent));
                }
            }
        }
        for name in &child.pass {
            if !parent.pass.contains(name) {
                return Err(not_granted(format_args!("{name} from the host"), parent));
            }
        }
        Ok(())
    }

    fn push_narrowing(
        narrowing: &mut Self::Narrowing,
        _key: &str,
        value: &str,
    ) -> Result<(), NarrowingReason> {
        for name in names(value) {
            check_var_name(name).map_err(NarrowingReason::invalid)?;
            if narrowing.iter().any(|n| n == name) {
                return Err(NarrowingReason::Duplicate(name.to_owned()));
            }
            narrowing.push(name.to_owned());
        }
        Ok(())
    }

    fn narrowing_args(narrowing: &Self::Narrowing) -> Vec<String> {
        list_args(Self::KEY, narrowing)
    }

    /// Each name takes the parent's value, or is passed from the host if the parent
    /// passes it.
    fn narrow(parent: &Self::Grant, narrowing: &Self::Narrowing) -> Result<Self::Grant, Widening> {
        let mut vars = BTreeMap::new();
        let mut pass = Vec::new();
        for name in narrowing {
            if let Some(value) = parent.vars.get(name) {
                vars.insert(name.clone(), value.clone());
            } else if parent.pass.contains(name) {
                pass.push(name.clone());
            } else {
                return Err(not_granted(name, parent));
            }
        }
        Ok(EnvSection { vars, pass })
    }

    fn to_wire(grant: &Self::Grant) -> Result<Self::Wire, WireError> {
        Ok(EnvWire {
            vars: grant.vars.clone(),
            pass: grant.pass.clone(),
        })
    }

    fn from_wire(wire: Self::Wire) -> Result<Self::Grant, WireError> {
        // The manifest's own `[env]` check, so that both accept the same.
        let raw = RawEnvSection {
            vars: (wire.vars.into_iter())
                .map(|(k, v)| (Spanned::new(0..0, k), Spanned::new(0..0, v)))
                .collect(),
            pass: (wire.pass.into_iter())
                .map(|p| Spanned::new(0..0, p))
                .collect(),
        };
        raw.resolve().map_err(|e| WireError::new(e.field(), e))
    }

    /// `task.start` does not list the environment.
    fn configure(grant: &Self::Grant, setup: &mut TaskSetup<'_>) {
        super::configure(setup.wasi, grant);
    }

    fn add_to_linker<T: WardenView>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
        super::add_to_linker(linker)
    }

    fn summary(_declared: &Self::Grant, _grant: &Self::Grant) -> Option<serde_json::Value> {
        None
    }

    /// Literal values shown; for each passed name, whether this process's environment sets
    /// it, never its value.
    ///
    /// # Ambient Authority
    ///
    /// Reads the current process environment.
    fn describe(grant: &Self::Grant, out: &mut dyn fmt::Write) -> fmt::Result {
        if grant.vars.is_empty() && grant.pass.is_empty() {
            return writeln!(out, "env: none");
        }
        writeln!(out, "env:")?;
        for (name, value) in &grant.vars {
            writeln!(out, "  {name} = {value:?}")?;
        }
        for name in &grant.pass {
            let state = if std::env::var_os(name).is_some() {
                "set here"
            } else {
                "not set here, so the tool would not see it"
            };
            writeln!(out, "  {name} passed from the host environment ({state})")?;
        }
        Ok(())
    }

    fn denied(_grant: &Self::Grant) -> Option<&'static str> {
        Some("no host environment")
    }

    fn ungranted(grant: &Self::Grant, import: &str) -> Option<String> {
        (import == "wasi:cli/environment" && grant.vars.is_empty() && grant.pass.is_empty())
            .then(|| "no [env] grant: the tool sees an empty environment".into())
    }
}

/// `LANG = "C.UTF-8"` for each literal, `TZ from the host` for each passed name.
fn labels(env: &EnvSection) -> Vec<String> {
    env.vars
        .iter()
        .map(|(name, value)| format!("{name} = {value:?}"))
        .chain(env.pass.iter().map(|name| format!("{name} from the host")))
        .collect()
}

/// `child` (a variable as `LANG = "C.UTF-8"` or `TZ from the host`) is not the parent's.
fn not_granted(child: impl fmt::Display, parent: &EnvSection) -> Widening {
    let parent = crate::grant::widening_list(&labels(parent));
    Wider::new(
        "env",
        format_args!("{child} is not granted by the parent (parent: {parent})"),
    )
    .into()
}

impl Capabilities {
    /// The environment: literal variables and names passed from the host.
    pub fn env(&self) -> &EnvSection {
        &self.env
    }
}
