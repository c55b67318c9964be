//! `warden check`: a manifest validated, its tool loaded, and the grants it holds.

use crate::Failure;
use crate::host::{EngineArgs, protected};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// The manifest to check.
    manifest: PathBuf,
}

pub(crate) fn check(args: Args, engine: &EngineArgs) -> Result<ExitCode, Failure> {
    let (_rt, tool) = engine.load(&args.manifest, &protected(None), Ok)?;
    print!("{}", tool.manifest().effective_grants());
    println!("component kind: {}", tool.kind());
    println!("component digest: {}", tool.digest());
    Ok(ExitCode::SUCCESS)
}
