//! The bodies of Warden's fuzz targets, one function each, shared by the libFuzzer
//! harness (`tests/fuzz/fuzz_targets/`, run by `tests/fuzz/run`) and by the replay of the
//! committed corpus in `cargo test` (`tests/all/fuzz.rs`). Each must never panic on any
//! input; where an input is accepted, each checks a property of what was accepted.

use std::path::Path;
use std::sync::OnceLock;

use warden_host_api::grant::Capabilities;
use warden_host_api::http::{Egress, HttpRule};

/// A target's body: any bytes in, a panic if a property fails.
pub type Target = fn(&[u8]);

/// Every target, by the name of its corpus directory.
pub const TARGETS: &[(&str, Target)] = &[
    ("manifest", manifest),
    ("token", token),
    ("covers", covers),
    ("egress", egress),
    ("redact", redact),
    ("wit_json", wit_json),
    ("audit", audit),
];

/// The manifest parser: any text, as if read from a file in a directory that does not
/// exist (so relative grant paths resolve to nothing). What it accepts, `check` prints.
pub fn manifest(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("/nonexistent-warden-fuzz/warden.toml");
    if let Ok(m) = warden::manifest::Manifest::parse(text, path, cap_std::ambient_authority()) {
        let _ = m.effective_grants();
        // What a manifest allows, it allows its own grants.
        let ceiling = m.ceiling();
        assert!(
            ceiling.covers(&ceiling).is_ok(),
            "a ceiling does not cover itself"
        );
    }
}

/// Grant token decoding: the protobuf, the symbol tables and the grant facts of each
/// block, before any signature is checked. A token whose records decode keeps its
/// links readable: every attenuation has a 32-digit id.
pub fn token(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(records) = warden::token::unverified_records(text) {
        for r in records.iter().skip(1) {
            assert_eq!(r.id.len(), 32, "an attenuation's id is derived: {}", r.id);
        }
        // The same text verifies against a key that did not sign it only if it is
        // not a token at all: never.
        let key = issuer();
        let verified =
            warden::token::verify(text, key.public(), std::time::SystemTime::now(), |_, _| {
                Ok(())
            });
        assert!(
            verified.is_err(),
            "a token verified against a key that never signed"
        );
    }
}

fn issuer() -> &'static warden::token::IssuerKey {
    static KEY: OnceLock<warden::token::IssuerKey> = OnceLock::new();
    KEY.get_or_init(warden::token::IssuerKey::generate)
}

/// The grant model's capabilities as JSON (two documents, one a line: parent, then
/// child) and `covers`: each decodable set covers itself, and covering is transitive
/// through the pair (parent ⊇ child and child ⊇ parent means they cover each other's
/// covers).
pub fn covers(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut docs = text.splitn(2, '\n');
    let decode = |doc: Option<&str>| -> Option<Capabilities> { serde_json::from_str(doc?).ok() };
    let (parent, child) = (decode(docs.next()), decode(docs.next()));
    for caps in [&parent, &child].into_iter().flatten() {
        assert!(
            caps.covers(caps).is_ok(),
            "a grant does not cover itself: {caps:?}"
        );
    }
    if let (Some(parent), Some(child)) = (parent, child)
        && parent.covers(&child).is_ok()
        && child.covers(&parent).is_ok()
    {
        // Equal reach: each covers whatever the other covers, itself included.
        assert!(parent.covers(&parent).is_ok() && child.covers(&child).is_ok());
    }
}

/// The egress URL check: the first line is an `[[http]]` rule, the second a method and
/// the rest a request URL. A request allowed is allowed again as normalized (what is
/// sent is what was checked), by the same rule, to the same host and port.
pub fn egress(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.splitn(3, '\n');
    let (Some(rule), Some(method), Some(url)) = (lines.next(), lines.next(), lines.next()) else {
        return;
    };
    let Ok(rule) = HttpRule::parse(rule, None) else {
        return;
    };
    let egress = Egress::new(vec![rule]);
    let Ok(allowed) = egress.check(method, url) else {
        return;
    };
    let again = egress.check(method, allowed.url()).unwrap_or_else(|d| {
        panic!(
            "{url:?} was allowed as {:?}, which is not: {d}",
            allowed.url()
        )
    });
    assert_eq!(
        again.url(),
        allowed.url(),
        "normalizing twice changed {url:?}"
    );
    assert_eq!(
        (again.index(), again.host(), again.port()),
        (allowed.index(), allowed.host(), allowed.port())
    );
    let parsed = url::Url::parse(allowed.url()).expect("an allowed URL parses");
    assert_eq!(parsed.port_or_known_default(), Some(allowed.port()));
    assert!(parsed.username().is_empty() && parsed.password().is_none());
}

/// The streaming redactor. The first line is the secret (4 to 64 bytes), the second the
/// positions where the stream is cut into chunks (bytes, each a chunk's length), the rest
/// the response. The secret is put into the response as it is and in each encoding
/// Warden promises to catch, after the response's first byte. However the stream is cut,
/// the output is the same as redacting it whole, and no form of the secret is in it
/// outside the placeholders.
pub fn redact(data: &[u8]) {
    use warden_host_api::secrets::{Redactor, SecretValue};
    let mut parts = data.splitn(3, |&b| b == b'\n');
    let (Some(secret), Some(cuts), Some(body)) = (parts.next(), parts.next(), parts.next()) else {
        return;
    };
    if !(4..=64).contains(&secret.len()) {
        return;
    }
    let forms = encoded_forms(secret);
    let mut stream = body.to_vec();
    let at = usize::from(body.first().copied().unwrap_or(0)) % (body.len() + 1);
    for form in forms.iter().rev() {
        stream.splice(at..at, form.iter().copied().chain(*b" "));
    }
    let redactor = || Redactor::new([("s".to_owned(), SecretValue::new(secret.to_vec()))]);
    let whole = redactor().redact(&stream).into_owned();
    let mut streamed = Vec::new();
    let mut r = redactor();
    let mut rest = &stream[..];
    for &cut in cuts.iter().cycle().take(stream.len() + 1) {
        if rest.is_empty() {
            break;
        }
        let (chunk, tail) = rest.split_at(usize::from(cut).min(rest.len()));
        streamed.extend(r.push(chunk));
        rest = tail;
    }
    streamed.extend(r.push(rest));
    streamed.extend(r.finish());
    assert!(streamed == whole, "the chunking changed the output");
    // What is left between the placeholders holds no form of the secret. (Pieces are
    // checked apart: a secret may hold any byte, so no stand-in for a placeholder is safe.)
    let placeholder = b"[REDACTED:s]";
    let mut pieces = Vec::new();
    let (mut start, mut i) = (0, 0);
    while i < whole.len() {
        if whole[i..].starts_with(placeholder) {
            pieces.push(&whole[start..i]);
            i += placeholder.len();
            start = i;
        } else {
            i += 1;
        }
    }
    pieces.push(&whole[start..]);
    for piece in pieces {
        for form in &forms {
            assert!(
                !piece.windows(form.len()).any(|w| w == &form[..]),
                "a form of the secret survived: {:?}",
                String::from_utf8_lossy(form)
            );
        }
    }
}

/// The secret as it is, percent-encoded (both cases), JSON-escaped (`\\u00XX`, for ASCII
/// secrets), in hex (both cases) and in base64 (standard and URL-safe, padded or not).
fn encoded_forms(secret: &[u8]) -> Vec<Vec<u8>> {
    use base64::Engine;
    use base64::engine::general_purpose as b64;
    let each_byte =
        |f: fn(&u8) -> String| -> Vec<u8> { secret.iter().map(f).collect::<String>().into_bytes() };
    let mut forms = vec![
        secret.to_vec(),
        each_byte(|b| format!("{b:02x}")),
        each_byte(|b| format!("{b:02X}")),
        each_byte(|b| format!("%{b:02x}")),
        each_byte(|b| format!("%{b:02X}")),
        b64::STANDARD.encode(secret).into_bytes(),
        b64::STANDARD_NO_PAD.encode(secret).into_bytes(),
        b64::URL_SAFE.encode(secret).into_bytes(),
        b64::URL_SAFE_NO_PAD.encode(secret).into_bytes(),
    ];
    if secret.is_ascii() {
        forms.push(each_byte(|b| format!("\\u{b:04x}")));
    }
    forms
}

/// JSON arguments to the functions of `guest-examples/records` (the first byte picks the
/// function, the rest is the JSON). Arguments accepted are valid under the function's
/// published input schema, and survive the trip back to JSON and in again unchanged.
pub fn wit_json(data: &[u8]) {
    let Some((&pick, json)) = data.split_first() else {
        return;
    };
    let Ok(input) = serde_json::from_slice::<serde_json::Value>(json) else {
        return;
    };
    let functions = records();
    let f = &functions[usize::from(pick) % functions.len()];
    let Ok(vals) = f.arguments(&input) else {
        return;
    };
    let schema =
        jsonschema::draft202012::new(&f.input_schema).expect("a published schema compiles");
    assert!(
        schema.is_valid(&input),
        "{}: {input} was accepted but its schema refuses it",
        f.name
    );
    let first: Vec<serde_json::Value> = f
        .params
        .iter()
        .zip(&vals)
        .map(|((_, ty), v)| warden::func::json::to_json(ty, v))
        .collect();
    let back = serde_json::Value::Object(
        f.params
            .iter()
            .map(|(name, _)| name.clone())
            .zip(first.iter().cloned())
            .collect(),
    );
    let again = f
        .arguments(&back)
        .unwrap_or_else(|e| panic!("{}: {input} -> {back} is refused: {e:?}", f.name));
    let twice: Vec<serde_json::Value> = f
        .params
        .iter()
        .zip(&again)
        .map(|((_, ty), v)| warden::func::json::to_json(ty, v))
        .collect();
    assert_eq!(first, twice, "{}: {input} changed on the way back", f.name);
}

/// The functions of `guest-examples/records`, built by the test run (or `tests/fuzz/run`)
/// into `target/guests`.
fn records() -> &'static [warden::func::FunctionInfo] {
    static FUNCTIONS: OnceLock<Vec<warden::func::FunctionInfo>> = OnceLock::new();
    FUNCTIONS.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .ancestors()
            .find(|p| p.join("guest-examples").is_dir())
            .expect("inside the repository");
        let wasm = root.join("target/guests/wasm32-wasip2/release/records.wasm");
        let engine = wasmtime::Engine::default();
        let component = wasmtime::component::Component::from_file(&engine, &wasm)
            .unwrap_or_else(|e| panic!("{}: {e} (build the guests first)", wasm.display()));
        warden::func::functions(&engine, &component)
    })
}

/// A throwaway host key, committed so that the corpus can hold logs it signed.
const AUDIT_KEY: &str =
    "PRIVATE+KEY+vm/warden-audit+4cc84090+AYqfa6KgnvjULuPacq8EUILLTE0bMbFhzRaaMcLe6DGe";

/// The audit log verifier: the input is a log, then a NUL, then its checkpoints file.
/// Never panics. A log it accepts verifies the same again; and if a checkpoint covers
/// records, changing any byte of them (the input's last byte picks which) is caught.
pub fn audit(data: &[u8]) {
    use warden::audit::checkpoint::HostKey;
    use warden::audit::verify::verify_bytes;
    static KEY: OnceLock<HostKey> = OnceLock::new();
    let key = KEY.get_or_init(|| HostKey::parse(AUDIT_KEY).expect("the fuzz key parses"));
    let key = key.verifier();
    let (log, checkpoints) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let Ok(report) = verify_bytes(log, checkpoints, key) else {
        return;
    };
    let again = verify_bytes(log, checkpoints, key).expect("an accepted log verifies again");
    assert_eq!(
        (report.records, report.covered, report.last_hash),
        (again.records, again.covered, again.last_hash)
    );
    if report.covered == 0 {
        return;
    }
    // The bytes of the covered records: up to the end of record `covered - 1`.
    let end = log
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .nth(usize::try_from(report.covered - 1).unwrap())
        .map(|(i, _)| i)
        .expect("covered records are complete lines");
    let at = usize::from(*data.last().unwrap()) * end / 255;
    let mut changed = log.to_vec();
    changed[at] ^= 0x01;
    assert!(
        verify_bytes(&changed, checkpoints, key).is_err(),
        "byte {at} of a covered record changed and the log still verifies"
    );
}
