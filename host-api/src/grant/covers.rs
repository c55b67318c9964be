//! [`Capabilities::covers`]: whether one capability set is within another, capability by
//! capability, checked from the rules' parts rather than assumed from how the child was made.

use super::{Capabilities, Widening};
use crate::capability::Capability;

macro_rules! covers {
    ($($key:ident: $cap:ty,)*) => {
        impl Capabilities {
            /// Checks that everything `child` allows, `self` allows too; the first thing it
            /// does not is the error, named by the child's capability.
            ///
            /// Each capability's [`Capability::covers`] decides for its part, in the order of
            /// [`for_each_capability!`](crate::for_each_capability) (e.g. [`Http`]'s: each
            /// child rule within one parent rule, with per-request limits at most those of
            /// every parent rule that could decide its requests).
            ///
            /// [`Http`]: crate::http::Http
            ///
            /// ```
            /// use warden_host_api::grant::Capabilities;
            /// use warden_host_api::http::{Http, HttpRule, manifest::{HttpGrant, RequestLimits}};
            ///
            /// let rule = |url, methods: &[&str]| HttpGrant {
            ///     rule: HttpRule::parse(url, Some(methods.iter().map(|m| m.to_string()).collect())).unwrap(),
            ///     limits: RequestLimits::default(),
            /// };
            /// let caps = |http| Capabilities::default().with::<Http>(http);
            /// let parent = caps(vec![rule("https://api.github.com/repos/", &["GET"])]);
            ///
            /// assert!(parent.covers(&caps(vec![rule("https://api.github.com/repos/rust-lang/", &["GET"])])).is_ok());
            /// assert_eq!(
            ///     parent.covers(&caps(vec![rule("https://*.github.com/", &["GET"])])).unwrap_err().to_string(),
            ///     "http[0]: https://*.github.com/ GET is wider than anything the parent grants \
            ///      (parent: https://api.github.com/repos/ GET)",
            /// );
            /// ```
            pub fn covers(&self, child: &Capabilities) -> Result<(), Widening> {
                $(<$cap>::covers(&self.$key, &child.$key)?;)*
                Ok(())
            }
        }
    };
}

crate::for_each_capability!(covers);
