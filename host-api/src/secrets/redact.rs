//! [`Redactor`]: takes secret values out of what comes back to a tool.
//!
//! A server may echo what it was sent (an error page quoting the `Authorization` header, a
//! debugging endpoint, a hostile API), so every byte a tool reads from a response whose
//! request carried a secret passes through a redactor first. Each occurrence of a held value
//! becomes `[REDACTED:<name>]`.
//!
//! Matching is leftmost-longest: scanning from the start, the first position where some
//! value occurs is replaced by the longest value that occurs there (so of `abc` and
//! `abcdef`, `abcdef` wins wherever both match), and scanning goes on after it. A body is
//! redacted as it streams: [`Redactor::push`] returns at once every byte that no value can
//! still be part of, and holds back only a tail that is a proper prefix of some value, at
//! most the longest value's length minus one. The output is the same however the body is
//! cut into chunks; the tests check that for many random cuts and for a cut at every byte.
//!
//! ```
//! use warden_host_api::secrets::{Redactor, SecretValue};
//!
//! let mut r = Redactor::new([("github".to_string(), SecretValue::new(b"ghp_123".to_vec()))]);
//! assert_eq!(&*r.redact(b"auth: Bearer ghp_123"), b"auth: Bearer [REDACTED:github]");
//!
//! let mut out = r.push(b"{\"echo\":\"ghp_");
//! out.extend(r.push(b"123\"}"));
//! out.extend(r.finish());
//! assert_eq!(out, b"{\"echo\":\"[REDACTED:github]\"}");
//! assert_eq!(r.count(), 2);
//! ```

use super::SecretValue;
use std::borrow::Cow;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use zeroize::Zeroizing;

/// Replaces every occurrence of a set of secret values with `[REDACTED:<name>]`, in whole
/// buffers ([`redact`](Self::redact)) or in a stream of chunks ([`push`](Self::push), then
/// [`finish`](Self::finish)).
///
/// Made by [`super::TaskSecrets::redactor`] over every value a task has held. It keeps its
/// own zeroizing copies of the values and of any held-back tail.
pub struct Redactor {
    /// Longest first, so that the first value that matches at a position is the longest.
    needles: Vec<Needle>,
    /// Whether some value starts with this byte: most positions are skipped on one lookup.
    starts: [bool; 256],
    /// The tail of the stream that may be the start of a value, not yet returned.
    pending: Zeroizing<Vec<u8>>,
    count: AtomicU64,
}

struct Needle {
    value: SecretValue,
    marker: Vec<u8>,
}

impl Redactor {
    /// A redactor for `values`, each with the secret's name. Empty values are ignored (they
    /// would match everywhere), and a value held under two names is replaced by the first.
    pub fn new(values: impl IntoIterator<Item = (String, SecretValue)>) -> Self {
        let mut needles: Vec<Needle> = Vec::new();
        for (name, value) in values {
            if value.is_empty() || needles.iter().any(|n| n.value == value) {
                continue;
            }
            needles.push(Needle {
                value,
                marker: format!("[REDACTED:{name}]").into_bytes(),
            });
        }
        // Stable: of equally long values, the first given wins (they differ anyway).
        needles.sort_by_key(|n| std::cmp::Reverse(n.value.len()));
        let mut starts = [false; 256];
        for n in &needles {
            starts[usize::from(n.value.expose()[0])] = true;
        }
        Redactor {
            needles,
            starts,
            pending: Zeroizing::new(Vec::new()),
            count: AtomicU64::new(0),
        }
    }

    /// Whether there is nothing to redact: the caller may skip the redactor entirely.
    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }

    /// The length of the longest value; a stream holds back at most one byte less.
    pub fn longest(&self) -> usize {
        self.needles.first().map_or(0, |n| n.value.len())
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
    /// the rest of `buf` is a proper prefix of a value longer than it, and returns that
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
            if !eof
                && self
                    .needles
                    .iter()
                    .any(|n| n.value.len() > rest.len() && n.value.expose().starts_with(rest))
            {
                out.extend_from_slice(&buf[plain..i]);
                return (i, replaced);
            }
            match self
                .needles
                .iter()
                .find(|n| rest.starts_with(n.value.expose()))
            {
                Some(n) => {
                    out.extend_from_slice(&buf[plain..i]);
                    out.extend_from_slice(&n.marker);
                    i += n.value.len();
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
            .needles
            .iter()
            .map(|n| String::from_utf8_lossy(&n.marker).into_owned())
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
}
