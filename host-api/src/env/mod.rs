//! Environment variables: `[env]` literal values and named pass-through.
//!
//! The host environment is never inherited. A tool sees exactly the literal
//! `vars` of its manifest and those `pass` names that are set in the host
//! environment when the task starts; anything else does not exist for it.
//!
//! ```toml
//! [env]
//! vars = { LANG = "C.UTF-8" }
//! pass = ["TZ"]
//! ```

mod grant;
pub mod manifest;

pub use grant::{Env, EnvWire};

use crate::audit::Event;
use crate::interpose::{Guarded, Recorded, Ret, WardenView};
use crate::policy::CallKind;
use manifest::EnvSection;
use serde_json::json;
use std::time::Instant;
use wasmtime::component::Linker;
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::cli::WasiCliCtxView;
use wasmtime_wasi::p2::bindings::cli::environment;

/// The variables a task gets: literal ones, then the passed-through ones
/// that `lookup` finds.
pub fn resolve(
    section: &EnvSection,
    lookup: impl Fn(&str) -> Option<String>,
) -> Vec<(String, String)> {
    let mut vars: Vec<(String, String)> = section
        .vars
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for name in &section.pass {
        if let Some(v) = lookup(name) {
            vars.push((name.clone(), v));
        }
    }
    vars
}

/// Puts the task's variables in `builder`.
///
/// # Ambient Authority
///
/// Reads the `pass` names from the process environment.
pub(crate) fn configure(builder: &mut WasiCtxBuilder, section: &EnvSection) {
    builder.envs(&resolve(section, |k| std::env::var(k).ok()));
}

/// Adds `wasi:cli/environment` to `linker`, recorded.
pub(crate) fn add_to_linker<T: WardenView>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    environment::add_to_linker::<T, crate::cli::Cli>(linker, crate::cli::view::<T>)
}

const ENV_RULE: &str = "env: only the manifest's vars and pass names are visible";

impl Guarded<'_, WasiCliCtxView<'_>> {
    fn env_event(
        &mut self,
        call: &'static str,
        start: Instant,
        args: serde_json::Value,
        outcome: String,
    ) -> wasmtime::Result<()> {
        self.host.call(Recorded::Event(
            Event::call(call)
                .args(args)
                .allow(ENV_RULE)
                .outcome(outcome)
                .took(start.elapsed()),
        ))
    }
}

impl environment::Host for Guarded<'_, WasiCliCtxView<'_>> {
    fn get_environment(&mut self) -> wasmtime::Result<Vec<(String, String)>> {
        const CALL: &str = "wasi:cli/environment.get-environment";
        let start = Instant::now();
        let mut r = environment::Host::get_environment(&mut self.inner);
        // Each variable is a resource of its own to a policy: one it denies is
        // withheld, as if the manifest had not granted it, and the rest pass.
        let mut withheld = Vec::new();
        if let Ok(vars) = &mut r
            && self.host.cx.task_policy().is_active()
        {
            vars.retain(|(name, _)| {
                match self
                    .host
                    .cx
                    .task_policy()
                    .check(CALL, CallKind::Env, Some(name), None)
                {
                    Ok(()) => true,
                    Err(denied) => {
                        withheld.push((name.clone(), denied.message()));
                        false
                    }
                }
            });
        }
        // Names only: values may be credentials.
        let names: Vec<&str> = r.iter().flatten().map(|(k, _)| k.as_str()).collect();
        let outcome = r.outcome().text;
        if withheld.is_empty() {
            let args = json!({ "names": names });
            self.env_event(CALL, start, args, outcome)?;
            return r;
        }
        let hidden: Vec<&str> = withheld.iter().map(|(n, _)| n.as_str()).collect();
        let args = json!({ "names": names, "withheld": hidden });
        let rule: Vec<String> = withheld.iter().map(|(n, m)| format!("{n}: {m}")).collect();
        self.host.call(Recorded::Event(
            Event::call(CALL)
                .args(args)
                .resource(hidden.join(" "))
                .deny(rule.join("; "))
                .outcome(outcome)
                .took(start.elapsed()),
        ))?;
        r
    }

    fn get_arguments(&mut self) -> wasmtime::Result<Vec<String>> {
        let start = Instant::now();
        let r = environment::Host::get_arguments(&mut self.inner);
        let args = json!({ "count": r.as_ref().map(Vec::len).unwrap_or(0) });
        let outcome = r.outcome().text;
        self.env_event("wasi:cli/environment.get-arguments", start, args, outcome)?;
        r
    }

    fn initial_cwd(&mut self) -> wasmtime::Result<Option<String>> {
        let start = Instant::now();
        let r = environment::Host::initial_cwd(&mut self.inner);
        let outcome = r.outcome().text;
        self.env_event(
            "wasi:cli/environment.initial-cwd",
            start,
            serde_json::Value::Null,
            outcome,
        )?;
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_granted_names_pass() {
        let section = EnvSection {
            vars: [("LANG".to_string(), "C".to_string())].into(),
            pass: vec!["TZ".into(), "UNSET".into()],
        };
        let host = |k: &str| match k {
            "TZ" => Some("UTC".to_string()),
            "HOME" => Some("/root".to_string()),
            _ => None,
        };
        let got = resolve(&section, host);
        assert_eq!(
            got,
            vec![("LANG".into(), "C".into()), ("TZ".into(), "UTC".into())]
        );
    }
}
