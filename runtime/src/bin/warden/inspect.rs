//! `warden inspect`: a component's kind, exports and imports, and which imports no grant of
//! its manifest would allow.

use crate::host::{EngineArgs, engine};
use crate::{Failure, usage};
use std::path::PathBuf;
use std::process::ExitCode;
use warden::manifest::{Digest, Manifest};
use warden::{EngineConfig, Kind};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// The component (.wasm).
    component: PathBuf,
    /// The manifest to compare against; default: manifest.toml beside
    /// the component, if there is one.
    #[arg(long)]
    manifest: Option<PathBuf>,
}

pub(crate) fn inspect(args: Args, engine_args: &EngineArgs) -> Result<ExitCode, Failure> {
    let Args {
        component,
        manifest,
    } = args;
    let rt = engine(&EngineConfig {
        max_tasks: 1,
        ..engine_args.cached()?
    })?;
    let (c, bytes) = rt.compile(&component).map_err(usage)?;
    let kind = warden::component::detect(rt.engine(), &c);
    println!("component: {}", component.display());
    println!("digest: {}", Digest::of(&bytes));
    match &kind {
        Ok(k) => println!("kind: {k}"),
        Err(msg) => println!("kind: not runnable: {msg}"),
    }
    println!("exports:");
    for e in warden::component::exports(rt.engine(), &c) {
        println!("  {e}");
    }
    if kind == Ok(Kind::Functions) {
        print_functions(&warden::func::functions(rt.engine(), &c));
    }
    let imports = warden::component::imports(rt.engine(), &c);
    println!("imports:");
    for i in &imports {
        println!("  {i}");
    }
    let manifest = manifest.or_else(|| {
        let beside = component.with_file_name("manifest.toml");
        beside.exists().then_some(beside)
    });
    if let Some(path) = manifest {
        let m = Manifest::load(&path).map_err(usage)?;
        println!("against {}:", path.display());
        let mut any = false;
        for i in &imports {
            if let Some(why) = ungranted(i, &m) {
                any = true;
                println!("  {i}: {why}");
            }
        }
        if !any {
            println!("  every import is allowed by some grant");
        }
    }
    Ok(if kind.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

/// Each function with its signature and the JSON Schemas of its arguments and result.
fn print_functions(functions: &[warden::func::FunctionInfo]) {
    println!("functions (warden run MANIFEST --call NAME --input ARGS):");
    for f in functions {
        println!("  {}: {}", f.name, f.signature());
        if f.full_name != f.name {
            println!("    full name: {}", f.full_name);
        }
        if let Err(why) = &f.callable {
            println!("    not callable: {why}");
        }
        // One line each, so that a script can take a schema with its line.
        println!("    input schema: {}", f.input_schema);
        println!("    output schema: {}", f.output_schema);
    }
}

/// Why no grant of `m` would let calls through `import` succeed, if none.
fn ungranted(import: &str, m: &Manifest) -> Option<String> {
    let iface = import.split('@').next().unwrap_or(import);
    if let Some(why) = m.declared.ungranted(iface) {
        return Some(why);
    }
    (!iface.starts_with("wasi:") && !iface.starts_with("warden:tool/"))
        .then(|| "not provided by warden: the component cannot be linked".into())
}
