//! The forms a secret value takes when a server sends it back encoded, as patterns for the
//! [`Redactor`](super::Redactor).
//!
//! A server that echoes a request may quote the credential as it came (an error page), or
//! percent-encoded (a redirect URL), JSON-escaped (an API that serializes what it got), in
//! hex (a debug dump) or in base64 (a `Basic` header, a token inside a JWT-like blob). Each
//! value is therefore redacted in all of these forms:
//!
//! - **literal**: the bytes as they are;
//! - **percent**: each byte as itself or as `%XX` in either case of hex, a space also as
//!   `+` (every mix, so `encodeURIComponent`, form encoding and encode-everything are all
//!   covered); a `%` in the value only as `%25`, which every encoder writes;
//! - **JSON**: each character as itself, as `\uXXXX` in either case (a surrogate pair above
//!   U+FFFF), or as its short escape (`\"`, `\\`, `\/`, `\b`, `\f`, `\n`, `\r`, `\t`), in any
//!   mix, which covers what serializers write (only what must be escaped; everything outside
//!   ASCII; HTML-safe `<`, `>`, `&`; every character); a `\` in the value only escaped;
//! - **hex**: two digits a byte, each digit in either case;
//! - **base64**, standard and URL-safe alphabets alike, padded or not, with the value at each
//!   of the three offsets modulo 3 in a longer encoded stream: every character that carries
//!   any bit of the value, the ones at its ends matching whatever bits surround them, and
//!   the characters made of the value's bits alone wherever the ends are not there.
//!
//! Hex and base64 forms are made only for values of at least [`ENCODED_MIN`] bytes: a shorter
//! value's base64 is 2 to 5 characters that ordinary text contains by chance, and a value that
//! short is guessed more easily than hidden.
//!
//! A pattern is a sequence of [`Unit`]s, each matching one of a few byte strings; within a
//! unit no alternative is a prefix of another, so at any position at most one alternative
//! matches and a pattern matches in one pass without backtracking.

use zeroize::Zeroize;

/// Values shorter than this get no hex or base64 patterns (see the module doc).
pub const ENCODED_MIN: usize = 4;

/// One position of a pattern: a set of single bytes and a few longer strings.
pub(super) struct Unit {
    /// Single-byte alternatives, as a 256-bit set.
    single: [u64; 4],
    /// Longer alternatives, none a prefix of another nor starting with a byte of `single`.
    multi: Vec<Vec<u8>>,
}

impl Unit {
    fn new() -> Unit {
        Unit {
            single: [0; 4],
            multi: Vec::new(),
        }
    }

    fn add(&mut self, alt: &[u8]) {
        match alt {
            [] => {}
            [b] => self.single[usize::from(*b >> 6)] |= 1 << (b & 63),
            _ if !self.multi.iter().any(|m| m == alt) => self.multi.push(alt.to_vec()),
            _ => {}
        }
    }

    fn has(&self, b: u8) -> bool {
        self.single[usize::from(b >> 6)] & (1 << (b & 63)) != 0
    }

    /// The first bytes this unit can start with.
    pub(super) fn firsts(&self) -> impl Iterator<Item = u8> + '_ {
        (0..=255u8)
            .filter(|&b| self.has(b))
            .chain(self.multi.iter().map(|m| m[0]))
    }

    fn longest(&self) -> usize {
        self.multi
            .iter()
            .map(Vec::len)
            .max()
            .unwrap_or(0)
            .max(usize::from(self.single != [0; 4]))
    }

    /// No alternative is a prefix of another: what lets [`Pattern::at`] take the first
    /// alternative that matches.
    fn prefix_free(&self) -> bool {
        self.multi.iter().enumerate().all(|(i, a)| {
            !self.has(a[0])
                && self
                    .multi
                    .iter()
                    .enumerate()
                    .all(|(j, b)| i == j || !b.starts_with(a))
        })
    }
}

impl Drop for Unit {
    /// The alternatives are the value, encoded: wiped like the value.
    fn drop(&mut self) {
        self.single.zeroize();
        for m in &mut self.multi {
            m.zeroize();
        }
    }
}

/// One form of one value, as matched by the redactor.
pub(super) struct Pattern {
    pub(super) units: Vec<Unit>,
    /// The most bytes a match can take.
    pub(super) longest: usize,
}

/// What a pattern makes of the bytes at one position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Found {
    /// A match of this many bytes.
    Match(usize),
    /// No match can start here.
    Miss,
    /// The bytes run out while they still match: more input decides.
    More,
}

impl Pattern {
    fn new(units: Vec<Unit>) -> Pattern {
        debug_assert!(units.iter().all(Unit::prefix_free));
        let longest = units.iter().map(Unit::longest).sum();
        Pattern { units, longest }
    }

    /// Whether the pattern matches at the start of `buf`.
    pub(super) fn at(&self, buf: &[u8]) -> Found {
        let mut p = 0;
        for unit in &self.units {
            let rest = &buf[p..];
            let Some(&b) = rest.first() else {
                return Found::More;
            };
            if unit.has(b) {
                p += 1;
                continue;
            }
            let mut more = false;
            let mut took = None;
            for alt in &unit.multi {
                if rest.starts_with(alt) {
                    took = Some(alt.len());
                    break;
                }
                more |= alt.starts_with(rest);
            }
            match took {
                Some(n) => p += n,
                None if more => return Found::More,
                None => return Found::Miss,
            }
        }
        Found::Match(p)
    }
}

/// Every pattern of `value`: literal, percent, JSON, then (for values of at least
/// [`ENCODED_MIN`] bytes) hex and base64 at each offset. Empty for an empty value.
pub(super) fn patterns(value: &[u8]) -> Vec<Pattern> {
    if value.is_empty() {
        return Vec::new();
    }
    let mut out = vec![literal(value), percent(value), json(value)];
    if value.len() >= ENCODED_MIN {
        out.push(hex(value));
        out.extend((0..3).flat_map(|offset| base64(value, offset)));
    }
    out
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";
const HEX_LOWER: &[u8; 16] = b"0123456789abcdef";

fn one(alts: &[&[u8]]) -> Unit {
    let mut u = Unit::new();
    for a in alts {
        u.add(a);
    }
    u
}

fn literal(value: &[u8]) -> Pattern {
    Pattern::new(value.iter().map(|b| one(&[&[*b]])).collect())
}

fn percent(value: &[u8]) -> Pattern {
    let units = value
        .iter()
        .map(|&b| {
            let hi = usize::from(b >> 4);
            let lo = usize::from(b & 15);
            let upper = [b'%', HEX_UPPER[hi], HEX_UPPER[lo]];
            let lower = [b'%', HEX_LOWER[hi], HEX_LOWER[lo]];
            let mut u = one(&[&upper, &lower]);
            // A literal `%` would be a prefix of every escape; encoders always escape it.
            if b != b'%' {
                u.add(&[b]);
            }
            if b == b' ' {
                u.add(b"+");
            }
            u
        })
        .collect();
    Pattern::new(units)
}

/// `\uXXXX` for one UTF-16 code unit, in one case of hex.
fn u_escape(unit: u16, digits: &[u8; 16]) -> [u8; 6] {
    let d = |shift: u16| digits[usize::from((unit >> shift) & 15)];
    [b'\\', b'u', d(12), d(8), d(4), d(0)]
}

fn json(value: &[u8]) -> Pattern {
    let mut units = Vec::new();
    for chunk in value.utf8_chunks() {
        for c in chunk.valid().chars() {
            let mut u = Unit::new();
            let mut utf16 = [0u16; 2];
            let code_units = c.encode_utf16(&mut utf16);
            for digits in [HEX_UPPER, HEX_LOWER] {
                let escaped: Vec<u8> = code_units
                    .iter()
                    .flat_map(|&cu| u_escape(cu, digits))
                    .collect();
                u.add(&escaped);
            }
            let short: Option<&[u8]> = match c {
                '"' => Some(b"\\\""),
                '\\' => Some(b"\\\\"),
                '/' => Some(b"\\/"),
                '\u{8}' => Some(b"\\b"),
                '\u{c}' => Some(b"\\f"),
                '\n' => Some(b"\\n"),
                '\r' => Some(b"\\r"),
                '\t' => Some(b"\\t"),
                _ => None,
            };
            if let Some(s) = short {
                u.add(s);
            }
            // A literal `\` would be a prefix of every escape; JSON always escapes it.
            if c != '\\' {
                let mut buf = [0; 4];
                u.add(c.encode_utf8(&mut buf).as_bytes());
            }
            units.push(u);
        }
        // Bytes that are not UTF-8 cannot be in a JSON string but as themselves.
        units.extend(chunk.invalid().iter().map(|b| one(&[&[*b]])));
    }
    Pattern::new(units)
}

fn hex(value: &[u8]) -> Pattern {
    let units = value
        .iter()
        .flat_map(|&b| [b >> 4, b & 15])
        .map(|n| {
            let n = usize::from(n);
            one(&[&[HEX_UPPER[n]], &[HEX_LOWER[n]]])
        })
        .collect();
    Pattern::new(units)
}

const B64_STD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const B64_URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// The value's base64 when it starts `offset` bytes (0, 1 or 2) after a 3-byte group
/// boundary of a longer stream: every 6-bit character that holds any of its bits. Where a
/// character at either end also holds bits of the bytes around the value, it may be any
/// character that agrees on the value's bits; and since a server may cut the stream or
/// splice it into other text right there, each end character is also optional (one pattern
/// with it, one without), so that the characters made of the value's bits alone are always
/// taken.
fn base64(value: &[u8], offset: usize) -> Vec<Pattern> {
    let start = 8 * offset;
    let end = start + 8 * value.len();
    let bit = |i: usize| -> Option<bool> {
        (start..end)
            .contains(&i)
            .then(|| value[(i - start) / 8] & (0x80 >> ((i - start) % 8)) != 0)
    };
    let chars = || {
        (start / 6..end.div_ceil(6)).map(|ch| {
            // The character's known bits (mask) and their values.
            let (mut mask, mut known) = (0u8, 0u8);
            for k in 0..6 {
                if let Some(set) = bit(6 * ch + k) {
                    mask |= 0x20 >> k;
                    if set {
                        known |= 0x20 >> k;
                    }
                }
            }
            let mut u = Unit::new();
            for v in (0..64u8).filter(|v| v & mask == known) {
                u.add(&[B64_STD[usize::from(v)]]);
                u.add(&[B64_URL[usize::from(v)]]);
            }
            u
        })
    };
    let count = end.div_ceil(6) - start / 6;
    let lead = usize::from(!start.is_multiple_of(6));
    let trail = usize::from(!end.is_multiple_of(6));
    let mut out = Vec::new();
    for skip in 0..=lead {
        for cut in 0..=trail {
            out.push(Pattern::new(
                chars().skip(skip).take(count - skip - cut).collect(),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

    fn matches(p: &Pattern, s: &[u8]) -> bool {
        p.at(s) == Found::Match(s.len())
    }

    #[test]
    fn every_unit_is_prefix_free() {
        for v in [
            &b"%\\%%\\\\ +\"/"[..],
            "gh\u{e9}\u{1F600}p_\n\t".as_bytes(),
            b"\xff\xfe ok",
            b"a",
        ] {
            for p in patterns(v) {
                assert!(p.units.iter().all(Unit::prefix_free));
            }
        }
    }

    #[test]
    fn the_forms_of_a_value() {
        let v = b"a b/%\\\"\xc3\xa9";
        let all = patterns(v);
        let [lit, pct, json, hex, b64 @ ..] = &all[..] else {
            panic!("four patterns and base64")
        };
        let b64 = |s: &[u8]| b64.iter().any(|p| matches(p, s));
        assert!(matches(lit, v));
        assert!(matches(pct, b"a%20b%2F%25\\\"%C3%a9"));
        assert!(matches(pct, b"a+b/%25%5c%22\xc3\xa9"));
        assert!(!matches(pct, v), "a literal % is not percent-encoding");
        assert!(matches(json, b"a b\\/\\u0025\\\\\\\"\\u00E9"));
        assert!(matches(json, b"\\u0061\\u0020b/%\\u005c\"\xc3\xa9"));
        assert!(!matches(json, v), "a literal \\ is not JSON");
        assert!(matches(hex, b"6120622F255C22c3A9"));
        // 9 bytes: at offset 0 the 12 characters are all the value's.
        let std = STANDARD.encode(v);
        assert!(b64(std.as_bytes()));
        // At offset 1, the value's 72 bits are in characters 1 to 13, of which the first
        // and the last also hold other bits; 2 to 12 are the value's alone.
        let url = URL_SAFE_NO_PAD.encode([&b"x"[..], v, b"z"].concat());
        assert!(b64(&url.as_bytes()[1..14]), "{url}");
        assert!(b64(&url.as_bytes()[2..14]), "{url}");
        assert!(b64(&url.as_bytes()[1..13]), "{url}");
        assert!(b64(&url.as_bytes()[2..13]), "{url}");
        assert!(!b64(&url.as_bytes()[2..12]), "{url}");
        // At offset 2 and padded: the padding is not the value's.
        let std = STANDARD.encode([&b"xy"[..], v].concat());
        assert!(std.ends_with("="));
        let std = std.trim_end_matches('=');
        assert!(b64(&std.as_bytes()[2..]), "{std}");
        assert!(b64(&std.as_bytes()[3..]), "{std}");
    }

    #[test]
    fn astral_characters_are_escaped_as_surrogate_pairs() {
        let json = &patterns("\u{1F600}".as_bytes())[2];
        assert!(matches(json, b"\\uD83D\\uDE00"));
        assert!(matches(json, b"\\ud83d\\ude00"));
        assert!(matches(json, "\u{1F600}".as_bytes()));
    }

    #[test]
    fn short_values_get_no_hex_or_base64() {
        assert_eq!(patterns(b"abc").len(), 3);
        // Base64 of 4 bytes: offset 0 has a partial last character (2 patterns), offset 1
        // partial characters at both ends (4), offset 2 at its start (2).
        assert_eq!(patterns(b"abcd").len(), 4 + 2 + 4 + 2);
        assert!(patterns(b"").is_empty());
    }

    #[test]
    fn a_match_runs_out_of_input_or_misses() {
        let lit = &patterns(b"secret")[0];
        assert_eq!(lit.at(b"sec"), Found::More);
        assert_eq!(lit.at(b"secX"), Found::Miss);
        assert_eq!(lit.at(b"secrets"), Found::Match(6));
        let json = &patterns(b"secret")[2];
        assert_eq!(json.at(b"s\\u00"), Found::More);
        assert_eq!(json.at(b"s\\u0066"), Found::Miss);
        assert_eq!(json.longest, 36);
    }
}
