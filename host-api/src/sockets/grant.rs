//! `[[tcp]]` as a [`Capability`]: resolved from the manifest, narrowed, carried in tokens,
//! and described.

use super::SocketState;
use super::TcpPolicy;
use super::manifest::{RawTcpRule, TcpError, TcpRule, resolve_rules};
use crate::WardenView;
use crate::capability::{Capability, ResolveCx, TaskSetup, WireError, list_args};
use crate::grant::{Capabilities, NarrowingReason, Widening, Wider};
use std::fmt;
use wasmtime::component::Linker;

/// Outgoing TCP connections: a grant holds `[[tcp]]` rules, none meaning no sockets and no
/// name lookup.
#[derive(Debug, Clone, Copy)]
pub struct Tcp;

impl Capability for Tcp {
    const KEY: &'static str = "tcp";
    type Section = Vec<RawTcpRule>;
    type Declared = Self::Grant;
    type Grant = Vec<TcpRule>;
    /// `tcp=HOST:PORT` strings; `tcp=` alone asks for none.
    type Narrowing = Vec<TcpRule>;
    /// Each rule's `connect` as written.
    type Wire = Vec<String>;
    type Error = TcpError;

    fn resolve(section: &Self::Section, _cx: &ResolveCx<'_>) -> Result<Self::Grant, TcpError> {
        resolve_rules(section)
    }

    fn ceiling(declared: &Self::Grant) -> Self::Grant {
        declared.clone()
    }

    /// Each child rule has a parent rule with the same port and a host it is within.
    fn covers(parent: &Self::Grant, child: &Self::Grant) -> Result<(), Widening> {
        for (index, c) in child.iter().enumerate() {
            if !parent.iter().any(|p| within(c, p)) {
                let parent = parent.iter().map(TcpRule::connect);
                return Err(
                    Wider::within_none(format_args!("tcp[{index}]"), c.connect(), parent).into(),
                );
            }
        }
        Ok(())
    }

    fn push_narrowing(
        narrowing: &mut Self::Narrowing,
        _key: &str,
        value: &str,
    ) -> Result<(), NarrowingReason> {
        if !value.is_empty() {
            narrowing.push(TcpRule::parse(value).map_err(NarrowingReason::invalid)?);
        }
        Ok(())
    }

    fn narrowing_args(narrowing: &Self::Narrowing) -> Vec<String> {
        list_args(Self::KEY, narrowing.iter().map(TcpRule::connect))
    }

    fn narrow(_parent: &Self::Grant, narrowing: &Self::Narrowing) -> Result<Self::Grant, Widening> {
        Ok(narrowing.clone())
    }

    fn to_wire(grant: &Self::Grant) -> Result<Self::Wire, WireError> {
        Ok(grant.iter().map(|t| t.connect().to_owned()).collect())
    }

    fn from_wire(wire: Self::Wire) -> Result<Self::Grant, WireError> {
        (wire.iter().enumerate())
            .map(|(i, c)| {
                TcpRule::parse(c).map_err(|e| WireError::new(format_args!("tcp[{i}]"), e))
            })
            .collect()
    }

    fn configure(grant: &Self::Grant, setup: &mut TaskSetup<'_>) {
        setup.sockets = SocketState::new(grant.clone());
        super::configure(setup.wasi, &setup.sockets);
    }

    fn add_to_linker<T: WardenView>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
        super::add_to_linker(linker)
    }

    fn summary(_declared: &Self::Grant, grant: &Self::Grant) -> Option<serde_json::Value> {
        Some(grant.iter().map(|r| r.to_string()).collect())
    }

    fn describe(grant: &Self::Grant, out: &mut dyn fmt::Write) -> fmt::Result {
        if grant.is_empty() {
            return writeln!(out, "tcp: none (no sockets, no DNS)");
        }
        writeln!(out, "tcp:")?;
        for (index, rule) in grant.iter().enumerate() {
            let how = if rule.names_hosts() {
                "by name; loopback, private and metadata addresses only if a rule names them"
            } else {
                "by address"
            };
            writeln!(out, "  tcp[{index}] connect to {} ({how})", rule.connect())?;
        }
        Ok(())
    }

    fn denied(grant: &Self::Grant) -> Option<&'static str> {
        Some(if grant.is_empty() {
            "no sockets, no DNS"
        } else {
            "no other tcp connections (no UDP, no bind or listen, DNS for the tcp names above only)"
        })
    }

    fn ungranted(grant: &Self::Grant, import: &str) -> Option<String> {
        match import {
            "wasi:sockets/tcp-create-socket" | "wasi:sockets/ip-name-lookup"
                if grant.is_empty() =>
            {
                Some("no grant allows sockets or name lookup: add a [[tcp]] entry".into())
            }
            "wasi:sockets/udp-create-socket" => {
                Some("no grant allows UDP: every UDP socket is refused".into())
            }
            _ => None,
        }
    }
}

/// Whether every connection `child` allows, `parent` allows.
fn within(child: &TcpRule, parent: &TcpRule) -> bool {
    child.port() == parent.port() && child.host().is_within(parent.host())
}

impl Capabilities {
    /// The `[[tcp]]` rules.
    pub fn tcp(&self) -> &[TcpRule] {
        &self.tcp
    }

    /// The `[[tcp]]` policy for these rules.
    pub fn tcp_policy(&self) -> TcpPolicy {
        TcpPolicy::new(self.tcp.clone())
    }
}
