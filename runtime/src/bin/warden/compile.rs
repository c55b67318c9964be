//! `warden compile`: components compiled into this machine's cache before their first task.

use crate::host::{EngineArgs, engine, protected};
use crate::{Failure, usage};
use std::path::PathBuf;
use std::process::ExitCode;
use warden::EngineConfig;
use warden::manifest::ComponentSource;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Manifests (their tool's component) or component files (.wasm).
    #[arg(required = true, value_name = "MANIFEST|COMPONENT")]
    paths: Vec<PathBuf>,
}

/// `warden compile`: each component compiled (or found in the cache), with the time it took.
pub(crate) fn compile(args: Args, engine_args: &EngineArgs) -> Result<ExitCode, Failure> {
    let rt = engine(&EngineConfig {
        max_tasks: 1,
        ..engine_args.cached()?
    })?;
    if rt.code_cache().is_none() {
        return Err(usage(
            "no cache directory (neither XDG_CACHE_HOME nor HOME is set): nothing to compile into",
        ));
    }
    for path in &args.paths {
        let source = if path.extension().is_some_and(|e| e == "wasm") {
            ComponentSource::File(path.clone())
        } else {
            engine_args.manifest(path, &protected(None))?.tool.component
        };
        let started = std::time::Instant::now();
        let bytes = source.bytes(None).map_err(usage)?;
        rt.compile_from(&PathBuf::from(source.to_string()), &bytes)
            .map_err(usage)?;
        println!("{source}: ready ({:.2} s)", started.elapsed().as_secs_f64());
    }
    Ok(ExitCode::SUCCESS)
}
