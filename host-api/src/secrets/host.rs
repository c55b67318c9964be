//! `warden:tool/secrets`: what a guest may do with a secret it cannot see.
//!
//! | call | allowed when | record |
//! | --- | --- | --- |
//! | `secret.open(name)` | the manifest binds `name` | `call`, deny naming what it binds if not |
//! | `secret.name()` | always | `call` |
//! | `secret.hmac-sha256(data)`, `hmac-sha512` | the entry has `hmac = true` | `secret.use`, deny if not |
//! | `secret.reveal()` | the entry has `reveal = true` | `secret.use`, deny if not |
//! | dropping a `secret` | always | `call` |
//!
//! A secret with `approval = "required"` asks the task's approver before each
//! `hmac-*` and `reveal` (an `approval` record); a refusal is a `denied` error
//! and a deny `secret.use` record.
//!
//! Errors the guest sees are short and never say more than it needs: which names are
//! bound, which manifest key would allow a reveal, that a provider failed. What a provider
//! said (a Vault address, a file path) goes to the audit log only, in the `secret.fetch`
//! record of the failed fetch. A record that cannot be written traps the guest, as
//! everywhere in Warden.

use super::{SecretError, SecretHandle, SecretSpec, TaskSecrets};
use crate::approval::{ApprovalKind, Question};
use crate::audit::Event;
use crate::bindings::warden::tool::secrets::{self, Error, HostSecret, Secret};
use crate::interpose::{HostState, Recorded, WardenView};
use crate::policy::CallKind;
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::{Sha256, Sha512};
use std::time::Instant;
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};

const OPEN: &str = "warden:tool/secrets.[static]secret.open";
const NAME: &str = "warden:tool/secrets.[method]secret.name";
const HMAC_SHA256: &str = "warden:tool/secrets.[method]secret.hmac-sha256";
const HMAC_SHA512: &str = "warden:tool/secrets.[method]secret.hmac-sha512";
const REVEAL: &str = "warden:tool/secrets.[method]secret.reveal";
const DROP: &str = "warden:tool/secrets.[resource-drop]secret";

/// Longest secret name a record repeats from the guest: anything longer is not a name the
/// manifest could bind.
const MAX_NAME: usize = 256;

struct SecretsData;

impl HasData for SecretsData {
    type Data<'a> = SecretsView<'a>;
}

/// The store data `warden:tool/secrets` works on: the resource table that holds the
/// guest's `secret` handles, and the task's host state with its secrets.
struct SecretsView<'a> {
    table: &'a mut ResourceTable,
    host: &'a mut HostState,
}

/// Adds `warden:tool/secrets` to `linker`.
pub(crate) fn add_to_linker<T: WardenView>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    secrets::add_to_linker::<T, SecretsData>(linker, |t| {
        let (wasi, host) = t.split();
        SecretsView {
            table: wasi.table,
            host,
        }
    })
}

impl secrets::Host for SecretsView<'_> {}

/// Decides whose fault a failure is: what the guest asked for that cannot be had is a WIT
/// error, in words meant for the guest; a record that cannot be written is the host's, and
/// traps.
fn guest_error(e: SecretError) -> wasmtime::Result<Error> {
    match e {
        SecretError::Unknown { .. } => Ok(Error::Unknown(e.to_string())),
        SecretError::Fetch { name, reason, .. } => Ok(Error::Unavailable(format!(
            "secret {name:?} is unavailable: its provider could not supply it ({}); the audit log has the details",
            reason.code()
        ))),
        e => Err(wasmtime::Error::msg(e.to_string())),
    }
}

impl SecretsView<'_> {
    /// The handle's binding and the task's secrets (a cheap clone, so that a value can be
    /// awaited while the store's data is borrowed elsewhere).
    fn binding(&self, handle: &Resource<Secret>) -> wasmtime::Result<(TaskSecrets, SecretSpec)> {
        let h: &SecretHandle = self.table.get(handle)?;
        let secrets = self.host.secrets.clone();
        let spec = secrets.specs().get(h.index).cloned().ok_or_else(|| {
            wasmtime::Error::msg(format!("secret handle {:?} outlived its binding", h.name))
        })?;
        Ok((secrets, spec))
    }

    /// Asks the task's policies, then the approver of a gated secret, about one use
    /// allowed by `rule`. `Ok(rule)` lets the use proceed, with the rule its record
    /// states (with the approver's yes, where one was asked); `Ok(Err(error))` refuses
    /// it, after its deny record.
    async fn authorize_use(
        &mut self,
        call: &'static str,
        spec: &SecretSpec,
        rule: String,
        refused: impl FnOnce() -> Event,
        start: Instant,
        operation: &str,
    ) -> wasmtime::Result<Result<String, Error>> {
        let checked =
            self.host
                .cx
                .task_policy()
                .check(call, CallKind::Secret, Some(&spec.name), None);
        if let Err(denied) = checked {
            let mut ev = refused();
            ev.call = Some(call);
            self.host.call(Recorded::Event(
                ev.deny(denied.message())
                    .outcome("error:denied")
                    .took(start.elapsed()),
            ))?;
            return Ok(Err(Error::Denied(format!(
                "use of secret {:?} was refused: {}",
                spec.name,
                denied.message()
            ))));
        }
        if !self.host.cx.task_approvals().secret_gated(&spec.name) {
            return Ok(Ok(rule));
        }
        let question = Question {
            call,
            kind: ApprovalKind::SecretUse,
            resource: format!("secret {}", spec.name),
            rule,
            action: format!(
                "use secret {:?} ({operation}) to {}",
                spec.name, spec.purpose
            ),
        };
        let approvals = self.host.cx.task_approvals().clone();
        let asked = approvals.ask(question).await;
        self.host.record(asked.event)?;
        if asked.approved {
            return Ok(Ok(asked.rule));
        }
        let mut ev = refused();
        ev.call = Some(call);
        self.host.call(Recorded::Event(
            ev.deny(asked.rule)
                .outcome("error:denied")
                .took(start.elapsed()),
        ))?;
        let why = if asked.timed_out {
            "its approver gave no answer in time"
        } else {
            "its approver refused"
        };
        Ok(Err(Error::Denied(format!(
            "use of secret {:?} needs approval each time, and {why}",
            spec.name
        ))))
    }

    /// Refuses a use the entry does not allow (`hmac`, `reveal`): a deny `secret.use`
    /// record, and a `denied` error naming the key that would allow it.
    fn refuse(
        &mut self,
        ev: Event,
        spec: &SecretSpec,
        key: &str,
        verb: &str,
        start: Instant,
    ) -> wasmtime::Result<Error> {
        let key = format!("secrets[{}].{key}", spec.index);
        self.host.call(Recorded::Event(
            ev.deny(format!(
                "{key} is not true: the tool may not {verb} {}",
                spec.name
            ))
            .outcome("error:denied")
            .took(start.elapsed()),
        ))?;
        Ok(Error::Denied(format!(
            "secret {:?} does not allow this: set {key} = true in the manifest to allow the tool to {verb} it",
            spec.name
        )))
    }

    async fn hmac(
        &mut self,
        call: &'static str,
        operation: &'static str,
        handle: Resource<Secret>,
        data: Vec<u8>,
        digest: fn(&[u8], &[u8]) -> Vec<u8>,
    ) -> wasmtime::Result<Result<Vec<u8>, Error>> {
        let start = Instant::now();
        let (secrets, spec) = self.binding(&handle)?;
        let event = || {
            let mut ev = secrets.use_event(&spec, operation);
            ev.args["data_len"] = data.len().into();
            ev
        };
        if !spec.hmac {
            let mut ev = event();
            ev.call = Some(call);
            return self.refuse(ev, &spec, "hmac", "sign with", start).map(Err);
        }
        let rule = format!("{}: hmac = true", spec.label());
        let rule = match self
            .authorize_use(call, &spec, rule, event, start, operation)
            .await?
        {
            Ok(rule) => rule,
            Err(refused) => return Ok(Err(refused)),
        };
        let result = secrets.value(&spec.name).await;
        // After the value: a fetch on the way may have changed its version.
        let mut ev = event();
        ev.call = Some(call);
        let (ev, out) = match result {
            Ok(value) => (
                ev.allow(rule).outcome("ok"),
                Ok(digest(value.expose(), &data)),
            ),
            Err(e) => {
                let outcome = format!("error:{}", e.code());
                (ev.allow(rule).outcome(outcome), Err(guest_error(e)?))
            }
        };
        self.host.call(Recorded::Event(ev.took(start.elapsed())))?;
        Ok(out)
    }
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn hmac_sha512(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha512>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

impl HostSecret for SecretsView<'_> {
    async fn open(&mut self, name: String) -> wasmtime::Result<Result<Resource<Secret>, Error>> {
        let start = Instant::now();
        let shown = truncate(&name, MAX_NAME);
        let secrets = self.host.secrets.clone();
        let Some(spec) = secrets.spec(&name) else {
            let bound: Vec<&str> = secrets.specs().iter().map(|s| s.name.as_str()).collect();
            let rule = if bound.is_empty() {
                "no [[secrets]] entry is named that: the manifest binds no secrets".to_owned()
            } else {
                format!(
                    "no [[secrets]] entry is named that: the manifest binds {}",
                    bound.join(", ")
                )
            };
            self.host.call(Recorded::Event(
                Event::call(OPEN)
                    .args(json!({ "name": shown }))
                    .deny(rule)
                    .outcome("error:unknown")
                    .took(start.elapsed()),
            ))?;
            let err = SecretError::Unknown {
                name: shown.to_owned(),
                bound: bound.iter().map(|s| s.to_string()).collect(),
            };
            return Ok(Err(guest_error(err)?));
        };
        let handle = self.table.push(SecretHandle {
            name: spec.name.clone(),
            index: spec.index,
        })?;
        let resource = format!("secret {}", spec.name);
        self.host.name(handle.rep(), resource.clone());
        self.host.call(Recorded::Event(
            Event::call(OPEN)
                .args(json!({ "name": spec.name, "provider": spec.source.provider() }))
                .resource(resource)
                .allow(spec.label())
                .outcome("ok")
                .took(start.elapsed()),
        ))?;
        Ok(Ok(handle))
    }

    async fn name(&mut self, handle: Resource<Secret>) -> wasmtime::Result<String> {
        let start = Instant::now();
        let name = self.table.get(&handle)?.name.clone();
        self.host.call(Recorded::Event(
            Event::call(NAME)
                .resource(self.host.name_of(handle.rep()))
                .outcome("ok")
                .took(start.elapsed()),
        ))?;
        Ok(name)
    }

    async fn hmac_sha256(
        &mut self,
        handle: Resource<Secret>,
        data: Vec<u8>,
    ) -> wasmtime::Result<Result<Vec<u8>, Error>> {
        self.hmac(HMAC_SHA256, "hmac-sha256", handle, data, hmac_sha256)
            .await
    }

    async fn hmac_sha512(
        &mut self,
        handle: Resource<Secret>,
        data: Vec<u8>,
    ) -> wasmtime::Result<Result<Vec<u8>, Error>> {
        self.hmac(HMAC_SHA512, "hmac-sha512", handle, data, hmac_sha512)
            .await
    }

    async fn reveal(
        &mut self,
        handle: Resource<Secret>,
    ) -> wasmtime::Result<Result<String, Error>> {
        let start = Instant::now();
        let (secrets, spec) = self.binding(&handle)?;
        let mut ev = secrets.use_event(&spec, "reveal");
        ev.call = Some(REVEAL);
        if !spec.reveal {
            return self.refuse(ev, &spec, "reveal", "see", start).map(Err);
        }
        let rule = format!("{}: reveal = true", spec.label());
        let rule = match self
            .authorize_use(REVEAL, &spec, rule, || ev.clone(), start, "reveal")
            .await?
        {
            Ok(rule) => rule,
            Err(refused) => return Ok(Err(refused)),
        };
        let (ev, out) = match secrets.value(&spec.name).await {
            Ok(value) => match std::str::from_utf8(value.expose()) {
                Ok(text) => (ev.allow(rule).outcome("ok"), Ok(text.to_owned())),
                Err(_) => (
                    ev.allow(rule).outcome("error:not-utf8"),
                    Err(Error::Unavailable(format!(
                        "secret {:?} is not UTF-8 text, so it cannot be revealed as a string; use it through hmac instead",
                        spec.name
                    ))),
                ),
            },
            Err(e) => {
                let outcome = format!("error:{}", e.code());
                (ev.allow(rule).outcome(outcome), Err(guest_error(e)?))
            }
        };
        self.host.call(Recorded::Event(ev.took(start.elapsed())))?;
        Ok(out)
    }

    async fn drop(&mut self, handle: Resource<Secret>) -> wasmtime::Result<()> {
        let start = Instant::now();
        let rep = handle.rep();
        let resource = self.host.name_of(rep);
        let deleted = self.table.delete(handle);
        self.host.flush_tallies(Some(rep))?;
        let outcome = match &deleted {
            Ok(_) => "ok".to_owned(),
            Err(e) => format!("trap:{e}"),
        };
        self.host.call(Recorded::Event(
            Event::call(DROP)
                .resource(resource)
                .outcome(outcome)
                .took(start.elapsed()),
        ))?;
        deleted?;
        Ok(())
    }
}

fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmacs_match_rfc_4231_case_2() {
        let key = b"Jefe";
        let data = b"what do ya want for nothing?";
        let hex = |b: Vec<u8>| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        assert_eq!(
            hex(hmac_sha256(key, data)),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hex(hmac_sha512(key, data)),
            "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"
        );
    }

    #[test]
    fn guest_errors_hide_provider_details() {
        let e = SecretError::Fetch {
            name: "db".into(),
            reference: "vault:secret/db#pw".into(),
            reason: Box::new(super::super::FetchError::Empty),
        };
        match guest_error(e).unwrap() {
            Error::Unavailable(text) => {
                assert_eq!(
                    text,
                    "secret \"db\" is unavailable: its provider could not supply it (empty); the audit log has the details"
                );
            }
            other => panic!("{other:?}"),
        }
        let e = SecretError::Audit {
            name: "db".into(),
            message: "disk full".into(),
        };
        assert!(guest_error(e).is_err(), "an audit failure traps");
    }
}
