//! `warden diff`: what changed between two versions of a tool.

use crate::host::{EngineArgs, protected, tokio_runtime};
use crate::{Failure, usage};
use std::path::Path;
use std::process::ExitCode;
use warden::diff::{Diff, Surface};
use warden::manifest::{ComponentSource, Manifest};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// The old version: a manifest (.toml), a component file, or an oci:// reference.
    old: String,
    /// The new version, as OLD.
    new: String,
    /// Print the differences as JSON.
    #[arg(long)]
    json: bool,
}

/// `warden diff`: exit 0 when the two show the world the same thing, 1 when they differ
/// (the lines say how, `widens:` when the new one reaches further), 2 on errors.
pub(crate) fn diff(args: Args, engine: &EngineArgs) -> Result<ExitCode, Failure> {
    let old = surface(&args.old, engine)?;
    let new = surface(&args.new, engine)?;
    let diff = Diff::between(old, new);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&diff).map_err(usage)?);
    } else {
        print!("{diff}");
    }
    Ok(if diff.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The surface of one version. Its component is loaded under a manifest that grants
/// nothing, so that asking an unreviewed `warden:tool` version to describe itself reaches
/// nothing; a manifest's grants are compared as written.
fn surface(arg: &str, engine: &EngineArgs) -> Result<Surface, Failure> {
    let manifest = if arg.ends_with(".toml") {
        Some(engine.manifest(Path::new(arg), &protected(None))?)
    } else {
        None
    };
    let source = match &manifest {
        Some(m) => m.tool.component.clone(),
        None if arg.starts_with("oci://") => ComponentSource::Oci(arg.parse().map_err(usage)?),
        None => ComponentSource::File(std::path::absolute(arg).map_err(usage)?),
    };
    let bare = bare_manifest(&source)?;
    engine.ensure_pulled(&bare)?;
    let runtime = engine.plain_runtime()?;
    let tool = runtime.load(bare).map_err(usage)?;
    let surface = tokio_runtime()?.block_on(Surface::of(&tool));
    Ok(match &manifest {
        Some(m) => surface.with_manifest(m),
        None => surface,
    })
}

/// A manifest that runs `source` with nothing granted.
pub(crate) fn bare_manifest(source: &ComponentSource) -> Result<Manifest, Failure> {
    let quoted = serde_json::to_string(&source.to_string()).map_err(usage)?;
    let text = format!(
        "[tool]\nname = \"diff\"\ncomponent = {quoted}\n\n[limits]\nmemory = \"256 MiB\"\ntimeout = \"10s\"\n"
    );
    Manifest::parse(&text, Path::new("(diff)"), cap_std::ambient_authority()).map_err(usage)
}
