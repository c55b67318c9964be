//! `wasi:sockets`: outgoing TCP connections where `[[tcp]]` rules allow them, nothing else.
//!
//! Without a `[[tcp]]` entry sockets are off: creating a TCP or UDP socket and resolving a
//! name are refused with `access-denied` and a deny record. With entries
//! ([`manifest`]), a task may:
//!
//! - create TCP sockets (UDP stays off, whatever the rules say);
//! - look up a name (`ip-name-lookup.resolve-addresses`) that some rule names, exactly or
//!   by `*.suffix`; the addresses the guest is given are recorded, and the task remembers
//!   which name each came from;
//! - connect (`tcp-socket.start-connect`) to an address and port that a rule names by IP
//!   or network, or that this task's lookup of a name returned, when a rule names that
//!   name with that port and the address is not special: loopback, private, link-local,
//!   unique-local, CGNAT, metadata and the like ([`AddrClass`], the same classification
//!   as `[[http]]`, IPv4-mapped and other IPv6 forms included) are reached only through a
//!   rule that names the address. `localhost:5432` alone does not reach `127.0.0.1`;
//!   `127.0.0.1:5432` does.
//!
//! `start-bind` and `start-listen` are always refused: a tool may connect out, never
//! accept connections. Every refusal returns `access-denied` to the guest and writes a deny
//! record whose `rule` says which `[[tcp]]` line would allow it, if any would.
//!
//! The address checked is the very one the socket connects to: the guest passes an IP
//! address, never a name, so a second DNS answer cannot swap it. As a second line of
//! defense, wasmtime-wasi's own `socket_addr_check` ([`configure`]) lets a socket connect
//! only to an address that this module has allowed for the task, and bind only the
//! wildcard address that connecting binds implicitly.
//!
//! ```toml
//! [[tcp]]
//! connect = "db.example.com:5432"
//!
//! [[tcp]]
//! connect = "127.0.0.1:6379"        # a local service, named by address
//! ```
//!
//! ```
//! use warden_host_api::sockets::{Resolved, TcpPolicy, manifest::TcpRule};
//!
//! let policy = TcpPolicy::new(vec![
//!     TcpRule::parse("db.example.com:5432")?,
//!     TcpRule::parse("127.0.0.1:6379")?,
//! ]);
//! let mut resolved = Resolved::default();
//! policy.check_lookup("db.example.com")?;
//! assert!(policy.check_lookup("evil.example.net").is_err());
//!
//! // An address of the name, as this task's lookup returned it.
//! resolved.learn("db.example.com", "93.184.216.34".parse()?);
//! policy.check_connect("93.184.216.34:5432".parse()?, &resolved)?;
//! assert!(policy.check_connect("93.184.216.34:22".parse()?, &resolved).is_err());
//!
//! // A name that resolves to loopback does not reach it; the rule naming 127.0.0.1 does.
//! resolved.learn("db.example.com", "127.0.0.1".parse()?);
//! assert!(policy.check_connect("127.0.0.1:5432".parse()?, &resolved).is_err());
//! policy.check_connect("127.0.0.1:6379".parse()?, &resolved)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [`AddrClass`]: crate::http::AddrClass

mod grant;
mod host;
pub mod manifest;
mod policy;

pub use grant::Tcp;
pub use policy::{Allowed, Resolved, SocketDenied, TcpPolicy};

use crate::interpose::{Guarded, WardenView, guarded};
use manifest::TcpRule;
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use wasmtime::component::{HasData, Linker};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p2::bindings::sockets::{
    instance_network, ip_name_lookup, network, tcp, tcp_create_socket, udp, udp_create_socket,
};
use wasmtime_wasi::sockets::{SocketAddrUse, WasiSocketsCtxView};

/// Per-task socket state: the rules, what the task's lookups returned, and the addresses
/// it was allowed to connect to. The default has no rules: sockets are off.
#[derive(Debug, Default)]
pub struct SocketState {
    policy: TcpPolicy,
    resolved: Resolved,
    /// Live `resolve-address-stream`s: the name looked up and the addresses given so far.
    lookups: HashMap<u32, (String, Vec<IpAddr>)>,
    permits: Permits,
}

impl SocketState {
    /// State for a task with these `[[tcp]]` rules.
    pub fn new(rules: Vec<TcpRule>) -> SocketState {
        SocketState {
            policy: TcpPolicy::new(rules),
            ..SocketState::default()
        }
    }

    /// The task's rules.
    pub fn policy(&self) -> &TcpPolicy {
        &self.policy
    }

    /// What the task's lookups returned so far.
    pub fn resolved(&self) -> &Resolved {
        &self.resolved
    }
}

/// The addresses the interposer allowed a connection to, shared with the
/// `socket_addr_check` of the task's `WasiCtx`.
#[derive(Debug, Clone, Default)]
struct Permits(Arc<Mutex<HashSet<SocketAddr>>>);

impl Permits {
    fn grant(&self, addr: SocketAddr) {
        // A poisoned set is still a set: the panic that poisoned it cannot have left it
        // half-inserted.
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(addr);
    }

    fn allows(&self, addr: SocketAddr) -> bool {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&addr)
    }
}

/// Sets up the sockets of a task's `WasiCtx` for `state`: TCP and name lookup on only when
/// there are rules, UDP always off, and a `socket_addr_check` that lets a socket connect
/// only to an address the interposer allowed for this task and bind only the wildcard
/// address with port 0 (what connect checks for its implicit bind). Listening, accepting
/// and every UDP use are refused there too.
pub(crate) fn configure(builder: &mut WasiCtxBuilder, state: &SocketState) {
    let on = !state.policy.is_empty();
    builder
        .allow_tcp(on)
        .allow_udp(false)
        .allow_ip_name_lookup(on);
    let permits = state.permits.clone();
    builder.socket_addr_check(move |addr, use_| {
        let ok = match use_ {
            SocketAddrUse::TcpConnect => permits.allows(addr),
            SocketAddrUse::TcpBind => addr.ip().is_unspecified() && addr.port() == 0,
            _ => false,
        };
        Box::pin(std::future::ready(ok))
    });
}

struct Sockets;

impl HasData for Sockets {
    type Data<'a> = Guarded<'a, WasiSocketsCtxView<'a>>;
}

fn view<T: WardenView>(t: &mut T) -> Guarded<'_, WasiSocketsCtxView<'_>> {
    guarded(t, |w| WasiSocketsCtxView {
        ctx: w.ctx.sockets(),
        table: w.table,
    })
}

/// Adds every `wasi:sockets` interface to `linker`.
pub(crate) fn add_to_linker<T: WardenView>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    let l = linker;
    tcp::add_to_linker::<T, Sockets>(l, view::<T>)?;
    udp::add_to_linker::<T, Sockets>(l, view::<T>)?;
    tcp_create_socket::add_to_linker::<T, Sockets>(l, view::<T>)?;
    udp_create_socket::add_to_linker::<T, Sockets>(l, view::<T>)?;
    instance_network::add_to_linker::<T, Sockets>(l, view::<T>)?;
    network::add_to_linker::<T, Sockets>(l, &Default::default(), view::<T>)?;
    ip_name_lookup::add_to_linker::<T, Sockets>(l, view::<T>)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    //! The second line alone: wasmtime-wasi's own implementation, without the interposer,
    //! under the `WasiCtx` that [`configure`] built.

    use super::*;
    use std::net::TcpListener;
    use wasmtime::component::{Resource, ResourceTable};
    use wasmtime_wasi::p2::SocketError;
    use wasmtime_wasi::p2::bindings::sockets::network::{ErrorCode, IpAddressFamily};
    use wasmtime_wasi::p2::bindings::sockets::tcp::HostTcpSocket;

    fn code(e: &SocketError) -> Option<ErrorCode> {
        e.downcast_ref().copied()
    }

    /// Creates a socket and connects it to `addr` straight through wasmtime-wasi, waiting
    /// for the outcome of the connect.
    async fn connect(
        view: &mut WasiSocketsCtxView<'_>,
        addr: SocketAddr,
    ) -> Result<(), SocketError> {
        let net = instance_network::Host::instance_network(view).unwrap();
        let sock = tcp_create_socket::Host::create_tcp_socket(view, IpAddressFamily::Ipv4)?;
        let rep = sock.rep();
        view.start_connect(Resource::new_borrow(rep), net, addr.into())?;
        loop {
            match view.finish_connect(Resource::new_borrow(rep)) {
                Err(e) if code(&e) == Some(ErrorCode::WouldBlock) => {
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                }
                r => return r.map(|_| ()),
            }
        }
    }

    #[tokio::test]
    async fn sockets_stay_off_without_rules() {
        let mut b = WasiCtxBuilder::new();
        configure(&mut b, &SocketState::default());
        let mut ctx = b.build();
        let mut table = ResourceTable::new();
        let mut view = WasiSocketsCtxView {
            ctx: ctx.sockets(),
            table: &mut table,
        };
        let err = tcp_create_socket::Host::create_tcp_socket(&mut view, IpAddressFamily::Ipv4)
            .unwrap_err();
        assert_eq!(code(&err), Some(ErrorCode::AccessDenied));
    }

    #[tokio::test]
    async fn only_addresses_the_interposer_allowed_can_be_connected() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let rule = TcpRule::parse(&addr.to_string()).unwrap();
        let state = SocketState::new(vec![rule]);
        let mut b = WasiCtxBuilder::new();
        configure(&mut b, &state);
        let mut ctx = b.build();
        let mut table = ResourceTable::new();
        let mut view = WasiSocketsCtxView {
            ctx: ctx.sockets(),
            table: &mut table,
        };
        // A rule alone is not enough: the interposer must have allowed this very address.
        let err = connect(&mut view, addr).await.unwrap_err();
        assert_eq!(code(&err), Some(ErrorCode::AccessDenied));
        listener.set_nonblocking(true).unwrap();
        assert!(listener.accept().is_err(), "nothing connected");

        state.permits.grant(addr);
        connect(&mut view, addr).await.unwrap();
        assert!(listener.accept().is_ok());
    }
}
