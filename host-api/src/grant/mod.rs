//! Per-task grants: the capabilities one task holds, and how a grant is narrowed into a
//! child grant for a sub-agent, never widened.
//!
//! The manifest is the ceiling a security team allows a tool. What one task holds is a
//! [`Grant`]: a [`Capabilities`] set (directories, `[[http]]` and `[[tcp]]` rules, secret
//! names, environment, limits) with an id, an expiry, the agent it was issued to, and the
//! grant it was derived from.
//!
//! ```text
//! manifest ──Declared::ceiling──▶ ceiling ──Grant::root──▶ grant ──attenuate(Narrowing)──▶ child ──▶ …
//! ```
//!
//! # Deny by default
//!
//! Every list grants nothing when empty: no directories, no requests, no sockets, no
//! secrets, an empty environment. A [`Narrowing`] replaces the lists it names and lowers
//! the limits it names; what it leaves out is the parent's, never more.
//!
//! # Checked, never assumed
//!
//! [`Capabilities::narrow`] builds a child from what the caller asks for and then checks
//! it with [`Capabilities::covers`], the one definition of "within", which reads the
//! rules' parts (paths by components, hosts by label and prefix length, URL paths by
//! segment, methods, limits) rather than trusting how the child was made. A request that
//! would widen anything is refused with a [`Widening`] that names the capability and both
//! sides:
//!
//! ```text
//! http[0]: https://*.github.com/ is wider than anything the parent grants (parent: https://api.github.com/repos/ GET)
//! ```
//!
//! Property tests generate parents and narrowings (including sibling paths, `..`,
//! `*.suffix` for an exact host, wider networks, extra methods, larger limits and longer
//! lifetimes) and check with random requests, through the same [`Egress`] and
//! [`TcpPolicy`] checks the host makes, that a child never allows what its parent does
//! not.
//!
//! # Directories of a child grant
//!
//! A child's directory is a sub-directory of its parent's, named by guest path:
//! `fs=/workspace/src` under a parent grant of host `/srv/ws` at guest `/workspace` is host
//! `/srv/ws/src`. The host path is derived by name, so whoever opens it must open it
//! *through the parent's directory capability*, never by its host path with ambient
//! authority: [`crate::fs::dirs::open`] opens `src` relative to the manifest grant's open
//! directory, refusing a symlink at every component.
//!
//! # The JSON form
//!
//! [`Capabilities`] and [`Grant`] serialize to a stable JSON form (so that a grant can be
//! carried in a signed token) and are checked when decoded as a manifest is: guest paths
//! normalized and not overlapping, host paths absolute and in normal form, rules parsed
//! by the manifest's own parsers, names and limits within the manifest's bounds, ids 128
//! random bits in hex, times RFC 3339 UTC. A decoded grant is well formed; that it is
//! within the manifest it runs under is [`Grant::check_within`].
//!
//! ```json
//! {"v":1,"id":"5d0c…","parent":null,"agent":"planner","issued":"2026-11-25T19:47:18.000000005Z",
//!  "expires":"2026-11-25T19:52:18.000000005Z","depth":0,
//!  "caps":{"fs":[{"guest":"/workspace","host":"/srv/ws","access":"read"}],
//!          "http":[{"url":"https://api.github.com/repos/","methods":["GET"],"timeout":"30s",
//!                   "request_body":10485760,"response_body":10485760}],
//!          "tcp":["db.internal:5432"],"secrets":[{"name":"github","reveal":false}],
//!          "env":{"vars":{"LANG":"C.UTF-8"},"pass":["TZ"]},
//!          "limits":{"memory":67108864,"timeout":"10s","fuel":null,"output":1048576}}}
//! ```
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use warden_host_api::fs::{Fs, manifest::{Access, FsGrant}};
//! use warden_host_api::grant::{Capabilities, Grant, Narrowing};
//! use warden_host_api::http::{Http, HttpRule, manifest::{HttpGrant, RequestLimits}};
//!
//! let ceiling = Capabilities::default()
//!     .with::<Fs>(vec![FsGrant {
//!         host: "/srv/ws".into(),
//!         guest: "/workspace".into(),
//!         access: Access::ReadWrite,
//!     }])
//!     .with::<Http>(vec![HttpGrant {
//!         rule: HttpRule::parse("https://api.github.com/repos/", Some(vec!["GET".into()]))?,
//!         limits: RequestLimits::default(),
//!     }]);
//! let root = Grant::root(ceiling, Duration::from_secs(300), Some("planner".into()));
//!
//! // A sub-agent gets read-only sources and one organisation's repositories, for a minute.
//! let narrowing = Narrowing::parse([
//!     "fs=/workspace/src:read",
//!     "http=https://api.github.com/repos/rust-lang/",
//!     "memory=32MiB",
//! ])?;
//! let child = root.attenuate(&narrowing, Some(Duration::from_secs(60)), Some("coder".into()))?;
//! assert_eq!(child.parent(), Some(root.id()));
//! assert_eq!(child.caps().fs()[0].host, std::path::Path::new("/srv/ws/src"));
//! assert_eq!(child.caps().http()[0].rule.to_string(), "https://api.github.com/repos/rust-lang/ GET");
//!
//! // It cannot hand on more than it holds.
//! let wider = Narrowing::parse(["http=https://*.github.com/"])?;
//! assert_eq!(
//!     child.attenuate(&wider, None, None).unwrap_err().to_string(),
//!     "http[0]: https://*.github.com/ is wider than anything the parent grants \
//!      (parent: https://api.github.com/repos/rust-lang/ GET)",
//! );
//!
//! // The JSON form round-trips, and is checked when read.
//! let json = serde_json::to_string(&child)?;
//! assert_eq!(serde_json::from_str::<Grant>(&json)?, child);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [`Egress`]: crate::http::Egress
//! [`TcpPolicy`]: crate::sockets::TcpPolicy

mod caps;
mod covers;
mod issue;
pub mod live;
mod narrow;
use crate::time;
mod widening;
mod wire;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

pub use crate::secrets::SecretGrant;
pub use caps::Capabilities;
pub use issue::Grant;
pub(crate) use narrow::names;
pub use narrow::{Narrowing, NarrowingError, NarrowingReason};
pub use widening::Widening;
pub use widening::Wider;
pub(crate) use widening::list as widening_list;
