//! `warden audit collect`: the fleet's collector and witness, and its key.

use crate::host::{default_key_file, host_key, tokio_runtime};
use crate::{Failure, usage};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use warden::audit::log::{AuditLog, LogOptions};
use warden::audit::witness::WitnessKey;
use warden::fleet::collect::{CollectOptions, Hosts};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// The NATS server whose JetStream holds the audit stream.
    #[arg(long, env = "WARDEN_NATS", value_name = "URL")]
    nats: String,
    /// The hosts to collect, each with the key that signs its checkpoints:
    /// `[hosts.<ID>]` tables with `key = "<VKEY>"` (what `warden audit key` prints on
    /// that host).
    #[arg(long, value_name = "HOSTS.toml")]
    hosts: PathBuf,
    /// Where the copies go; default collector/ under the XDG state directory.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// The witness key that cosigns; default witness.key in the keys directory, created
    /// on first use.
    #[arg(long, env = "WARDEN_WITNESS_KEY", value_name = "FILE")]
    witness_key: Option<PathBuf>,
    /// The durable consumer's name: each collector (each witness) has its own.
    #[arg(long, default_value = "warden-collector", value_parser = consumer_name)]
    durable: String,
    /// The collector's own audit log, where alerts are recorded; default DIR/collector.log.
    #[arg(long, env = "WARDEN_AUDIT")]
    audit: Option<PathBuf>,
    /// The host key that signs the collector's own log; default this host's.
    #[arg(long, env = "WARDEN_KEY")]
    key: Option<PathBuf>,
}

/// A consumer name is one subject token.
fn consumer_name(text: &str) -> Result<String, String> {
    text.parse::<warden::fleet::HostId>()
        .map(|h| h.to_string())
        .map_err(|e| e.replace("host id", "consumer name"))
}

/// The witness key of `--key`, or this machine's, created on first use.
pub(crate) fn witness_key(path: Option<PathBuf>) -> Result<WitnessKey, Failure> {
    let path = match path {
        Some(path) => path,
        None => default_key_file(warden::audit::witness::default_key_path())?,
    };
    WitnessKey::load_or_create(&path, &warden::audit::witness::default_name()).map_err(usage)
}

pub(crate) fn collect(args: Args) -> Result<ExitCode, Failure> {
    let hosts = Hosts::load(&args.hosts).map_err(usage)?;
    let dir = args
        .out
        .unwrap_or_else(|| warden::audit::state_dir().join("collector"));
    std::fs::create_dir_all(&dir).map_err(|e| usage(format!("{}: {e}", dir.display())))?;
    let witness = witness_key(args.witness_key)?;
    // Named so that no host's copy (<HOST>.jsonl) can be it.
    let own = args.audit.unwrap_or_else(|| dir.join("collector.log"));
    let log = AuditLog::open(&own, host_key(args.key)?, LogOptions::default()).map_err(usage)?;
    eprintln!(
        "warden collect: {} hosts into {}; witness {}",
        hosts.len(),
        dir.display(),
        witness.verifier()
    );
    let opts = CollectOptions {
        url: args.nats,
        hosts,
        dir,
        witness,
        durable: args.durable,
        log: Some(Arc::new(log)),
    };
    let rt = tokio_runtime()?;
    rt.block_on(warden::fleet::collect::collect(opts, stopped()))
        .map_err(usage)?;
    Ok(ExitCode::SUCCESS)
}

/// Resolves on SIGINT or SIGTERM.
pub(crate) async fn stopped() {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
