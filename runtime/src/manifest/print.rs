//! `warden check`'s account of what a manifest grants.

use super::Manifest;
use std::fmt::{self, Write as _};
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
        writeln!(out, "component: {}", self.tool.component)?;
        match &self.tool.digest {
            Some(digest) => writeln!(out, "digest: {digest} (the component must match)")?,
            None => writeln!(out, "digest: none (the component is not pinned)")?,
        }
        self.declared.describe(out)?;
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
        writeln!(
            out,
            "everything else is denied: {}",
            self.declared.denied().join(", ")
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
}

impl Manifest {
    fn write_approval(&self, out: &mut String) -> fmt::Result {
        let gates = &self.approval();
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
            format_duration(self.declared.limits.timeout)
        )
    }
}
