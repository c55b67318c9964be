//! [`Capabilities`]: everything one task may touch, capability by capability.

use crate::capability::{Capability, Held};

macro_rules! capabilities {
    ($($key:ident: $cap:ty,)*) => {
        /// The capability set of one task: which directories, URLs, TCP endpoints, secrets
        /// and environment variables it may use, and its limits; one field per capability
        /// of [`for_each_capability!`](crate::for_each_capability).
        ///
        /// Deny by default: the [`Default`] set grants nothing (no files, no requests, no
        /// sockets, no secrets, an empty environment) under the default limits. A task's set
        /// is either the manifest's ceiling
        /// ([`Declared::ceiling`](crate::capability::Declared::ceiling)), built with
        /// [`Capabilities::with`], or derived from its parent's by [`Capabilities::narrow`],
        /// which checks the result with [`Capabilities::covers`]. A set decoded from JSON is
        /// validated as a manifest is (see the [module docs](super)).
        ///
        /// The fields are private so that a set can only be made in those ways; read them
        /// with [`Capabilities::get`] or each capability's accessor
        /// ([`fs`](Capabilities::fs), [`tcp`](Capabilities::tcp), ...).
        #[derive(Debug, Clone, Default, PartialEq, Eq)]
        pub struct Capabilities {
            $(pub(crate) $key: <$cap as Capability>::Grant,)*
        }
    };
}

crate::for_each_capability!(capabilities);

impl Capabilities {
    /// This set with `grant` as what it holds of the capability `C`, in place of what it
    /// held.
    ///
    /// ```
    /// use warden_host_api::grant::Capabilities;
    /// use warden_host_api::sockets::{Tcp, manifest::TcpRule};
    ///
    /// let caps = Capabilities::default().with::<Tcp>(vec![TcpRule::parse("db.internal:5432")?]);
    /// assert_eq!(caps.tcp()[0].connect(), "db.internal:5432");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with<C: Held>(mut self, grant: C::Grant) -> Capabilities {
        *C::held_mut(&mut self) = grant;
        self
    }

    /// What this set holds of the capability `C`.
    pub fn get<C: Held>(&self) -> &C::Grant {
        C::held(self)
    }
}
