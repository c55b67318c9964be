//! [`Redactor`]: takes secret values out of what comes back to a tool.
//!
//! A server may echo what it was sent (an error page quoting the `Authorization` header, a
//! debugging endpoint, a hostile API), so every byte a tool reads from a response whose
//! request carried a secret passes through a redactor first. Each occurrence of a held
//! value, as it is or in one of its common encodings ([`super::encodings`]: percent, JSON
//! escapes, hex, base64 at every offset), becomes `[REDACTED:<name>]`.
//!
//! Matching is leftmost-longest: scanning from the start, the first position where some
//! form of some value occurs is replaced by the longest form that occurs there (so of `abc`
//! and `abcdef`, `abcdef` wins wherever both match), and scanning goes on after it. A body
//! is redacted as it streams: [`Redactor::push`] returns at once every byte that no form can
//! still be part of, and holds back only a tail that could still become one, at most the
//! longest form's length minus one (a JSON-escaped value is six bytes a character). The
//! output is the same however the body is cut into chunks; the tests check that for many
//! random cuts and for a cut at every byte.
//!
//! ```
//! use warden_host_api::secrets::{Redactor, SecretValue};
//!
//! let mut r = Redactor::new([("github".to_string(), SecretValue::new(b"ghp_123".to_vec()))]);
//! assert_eq!(&*r.redact(b"auth: Bearer ghp_123"), b"auth: Bearer [REDACTED:github]");
//! // Base64 of "Bearer ghp_123", hex, and JSON escapes: the same value.
//! assert_eq!(&*r.redact(b"QmVhcmVyIGdocF8xMjM="), b"QmVhcmVyI[REDACTED:github]=");
//! assert_eq!(&*r.redact(b"6768705F313233"), b"[REDACTED:github]");
//! assert_eq!(&*r.redact(br"\u0067hp_123"), b"[REDACTED:github]");
//!
//! let mut out = r.push(b"{\"echo\":\"ghp_");
//! out.extend(r.push(b"123\"}"));
//! out.extend(r.finish());
//! assert_eq!(out, b"{\"echo\":\"[REDACTED:github]\"}");
//! assert_eq!(r.count(), 5);
//! ```

use super::SecretValue;
use super::encodings::{self, Found, Pattern};
use std::borrow::Cow;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use zeroize::Zeroizing;

/// Replaces every occurrence of a set of secret values, and of their encodings, with
/// `[REDACTED:<name>]`, in whole buffers ([`redact`](Self::redact)) or in a stream of
/// chunks ([`push`](Self::push), then [`finish`](Self::finish)).
///
/// Made by [`super::TaskSecrets::redactor`] over every value a task has held. Its patterns
/// are wiped when it is dropped, and so is any held-back tail.
pub struct Redactor {
    /// Every form of every value, in the order the values were given; each with the index
    /// of its value's marker.
    patterns: Vec<(Pattern, usize)>,
    markers: Vec<Vec<u8>>,
    /// Whether some form starts with this byte: most positions are skipped on one lookup.
    starts: [bool; 256],
    longest: usize,
    /// The tail of the stream that may be the start of a value, not yet returned.
    pending: Zeroizing<Vec<u8>>,
    count: AtomicU64,
}

impl Redactor {
    /// A redactor for `values`, each with the secret's name. Empty values are ignored (they
    /// would match everywhere), and a value held under two names is replaced by the first.
    pub fn new(values: impl IntoIterator<Item = (String, SecretValue)>) -> Self {
        let mut seen: Vec<SecretValue> = Vec::new();
        let mut patterns = Vec::new();
        let mut markers = Vec::new();
        for (name, value) in values {
            if value.is_empty() || seen.contains(&value) {
                continue;
            }
            let marker = markers.len();
            markers.push(format!("[REDACTED:{name}]").into_bytes());
            patterns.extend(
                encodings::patterns(value.expose())
                    .into_iter()
                    .map(|p| (p, marker)),
            );
            seen.push(value);
        }
        let mut starts = [false; 256];
        for (p, _) in &patterns {
            for b in p.units[0].firsts() {
                starts[usize::from(b)] = true;
            }
        }
        let longest = patterns.iter().map(|(p, _)| p.longest).max().unwrap_or(0);
        Redactor {
            patterns,
            markers,
            starts,
            longest,
            pending: Zeroizing::new(Vec::new()),
            count: AtomicU64::new(0),
        }
    }

    /// Whether there is nothing to redact: the caller may skip the redactor entirely.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// The length of the longest form of any value; a stream holds back at most one byte
    /// less.
    pub fn longest(&self) -> usize {
        self.longest
    }

    /// How many occurrences have been replaced so far, by every method.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// `input` with every occurrence replaced: a whole buffer, such as a header value.
    /// Borrows `input` when nothing in it matched. Independent of any stream in progress.
    pub fn redact<'a>(&self, input: &'a [u8]) -> Cow<'a, [u8]> {
        let mut out = Vec::new();
        let (_, replaced) = self.scan(input, true, &mut out);
        if replaced == 0 {
            return Cow::Borrowed(input);
        }
        self.count.fetch_add(replaced, Ordering::Relaxed);
        Cow::Owned(out)
    }

    /// The next chunk of a stream: returns what is certainly redacted, and holds back a
    /// tail that could still become a value when more arrives.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(chunk.len());
        if self.pending.is_empty() {
            let (done, replaced) = self.scan(chunk, false, &mut out);
            self.count.fetch_add(replaced, Ordering::Relaxed);
            self.pending.extend_from_slice(&chunk[done..]);
            return out;
        }
        let mut joined = Zeroizing::new(Vec::with_capacity(self.pending.len() + chunk.len()));
        joined.extend_from_slice(&self.pending);
        joined.extend_from_slice(chunk);
        let (done, replaced) = self.scan(&joined, false, &mut out);
        self.count.fetch_add(replaced, Ordering::Relaxed);
        // Clearing a Zeroizing<Vec> does not wipe, so wipe before reuse.
        zeroize::Zeroize::zeroize(&mut *self.pending);
        self.pending.extend_from_slice(&joined[done..]);
        out
    }

    /// Ends the stream: returns the held-back tail, which can no longer become a value.
    /// The redactor can then take another stream.
    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.pending.len());
        let pending = std::mem::take(&mut self.pending);
        let (_, replaced) = self.scan(&pending, true, &mut out);
        self.count.fetch_add(replaced, Ordering::Relaxed);
        out
    }

    /// Bytes held back by [`push`](Self::push), waiting for the next chunk.
    pub fn held_back(&self) -> usize {
        self.pending.len()
    }

    /// Appends `buf`, redacted, to `out`. Unless `eof`, stops at the first position where
    /// some form still matches all of the rest of `buf` and wants more, and returns that
    /// position: whether a value (and which) occurs there depends on bytes not yet seen.
    /// Also returns the number of replacements.
    fn scan(&self, buf: &[u8], eof: bool, out: &mut Vec<u8>) -> (usize, u64) {
        let mut replaced = 0;
        let mut plain = 0;
        let mut i = 0;
        while i < buf.len() {
            if !self.starts[usize::from(buf[i])] {
                i += 1;
                continue;
            }
            let rest = &buf[i..];
            // The longest match here; of equally long ones, the first value's.
            let mut best: Option<(usize, usize)> = None;
            for (pattern, marker) in &self.patterns {
                match pattern.at(rest) {
                    Found::Match(n) if best.is_none_or(|(m, _)| n > m) => {
                        best = Some((n, *marker));
                    }
                    Found::More if !eof => {
                        out.extend_from_slice(&buf[plain..i]);
                        return (i, replaced);
                    }
                    _ => {}
                }
            }
            match best {
                Some((n, marker)) => {
                    out.extend_from_slice(&buf[plain..i]);
                    out.extend_from_slice(&self.markers[marker]);
                    i += n;
                    plain = i;
                    replaced += 1;
                }
                None => i += 1,
            }
        }
        out.extend_from_slice(&buf[plain..]);
        (buf.len(), replaced)
    }
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self
            .markers
            .iter()
            .map(|m| String::from_utf8_lossy(m).into_owned())
            .collect();
        f.debug_struct("Redactor")
            .field("markers", &names)
            .field("held_back", &self.pending.len())
            .field("count", &self.count())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redactor(values: &[(&str, &str)]) -> Redactor {
        Redactor::new(
            values
                .iter()
                .map(|(n, v)| (n.to_string(), SecretValue::new(v.as_bytes().to_vec()))),
        )
    }

    fn one_shot(values: &[(&str, &str)], input: &str) -> String {
        String::from_utf8(redactor(values).redact(input.as_bytes()).into_owned()).unwrap()
    }

    #[test]
    fn whole_buffers() {
        let v = [("k", "s3cr3t")];
        assert_eq!(one_shot(&v, "a s3cr3t b"), "a [REDACTED:k] b");
        assert_eq!(one_shot(&v, "s3cr3ts3cr3t"), "[REDACTED:k][REDACTED:k]");
        assert_eq!(one_shot(&v, "s3cr3"), "s3cr3");
        let r = redactor(&v);
        assert!(matches!(r.redact(b"nothing here"), Cow::Borrowed(_)));
        assert_eq!(r.count(), 0);
        assert_eq!(&*r.redact(b"s3cr3t"), b"[REDACTED:k]");
        assert_eq!(r.count(), 1);
    }

    #[test]
    fn longest_wins_and_overlaps_go_left_to_right() {
        let v = [("short", "abc"), ("long", "abcdef")];
        assert_eq!(one_shot(&v, "xabcdefx"), "x[REDACTED:long]x");
        assert_eq!(one_shot(&v, "xabcdex"), "x[REDACTED:short]dex");
        assert_eq!(one_shot(&v, "abcabcdef"), "[REDACTED:short][REDACTED:long]");
        // Overlapping occurrences: the leftmost is taken, the overlap is not matched again.
        assert_eq!(one_shot(&[("a", "aba")], "ababa"), "[REDACTED:a]ba");
        assert_eq!(
            one_shot(&[("a", "aa")], "aaaaa"),
            "[REDACTED:a][REDACTED:a]a"
        );
        // A value that is a suffix of another one.
        let v = [("tail", "def"), ("long", "abcdef")];
        assert_eq!(
            one_shot(&v, "abcdef def"),
            "[REDACTED:long] [REDACTED:tail]"
        );
    }

    #[test]
    fn empty_and_duplicate_values() {
        let r = redactor(&[("e", ""), ("a", "x"), ("b", "x")]);
        assert_eq!(&*r.redact(b"axa"), b"a[REDACTED:a]a");
        assert!(redactor(&[("e", "")]).is_empty());
        assert!(!format!("{:?}", redactor(&[("a", "x")])).contains('x'));
    }

    /// xorshift64*: enough randomness for cutting strings, and the same on every run.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// The definition, written as plainly as possible: at each position take the longest
    /// value that occurs there, else copy one byte.
    fn reference(values: &[(&str, &str)], input: &[u8]) -> (Vec<u8>, u64) {
        let mut sorted: Vec<_> = values.iter().filter(|(_, v)| !v.is_empty()).collect();
        sorted.sort_by_key(|(_, v)| std::cmp::Reverse(v.len()));
        let (mut out, mut n, mut i) = (Vec::new(), 0, 0);
        while i < input.len() {
            match sorted
                .iter()
                .find(|(_, v)| input[i..].starts_with(v.as_bytes()))
            {
                Some((name, v)) => {
                    out.extend_from_slice(format!("[REDACTED:{name}]").as_bytes());
                    i += v.len();
                    n += 1;
                }
                None => {
                    out.push(input[i]);
                    i += 1;
                }
            }
        }
        (out, n)
    }

    /// Streams `input` cut at `cuts` and checks the result against the one-shot output,
    /// and that no more than `longest - 1` bytes are ever held back.
    fn streamed(values: &[(&str, &str)], input: &[u8], cuts: &[usize]) -> (Vec<u8>, u64) {
        let mut r = redactor(values);
        let mut out = Vec::new();
        let mut from = 0;
        for &to in cuts.iter().chain(std::iter::once(&input.len())) {
            out.extend(r.push(&input[from..to]));
            assert!(
                r.held_back() < r.longest().max(1),
                "held back {} of longest {}",
                r.held_back(),
                r.longest()
            );
            from = to;
        }
        out.extend(r.finish());
        assert_eq!(r.held_back(), 0);
        (out, r.count())
    }

    fn check_all_cuttings(values: &[(&str, &str)], input: &[u8], rng: &mut Rng) {
        let expected = reference(values, input);
        let r = redactor(values);
        assert_eq!(r.redact(input).into_owned(), expected.0);
        assert_eq!(r.count(), expected.1);
        // Every single cut point.
        for cut in 0..=input.len() {
            assert_eq!(streamed(values, input, &[cut]), expected, "cut at {cut}");
        }
        // One byte at a time.
        let every: Vec<usize> = (1..input.len()).collect();
        assert_eq!(streamed(values, input, &every), expected, "bytewise");
        // Random cuttings, empty chunks included.
        for _ in 0..50 {
            let mut cuts: Vec<usize> = (0..rng.below(8))
                .map(|_| rng.below(input.len() + 1))
                .collect();
            cuts.sort();
            assert_eq!(streamed(values, input, &cuts), expected, "cuts {cuts:?}");
        }
    }

    #[test]
    fn any_chunking_gives_the_same_output() {
        let sets: &[&[(&str, &str)]] = &[
            &[("a", "abcab")],
            &[("short", "abc"), ("long", "abcabcb")],
            &[("x", "aa"), ("y", "aab"), ("z", "b")],
            &[("p", "abab"), ("q", "baba")],
            &[("one", "c"), ("two", "cacbcc")],
        ];
        let mut rng = Rng(0x5eed_1234_abcd_0001);
        for values in sets {
            for _ in 0..60 {
                // Haystacks of pieces of the values and a few stray letters of the same
                // alphabet, so that near misses and overlaps are common.
                let mut input = Vec::new();
                for _ in 0..rng.below(10) {
                    if rng.below(3) == 0 {
                        input.push(b"abcx"[rng.below(4)]);
                    } else {
                        let v = values[rng.below(values.len())].1.as_bytes();
                        let from = if rng.below(3) == 0 {
                            rng.below(v.len())
                        } else {
                            0
                        };
                        let to = if rng.below(3) == 0 {
                            from + rng.below(v.len() - from + 1)
                        } else {
                            v.len()
                        };
                        input.extend_from_slice(&v[from..to]);
                    }
                }
                check_all_cuttings(values, &input, &mut rng);
            }
        }
    }

    #[test]
    fn a_value_split_at_every_byte_boundary() {
        let value = "tok_9f8e7d6c5b4a";
        let input = format!("{{\"echo\":\"Bearer {value}\",\"again\":\"{value}\"}}");
        let mut rng = Rng(7);
        check_all_cuttings(&[("api", value)], input.as_bytes(), &mut rng);
        let (out, n) = streamed(&[("api", value)], input.as_bytes(), &[20, 21]);
        assert_eq!(n, 2);
        assert!(!String::from_utf8(out).unwrap().contains("tok_"));
    }

    // ---- encodings ---------------------------------------------------------------------

    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    use proptest::prelude::*;

    /// Every form of `secret` the redactor promises to take out, written here apart from
    /// `encodings.rs`: with the crates and formats a server would use.
    fn forms(secret: &[u8]) -> Vec<Vec<u8>> {
        let mut out = vec![secret.to_vec()];
        let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
        out.push(hex.clone().into_bytes());
        out.push(hex.to_uppercase().into_bytes());
        let pct: String = secret.iter().map(|b| format!("%{b:02X}")).collect();
        out.push(pct.clone().into_bytes());
        out.push(pct.to_lowercase().into_bytes());
        if let Ok(text) = std::str::from_utf8(secret) {
            let json = serde_json::to_string(text).unwrap();
            out.push(json.as_bytes()[1..json.len() - 1].to_vec());
            let u: String = text.encode_utf16().map(|c| format!("\\u{c:04x}")).collect();
            out.push(u.clone().into_bytes());
            out.push(
                u.replace("\\u", "\u{1}")
                    .to_uppercase()
                    .replace('\u{1}', "\\u")
                    .into_bytes(),
            );
        }
        // Base64 at each offset: the characters whose bits are all the secret's.
        for offset in 0..3 {
            let padded = [&b"\x00\xff"[..offset], secret].concat();
            let (from, to) = ((8 * offset).div_ceil(6), 8 * (offset + secret.len()) / 6);
            for engine in [STANDARD, URL_SAFE] {
                let e = engine.encode(&padded);
                out.push(e.as_bytes()[from..to].to_vec());
            }
        }
        out
    }

    /// `input` redacted in one go and in chunks cut at `cuts`: the two agree, nothing more
    /// than the longest form is held back, and no form of any secret is left between the
    /// markers.
    fn check_redacted(secrets: &[(&str, &[u8])], input: &[u8], cuts: &[usize]) -> Vec<u8> {
        let values = secrets
            .iter()
            .map(|(n, v)| (n.to_string(), SecretValue::new(v.to_vec())));
        let mut r = Redactor::new(values);
        let whole = r.redact(input).into_owned();
        let mut out = Vec::new();
        let mut from = 0;
        for &to in cuts.iter().chain(std::iter::once(&input.len())) {
            out.extend(r.push(&input[from..to]));
            assert!(r.held_back() < r.longest());
            from = to;
        }
        out.extend(r.finish());
        assert_eq!(out, whole, "streamed and whole differ");
        let mut pieces = vec![&out[..]];
        for (name, _) in secrets {
            let marker = format!("[REDACTED:{name}]");
            pieces = pieces
                .iter()
                .flat_map(|p| split(p, marker.as_bytes()))
                .collect();
        }
        for (_, secret) in secrets {
            if secret.len() < super::super::encodings::ENCODED_MIN {
                continue;
            }
            for form in forms(secret) {
                for piece in &pieces {
                    assert!(
                        !piece.windows(form.len()).any(|w| w == form),
                        "{:?} is left in {:?}",
                        String::from_utf8_lossy(&form),
                        String::from_utf8_lossy(&out)
                    );
                }
            }
        }
        out
    }

    fn split<'a>(hay: &'a [u8], sep: &[u8]) -> Vec<&'a [u8]> {
        let mut out = Vec::new();
        let mut rest = hay;
        while let Some(i) = rest.windows(sep.len()).position(|w| w == sep) {
            out.push(&rest[..i]);
            rest = &rest[i + sep.len()..];
        }
        out.push(rest);
        out
    }

    #[test]
    fn each_encoding_of_an_echo_is_redacted() {
        let token = b"ghp_Zx9-kq/Lm+8vT";
        let echo = [&b"Bearer "[..], token].concat();
        let each_byte = |f: fn(&u8) -> String| echo.iter().map(f).collect::<String>().into_bytes();
        let bodies: Vec<Vec<u8>> = vec![
            STANDARD.encode(&echo).into_bytes(),
            STANDARD_NO_PAD.encode(&echo).into_bytes(),
            URL_SAFE.encode(&echo).into_bytes(),
            URL_SAFE_NO_PAD.encode(&echo).into_bytes(),
            // Each offset modulo 3.
            STANDARD.encode([&b"x"[..], &echo].concat()).into_bytes(),
            STANDARD.encode([&b"xy"[..], &echo].concat()).into_bytes(),
            URL_SAFE_NO_PAD
                .encode([&b"xyz!"[..], &echo, b"!"].concat())
                .into_bytes(),
            each_byte(|b| format!("%{b:02X}")),
            each_byte(|b| format!("%{b:02x}")),
            b"Bearer%20ghp_Zx9-kq%2FLm%2B8vT".to_vec(),
            b"Bearer+ghp_Zx9-kq%2fLm%2b8vT".to_vec(),
            each_byte(|b| format!("\\u{b:04x}")),
            each_byte(|b| format!("\\u{b:04X}")),
            br#"{"auth":"Bearer ghp_Zx9-kq\/Lm+8vT"}"#.to_vec(),
            br#"{"auth":"Bearer \u0067hp_Zx9-kq\/Lm\u002b8vT"}"#.to_vec(),
            each_byte(|b| format!("{b:02x}")),
            each_byte(|b| format!("{b:02X}")),
        ];
        for body in bodies {
            let out = check_redacted(&[("github", token)], &body, &[body.len() / 2]);
            let text = String::from_utf8(out).unwrap();
            assert!(
                text.contains("[REDACTED:github]"),
                "{} -> {text}",
                String::from_utf8_lossy(&body)
            );
        }
    }

    #[test]
    fn a_short_value_is_redacted_as_written_and_escaped_only() {
        let r = Redactor::new([("pin".to_string(), SecretValue::new(b"739".to_vec()))]);
        assert_eq!(
            &*r.redact(b"pin 739, %37%33%39"),
            b"pin [REDACTED:pin], [REDACTED:pin]"
        );
        // Its hex and base64 are left: "373339" and "NzM5" are what ordinary text holds.
        assert_eq!(&*r.redact(b"373339 NzM5"), b"373339 NzM5");
    }

    /// Secrets as tokens are written, and bytes to surround them with: the characters of
    /// every encoding, so that near misses are common.
    fn secret() -> impl Strategy<Value = Vec<u8>> {
        proptest::string::string_regex("[A-Za-z0-9_.~+/=%\\\\-]{4,24}")
            .unwrap()
            .prop_map(String::into_bytes)
    }

    fn noise() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(
            proptest::sample::select(b"ab0f9AZ+/-_=%\\u\"{} \n".to_vec()),
            0..6,
        )
    }

    /// A piece of a haystack: noise, a form of the secret (whole or cut), or the secret
    /// inside a larger base64 stream.
    fn piece(secret: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
        let all = forms(&secret);
        let n = all.len();
        prop_oneof![
            noise(),
            (0..n).prop_map({
                let all = all.clone();
                move |i| all[i].clone()
            }),
            (0..n, any::<proptest::sample::Index>()).prop_map(move |(i, cut)| {
                let f = &all[i];
                f[..cut.index(f.len())].to_vec()
            }),
            (noise(), noise(), 0..4usize).prop_map(move |(before, after, engine)| {
                let raw = [&before[..], &secret, &after].concat();
                let e = [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD][engine].encode(raw);
                e.into_bytes()
            }),
        ]
    }

    fn case() -> impl Strategy<Value = (Vec<u8>, Vec<u8>, Vec<usize>)> {
        secret()
            .prop_flat_map(|s| {
                let hay = proptest::collection::vec(piece(s.clone()), 0..8)
                    .prop_map(|pieces| pieces.concat());
                (Just(s), hay)
            })
            .prop_flat_map(|(s, hay)| {
                let len = hay.len();
                let cuts = proptest::collection::vec(0..=len, 0..6).prop_map(|mut c| {
                    c.sort();
                    c
                });
                (Just(s), Just(hay), cuts)
            })
    }

    proptest! {
        // Failures print the case; nothing is written beside the sources.
        #![proptest_config(ProptestConfig {
            cases: 512,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        /// For any chunking, the output holds neither the secret nor any of its encodings,
        /// and is the same as redacting the whole at once.
        #[test]
        fn no_form_of_a_secret_survives_any_chunking((secret, hay, cuts) in case()) {
            check_redacted(&[("s", &secret)], &hay, &cuts);
        }

        /// Two secrets at once, one a prefix of the other's forms or not.
        #[test]
        fn two_secrets_in_one_stream(
            (a, hay, cuts) in case(),
            b in secret(),
        ) {
            let mut hay = hay;
            hay.extend_from_slice(&forms(&b)[7]);
            check_redacted(&[("a", &a), ("b", &b)], &hay, &cuts);
        }
    }
}
