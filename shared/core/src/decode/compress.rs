//! Transparent, bounded decompression.
//!
//! Audit logs reach us gzip-compressed (CloudWatch Logs subscriptions, Firehose
//! deliveries, exports; Firehose concatenates one gzip member per record),
//! zlib-compressed (some producers of subscription payloads) or plain. The
//! first bytes tell which. Every decompressed stream is capped, so a small
//! hostile object cannot expand into gigabytes of memory or CPU time.

use std::io::{self, BufRead, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use flate2::bufread::{MultiGzDecoder, ZlibDecoder};

use super::error::ErrorKind;

/// The compression of a stream, told from its first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    /// Not compressed.
    Plain,
    /// gzip, one or more members.
    Gzip,
    /// zlib (RFC 1950).
    Zlib,
}

impl Codec {
    /// Tells the codec from the first (at least two) bytes of a stream.
    pub fn sniff(prefix: &[u8]) -> Self {
        match prefix {
            [0x1f, 0x8b, ..] => Self::Gzip,
            // RFC 1950: deflate method, 32K window, header checksum a multiple of 31.
            [cmf @ 0x78, flg, ..] if (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0 => Self::Zlib,
            _ => Self::Plain,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Plain => "plain",
            Self::Gzip => "gzip",
            Self::Zlib => "zlib",
        }
    }
}

/// Marker carried inside `io::Error` when a stream passes its size limit.
#[derive(Debug)]
pub(crate) struct LimitExceeded(pub u64);

impl std::fmt::Display for LimitExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "decompressed data exceeds {} bytes", self.0)
    }
}

impl std::error::Error for LimitExceeded {}

/// A reader that fails once more than `limit` bytes have come through.
struct Capped<R> {
    inner: R,
    remaining: u64,
    limit: u64,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 {
            // Exactly at the limit: only an error if there is more to come.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(io::Error::other(LimitExceeded(self.limit))),
            };
        }
        let want = buf.len().min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// Counts the compressed bytes consumed, so errors can say where they happened.
struct Counted<R> {
    inner: R,
    consumed: Arc<AtomicU64>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.consumed.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Counted<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }
    fn consume(&mut self, amt: usize) {
        self.consumed.fetch_add(amt as u64, Ordering::Relaxed);
        self.inner.consume(amt);
    }
}

/// A decompressed view of a stream, plus what is needed to explain its errors.
pub(crate) struct Opened<'a> {
    pub reader: Box<dyn BufRead + Send + 'a>,
    pub why: Explainer,
}

impl<'a> Opened<'a> {
    /// Moves the decompression of a compressed stream to a thread of
    /// `scope`, so inflating and reading what it yields use two cores: the
    /// thread sends decompressed chunks through a channel of two (bounded
    /// memory) and the returned reader hands them on. A plain stream is
    /// returned as it is. Errors (the data's, the limit's, the input's own)
    /// arrive where they would have, after the bytes before them.
    pub fn on_thread<'scope>(self, scope: &'scope std::thread::Scope<'scope, '_>) -> Opened<'scope>
    where
        'a: 'scope,
    {
        if self.why.codec == Codec::Plain {
            return self;
        }
        let (chunks, received) = std::sync::mpsc::sync_channel::<io::Result<Vec<u8>>>(2);
        let (give_back, returned) = std::sync::mpsc::channel::<Vec<u8>>();
        let mut reader = self.reader;
        scope.spawn(move || {
            loop {
                let mut chunk = returned.try_recv().unwrap_or_else(|_| Vec::with_capacity(BUFFER));
                chunk.clear();
                let error = fill(&mut reader, &mut chunk).err();
                let end = chunk.is_empty() || error.is_some();
                // A closed channel: the reader stopped reading, so stop too.
                if !chunk.is_empty() && chunks.send(Ok(chunk)).is_err() {
                    return;
                }
                if let Some(e) = error {
                    let _ = chunks.send(Err(e));
                }
                if end {
                    return;
                }
            }
        });
        let reader = Received { chunks: received, give_back, chunk: Vec::new(), at: 0 };
        Opened { reader: Box::new(reader), why: self.why }
    }
}

/// Reads into `chunk` up to [`BUFFER`] bytes, fewer only at the end or
/// before an error (which the bytes read before it precede).
fn fill(reader: &mut dyn BufRead, chunk: &mut Vec<u8>) -> io::Result<()> {
    while chunk.len() < BUFFER {
        let window = match reader.fill_buf() {
            Ok(window) => window,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if window.is_empty() {
            break;
        }
        let take = window.len().min(BUFFER - chunk.len());
        chunk.extend_from_slice(&window[..take]);
        reader.consume(take);
    }
    Ok(())
}

/// The reading end of [`Opened::on_thread`].
struct Received {
    chunks: std::sync::mpsc::Receiver<io::Result<Vec<u8>>>,
    give_back: std::sync::mpsc::Sender<Vec<u8>>,
    chunk: Vec<u8>,
    at: usize,
}

impl Read for Received {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let window = self.fill_buf()?;
        let n = window.len().min(buf.len());
        buf[..n].copy_from_slice(&window[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Received {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.at == self.chunk.len() {
            let used = std::mem::take(&mut self.chunk);
            // The thread may have finished; then the buffer is simply freed.
            let _ = self.give_back.send(used);
            self.at = 0;
            match self.chunks.recv() {
                Ok(Ok(chunk)) => self.chunk = chunk,
                Ok(Err(e)) => return Err(e),
                // The thread ended after the last chunk: the end of the stream.
                Err(_) => {}
            }
        }
        Ok(&self.chunk[self.at..])
    }

    fn consume(&mut self, amt: usize) {
        self.at = (self.at + amt).min(self.chunk.len());
    }
}

/// Explains read errors of an opened stream.
pub(crate) struct Explainer {
    codec: Codec,
    consumed: Arc<AtomicU64>,
}

impl Explainer {
    /// Turns a read error from this stream into the decoder's error kind.
    pub fn explain(&self, error: io::Error) -> ErrorKind {
        if let Some(LimitExceeded(limit)) = error.get_ref().and_then(|e| e.downcast_ref()) {
            return ErrorKind::DecompressedTooLarge { limit: *limit };
        }
        match self.codec {
            Codec::Plain => ErrorKind::Io(error),
            codec => ErrorKind::Decompress {
                codec: codec.name(),
                offset: self.consumed.load(Ordering::Relaxed),
                message: error.to_string(),
            },
        }
    }
}

/// Read buffer size: large enough that memchr scans long runs between refills.
pub(crate) const BUFFER: usize = 256 * 1024;

/// Opens `input`, decompressing it if its first bytes say so, with at most
/// `limit` decompressed bytes allowed through.
pub(crate) fn open<'a, R: BufRead + Send + 'a>(mut input: R, limit: u64) -> io::Result<Opened<'a>> {
    let codec = Codec::sniff(input.fill_buf()?);
    let consumed = Arc::new(AtomicU64::new(0));
    let counted = Counted { inner: input, consumed: Arc::clone(&consumed) };
    let reader: Box<dyn BufRead + Send + 'a> = match codec {
        Codec::Plain => Box::new(counted),
        Codec::Gzip => Box::new(io::BufReader::with_capacity(
            BUFFER,
            Capped { inner: MultiGzDecoder::new(counted), remaining: limit, limit },
        )),
        Codec::Zlib => Box::new(io::BufReader::with_capacity(
            BUFFER,
            Capped { inner: ZlibDecoder::new(counted), remaining: limit, limit },
        )),
    };
    Ok(Opened { reader, why: Explainer { codec, consumed } })
}

/// A buffer for one payload's bytes, kept per thread between payloads: a
/// subscription or Kinesis payload is decoded and decompressed into memory
/// already paged in, instead of a fresh allocation the kernel must fault in
/// page by page. Buffers above [`Scratch::KEEP`] are freed, not kept.
pub(crate) struct Scratch(Vec<u8>);

impl Scratch {
    /// The largest buffer kept for the next payload.
    const KEEP: usize = 16 << 20;
    /// Buffers kept per thread (a payload inside a payload takes a second).
    const KEPT: usize = 4;

    thread_local! {
        static POOL: std::cell::RefCell<Vec<Vec<u8>>> = const { std::cell::RefCell::new(Vec::new()) };
    }

    /// An empty buffer, with the capacity an earlier payload left in it.
    pub fn take() -> Self {
        Self(Self::POOL.with(|pool| pool.borrow_mut().pop()).unwrap_or_default())
    }
}

impl std::ops::Deref for Scratch {
    type Target = Vec<u8>;
    fn deref(&self) -> &Vec<u8> {
        &self.0
    }
}

impl std::ops::DerefMut for Scratch {
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        &mut self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if self.0.capacity() <= Self::KEEP {
            let mut buffer = std::mem::take(&mut self.0);
            buffer.clear();
            Self::POOL.with(|pool| {
                let mut pool = pool.borrow_mut();
                if pool.len() < Self::KEPT {
                    pool.push(buffer);
                }
            });
        }
    }
}

/// Decompresses a gzip payload held whole in memory (a subscription or
/// Kinesis payload, a small object) into `out`, with libdeflate, about twice
/// as fast as streaming. Only for exactly one member ending where the input
/// ends, within `limit`: anything else (several members, trailing bytes,
/// damage, a size past the limit) returns false, and the streaming path
/// decodes it and reports what is wrong and where.
pub(crate) fn gunzip_whole(bytes: &[u8], limit: u64, out: &mut Vec<u8>) -> bool {
    use std::cell::RefCell;
    thread_local! {
        static INFLATER: RefCell<libdeflater::Decompressor> = RefCell::new(libdeflater::Decompressor::new());
    }
    const HEADER: usize = 10;
    const TRAILER: usize = 8;
    if Codec::sniff(bytes) != Codec::Gzip || bytes.len() < HEADER + TRAILER {
        return false;
    }
    let trailer = &bytes[bytes.len() - TRAILER..];
    let size = u32::from_le_bytes([trailer[4], trailer[5], trailer[6], trailer[7]]);
    // The size is modulo 2^32: a bomb that wraps it fails below for want of
    // room, and the streaming path stops it at the limit.
    if u64::from(size) > limit {
        return false;
    }
    out.clear();
    // libdeflate reads one member and ignores what follows it. A second
    // member would begin with these bytes; where they occur (by chance,
    // about one payload in forty), a decoder that reports what it left
    // unread decides instead.
    if memchr::memmem::find(&bytes[HEADER..], &[0x1f, 0x8b, 0x08]).is_some() {
        let mut member = flate2::bufread::GzDecoder::new(bytes);
        let read = (&mut member).take(u64::from(size) + 1).read_to_end(out);
        return read.is_ok_and(|n| n == size as usize) && member.into_inner().is_empty();
    }
    out.resize(size as usize, 0);
    let written = INFLATER.with(|d| d.borrow_mut().gzip_decompress(bytes, out));
    // libdeflate checked the member's own CRC and size. What could follow
    // the member is no second member (its magic would have been found) but
    // bytes that decode to nothing; the size in the input's last four bytes
    // tells them apart, and the streaming path reports them.
    written.is_ok_and(|n| n == out.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut e, bytes).unwrap_or_default();
        e.finish().unwrap_or_default()
    }

    #[test]
    fn a_whole_member_is_decompressed_and_anything_else_left_to_the_streaming_path() {
        let text = b"{\"kind\":\"Event\"}\n".repeat(1000);
        let one = gzip(&text);
        let whole = |bytes: &[u8], limit: u64| {
            let mut out = Vec::new();
            gunzip_whole(bytes, limit, &mut out).then_some(out)
        };
        assert_eq!(whole(&one, 1 << 20).as_deref(), Some(&text[..]));
        // Two members, trailing garbage, truncation, over the limit: not here.
        assert_eq!(whole(&[one.clone(), one.clone()].concat(), 1 << 20), None);
        assert_eq!(whole(&[&one[..], b"garbage!"].concat(), 1 << 20), None);
        assert_eq!(whole(&one[..one.len() - 3], 1 << 20), None);
        assert_eq!(whole(&one, 100), None);
        assert_eq!(whole(&text, 1 << 20), None, "not gzip");
    }

    /// A member whose compressed bytes hold a gzip magic (here in a stored
    /// block, as compressed data holds it by chance) is still decoded in
    /// memory; a second member behind one is not (the streaming path reads
    /// both), even when the last member repeats the first one's trailer.
    #[test]
    fn a_gzip_magic_inside_a_member_is_decoded_whole_and_a_hidden_member_is_not() {
        let text = [&b"{\"kind\":\"Event\"}\n"[..], b"\x1f\x8b\x08", b"\n"].concat().repeat(100);
        let mut stored = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::none());
        std::io::Write::write_all(&mut stored, &text).unwrap_or_default();
        let one = stored.finish().unwrap_or_default();
        assert!(memchr::memmem::find(&one[10..], &[0x1f, 0x8b, 0x08]).is_some());
        let mut out = Vec::new();
        assert!(gunzip_whole(&one, 1 << 20, &mut out));
        assert_eq!(out, text);
        let hidden = [one.clone(), gzip(b"{\"kind\":\"Event\"}\n"), one.clone()].concat();
        assert!(!gunzip_whole(&hidden, 1 << 20, &mut out));
        assert!(!gunzip_whole(&[&one[..], b"\x1f\x8b\x08"].concat(), 1 << 20, &mut out));
        assert!(!gunzip_whole(&one, 100, &mut out), "past the limit");
    }

    #[test]
    fn scratch_buffers_come_back_empty_and_large_ones_are_not_kept() {
        let mut a = Scratch::take();
        a.extend_from_slice(b"payload");
        let capacity = a.capacity();
        drop(a);
        let b = Scratch::take();
        assert!(b.is_empty());
        assert_eq!(b.capacity(), capacity, "the buffer was kept for the next payload");
        drop(b);
        let mut big = Scratch::take();
        big.reserve(Scratch::KEEP + 1);
        drop(big);
        assert!(Scratch::take().capacity() <= Scratch::KEEP);
    }

    #[test]
    fn sniffs_gzip_zlib_and_plain() {
        assert_eq!(Codec::sniff(&[0x1f, 0x8b, 8]), Codec::Gzip);
        assert_eq!(Codec::sniff(&[0x78, 0xda]), Codec::Zlib);
        assert_eq!(Codec::sniff(&[0x78, 0x9c]), Codec::Zlib);
        assert_eq!(Codec::sniff(b"{\"kind\""), Codec::Plain);
        assert_eq!(Codec::sniff(b"x"), Codec::Plain);
    }

    #[test]
    fn capped_reader_fails_only_past_the_limit() {
        let mut exact = Capped { inner: &b"abcd"[..], remaining: 4, limit: 4 };
        let mut out = Vec::new();
        assert!(exact.read_to_end(&mut out).is_ok());
        let mut over = Capped { inner: &b"abcde"[..], remaining: 4, limit: 4 };
        let err = over.read_to_end(&mut Vec::new()).err();
        assert!(err.is_some_and(|e| e.get_ref().is_some_and(|i| i.is::<LimitExceeded>())));
    }
}
