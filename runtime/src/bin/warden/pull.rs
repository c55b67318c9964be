//! `warden pull`: components from OCI registries into the local store, with the signatures
//! published beside them.

use crate::host::{EngineArgs, store, tokio_runtime};
use crate::{Failure, usage};
use std::process::ExitCode;
use warden::manifest::Digest;
use warden::oci::Reference;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// What to pull: oci://HOST[:PORT]/REPOSITORY:TAG, or @sha256:… for a digest
    /// (the oci:// may be left out).
    #[arg(required = true, value_name = "REF")]
    references: Vec<String>,
}

/// `warden pull`: each reference fetched and checked, then one line each: the reference
/// pinned to its digest (what a manifest can name to run exactly this), the component's
/// BLAKE3 digest (`tool.digest`), its size, and the signatures found beside it.
pub(crate) fn pull(args: Args, engine: &EngineArgs) -> Result<ExitCode, Failure> {
    let store = store()?;
    let options = engine.registry.options();
    let rt = tokio_runtime()?;
    for text in &args.references {
        let reference: Reference = text.parse().map_err(usage)?;
        let pulled = rt
            .block_on(warden::oci::pull(&store, &reference, &options))
            .map_err(usage)?;
        let bytes = store.blob(&pulled.layer.digest).map_err(usage)?;
        let signatures = if pulled.signatures.is_empty() {
            "none".to_owned()
        } else {
            pulled.signatures.join(", ")
        };
        println!(
            "{}\n  digest = \"{}\"  # {} bytes{}; signatures: {signatures}",
            pulled.reference,
            Digest::of(&bytes),
            pulled.layer.size,
            if pulled.downloaded {
                ""
            } else {
                ", already in the store"
            },
        );
    }
    Ok(ExitCode::SUCCESS)
}
