//! `warden audit`: this host's verifier key, adopting uncovered records, verifying a log,
//! proving a record's inclusion, checking a proof offline, and reading a log.

use crate::host::{env_path, host_key};
use crate::{Failure, usage};
use clap::Subcommand;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use warden::audit::checkpoint::VerifierKey;
use warden::audit::log::{AuditLog, LogOptions};
use warden::audit::proof::{InclusionProof, ProveError};

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Print the verifier key of this host's checkpoints, creating the host
    /// key (mode 0600) on first use.
    Key {
        /// The host key file; default under the XDG state directory.
        #[arg(long, env = "WARDEN_KEY")]
        key: Option<PathBuf>,
    },
    /// Take on the records of LOG that no checkpoint covers, which a writer
    /// refuses to append after: a `recovery` record names them and their
    /// digest, and a checkpoint signs it. Every later `audit verify` reports
    /// them as adopted without checkpoint cover. Check them first.
    Adopt {
        /// The audit log (JSON Lines).
        log: PathBuf,
        /// The host key that signs the log's checkpoints; default: this
        /// host's key.
        #[arg(long, env = "WARDEN_KEY")]
        key: Option<PathBuf>,
    },
    /// Verify LOG and its checkpoints (LOG.checkpoints): exit 0 intact, 1 not
    /// intact (the first bad seq and what is wrong), 2 usage or unreadable.
    Verify {
        /// The audit log (JSON Lines).
        log: PathBuf,
        /// The verifier key (name+id+key), or a file holding it; default:
        /// this host's key ($WARDEN_KEY or the XDG state directory).
        #[arg(long, value_name = "VKEY")]
        key: Option<String>,
        /// A signed checkpoint kept apart from the log (e.g. the
        /// `checkpoint` of an earlier `audit prove`): the log must still
        /// hold what it signed. Catches trailing records removed together
        /// with the checkpoints that covered them.
        #[arg(long, value_name = "NOTE")]
        checkpoint: Option<PathBuf>,
        /// Also require a checkpoint cosigned by this witness (its verifier key, or a
        /// file holding it; `warden audit witness-key` on the collector prints it),
        /// kept in LOG.cosigned or LOG.checkpoints, that the log still matches. Catches
        /// what the host's own key cannot: a log cut short or rewritten by whoever holds
        /// that key. Repeat for several witnesses.
        #[arg(long, value_name = "VKEY")]
        witness: Vec<String>,
    },
    /// Print an inclusion proof (JSON) of record SEQ against the last
    /// checkpoint of LOG, after verifying LOG.
    Prove {
        /// The audit log (JSON Lines).
        log: PathBuf,
        /// The record to prove.
        seq: u64,
        /// The verifier key (name+id+key), or a file holding it; default:
        /// this host's key.
        #[arg(long, value_name = "VKEY")]
        key: Option<String>,
    },
    /// Check a proof printed by `warden audit prove`, offline: exit 0 valid,
    /// 1 invalid, 2 usage or unreadable.
    CheckProof {
        /// The proof file (JSON).
        proof: PathBuf,
        /// The verifier key (name+id+key), or a file holding it.
        #[arg(long, value_name = "VKEY")]
        key: String,
        /// A file holding the record's line: also check that the proof is
        /// of these bytes.
        #[arg(long, value_name = "LINE-FILE")]
        record: Option<PathBuf>,
    },
    /// Print the verifier key of this machine's witness key, which `audit collect`
    /// cosigns with, creating the key (mode 0600) on first use.
    WitnessKey {
        /// The witness key file; default witness.key under the XDG state directory.
        #[arg(long, env = "WARDEN_WITNESS_KEY")]
        key: Option<PathBuf>,
    },
    /// Collect every host's audit log from NATS JetStream into a verified copy per
    /// host (DIR/<HOST>.jsonl, checked like `audit verify` checks a log), cosign each
    /// verified checkpoint as a witness and send it back to the host, and raise an
    /// alert for whatever one append-only log cannot have produced. Runs until
    /// stopped (SIGINT or SIGTERM); a restarted collector carries on where it stopped.
    Collect(crate::collect::Args),
    /// Print the records of LOG for people, one line each: seq, time, task,
    /// event, call, resource, decision, rule, outcome. Does not verify.
    Show {
        /// The audit log (JSON Lines).
        log: PathBuf,
        /// Only records of this task (its id, or the start of it).
        #[arg(long, value_name = "ID")]
        task: Option<String>,
        /// Only denied calls.
        #[arg(long)]
        deny: bool,
        /// Print the matching records' lines as they are.
        #[arg(long)]
        json: bool,
    },
}

pub(crate) fn audit(command: Command) -> Result<ExitCode, Failure> {
    match command {
        Command::Key { key } => {
            println!("{}", host_key(key)?.verifier());
            Ok(ExitCode::SUCCESS)
        }
        Command::Adopt { log, key } => adopt(&log, key),
        Command::Verify {
            log,
            key,
            checkpoint,
            witness,
        } => verify(&log, key, checkpoint, &witness),
        Command::WitnessKey { key } => {
            println!("{}", crate::collect::witness_key(key)?.verifier());
            Ok(ExitCode::SUCCESS)
        }
        Command::Collect(args) => crate::collect::collect(args),
        Command::Prove { log, seq, key } => prove(&log, seq, key),
        Command::CheckProof { proof, key, record } => check_proof(&proof, &key, record),
        Command::Show {
            log,
            task,
            deny,
            json,
        } => show(&log, task, deny, json),
    }
}

/// `warden audit adopt`: the operator takes on records no checkpoint covers.
fn adopt(log: &Path, key: Option<PathBuf>) -> Result<ExitCode, Failure> {
    if !log.is_file() {
        return Err(usage(format!("{}: no such log", log.display())));
    }
    let key = host_key(key)?;
    let (_log, adopted) = AuditLog::adopt(log, key, LogOptions::default()).map_err(usage)?;
    match adopted {
        Some(a) => println!(
            "adopted seq {} to {} ({} records, digest {}) without checkpoint cover: recovery \
             record seq {} says so{}, and a checkpoint signs it; `warden audit verify` will \
             report them",
            a.from_seq,
            a.to_seq,
            a.to_seq - a.from_seq + 1,
            a.digest,
            a.record,
            if a.cut_bytes > 0 {
                format!(
                    " (and that a torn last line of {} bytes was cut)",
                    a.cut_bytes
                )
            } else {
                String::new()
            }
        ),
        None => println!(
            "nothing to adopt: a checkpoint covers every record of {}",
            log.display()
        ),
    }
    Ok(ExitCode::SUCCESS)
}

/// The verifier key of `--key`, or of this host's key (`$WARDEN_KEY` or the default).
fn verifier_key(key: Option<&str>) -> Result<VerifierKey, Failure> {
    let host = env_path("WARDEN_KEY").unwrap_or_else(warden::audit::default_key_path);
    VerifierKey::from_arg(key, &host).map_err(usage)
}

fn verify(
    log: &Path,
    key: Option<String>,
    kept: Option<PathBuf>,
    witnesses: &[String],
) -> Result<ExitCode, Failure> {
    let key = verifier_key(key.as_deref())?;
    let witnesses = witnesses
        .iter()
        .map(|w| {
            warden::audit::witness::WitnessVerifier::from_arg(w)
                .map_err(|e| usage(format!("--witness {w}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let kept = match kept {
        Some(path) => {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| usage(format!("{}: {e}", path.display())))?;
            let cp = warden::audit::checkpoint::Checkpoint::verify(&text, &key)
                .map_err(|e| usage(format!("{}: {e}", path.display())))?;
            Some(cp)
        }
        None => None,
    };
    let report = match warden::audit::verify::verify(log, &key) {
        Ok(report) => report,
        Err(e) if e.is_damage() => {
            println!("not intact: {e}");
            return Ok(ExitCode::from(1));
        }
        Err(e) => return Err(usage(e)),
    };
    let mut witness_failed = false;
    if let Some(cp) = &kept {
        if cp.size > report.records {
            println!(
                "not intact: seq {}: truncated: the kept checkpoint covers {} records, the log has {}",
                report.records, cp.size, report.records
            );
            return Ok(ExitCode::from(1));
        }
        let file = records(log)?;
        let range = warden::audit::merkle::Range {
            start: 0,
            len: cp.size,
        };
        let root = match warden::audit::proof::subtrees(file, vec![range]) {
            Ok(roots) => roots[0],
            Err(ProveError::Read(e)) => return Err(usage(format!("{}: {e}", log.display()))),
            Err(e) => {
                println!("not intact: {e}");
                return Ok(ExitCode::from(1));
            }
        };
        if root[..] != cp.root[..] {
            println!(
                "not intact: the first {} records differ from what the kept checkpoint signed",
                cp.size
            );
            return Ok(ExitCode::from(1));
        }
    }
    // Checked before anything is called intact: a witness can say it is not.
    let mut witnessed = Vec::new();
    for w in &witnesses {
        use warden::audit::witness::{Witnessing, check_witness};
        let when = |t: u64| {
            warden::audit::rfc3339(std::time::UNIX_EPOCH + std::time::Duration::from_secs(t))
        };
        match check_witness(log, &report, &key, w)
            .map_err(|e| usage(format!("{}: {e}", log.display())))?
        {
            Witnessing::Witnessed { size, time } => witnessed.push(format!(
                "witnessed: the first {size} records are as {} cosigned them at {}; {} after \
                 them are not witnessed yet",
                w.name(),
                when(time),
                report.records - size
            )),
            Witnessing::NotWitnessed => {
                witnessed.push(format!(
                    "not witnessed: no checkpoint beside the log is cosigned by {} and signed \
                     by the host (a host that ships to a collector keeps them in LOG.cosigned)",
                    w.name()
                ));
                witness_failed = true;
            }
            Witnessing::Truncated { size, time } => {
                println!(
                    "not intact: seq {}: truncated: {} cosigned {size} records at {}, the log \
                     has {}",
                    report.records,
                    w.name(),
                    when(time),
                    report.records
                );
                return Ok(ExitCode::from(1));
            }
            Witnessing::Differs { size, time } => {
                println!(
                    "not intact: the first {size} records differ from what {} cosigned at {}",
                    w.name(),
                    when(time)
                );
                return Ok(ExitCode::from(1));
            }
        }
    }
    println!(
        "intact: {} records, {} checkpoints, {} covered by the last checkpoint, {} after it \
         chained but not yet signed",
        report.records, report.checkpoints, report.covered, report.uncovered
    );
    if report.retired > 0 {
        println!(
            "retired: seq 0 to {} were retired with their segments, as an audit.retire record \
             says; the log starts from the anchor of seq {}",
            report.retired - 1,
            report.retired
        );
    }
    for a in &report.adopted {
        println!(
            "adopted: seq {} to {} ({} records) were taken on without checkpoint cover by \
             `warden audit adopt` (recovery record seq {}, digest {}): nothing but that \
             decision vouches for them",
            a.from_seq,
            a.to_seq,
            a.to_seq - a.from_seq + 1,
            a.record,
            a.digest
        );
    }
    if report.checkpoints == 0 && report.records > 0 {
        println!(
            "warning: no checkpoints: the records are chained, but nothing signs them, and a \
             writer refuses to append until `warden audit adopt` takes them on"
        );
    }
    if let Some(cp) = &kept {
        println!("the kept checkpoint of {} records matches", cp.size);
    }
    witnessed.iter().for_each(|w| println!("{w}"));
    if let Some(torn) = report.torn_tail {
        println!(
            "torn tail: {} bytes at offset {} after the last record (a write cut short after \
             the last checkpoint; the writer drops it when it next opens the log)",
            torn.len, torn.offset
        );
    }
    if report.torn_checkpoint {
        println!(
            "torn checkpoint: ignored an incomplete last note in {}",
            warden::audit::verify::checkpoints_path(log).display()
        );
    }
    if witness_failed {
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

fn prove(log: &Path, seq: u64, key: Option<String>) -> Result<ExitCode, Failure> {
    let key = verifier_key(key.as_deref())?;
    let report = match warden::audit::verify::verify(log, &key) {
        Ok(report) => report,
        Err(e) if e.is_damage() => {
            eprintln!("warden: not intact, no proof: {e}");
            return Ok(ExitCode::from(1));
        }
        Err(e) => return Err(usage(e)),
    };
    match InclusionProof::new(records(log)?, &report, seq) {
        Ok(proof) => {
            let json = serde_json::to_string_pretty(&proof).map_err(usage)?;
            println!("{json}");
            Ok(ExitCode::SUCCESS)
        }
        Err(e @ (ProveError::NoSuchRecord { .. } | ProveError::Read(_))) => Err(usage(e)),
        Err(e) => {
            eprintln!("warden: {e}");
            Ok(ExitCode::from(1))
        }
    }
}

fn check_proof(proof: &Path, key: &str, record: Option<PathBuf>) -> Result<ExitCode, Failure> {
    let key = verifier_key(Some(key))?;
    let text = std::fs::read(proof).map_err(|e| usage(format!("{}: {e}", proof.display())))?;
    let parsed: InclusionProof = serde_json::from_slice(&text)
        .map_err(|e| usage(format!("{}: not a proof: {e}", proof.display())))?;
    let record = match record {
        Some(path) => Some(
            std::fs::read(&path).map_err(|e| usage(format!("--record {}: {e}", path.display())))?,
        ),
        None => None,
    };
    match parsed.check(&key, record.as_deref()) {
        Ok(cp) => {
            println!(
                "valid: seq {} is among the {} records that checkpoint {} signs{}",
                parsed.seq,
                cp.size,
                cp.origin,
                if record.is_some() {
                    ", and the record given is that record"
                } else {
                    ""
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            println!("invalid: {e}");
            Ok(ExitCode::from(1))
        }
    }
}

/// The whole log as one stream: its closed segments, then LOG.
fn records(log: &Path) -> Result<warden::audit::segments::Chain, Failure> {
    let unreadable = |e: std::io::Error| usage(format!("{}: {e}", log.display()));
    let segmented = !warden::audit::segments::segments(log)
        .map_err(unreadable)?
        .is_empty();
    if !segmented {
        std::fs::File::open(log).map_err(unreadable)?;
    }
    warden::audit::segments::read_records(log).map_err(unreadable)
}

fn show(log: &Path, task: Option<String>, deny: bool, json: bool) -> Result<ExitCode, Failure> {
    let file = records(log)?;
    let filter = warden::audit::show::Filter {
        task,
        deny_only: deny,
    };
    warden::audit::show::show(
        std::io::BufReader::new(file),
        &filter,
        json,
        std::io::stdout().lock(),
        |skipped| eprintln!("warden: {skipped}"),
    )
    .map_err(|e| usage(format!("{}: {e}", log.display())))?;
    Ok(ExitCode::SUCCESS)
}
