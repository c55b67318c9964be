//! `wasi:sockets`: off. No `[[tcp]]` grant exists in this version, so
//! creating a TCP or UDP socket and resolving a name are refused with
//! `access-denied` and a deny record; the rest of the interface is linked so
//! that components importing it still run, and is recorded like any call.

use crate::audit::Event;
use crate::interpose::{Guarded, Size, WardenView, debug_arg, guarded, no_size, passthrough};
use std::time::Instant;
use wasmtime::component::{HasData, Linker, Resource};
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
pub fn add_to_linker<T: WardenView>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
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

const OFF: &str = "no network grant: sockets and name lookup are off";

impl Guarded<'_, View<'_>> {
    fn refuse(
        &mut self,
        call: &'static str,
        args: serde_json::Value,
        resource: String,
    ) -> SocketError {
        let start = Instant::now();
        self.host.calls += 1;
        let ev = Event::call(call)
            .args(args)
            .resource(resource)
            .deny(OFF)
            .outcome("error:access-denied")
            .took(start.elapsed());
        match self.host.record(ev) {
            Ok(()) => ErrorCode::AccessDenied.into(),
            Err(e) => SocketError::trap(e),
        }
    }
}

impl tcp_create_socket::Host for Guarded<'_, View<'_>> {
    fn create_tcp_socket(
        &mut self,
        address_family: IpAddressFamily,
    ) -> SocketResult<Resource<TcpSocket>> {
        Err(self.refuse(
            "wasi:sockets/tcp-create-socket.create-tcp-socket",
            serde_json::json!({ "family": format!("{address_family:?}") }),
            "tcp".into(),
        ))
    }
}

impl udp_create_socket::Host for Guarded<'_, View<'_>> {
    async fn create_udp_socket(
        &mut self,
        address_family: IpAddressFamily,
    ) -> SocketResult<Resource<UdpSocket>> {
        Err(self.refuse(
            "wasi:sockets/udp-create-socket.create-udp-socket",
            serde_json::json!({ "family": format!("{address_family:?}") }),
            "udp".into(),
        ))
    }
}

impl ip_name_lookup::Host for Guarded<'_, View<'_>> {
    fn resolve_addresses(
        &mut self,
        network: Resource<Network>,
        name: String,
    ) -> SocketResult<Resource<ResolveAddressStream>> {
        let _ = network;
        Err(self.refuse(
            "wasi:sockets/ip-name-lookup.resolve-addresses",
            serde_json::json!({ "name": name }),
            name.clone(),
        ))
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
        ["wasi:sockets/tcp.[method]tcp-socket.start-bind" Each]
        async fn start_bind(&mut self, this: Resource<TcpSocket>, network: Resource<Network>, local_address: IpSocketAddress) -> SocketResult<()>;
        ["wasi:sockets/tcp.[method]tcp-socket.finish-bind" Each]
        fn finish_bind(&mut self, this: Resource<TcpSocket>) -> SocketResult<()>;
        ["wasi:sockets/tcp.[method]tcp-socket.start-connect" Each]
        fn start_connect(&mut self, this: Resource<TcpSocket>, network: Resource<Network>, remote_address: IpSocketAddress) -> SocketResult<()>;
        ["wasi:sockets/tcp.[method]tcp-socket.finish-connect" Each]
        fn finish_connect(&mut self, this: Resource<TcpSocket>) -> SocketResult<(Resource<DynInputStream>, Resource<DynOutputStream>)>;
        ["wasi:sockets/tcp.[method]tcp-socket.start-listen" Each]
        async fn start_listen(&mut self, this: Resource<TcpSocket>) -> SocketResult<()>;
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
        ["wasi:sockets/ip-name-lookup.[method]resolve-address-stream.resolve-next-address" Each]
        fn resolve_next_address(&mut self, resource: Resource<ResolveAddressStream>) -> Result<Option<IpAddress>, SocketError>;
        ["wasi:sockets/ip-name-lookup.[method]resolve-address-stream.subscribe" Interface]
        fn subscribe(&mut self, resource: Resource<ResolveAddressStream>) -> wasmtime::Result<Resource<DynPollable>>;
        ["wasi:sockets/ip-name-lookup.[resource-drop]resolve-address-stream" Drop]
        fn drop(&mut self, resource: Resource<ResolveAddressStream>) -> wasmtime::Result<()>;
    }
}
