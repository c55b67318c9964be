//! `wasi:sockets` as the guest sees it: socket creation, name lookup and connect checked
//! against the task's `[[tcp]]` rules, bind, listen and UDP refused, the rest passed
//! through to wasmtime-wasi; every call recorded.

use super::SocketDenied;
use crate::audit::Event;
use crate::interpose::{
    ArgValue, Guarded, Mode, Recorded, Ret, Size, args, debug_arg, no_size, passthrough,
};
use crate::policy::CallKind;
use serde_json::{Value, json};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Instant;
use wasmtime::component::Resource;
use wasmtime_wasi::p2::bindings::sockets::network::{
    self, ErrorCode, IpAddress, IpAddressFamily, IpSocketAddress, Network,
};
use wasmtime_wasi::p2::bindings::sockets::{
    instance_network, ip_name_lookup, tcp, tcp_create_socket, udp, udp_create_socket,
};
use wasmtime_wasi::p2::{
    DynInputStream, DynOutputStream, DynPollable, SocketError, SocketResult, TcpSocket, UdpSocket,
};
use wasmtime_wasi::sockets::WasiSocketsCtxView;

type View<'a> = WasiSocketsCtxView<'a>;
type ResolveAddressStream =
    wasmtime_wasi::p2::bindings::sockets::ip_name_lookup::ResolveAddressStream;

debug_arg!(
    IpSocketAddress,
    IpAddressFamily,
    Option<IpSocketAddress>,
    tcp::ShutdownType,
    Vec<udp::OutgoingDatagram>
);
no_size!(IpSocketAddress, IpAddressFamily, Vec<udp::IncomingDatagram>);
impl<A, B> Size for (Resource<A>, Resource<B>) {}
impl<A, B, C> Size for (Resource<A>, Resource<B>, Resource<C>) {}

impl crate::interpose::ErrorName for ErrorCode {
    fn error_name(&self) -> &'static str {
        self.name()
    }
}

const CREATE_TCP: &str = "wasi:sockets/tcp-create-socket.create-tcp-socket";
const CREATE_UDP: &str = "wasi:sockets/udp-create-socket.create-udp-socket";
const RESOLVE: &str = "wasi:sockets/ip-name-lookup.resolve-addresses";
const NEXT_ADDRESS: &str =
    "wasi:sockets/ip-name-lookup.[method]resolve-address-stream.resolve-next-address";
const DROP_LOOKUP: &str = "wasi:sockets/ip-name-lookup.[resource-drop]resolve-address-stream";
const START_CONNECT: &str = "wasi:sockets/tcp.[method]tcp-socket.start-connect";
const FINISH_CONNECT: &str = "wasi:sockets/tcp.[method]tcp-socket.finish-connect";
const START_BIND: &str = "wasi:sockets/tcp.[method]tcp-socket.start-bind";
const START_LISTEN: &str = "wasi:sockets/tcp.[method]tcp-socket.start-listen";

impl Guarded<'_, View<'_>> {
    /// Records a refusal and returns the error the guest gets: always `access-denied`.
    fn refuse(
        &mut self,
        call: &'static str,
        start: Instant,
        args: Value,
        resource: String,
        denied: &dyn std::fmt::Display,
    ) -> SocketError {
        let ev = Event::call(call)
            .args(args)
            .resource(resource)
            .deny(denied.to_string())
            .outcome("error:access-denied")
            .took(start.elapsed());
        match self.host.call(Recorded::Event(ev)) {
            Ok(()) => ErrorCode::AccessDenied.into(),
            Err(e) => SocketError::trap(e),
        }
    }

    /// Records a call that a rule allowed, with what came of it.
    fn allowed<T: Size>(
        &mut self,
        call: &'static str,
        start: Instant,
        args: Value,
        resource: String,
        rule: String,
        r: &SocketResult<T>,
    ) -> Result<(), SocketError> {
        let ev = Event::call(call)
            .args(args)
            .resource(resource)
            .allow(rule)
            .outcome(r.outcome().text)
            .took(start.elapsed());
        self.host
            .call(Recorded::Event(ev))
            .map_err(SocketError::trap)
    }
}

/// A `would-block` answer is a poll, not a decision: summed per handle like stream reads
/// (one record each at level `full`); any other answer is a record of its own.
fn poll_mode<T>(r: &SocketResult<T>) -> Mode {
    match r {
        Err(e) if matches!(e.downcast_ref(), Some(ErrorCode::WouldBlock)) => Mode::Summed,
        _ => Mode::Each,
    }
}

fn family(f: IpAddressFamily) -> &'static str {
    match f {
        IpAddressFamily::Ipv4 => "ipv4",
        IpAddressFamily::Ipv6 => "ipv6",
    }
}

fn ip(a: IpAddress) -> IpAddr {
    match a {
        IpAddress::Ipv4((a, b, c, d)) => IpAddr::V4(Ipv4Addr::new(a, b, c, d)),
        IpAddress::Ipv6((a, b, c, d, e, f, g, h)) => {
            IpAddr::V6(Ipv6Addr::new(a, b, c, d, e, f, g, h))
        }
    }
}

impl tcp_create_socket::Host for Guarded<'_, View<'_>> {
    fn create_tcp_socket(
        &mut self,
        address_family: IpAddressFamily,
    ) -> SocketResult<Resource<TcpSocket>> {
        let start = Instant::now();
        let args = json!({ "family": family(address_family) });
        let resource = format!("tcp {}", family(address_family));
        let rules = self.host.sockets.policy().rules().len();
        if rules == 0 {
            return Err(self.refuse(CREATE_TCP, start, args, resource, &SocketDenied::NoRules));
        }
        let r = tcp_create_socket::Host::create_tcp_socket(&mut self.inner, address_family);
        if let Ok(socket) = &r {
            self.host.name(socket.rep(), resource.clone());
        }
        let rule = format!(
            "[[tcp]]: {rules} rule(s) grant outgoing connections, each address checked at start-connect"
        );
        self.allowed(CREATE_TCP, start, args, resource, rule, &r)?;
        r
    }
}

impl udp_create_socket::Host for Guarded<'_, View<'_>> {
    async fn create_udp_socket(
        &mut self,
        address_family: IpAddressFamily,
    ) -> SocketResult<Resource<UdpSocket>> {
        let start = Instant::now();
        let args = json!({ "family": family(address_family) });
        let resource = format!("udp {}", family(address_family));
        Err(self.refuse(CREATE_UDP, start, args, resource, &SocketDenied::Udp))
    }
}

impl ip_name_lookup::Host for Guarded<'_, View<'_>> {
    fn resolve_addresses(
        &mut self,
        network: Resource<Network>,
        name: String,
    ) -> SocketResult<Resource<ResolveAddressStream>> {
        let start = Instant::now();
        let args = json!({ "name": name });
        let allowed = match self.host.sockets.policy().check_lookup(&name) {
            Ok(allowed) => allowed,
            Err(d) => return Err(self.refuse(RESOLVE, start, args, name, &d)),
        };
        if let Err(d) = self
            .host
            .cx
            .task_policy()
            .check(RESOLVE, CallKind::Dns, Some(&name), None)
        {
            return Err(self.refuse(RESOLVE, start, args, name, &d));
        }
        let r = ip_name_lookup::Host::resolve_addresses(&mut self.inner, network, name.clone());
        if let Ok(stream) = &r {
            // The records of resolve-next-address name the stream by what was looked up.
            self.host.name(stream.rep(), name.clone());
            self.host
                .sockets
                .lookups
                .insert(stream.rep(), (name.clone(), Vec::new()));
        }
        self.allowed(RESOLVE, start, args, name, allowed.to_string(), &r)?;
        r
    }
}

impl tcp::Host for Guarded<'_, View<'_>> {}
impl udp::Host for Guarded<'_, View<'_>> {}

passthrough! {
    impl network::Host => View<'_> {
        own fn convert_error_code(&mut self, error: SocketError) -> wasmtime::Result<ErrorCode> {
            network::Host::convert_error_code(&mut self.inner, error)
        }
        ["wasi:sockets/network.network-error-code" Each]
        fn network_error_code(&mut self, err: Resource<wasmtime_wasi::p2::bindings::io::error::Error>) -> wasmtime::Result<Option<ErrorCode>>;
    }
}

passthrough! {
    impl network::HostNetwork => View<'_> {
        ["wasi:sockets/network.[resource-drop]network" Drop]
        fn drop(&mut self, this: Resource<network::Network>) -> Result<(), wasmtime::Error>;
    }
}

passthrough! {
    impl instance_network::Host => View<'_> {
        ["wasi:sockets/instance-network.instance-network" Each]
        fn instance_network(&mut self) -> Result<Resource<Network>, wasmtime::Error>;
    }
}

passthrough! {
    impl tcp::HostTcpSocket => View<'_> {
        // Connect only: a tool never accepts connections, and an explicit bind would
        // only serve a listen or choose the source of a connect.
        own async fn start_bind(&mut self, this: Resource<TcpSocket>, network: Resource<Network>, local_address: IpSocketAddress) -> SocketResult<()> {
            let start = Instant::now();
            let _ = network;
            let addr = SocketAddr::from(local_address);
            let args = json!({ "socket": self.host.name_of(this.rep()), "local_address": addr.to_string() });
            Err(self.refuse(START_BIND, start, args, addr.to_string(), &SocketDenied::Inbound("bind")))
        }
        ["wasi:sockets/tcp.[method]tcp-socket.finish-bind" Each]
        fn finish_bind(&mut self, this: Resource<TcpSocket>) -> SocketResult<()>;
        own fn start_connect(&mut self, this: Resource<TcpSocket>, network: Resource<Network>, remote_address: IpSocketAddress) -> SocketResult<()> {
            let start = Instant::now();
            let addr = SocketAddr::from(remote_address);
            let rep = this.rep();
            let args = json!({ "socket": self.host.name_of(rep), "address": addr.to_string() });
            let sockets = &self.host.sockets;
            let allowed = match sockets.policy.check_connect(addr, &sockets.resolved) {
                Ok(allowed) => allowed,
                Err(d) => return Err(self.refuse(START_CONNECT, start, args, addr.to_string(), &d)),
            };
            let target = addr.to_string();
            if let Err(d) = self.host.cx.task_policy().check(START_CONNECT, CallKind::Tcp, Some(&target), None) {
                return Err(self.refuse(START_CONNECT, start, args, target, &d));
            }
            let sockets = &self.host.sockets;
            sockets.permits.grant(addr);
            // wasmtime-wasi only records the address here; the connection is made when
            // the guest polls, after this record is written.
            let r = tcp::HostTcpSocket::start_connect(&mut self.inner, this, network, remote_address);
            if r.is_ok() {
                self.host.name(rep, format!("tcp {addr}"));
            }
            self.allowed(START_CONNECT, start, args, addr.to_string(), allowed.to_string(), &r)?;
            r
        }
        // By hand only to name the streams, so that their summed reads and writes say
        // where they went.
        own fn finish_connect(&mut self, this: Resource<TcpSocket>) -> SocketResult<(Resource<DynInputStream>, Resource<DynOutputStream>)> {
            let start = Instant::now();
            let rep = this.rep();
            let args = args!(this);
            let r = tcp::HostTcpSocket::finish_connect(&mut self.inner, this);
            if let Ok((input, output)) = &r {
                let socket = self.host.name_of(rep);
                self.host.name(input.rep(), format!("{socket} in"));
                self.host.name(output.rep(), format!("{socket} out"));
            }
            if let Err(e) = self.finish(FINISH_CONNECT, poll_mode(&r), start, args, r.outcome()) {
                return Err(SocketError::trap(e));
            }
            r
        }
        own async fn start_listen(&mut self, this: Resource<TcpSocket>) -> SocketResult<()> {
            let start = Instant::now();
            let socket = self.host.name_of(this.rep());
            let args = json!({ "socket": socket });
            Err(self.refuse(START_LISTEN, start, args, socket, &SocketDenied::Inbound("listen")))
        }
        ["wasi:sockets/tcp.[method]tcp-socket.finish-listen" Each]
        fn finish_listen(&mut self, this: Resource<TcpSocket>) -> SocketResult<()>;
        ["wasi:sockets/tcp.[method]tcp-socket.accept" Each]
        fn accept(&mut self, this: Resource<TcpSocket>) -> SocketResult<(Resource<TcpSocket>, Resource<DynInputStream>, Resource<DynOutputStream>)>;
        ["wasi:sockets/tcp.[method]tcp-socket.local-address" Each]
        fn local_address(&mut self, this: Resource<TcpSocket>) -> SocketResult<IpSocketAddress>;
        ["wasi:sockets/tcp.[method]tcp-socket.remote-address" Each]
        fn remote_address(&mut self, this: Resource<TcpSocket>) -> SocketResult<IpSocketAddress>;
        ["wasi:sockets/tcp.[method]tcp-socket.is-listening" Each]
        fn is_listening(&mut self, this: Resource<TcpSocket>) -> Result<bool, wasmtime::Error>;
        ["wasi:sockets/tcp.[method]tcp-socket.address-family" Each]
        fn address_family(&mut self, this: Resource<TcpSocket>) -> Result<IpAddressFamily, wasmtime::Error>;
        ["wasi:sockets/tcp.[method]tcp-socket.set-listen-backlog-size" Each]
        fn set_listen_backlog_size(&mut self, this: Resource<TcpSocket>, value: u64) -> SocketResult<()>;
        ["wasi:sockets/tcp.[method]tcp-socket.keep-alive-enabled" Each]
        fn keep_alive_enabled(&mut self, this: Resource<TcpSocket>) -> SocketResult<bool>;
        ["wasi:sockets/tcp.[method]tcp-socket.set-keep-alive-enabled" Each]
        fn set_keep_alive_enabled(&mut self, this: Resource<TcpSocket>, value: bool) -> SocketResult<()>;
        ["wasi:sockets/tcp.[method]tcp-socket.keep-alive-idle-time" Each]
        fn keep_alive_idle_time(&mut self, this: Resource<TcpSocket>) -> SocketResult<u64>;
        ["wasi:sockets/tcp.[method]tcp-socket.set-keep-alive-idle-time" Each]
        fn set_keep_alive_idle_time(&mut self, this: Resource<TcpSocket>, value: u64) -> SocketResult<()>;
        ["wasi:sockets/tcp.[method]tcp-socket.keep-alive-interval" Each]
        fn keep_alive_interval(&mut self, this: Resource<TcpSocket>) -> SocketResult<u64>;
        ["wasi:sockets/tcp.[method]tcp-socket.set-keep-alive-interval" Each]
        fn set_keep_alive_interval(&mut self, this: Resource<TcpSocket>, value: u64) -> SocketResult<()>;
        ["wasi:sockets/tcp.[method]tcp-socket.keep-alive-count" Each]
        fn keep_alive_count(&mut self, this: Resource<TcpSocket>) -> SocketResult<u32>;
        ["wasi:sockets/tcp.[method]tcp-socket.set-keep-alive-count" Each]
        fn set_keep_alive_count(&mut self, this: Resource<TcpSocket>, value: u32) -> SocketResult<()>;
        ["wasi:sockets/tcp.[method]tcp-socket.hop-limit" Each]
        fn hop_limit(&mut self, this: Resource<TcpSocket>) -> SocketResult<u8>;
        ["wasi:sockets/tcp.[method]tcp-socket.set-hop-limit" Each]
        fn set_hop_limit(&mut self, this: Resource<TcpSocket>, value: u8) -> SocketResult<()>;
        ["wasi:sockets/tcp.[method]tcp-socket.receive-buffer-size" Each]
        fn receive_buffer_size(&mut self, this: Resource<TcpSocket>) -> SocketResult<u64>;
        ["wasi:sockets/tcp.[method]tcp-socket.set-receive-buffer-size" Each]
        fn set_receive_buffer_size(&mut self, this: Resource<TcpSocket>, value: u64) -> SocketResult<()>;
        ["wasi:sockets/tcp.[method]tcp-socket.send-buffer-size" Each]
        fn send_buffer_size(&mut self, this: Resource<TcpSocket>) -> SocketResult<u64>;
        ["wasi:sockets/tcp.[method]tcp-socket.set-send-buffer-size" Each]
        fn set_send_buffer_size(&mut self, this: Resource<TcpSocket>, value: u64) -> SocketResult<()>;
        ["wasi:sockets/tcp.[method]tcp-socket.subscribe" Interface]
        fn subscribe(&mut self, this: Resource<TcpSocket>) -> wasmtime::Result<Resource<DynPollable>>;
        ["wasi:sockets/tcp.[method]tcp-socket.shutdown" Each]
        fn shutdown(&mut self, this: Resource<TcpSocket>, shutdown_type: tcp::ShutdownType) -> SocketResult<()>;
        ["wasi:sockets/tcp.[resource-drop]tcp-socket" Drop]
        fn drop(&mut self, this: Resource<TcpSocket>) -> Result<(), wasmtime::Error>;
    }
}

passthrough! {
    impl udp::HostUdpSocket => View<'_> {
        ["wasi:sockets/udp.[method]udp-socket.start-bind" Each]
        async fn start_bind(&mut self, this: Resource<UdpSocket>, network: Resource<Network>, local_address: IpSocketAddress) -> SocketResult<()>;
        ["wasi:sockets/udp.[method]udp-socket.finish-bind" Each]
        fn finish_bind(&mut self, this: Resource<UdpSocket>) -> SocketResult<()>;
        ["wasi:sockets/udp.[method]udp-socket.stream" Each]
        async fn stream(&mut self, this: Resource<UdpSocket>, remote_address: Option<IpSocketAddress>) -> SocketResult<(Resource<udp::IncomingDatagramStream>, Resource<udp::OutgoingDatagramStream>)>;
        ["wasi:sockets/udp.[method]udp-socket.local-address" Each]
        fn local_address(&mut self, this: Resource<UdpSocket>) -> SocketResult<IpSocketAddress>;
        ["wasi:sockets/udp.[method]udp-socket.remote-address" Each]
        fn remote_address(&mut self, this: Resource<UdpSocket>) -> SocketResult<IpSocketAddress>;
        ["wasi:sockets/udp.[method]udp-socket.address-family" Each]
        fn address_family(&mut self, this: Resource<UdpSocket>) -> Result<IpAddressFamily, wasmtime::Error>;
        ["wasi:sockets/udp.[method]udp-socket.unicast-hop-limit" Each]
        fn unicast_hop_limit(&mut self, this: Resource<UdpSocket>) -> SocketResult<u8>;
        ["wasi:sockets/udp.[method]udp-socket.set-unicast-hop-limit" Each]
        fn set_unicast_hop_limit(&mut self, this: Resource<UdpSocket>, value: u8) -> SocketResult<()>;
        ["wasi:sockets/udp.[method]udp-socket.receive-buffer-size" Each]
        fn receive_buffer_size(&mut self, this: Resource<UdpSocket>) -> SocketResult<u64>;
        ["wasi:sockets/udp.[method]udp-socket.set-receive-buffer-size" Each]
        fn set_receive_buffer_size(&mut self, this: Resource<UdpSocket>, value: u64) -> SocketResult<()>;
        ["wasi:sockets/udp.[method]udp-socket.send-buffer-size" Each]
        fn send_buffer_size(&mut self, this: Resource<UdpSocket>) -> SocketResult<u64>;
        ["wasi:sockets/udp.[method]udp-socket.set-send-buffer-size" Each]
        fn set_send_buffer_size(&mut self, this: Resource<UdpSocket>, value: u64) -> SocketResult<()>;
        ["wasi:sockets/udp.[method]udp-socket.subscribe" Interface]
        fn subscribe(&mut self, this: Resource<UdpSocket>) -> wasmtime::Result<Resource<DynPollable>>;
        ["wasi:sockets/udp.[resource-drop]udp-socket" Drop]
        fn drop(&mut self, this: Resource<UdpSocket>) -> Result<(), wasmtime::Error>;
    }
}

passthrough! {
    impl udp::HostIncomingDatagramStream => View<'_> {
        ["wasi:sockets/udp.[method]incoming-datagram-stream.receive" Each]
        fn receive(&mut self, this: Resource<udp::IncomingDatagramStream>, max_results: u64) -> SocketResult<Vec<udp::IncomingDatagram>>;
        ["wasi:sockets/udp.[method]incoming-datagram-stream.subscribe" Interface]
        fn subscribe(&mut self, this: Resource<udp::IncomingDatagramStream>) -> wasmtime::Result<Resource<DynPollable>>;
        ["wasi:sockets/udp.[resource-drop]incoming-datagram-stream" Drop]
        fn drop(&mut self, this: Resource<udp::IncomingDatagramStream>) -> Result<(), wasmtime::Error>;
    }
}

passthrough! {
    impl udp::HostOutgoingDatagramStream => View<'_> {
        ["wasi:sockets/udp.[method]outgoing-datagram-stream.check-send" Each]
        fn check_send(&mut self, this: Resource<udp::OutgoingDatagramStream>) -> SocketResult<u64>;
        ["wasi:sockets/udp.[method]outgoing-datagram-stream.send" Each]
        fn send(&mut self, this: Resource<udp::OutgoingDatagramStream>, datagrams: Vec<udp::OutgoingDatagram>) -> SocketResult<u64>;
        ["wasi:sockets/udp.[method]outgoing-datagram-stream.subscribe" Interface]
        fn subscribe(&mut self, this: Resource<udp::OutgoingDatagramStream>) -> wasmtime::Result<Resource<DynPollable>>;
        ["wasi:sockets/udp.[resource-drop]outgoing-datagram-stream" Drop]
        async fn drop(&mut self, this: Resource<udp::OutgoingDatagramStream>) -> Result<(), wasmtime::Error>;
    }
}

passthrough! {
    impl ip_name_lookup::HostResolveAddressStream => View<'_> {
        // Each address the guest is given is learned (a later connect to it is a
        // connect by this name) and recorded; the last call, which returns none, records
        // them all. Would-block polls are summed unless the level is `full`.
        own fn resolve_next_address(&mut self, resource: Resource<ResolveAddressStream>) -> SocketResult<Option<IpAddress>> {
            let start = Instant::now();
            let rep = resource.rep();
            let r = ip_name_lookup::HostResolveAddressStream::resolve_next_address(&mut self.inner, resource);
            let mut args = vec![("resource", ArgValue::Handle(rep))];
            let sockets = &mut self.host.sockets;
            match (&r, sockets.lookups.get_mut(&rep)) {
                (Ok(Some(addr)), Some((name, given))) => {
                    let addr = ip(*addr);
                    sockets.resolved.learn(name, addr);
                    given.push(addr);
                    args.push(("address", ArgValue::Json(json!(addr.to_string()))));
                }
                (Ok(None), Some((_, given))) => {
                    let all: Vec<String> = given.iter().map(IpAddr::to_string).collect();
                    args.push(("address", ArgValue::Json(Value::Null)));
                    args.push(("addresses", ArgValue::Json(json!(all))));
                }
                _ => {}
            }
            if let Err(e) = self.finish(NEXT_ADDRESS, poll_mode(&r), start, args, r.outcome()) {
                return Err(SocketError::trap(e));
            }
            r
        }
        ["wasi:sockets/ip-name-lookup.[method]resolve-address-stream.subscribe" Interface]
        fn subscribe(&mut self, resource: Resource<ResolveAddressStream>) -> wasmtime::Result<Resource<DynPollable>>;
        own fn drop(&mut self, resource: Resource<ResolveAddressStream>) -> wasmtime::Result<()> {
            let start = Instant::now();
            self.host.sockets.lookups.remove(&resource.rep());
            let args = args!(resource);
            let r = ip_name_lookup::HostResolveAddressStream::drop(&mut self.inner, resource);
            self.finish(DROP_LOOKUP, Mode::Drop, start, args, r.outcome())?;
            r
        }
    }
}
