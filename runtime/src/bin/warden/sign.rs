//! `warden sign`: signatures published beside a component in its registry, and the key
//! pairs that make cosign signatures.

use crate::host::{EngineArgs, store, tokio_runtime};
use crate::{Failure, usage};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use warden::oci::{self, Attachment, Layer, Reference};
use warden::trust::cosign;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// The component: oci://HOST[:PORT]/REPOSITORY:TAG or @sha256:….
    #[arg(value_name = "REF", required_unless_present_any = ["new_key", "public_key"])]
    reference: Option<String>,
    /// Sign with this cosign private key (cosign's encrypted PEM, from `cosign
    /// generate-key-pair` or --new-key), opened with $COSIGN_PASSWORD; the signature is
    /// published as cosign publishes it, beside the others there.
    #[arg(long, value_name = "FILE", conflicts_with = "minisig", required_unless_present_any = ["minisig", "new_key", "public_key"])]
    key: Option<PathBuf>,
    /// Attach this minisign signature of the component's bytes, made elsewhere
    /// (`minisign -S -m component.wasm`).
    #[arg(long, value_name = "FILE.minisig")]
    minisig: Option<PathBuf>,
    /// Make a cosign key pair: PREFIX.key (encrypted with $COSIGN_PASSWORD, mode 0600)
    /// and PREFIX.pub, the key a manifest's signed-by names.
    #[arg(long, value_name = "PREFIX", conflicts_with_all = ["reference", "key", "minisig"])]
    new_key: Option<PathBuf>,
    /// Print the public key (PEM, for signed-by) of this cosign private key, opened with
    /// $COSIGN_PASSWORD, as `cosign public-key --key` does.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["reference", "key", "minisig", "new_key"])]
    public_key: Option<PathBuf>,
}

/// `warden sign`: the signature published beside the component, then pulled into the
/// store with it; or a new key pair.
pub(crate) fn sign(args: Args, engine: &EngineArgs) -> Result<ExitCode, Failure> {
    if let Some(prefix) = &args.new_key {
        return new_key(prefix);
    }
    if let Some(file) = &args.public_key {
        let pem = std::fs::read(file)
            .map_err(|e| usage(format!("--public-key {}: {e}", file.display())))?;
        let password = std::env::var("COSIGN_PASSWORD").unwrap_or_default();
        let key = cosign::SigningKey::open(&pem, password.as_bytes())
            .map_err(|e| usage(format!("--public-key {}: {e}", file.display())))?;
        print!("{}", key.public_pem());
        return Ok(ExitCode::SUCCESS);
    }
    let reference: Reference = args
        .reference
        .as_deref()
        .expect("clap requires REF")
        .parse()
        .map_err(usage)?;
    let options = engine.registry.options();
    let (attachment, signer) = match (&args.minisig, &args.key) {
        (Some(file), _) => minisig(file)?,
        (None, Some(key)) => cosign_signature(key)?,
        (None, None) => unreachable!("clap requires --key or --minisig"),
    };
    let suffix = attachment.suffix.to_owned();
    let rt = tokio_runtime()?;
    let pinned = rt
        .block_on(oci::attach(&reference, &options, attachment))
        .map_err(usage)?;
    // Pulled as the user named it, so that a manifest naming the tag finds it too.
    let store = store()?;
    rt.block_on(oci::pull(&store, &reference, &options))
        .map_err(usage)?;
    println!(
        "{pinned}\n  signed-by {signer}: published as {}",
        pinned.digest().expect("pinned").tag(&suffix)
    );
    Ok(ExitCode::SUCCESS)
}

fn minisig(file: &Path) -> Result<(Attachment<'static>, String), Failure> {
    let shown = file.display();
    let text =
        std::fs::read_to_string(file).map_err(|e| usage(format!("--minisig {shown}: {e}")))?;
    let key = warden::trust::minisign_signer(&text)
        .map_err(|e| usage(format!("--minisig {shown}: {e}")))?;
    let attachment = Attachment {
        suffix: "minisig",
        artifact_type: Some(oci::MINISIGN_ARTIFACT),
        layers: Box::new(move |_| {
            Ok(vec![Layer {
                media_type: oci::MINISIGN_LAYER.into(),
                bytes: text.into_bytes(),
                annotations: Default::default(),
            }])
        }),
        config: Box::new(|_, _| (oci::spec::EMPTY.into(), b"{}".to_vec())),
        keep_existing: false,
    };
    Ok((attachment, key))
}

fn cosign_signature(file: &Path) -> Result<(Attachment<'static>, String), Failure> {
    let shown = file.display();
    let pem = std::fs::read(file).map_err(|e| usage(format!("--key {shown}: {e}")))?;
    let password = std::env::var("COSIGN_PASSWORD").unwrap_or_default();
    let key = cosign::SigningKey::open(&pem, password.as_bytes())
        .map_err(|e| usage(format!("--key {shown}: {e}")))?;
    let id = key.id.clone();
    let attachment = Attachment {
        suffix: "sig",
        artifact_type: None,
        layers: Box::new(move |pinned| {
            let payload = cosign::payload(pinned, pinned.digest().expect("pinned"));
            let signature = key.sign(&payload)?;
            Ok(vec![Layer {
                media_type: cosign::SIMPLE_SIGNING.into(),
                bytes: payload,
                annotations: [(cosign::SIGNATURE_ANNOTATION.to_owned(), signature)].into(),
            }])
        }),
        config: Box::new(|_, contents| {
            let payloads: Vec<&[u8]> = contents.iter().map(Vec::as_slice).collect();
            (cosign::CONFIG.into(), cosign::config(&payloads))
        }),
        keep_existing: true,
    };
    Ok((attachment, id))
}

fn new_key(prefix: &Path) -> Result<ExitCode, Failure> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let password = std::env::var("COSIGN_PASSWORD").unwrap_or_default();
    let (private, public) = cosign::generate(password.as_bytes()).map_err(usage)?;
    let with = |ext: &str| {
        let mut p = prefix.as_os_str().to_owned();
        p.push(ext);
        PathBuf::from(p)
    };
    let (key_path, pub_path) = (with(".key"), with(".pub"));
    // Never over an existing key: it may be the only copy of what signed released tools.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&key_path)
        .map_err(|e| usage(format!("{}: {e}", key_path.display())))?;
    file.write_all(private.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| usage(format!("{}: {e}", key_path.display())))?;
    std::fs::write(&pub_path, &public)
        .map_err(|e| usage(format!("{}: {e}", pub_path.display())))?;
    let id = warden::trust::TrustedKey::parse(&pub_path.display().to_string(), Path::new(""))
        .map_err(usage)?;
    println!(
        "{}: the private key (encrypted with $COSIGN_PASSWORD{})\n{}: the public key, {}",
        key_path.display(),
        if password.is_empty() {
            ", which is empty"
        } else {
            ""
        },
        pub_path.display(),
        id.id()
    );
    Ok(ExitCode::SUCCESS)
}
