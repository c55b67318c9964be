//! `warden check`'s account of what a manifest grants.

use super::*;
use std::fmt::{self, Write as _};
use warden_host_api::capability::Capability;
use warden_host_api::env::Env;
use warden_host_api::limits::TaskLimits;
use warden_host_api::sockets::Tcp;

use warden_host_api::limits::manifest::format_duration;
impl Manifest {
    /// A human-readable summary of everything the manifest grants, for `warden check`.
    ///
    /// Lists the tool, component, digest, limits, each directory with its access, the
    /// environment (literal values shown; pass-through names with whether the current
    /// environment sets them, never their values), each secret (name, provider and source,
    /// purpose, injection, TTL and whether it may sign or be revealed; never a value, and nothing is
    /// fetched), the policy and how it decides, and the audit level, and ends with what is
    /// denied.
    ///
    /// # Ambient Authority
    ///
    /// Reads the current process environment to tell whether each `pass` name is set.
    pub fn effective_grants(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = self.write_grants(&mut out);
        out
    }

    fn write_grants(&self, out: &mut String) -> fmt::Result {
        writeln!(out, "manifest: {}", self.path.display())?;
        writeln!(out, "tool: {}", self.tool.name)?;
        writeln!(out, "component: {}", self.tool.component.display())?;
        match &self.tool.digest {
            Some(digest) => writeln!(out, "digest: {digest} (the component must match)")?,
            None => writeln!(out, "digest: none (the component is not pinned)")?,
        }
        TaskLimits::describe(&self.limits, out)?;
        if self.fs.is_empty() {
            writeln!(out, "fs: none")?;
        } else {
            writeln!(out, "fs:")?;
            for grant in &self.fs {
                let asks = if self.approval.fs.contains(&grant.guest) {
                    ", each change asks an approver"
                } else {
                    ""
                };
                let special = if self.fs_special.contains(&grant.guest) {
                    ", FIFOs, sockets and devices may be opened"
                } else {
                    ""
                };
                writeln!(
                    out,
                    "  guest {} = host {} ({}{asks}{special})",
                    grant.guest,
                    grant.host.display(),
                    grant.access
                )?;
            }
        }
        Env::describe(&self.env, out)?;
        if self.http.is_empty() {
            writeln!(out, "http: none")?;
        } else {
            writeln!(out, "http:")?;
            for (i, grant) in self.http.iter().enumerate() {
                let asks = if self.approval.http.contains(&grant.rule) {
                    "; requests other than GET, HEAD and OPTIONS ask an approver"
                } else {
                    ""
                };
                writeln!(out, "  http[{i}] {} ({}){asks}", grant.rule, grant.limits)?;
            }
        }
        Tcp::describe(&self.tcp, out)?;
        self.write_secrets(out)?;
        self.write_policy(out)?;
        self.write_approval(out)?;
        writeln!(
            out,
            "audit: {}, at most {} records per task",
            self.audit.level, self.audit.max_records
        )?;
        writeln!(
            out,
            "always allowed: clocks, random numbers, stdio the runtime passes"
        )?;
        let network = match (self.http.is_empty(), self.tcp.is_empty()) {
            (true, true) => "no network",
            (true, false) => "no http",
            (false, _) => "no other urls",
        };
        let sockets = if self.tcp.is_empty() {
            "no sockets, no DNS"
        } else {
            "no other tcp connections (no UDP, no bind or listen, DNS for the tcp names above only)"
        };
        writeln!(
            out,
            "everything else is denied: no other files, {network}, {sockets}, no host environment"
        )
    }
}

impl Manifest {
    fn write_policy(&self, out: &mut String) -> fmt::Result {
        let Some(section) = &self.policy else {
            return writeln!(out, "policy: none (the grants above decide alone)");
        };
        let policy = &section.policy;
        writeln!(out, "policy: {} (compiled)", section.file.display())?;
        let kind = if policy.has_allow() {
            "deny wins; otherwise only calls its allow rule allows"
        } else {
            "deny rules; calls they do not deny are left to the grants"
        };
        writeln!(out, "  {kind}")?;
        if policy.has_cacheable() {
            writeln!(
                out,
                "  verdicts it marks cacheable are reused per grant, call and resource"
            )
        } else {
            writeln!(
                out,
                "  asked on every capability-relevant call (no cacheable rule)"
            )
        }
    }

    fn write_secrets(&self, out: &mut String) -> fmt::Result {
        if self.secrets.is_empty() {
            return writeln!(out, "secrets: none");
        }
        writeln!(out, "secrets (fetched for each task, never shown):")?;
        for s in &self.secrets {
            writeln!(
                out,
                "  {} from {} (provider {})",
                s.name,
                s.source,
                s.source.provider()
            )?;
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
            if self.approval.secrets.contains(&s.name) {
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
}

impl Manifest {
    fn write_approval(&self, out: &mut String) -> fmt::Result {
        let gates = &self.approval;
        if gates.is_empty() {
            return writeln!(out, "approval: none (no call waits for an approver)");
        }
        let mut gated = Vec::new();
        gated.extend(gates.fs.iter().map(|g| format!("changes under {g}")));
        gated.extend(
            gates
                .http
                .iter()
                .map(|r| format!("requests to {r} (but GET, HEAD, OPTIONS)")),
        );
        gated.extend(
            gates
                .secrets
                .iter()
                .map(|n| format!("each use of secret {n}")),
        );
        writeln!(out, "approval: required for {}", gated.join("; "))?;
        writeln!(
            out,
            "  asked of the approver warden run is given (--approve tty, --approve-cmd CMD); \
             without one, or without an answer in time, the call is refused; \
             waiting counts toward limits.timeout ({})",
            format_duration(self.limits.timeout)
        )
    }
}
