//! [`Verdict`], what a policy decided, and [`Denied`], the refusal a host call reports.

use std::fmt;

use serde::Serialize;

/// The message of a denial by an allow-list policy whose `allow` was not true.
pub(crate) const NOT_ALLOWED: &str = "no allow rule matched this call";

/// What a policy decided about one call.
///
/// ```
/// use warden_host_api::policy::Verdict;
///
/// let v = Verdict { allowed: false, messages: vec!["writes need risk below 0.3".into()], cacheable: false };
/// let denied = v.into_result("risk.rego").unwrap_err();
/// assert_eq!(denied.to_string(), "policy risk.rego: writes need risk below 0.3");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// Whether the call may proceed: no `deny` message, and `allow` true if the policy
    /// defines `allow`.
    pub allowed: bool,
    /// Why it may not: the `deny` messages in order, or the allow-list's refusal, or a
    /// `policy error:`. Empty when allowed.
    pub messages: Vec<String>,
    /// Whether the policy declared this decision cacheable (`cacheable` is `true`), so
    /// that a caller may reuse it for the same grant, call and resource.
    pub cacheable: bool,
}

impl Verdict {
    /// The denial for an evaluation that failed: fails closed, never cached.
    pub(crate) fn error(message: String) -> Verdict {
        Verdict {
            allowed: false,
            messages: vec![format!("policy error: {message}")],
            cacheable: false,
        }
    }

    /// `Ok` if allowed, else the denial, attributed to the policy `name`.
    pub fn into_result(self, name: &str) -> Result<(), Denied> {
        if self.allowed {
            Ok(())
        } else {
            Err(Denied {
                policy: name.to_owned(),
                messages: self.messages,
            })
        }
    }
}

/// A call the policy refused: what the host call reports to the guest's audit trail.
///
/// `Display` (and [`message`](Denied::message)) is one line for the audit record's
/// `rule`: `policy FILE: MESSAGE; MESSAGE`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Denied {
    /// The policy's name, the path it was loaded from.
    pub policy: String,
    /// The policy's messages, at least one.
    pub messages: Vec<String>,
}

impl Denied {
    /// The one-line text for the audit record's `rule`.
    pub fn message(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "policy {}: ", self.policy)?;
        for (i, message) in self.messages.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            // A message is one line in the audit record, whatever the policy wrote.
            for (j, line) in message.lines().enumerate() {
                if j > 0 {
                    f.write_str(" ")?;
                }
                f.write_str(line.trim())?;
            }
        }
        Ok(())
    }
}
