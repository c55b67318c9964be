//! Content codings on exchanges that carry a secret: Warden negotiates and decodes them
//! itself, so that the redactor reads the body as the server meant it.
//!
//! A redactor that sees a gzip body sees compressed bytes, in which a secret the server
//! echoed does not occur; the tool would gunzip it and read the secret. So on a request
//! that carries an injected secret, Warden sets `accept-encoding` itself to
//! [`ACCEPT`] (whatever the tool asked for, and without any `te`), decodes a response in
//! one of those codings before redaction, and hands the tool the decoded body without
//! `content-encoding` or `content-length`. A response in any other coding, in more than
//! one coding, or with a transfer coding other than `chunked` is refused
//! (`HTTP-response-content-coding` or `HTTP-response-transfer-coding`), and so is a body
//! that does not decode.
//!
//! Decoding is streaming and bounded: each step writes at most [`STEP`] bytes, the encoded
//! bytes are held one network frame at a time, and the caller counts what comes out
//! against the rule's `response_body` limit, so a decompression bomb ends the request at
//! the limit. The decoders' own memory is bounded by each coding's window: 32 KiB for gzip
//! and deflate, at most 16 MiB for br, and 8 MiB for zstd (RFC 8878's limit for HTTP;
//! a frame that needs more is refused).

use bytes::{Buf, Bytes};
use http::HeaderMap;
use http::header::{CONTENT_ENCODING, TRANSFER_ENCODING};
use std::io::{self, BufRead, Read};

/// The `accept-encoding` Warden sends on a request that carries a secret: the codings it
/// decodes.
pub(crate) const ACCEPT: &str = "gzip, deflate, br, zstd";

/// The most decoded bytes one [`Decoder::next`] returns.
pub(crate) const STEP: usize = 64 * 1024;

/// A content coding Warden decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Coding {
    /// `gzip` (or `x-gzip`), one or more members.
    Gzip,
    /// `deflate`: a zlib stream (RFC 9110 section 8.4.1.2).
    Deflate,
    /// `br`: Brotli.
    Br,
    /// `zstd`: Zstandard, one or more frames.
    Zstd,
}

impl Coding {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Coding::Gzip => "gzip",
            Coding::Deflate => "deflate",
            Coding::Br => "br",
            Coding::Zstd => "zstd",
        }
    }
}

/// Why a response's codings were refused: the offending header and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refused {
    /// `content-encoding` or `transfer-encoding`.
    pub(crate) header: &'static str,
    /// The header's value, lossily decoded.
    pub(crate) value: String,
}

/// The coding of a response to a request that carried a secret: `None` for none (or
/// `identity`), or why Warden will not decode it.
pub(crate) fn of(headers: &HeaderMap) -> Result<Option<Coding>, Refused> {
    let refused = |header: &'static str| Refused {
        header,
        value: headers
            .get_all(header)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect::<Vec<_>>()
            .join(", "),
    };
    // hyper takes `chunked` off the body itself; anything else would reach the tool
    // still coded.
    for token in tokens(headers, TRANSFER_ENCODING.as_str()) {
        if !token.is_some_and(|t| t.eq_ignore_ascii_case("chunked")) {
            return Err(refused("transfer-encoding"));
        }
    }
    let mut found = None;
    for token in tokens(headers, CONTENT_ENCODING.as_str()) {
        let Some(token) = token else {
            return Err(refused("content-encoding"));
        };
        let coding = match token.to_ascii_lowercase().as_str() {
            "identity" => continue,
            "gzip" | "x-gzip" => Coding::Gzip,
            "deflate" => Coding::Deflate,
            "br" => Coding::Br,
            "zstd" => Coding::Zstd,
            _ => return Err(refused("content-encoding")),
        };
        // Codings applied one over another: Warden decodes one.
        if found.replace(coding).is_some() {
            return Err(refused("content-encoding"));
        }
    }
    Ok(found)
}

/// The comma-separated, non-empty tokens of every `name` header; `None` for a value that
/// is not text.
fn tokens<'a>(headers: &'a HeaderMap, name: &str) -> impl Iterator<Item = Option<&'a str>> {
    headers.get_all(name).iter().flat_map(|v| match v.to_str() {
        Ok(s) => s
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(Some)
            .collect::<Vec<_>>(),
        Err(_) => vec![None],
    })
}

/// A response body being decoded: encoded bytes go in with [`feed`](Self::feed) and
/// [`end`](Self::end), decoded bytes come out of [`next`](Self::next), at most [`STEP`] at
/// a time.
pub(crate) struct Decoder {
    coding: Coding,
    codec: Codec,
    /// Whether any encoded byte arrived: an empty body (`HEAD`, `204`, `304`) decodes to
    /// nothing, whatever its `content-encoding` says.
    received: bool,
    /// The stream (the last gzip member, zstd frame) ended where the input did.
    complete: bool,
}

enum Codec {
    /// flate2 reads gzip members from the encoded bytes as they arrive; it stops with
    /// `WouldBlock` where they run out and picks up there.
    Gzip(Box<flate2::bufread::MultiGzDecoder<Feed>>),
    Deflate(Box<flate2::Decompress>, Feed),
    Br(Box<Brotli>, Feed),
    Zstd(Box<zstd::stream::raw::Decoder<'static>>, Feed),
}

type Brotli = brotli_decompressor::BrotliState<
    brotli_decompressor::StandardAlloc,
    brotli_decompressor::StandardAlloc,
    brotli_decompressor::StandardAlloc,
>;

/// Encoded bytes not yet decoded: one network frame at most.
#[derive(Default)]
struct Feed {
    data: Bytes,
    ended: bool,
}

impl Read for Feed {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.fill_buf()?.len().min(buf.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Feed {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.data.is_empty() && !self.ended {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(&self.data)
    }

    fn consume(&mut self, n: usize) {
        self.data.advance(n);
    }
}

/// Why a body did not decode, for the tool's error and the `http.end` record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the {coding} body does not decode: {reason}")]
pub(crate) struct DecodeError {
    pub(crate) coding: &'static str,
    pub(crate) reason: String,
}

impl Decoder {
    pub(crate) fn new(coding: Coding) -> Result<Decoder, DecodeError> {
        let failed = |reason: String| DecodeError {
            coding: coding.name(),
            reason,
        };
        let codec = match coding {
            Coding::Gzip => Codec::Gzip(Box::new(flate2::bufread::MultiGzDecoder::new(
                Feed::default(),
            ))),
            Coding::Deflate => {
                Codec::Deflate(Box::new(flate2::Decompress::new(true)), Feed::default())
            }
            Coding::Br => Codec::Br(
                Box::new(Brotli::new(
                    Default::default(),
                    Default::default(),
                    Default::default(),
                )),
                Feed::default(),
            ),
            Coding::Zstd => {
                let mut d = zstd::stream::raw::Decoder::new().map_err(|e| failed(e.to_string()))?;
                // RFC 8878 section 7.2: HTTP zstd windows are at most 8 MiB.
                d.set_parameter(zstd::stream::raw::DParameter::WindowLogMax(23))
                    .map_err(|e| failed(e.to_string()))?;
                Codec::Zstd(Box::new(d), Feed::default())
            }
        };
        Ok(Decoder {
            coding,
            codec,
            received: false,
            complete: false,
        })
    }

    pub(crate) fn coding(&self) -> Coding {
        self.coding
    }

    fn feed_mut(&mut self) -> &mut Feed {
        match &mut self.codec {
            Codec::Gzip(d) => d.get_mut(),
            Codec::Deflate(_, f) | Codec::Br(_, f) | Codec::Zstd(_, f) => f,
        }
    }

    /// Whether every byte fed so far has been decoded: only then may more be fed.
    pub(crate) fn wants_input(&mut self) -> bool {
        let feed = self.feed_mut();
        feed.data.is_empty() && !feed.ended
    }

    /// The next frame of the encoded body. Call only when [`wants_input`](Self::wants_input).
    pub(crate) fn feed(&mut self, data: Bytes) {
        debug_assert!(self.wants_input());
        self.received |= !data.is_empty();
        self.feed_mut().data = data;
    }

    /// The encoded body has ended.
    pub(crate) fn end(&mut self) {
        self.feed_mut().ended = true;
    }

    /// Up to [`STEP`] decoded bytes; `None` when everything fed so far is decoded (after
    /// [`end`](Self::end): the body is complete). An error when the body is corrupt,
    /// truncated, or followed by bytes that belong to no stream.
    pub(crate) fn next(&mut self) -> Result<Option<Vec<u8>>, DecodeError> {
        let mut out = vec![0; STEP];
        loop {
            let (produced, progress) = self.step(&mut out)?;
            if produced > 0 {
                out.truncate(produced);
                return Ok(Some(out));
            }
            if progress {
                continue;
            }
            let feed = self.feed_mut();
            if !feed.data.is_empty() {
                return Err(self.error("bytes after the end of the stream".into()));
            }
            if feed.ended && self.received && !self.complete {
                return Err(self.error("the stream ends early".into()));
            }
            return Ok(None);
        }
    }

    fn error(&self, reason: String) -> DecodeError {
        DecodeError {
            coding: self.coding.name(),
            reason,
        }
    }

    /// One step of the codec into `out`: how much it wrote, and whether it did anything
    /// (read input or wrote output) at all.
    fn step(&mut self, out: &mut [u8]) -> Result<(usize, bool), DecodeError> {
        let coding = self.coding.name();
        let failed = |reason: String| DecodeError { coding, reason };
        match &mut self.codec {
            Codec::Gzip(d) => {
                if !self.received {
                    return Ok((0, false));
                }
                match d.read(out) {
                    Ok(0) => {
                        self.complete = true;
                        Ok((0, false))
                    }
                    Ok(n) => Ok((n, true)),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok((0, false)),
                    Err(e) => Err(failed(e.to_string())),
                }
            }
            Codec::Deflate(d, feed) => {
                if self.complete {
                    return Ok((0, false));
                }
                let (before_in, before_out) = (d.total_in(), d.total_out());
                let status = d
                    .decompress(&feed.data, out, flate2::FlushDecompress::None)
                    .map_err(|e| failed(e.to_string()))?;
                let read = (d.total_in() - before_in) as usize;
                let wrote = (d.total_out() - before_out) as usize;
                feed.data.advance(read);
                self.complete = status == flate2::Status::StreamEnd;
                Ok((wrote, read > 0 || wrote > 0))
            }
            Codec::Br(state, feed) => {
                if self.complete {
                    return Ok((0, false));
                }
                let input = &feed.data[..];
                let (mut avail_in, mut in_off) = (input.len(), 0);
                let (mut avail_out, mut out_off, mut total) = (out.len(), 0, 0);
                let result = brotli_decompressor::BrotliDecompressStream(
                    &mut avail_in,
                    &mut in_off,
                    input,
                    &mut avail_out,
                    &mut out_off,
                    out,
                    &mut total,
                    state,
                );
                feed.data.advance(in_off);
                match result {
                    brotli_decompressor::BrotliResult::ResultFailure => {
                        Err(failed(format!("{:?}", state.error_code)))
                    }
                    r => {
                        self.complete =
                            matches!(r, brotli_decompressor::BrotliResult::ResultSuccess);
                        Ok((out_off, in_off > 0 || out_off > 0))
                    }
                }
            }
            Codec::Zstd(d, feed) => {
                use zstd::stream::raw::Operation;
                if feed.data.is_empty() && self.complete {
                    return Ok((0, false));
                }
                let status = d
                    .run_on_buffers(&feed.data, out)
                    .map_err(|e| failed(e.to_string()))?;
                feed.data.advance(status.bytes_read);
                // Zero: a frame ended and everything in it was written out. Another frame
                // may follow.
                self.complete = status.remaining == 0;
                Ok((
                    status.bytes_written,
                    status.bytes_read > 0 || status.bytes_written > 0,
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use std::io::Write;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn which_codings_are_decoded_and_which_refused() {
        assert_eq!(of(&headers(&[])), Ok(None));
        assert_eq!(of(&headers(&[("content-encoding", "identity")])), Ok(None));
        assert_eq!(
            of(&headers(&[("content-encoding", "GZip")])),
            Ok(Some(Coding::Gzip))
        );
        assert_eq!(
            of(&headers(&[("content-encoding", "x-gzip")])),
            Ok(Some(Coding::Gzip))
        );
        assert_eq!(
            of(&headers(&[("content-encoding", "identity, br")])),
            Ok(Some(Coding::Br))
        );
        assert_eq!(
            of(&headers(&[
                ("content-encoding", "zstd"),
                ("transfer-encoding", "chunked")
            ])),
            Ok(Some(Coding::Zstd))
        );
        let refused = |header, value: &str| {
            Err(Refused {
                header,
                value: value.into(),
            })
        };
        assert_eq!(
            of(&headers(&[("content-encoding", "compress")])),
            refused("content-encoding", "compress")
        );
        assert_eq!(
            of(&headers(&[
                ("content-encoding", "gzip"),
                ("content-encoding", "br")
            ])),
            refused("content-encoding", "gzip, br")
        );
        assert_eq!(
            of(&headers(&[("content-encoding", "gzip, gzip")])),
            refused("content-encoding", "gzip, gzip")
        );
        assert_eq!(
            of(&headers(&[("transfer-encoding", "gzip, chunked")])),
            refused("transfer-encoding", "gzip, chunked")
        );
        let mut h = HeaderMap::new();
        h.insert(
            "content-encoding",
            HeaderValue::from_bytes(b"gz\xffip").unwrap(),
        );
        assert!(of(&h).is_err());
    }

    pub(crate) fn encode(coding: Coding, plain: &[u8]) -> Vec<u8> {
        match coding {
            Coding::Gzip => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), Default::default());
                e.write_all(plain).unwrap();
                e.finish().unwrap()
            }
            Coding::Deflate => {
                let mut e = flate2::write::ZlibEncoder::new(Vec::new(), Default::default());
                e.write_all(plain).unwrap();
                e.finish().unwrap()
            }
            Coding::Br => {
                let mut out = Vec::new();
                let mut e = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
                e.write_all(plain).unwrap();
                drop(e);
                out
            }
            Coding::Zstd => zstd::encode_all(plain, 3).unwrap(),
        }
    }

    const ALL: [Coding; 4] = [Coding::Gzip, Coding::Deflate, Coding::Br, Coding::Zstd];

    /// Feeds `encoded` in frames of `frame` bytes, as the body would arrive.
    fn decode(coding: Coding, encoded: &[u8], frame: usize) -> Result<Vec<u8>, DecodeError> {
        let mut d = Decoder::new(coding)?;
        let mut out = Vec::new();
        let mut frames = encoded.chunks(frame.max(1));
        loop {
            while let Some(piece) = d.next()? {
                assert!(piece.len() <= STEP);
                out.extend(piece);
            }
            assert!(d.wants_input());
            match frames.next() {
                Some(f) => d.feed(Bytes::copy_from_slice(f)),
                None => break,
            }
        }
        d.end();
        while let Some(piece) = d.next()? {
            out.extend(piece);
        }
        Ok(out)
    }

    #[test]
    fn each_coding_decodes_in_any_framing() {
        let plain: Vec<u8> = (0..200_000u32)
            .flat_map(|i| format!("line {i} of the echo\n").into_bytes())
            .take(300_000)
            .collect();
        for coding in ALL {
            let encoded = encode(coding, &plain);
            for frame in [1, 7, 4096, encoded.len()] {
                if frame == 1 && encoded.len() > 20_000 {
                    // Byte at a time over a short prefix only: slow otherwise.
                    let short = encode(coding, &plain[..5000]);
                    assert_eq!(decode(coding, &short, 1).unwrap(), &plain[..5000]);
                    continue;
                }
                assert_eq!(
                    decode(coding, &encoded, frame).unwrap(),
                    plain,
                    "{coding:?} in frames of {frame}"
                );
            }
        }
    }

    #[test]
    fn concatenated_gzip_members_and_zstd_frames_decode_whole() {
        for coding in [Coding::Gzip, Coding::Zstd] {
            let two = [encode(coding, b"first "), encode(coding, b"second")].concat();
            assert_eq!(decode(coding, &two, 5).unwrap(), b"first second");
        }
    }

    #[test]
    fn an_empty_body_decodes_to_nothing() {
        for coding in ALL {
            assert_eq!(decode(coding, b"", 1).unwrap(), b"");
        }
    }

    #[test]
    fn truncated_corrupt_and_trailing_bodies_are_errors() {
        for coding in ALL {
            let encoded = encode(coding, b"a body that is long enough to be cut short");
            let cut = decode(coding, &encoded[..encoded.len() - 3], 4).unwrap_err();
            assert_eq!(cut.coding, coding.name());
            assert!(
                decode(coding, b"this is not compressed at all", 4).is_err(),
                "{coding:?}"
            );
            if coding != Coding::Gzip && coding != Coding::Zstd {
                let trailing = [&encoded[..], b"x"].concat();
                let e = decode(coding, &trailing, 4).unwrap_err();
                assert_eq!(e.reason, "bytes after the end of the stream", "{coding:?}");
            }
        }
    }

    #[test]
    fn a_bomb_comes_out_a_step_at_a_time() {
        // 64 MiB of zeros in each coding: a few KiB to a few hundred KiB on the wire.
        let zeros = vec![0u8; 64 << 20];
        for coding in ALL {
            let encoded = encode(coding, &zeros);
            assert!(encoded.len() < 1 << 20, "{coding:?}: {}", encoded.len());
            let mut d = Decoder::new(coding).unwrap();
            d.feed(Bytes::from(encoded));
            let mut total = 0;
            // The caller stops at its limit: here, 1 MiB, after at most one more step.
            while let Some(piece) = d.next().unwrap() {
                assert!(piece.len() <= STEP);
                total += piece.len();
                if total > 1 << 20 {
                    break;
                }
            }
            assert!(total <= (1 << 20) + STEP, "{coding:?}: {total}");
        }
    }

    #[test]
    fn a_zstd_frame_with_a_window_over_8_mib_is_refused() {
        // Streamed without a size, the frame declares the window it was made with.
        let mut e = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
        e.window_log(24).unwrap();
        e.include_contentsize(false).unwrap();
        e.write_all(&[7u8; 1 << 20]).unwrap();
        let encoded = e.finish().unwrap();
        let err = decode(Coding::Zstd, &encoded, 1 << 16).unwrap_err();
        assert_eq!(err.coding, "zstd");
        assert!(err.reason.contains("too much memory"), "{err}");
        // The same at 8 MiB decodes.
        let mut e = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
        e.window_log(23).unwrap();
        e.include_contentsize(false).unwrap();
        e.write_all(&[7u8; 1 << 20]).unwrap();
        let encoded = e.finish().unwrap();
        assert_eq!(
            decode(Coding::Zstd, &encoded, 1 << 16).unwrap().len(),
            1 << 20
        );
    }
}
