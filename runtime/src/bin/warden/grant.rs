//! `warden grant`: the issuer key of grant tokens, issuing and attenuating tokens, and
//! revocation.

use crate::host::default_key_file;
use crate::{Failure, tokens, usage};
use clap::Subcommand;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use warden::manifest::Manifest;
use warden_host_api::grant::live::Revocations;

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Print the public key (ed25519/<hex>) that verifies this host's grant
    /// tokens offline, creating the issuer key (mode 0600) on first use.
    Key {
        /// The issuer key file; default under the XDG state directory.
        #[arg(long, env = "WARDEN_GRANT_KEY")]
        grant_key: Option<PathBuf>,
    },
    /// Revoke grant ID and every grant derived from it, in the revocation
    /// list under the XDG state directory: tasks under it are refused when
    /// they start, and running ones stop when their process reads the list.
    Revoke {
        /// The grant's id.
        id: String,
        /// Revoke it across the fleet too: put it in the warden-revocations bucket of
        /// this NATS server's JetStream, which every runtime given --nats watches; their
        /// running tasks under it stop within moments.
        #[arg(long, env = "WARDEN_NATS", value_name = "URL")]
        nats: Option<String>,
    },
    /// Issue a grant token for the tool of MANIFEST: its ceiling, narrowed
    /// by each --narrow, for --ttl. Prints the token.
    Issue {
        /// The tool's manifest.
        manifest: PathBuf,
        /// How long the grant holds (e.g. 30s, 5m, 1h).
        #[arg(long, default_value = "5m")]
        ttl: String,
        /// A narrowing, repeatable: fs=/workspace/src:read,
        /// http=https://api.github.com/repos/x/ GET, tcp=HOST:PORT,
        /// secrets=NAME, env=NAME, memory=32MiB, timeout=2s, fuel=N, output=64KiB.
        #[arg(long)]
        narrow: Vec<String>,
        /// The agent the grant is issued to.
        #[arg(long)]
        agent: Option<String>,
        /// The issuer key file; default under the XDG state directory.
        #[arg(long, env = "WARDEN_GRANT_KEY")]
        grant_key: Option<PathBuf>,
    },
    /// Derive a narrower child of TOKEN, without the issuer key. Prints the
    /// child token; a narrowing that would widen anything is refused.
    Attenuate {
        /// The parent grant token.
        token: String,
        /// How long the child holds; never past its parent.
        #[arg(long)]
        ttl: Option<String>,
        /// A narrowing, repeatable (as for `issue`).
        #[arg(long)]
        narrow: Vec<String>,
        /// The agent the child is issued to.
        #[arg(long)]
        agent: Option<String>,
    },
}

pub(crate) fn grant(command: Command) -> Result<ExitCode, Failure> {
    match command {
        Command::Key { grant_key } => key(grant_key),
        Command::Revoke { id, nats } => revoke(&id, nats.as_deref()),
        Command::Issue {
            manifest,
            ttl,
            narrow,
            agent,
            grant_key,
        } => issue(&manifest, &ttl, &narrow, agent, grant_key),
        Command::Attenuate {
            token,
            ttl,
            narrow,
            agent,
        } => attenuate(&token, ttl.as_deref(), &narrow, agent),
    }
}

fn key(path: Option<PathBuf>) -> Result<ExitCode, Failure> {
    let path = match path {
        Some(path) => path,
        None => default_key_file(warden::audit::default_grant_key_path())?,
    };
    let key = warden::token::IssuerKey::load_or_create(&path).map_err(usage)?;
    println!("{}", key.public());
    Ok(ExitCode::SUCCESS)
}

fn issue(
    manifest: &Path,
    ttl: &str,
    narrow: &[String],
    agent: Option<String>,
    grant_key: Option<PathBuf>,
) -> Result<ExitCode, Failure> {
    let m = Manifest::load(manifest).map_err(usage)?;
    let (token, about) = tokens::issue(&m, ttl, narrow, agent, grant_key)?;
    eprintln!("{about}");
    println!("{token}");
    Ok(ExitCode::SUCCESS)
}

fn attenuate(
    token: &str,
    ttl: Option<&str>,
    narrow: &[String],
    agent: Option<String>,
) -> Result<ExitCode, Failure> {
    let (child, about) = tokens::attenuate(token, ttl, narrow, agent)?;
    eprintln!("{about}");
    println!("{child}");
    Ok(ExitCode::SUCCESS)
}

fn revoke(id: &str, nats: Option<&str>) -> Result<ExitCode, Failure> {
    // The list holds one id a line, read back trimmed.
    if id.is_empty() || id.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(usage(format!(
            "{id:?} is not a grant id: ids have no whitespace or control characters"
        )));
    }
    if nats.is_some() {
        warden::fleet::revoke::check_id(id).map_err(usage)?;
    }
    let path = warden::audit::default_revocation_path();
    let list = Revocations::new(Some(path.clone()));
    list.refresh().map_err(usage)?;
    if list.is_revoked(id) {
        println!("grant {id} was already revoked in {}", path.display());
    } else {
        list.revoke(id).map_err(usage)?;
        println!(
            "revoked grant {id} and every grant derived from it, in {}: tasks under it are \
             refused at start, and running ones stop when their process next reads the list",
            path.display()
        );
    }
    if let Some(url) = nats {
        let by = format!(
            "warden grant revoke on {}",
            warden::fleet::HostId::of_this_host()
        );
        let revision =
            warden::fleet::revoke::revoke(url, id, &by, std::time::Duration::from_secs(10))
                .map_err(|e| {
                    usage(format!(
                        "revoked on this host, but not across the fleet: {e}"
                    ))
                })?;
        println!(
            "revoked grant {id} across the fleet: {} on {url} (revision {revision}); every \
             runtime watching it stops its tasks under it",
            warden::fleet::revoke::REVOCATIONS_BUCKET
        );
    }
    Ok(ExitCode::SUCCESS)
}
