//! `warden new`: a new tool in Rust, Python or JavaScript, and the commands that build and
//! run it.

use crate::{Failure, scaffold, usage};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// The tool's name, also its crate's or package's: lowercase letters
    /// (a-z), digits, '-' and '_', starting with a letter.
    name: String,
    /// The tool's language: rust (cargo), python (componentize-py) or js
    /// (componentize-js).
    #[arg(long, value_name = "LANG", default_value = "rust", value_parser = ["rust", "python", "js"])]
    lang: String,
    /// Where to create it; default ./NAME. It must not exist, or be an
    /// empty directory.
    #[arg(long, value_name = "DIR")]
    path: Option<PathBuf>,
}

/// `warden new`: scaffolds the tool, then prints the commands that build
/// and run it.
pub(crate) fn new(args: Args) -> Result<ExitCode, Failure> {
    let Args { name, lang, path } = args;
    let name = name.as_str();
    let lang: scaffold::Lang = lang.parse().map_err(usage)?;
    let dest = path.unwrap_or_else(|| PathBuf::from(name));
    scaffold::create(name, lang, &dest).map_err(usage)?;
    println!(
        "Created {} tool {name:?} in {}",
        lang.name(),
        dest.display()
    );
    println!();
    println!("Next steps:");
    if dest != Path::new(".") {
        println!("  cd {}", shell_word(&dest.display().to_string()));
    }
    let [setup, build] = lang.build_commands(name);
    // A machine's toolchain is its owner's business; a tool's own packages are its step.
    let per_machine = lang.setup_per_machine();
    if !per_machine {
        println!("  {setup}");
    }
    println!("  {build}");
    println!(
        "  warden run manifest.toml --input {}",
        shell_word(scaffold::SAMPLE_INPUT)
    );
    println!();
    if per_machine {
        println!("The first build needs `{setup}`; README.md says how to add grants.");
    } else {
        println!("README.md says how to add grants.");
    }
    Ok(ExitCode::SUCCESS)
}

/// `text` as one POSIX shell word: as it is when that is safe, else quoted.
fn shell_word(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@+,".contains(c));
    if plain {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}
