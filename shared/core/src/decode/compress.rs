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

use flate2::bufread::ZlibDecoder;

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
    pub reader: Stream<'a>,
    pub why: Explainer,
}

/// The bytes of an opened stream: a plain input read as it is, or a
/// compressed one as a thread of the caller's scope inflates it.
pub(crate) enum Stream<'a> {
    /// Not compressed.
    Plain(Box<dyn BufRead + Send + 'a>),
    /// Decompressed on its own thread.
    Inflated(Received),
}

impl Read for Stream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Plain(reader) => reader.read(buf),
            Self::Inflated(received) => received.read(buf),
        }
    }
}

impl BufRead for Stream<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        match self {
            Self::Plain(reader) => reader.fill_buf(),
            Self::Inflated(received) => received.fill_buf(),
        }
    }

    fn consume(&mut self, amt: usize) {
        match self {
            Self::Plain(reader) => reader.consume(amt),
            Self::Inflated(received) => received.consume(amt),
        }
    }
}

/// Read buffer size: large enough that memchr scans long runs between
/// refills, and that handing chunks between threads (a wake-up each) costs
/// little.
pub(crate) const BUFFER: usize = 1024 * 1024;

/// Opens `input`, decompressing it if its first bytes say so, with at most
/// `limit` decompressed bytes allowed through. A compressed stream is
/// inflated on a thread of `scope`, so inflating and reading what it yields
/// use two cores: the thread sends decompressed chunks through a channel of
/// two (bounded memory). Errors (the data's, the limit's, the input's own)
/// arrive where they would have, after the bytes before them.
pub(crate) fn open<'scope, R: BufRead + Send + 'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    mut input: R,
    limit: u64,
) -> io::Result<Opened<'scope>> {
    let codec = Codec::sniff(input.fill_buf()?);
    let consumed = Arc::new(AtomicU64::new(0));
    let counted = Counted { inner: input, consumed: Arc::clone(&consumed) };
    let why = Explainer { codec, consumed };
    if codec == Codec::Plain {
        return Ok(Opened { reader: Stream::Plain(Box::new(counted)), why });
    }
    let (chunks, received) = std::sync::mpsc::sync_channel::<io::Result<Chunk>>(2);
    let (give_back, returned) = std::sync::mpsc::channel::<Vec<u8>>();
    let pump = Pump { chunks, returned };
    scope.spawn(move || match codec {
        Codec::Gzip => pump.members(counted, limit),
        _ => {
            let mut zlib = Capped { inner: ZlibDecoder::new(counted), remaining: limit, limit };
            let _ = pump.member(&mut zlib);
        }
    });
    let received = Received { chunks: received, give_back, chunk: Vec::new(), at: 0, ends_member: false, held: None };
    Ok(Opened { reader: Stream::Inflated(received), why })
}

/// Decompressed bytes as the inflating thread sends them. A chunk never
/// holds the end of one gzip member and the start of the next.
struct Chunk {
    bytes: Vec<u8>,
    /// The last bytes of a gzip member (or of the zlib stream); empty only
    /// where a member ended as the chunk before it filled up.
    ends_member: bool,
}

/// The inflating thread's ends of the channels.
struct Pump {
    chunks: std::sync::mpsc::SyncSender<io::Result<Chunk>>,
    returned: std::sync::mpsc::Receiver<Vec<u8>>,
}

impl Pump {
    /// Inflates the gzip members of `input` one after another, as a
    /// multi-member decoder does (whatever follows a member must be
    /// another), at most `limit` bytes in all.
    fn members<R: BufRead>(&self, mut input: R, limit: u64) {
        let mut remaining = limit;
        loop {
            match input.fill_buf() {
                Ok([]) => return,
                Ok(_) => {}
                Err(e) => {
                    let _ = self.chunks.send(Err(e));
                    return;
                }
            }
            let mut member = Capped { inner: flate2::bufread::GzDecoder::new(&mut input), remaining, limit };
            if self.member(&mut member).is_err() {
                return;
            }
            remaining = member.remaining;
        }
    }

    /// Sends what `reader` yields, to its end, in chunks of up to
    /// [`BUFFER`] bytes, the last marked as a member's end (a member that
    /// yields nothing sends nothing: a run of empty members costs no
    /// hand-overs). Err once the stream failed (the error sent after the
    /// bytes before it) or the reading end is gone.
    fn member(&self, reader: &mut dyn Read) -> Result<(), ()> {
        let mut sent = false;
        loop {
            // A buffer handed back keeps its bytes initialised: only a part
            // cut off at a member's end is zeroed again.
            let mut chunk = self.returned.try_recv().unwrap_or_default();
            chunk.resize(BUFFER, 0);
            let mut filled = 0;
            let read = loop {
                match reader.read(&mut chunk[filled..]) {
                    Ok(0) => break Ok(()),
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => break Err(e),
                }
                if filled == BUFFER {
                    break Ok(());
                }
            };
            chunk.truncate(filled);
            // Fewer bytes than asked for: the member has ended (or failed).
            let ends_member = filled < BUFFER && read.is_ok();
            if !chunk.is_empty() || (ends_member && sent) {
                // A closed channel: the reader stopped reading, so stop too.
                self.chunks.send(Ok(Chunk { bytes: chunk, ends_member })).map_err(drop)?;
                sent = true;
            }
            if let Err(e) = read {
                let _ = self.chunks.send(Err(e));
                return Err(());
            }
            if ends_member {
                return Ok(());
            }
        }
    }
}

/// The reading end of a stream inflated on its own thread.
pub(crate) struct Received {
    chunks: std::sync::mpsc::Receiver<io::Result<Chunk>>,
    give_back: std::sync::mpsc::Sender<Vec<u8>>,
    chunk: Vec<u8>,
    at: usize,
    /// The current chunk ends a gzip member.
    ends_member: bool,
    /// An error met while gathering a member, due once the bytes before it are read.
    held: Option<io::Error>,
}

impl Received {
    /// Gathers into `out` the gzip member that starts here, if it could be
    /// one CloudWatch Logs envelope (it starts as CloudWatch writes one) of
    /// at most `max` bytes. Call it only where a member starts: at the start
    /// of the stream, or right after a member it returned. Returns false,
    /// with nothing consumed, for anything else, including the end of the
    /// stream: the bytes are then read as usual, and an error met while
    /// gathering them arrives after them.
    pub fn envelope_member(&mut self, max: usize, out: &mut Vec<u8>) -> bool {
        out.clear();
        if self.at != self.chunk.len() {
            return false;
        }
        loop {
            match self.next_chunk() {
                Ok(true) => {}
                Ok(false) => {
                    // The stream ended (inside the member, if any was gathered).
                    self.hold(out, None);
                    return false;
                }
                Err(e) => {
                    self.hold(out, Some(e));
                    return false;
                }
            }
            if out.is_empty() && !self.chunk.trim_ascii_start().starts_with(b"{\"messageType\":") {
                return false;
            }
            out.extend_from_slice(&self.chunk);
            self.at = self.chunk.len();
            if self.ends_member {
                return true;
            }
            if out.len() > max {
                self.hold(out, None);
                return false;
            }
        }
    }

    /// Puts back `out` to be read again, and then `error`, if any.
    pub fn hold(&mut self, out: &mut Vec<u8>, error: Option<io::Error>) {
        if !out.is_empty() {
            // Only called with the current chunk read to its end: nothing is lost.
            self.chunk = std::mem::take(out);
            self.at = 0;
            self.ends_member = false;
        }
        self.held = error.or(self.held.take());
    }

    /// Receives the next chunk (empty only where it marks a member's end).
    /// False at the end of the stream.
    fn next_chunk(&mut self) -> io::Result<bool> {
        let used = std::mem::take(&mut self.chunk);
        // The thread may have finished; then the buffer is simply freed.
        let _ = self.give_back.send(used);
        self.at = 0;
        match self.chunks.recv() {
            Ok(Ok(chunk)) => {
                (self.chunk, self.ends_member) = (chunk.bytes, chunk.ends_member);
                Ok(true)
            }
            Ok(Err(e)) => Err(e),
            // The thread ended after the last chunk: the end of the stream.
            Err(_) => Ok(false),
        }
    }
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
        while self.at == self.chunk.len() {
            if let Some(e) = self.held.take() {
                return Err(e);
            }
            if !self.next_chunk()? {
                break;
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

/// A buffer for one payload's bytes, kept per thread between payloads: a
/// subscription or Kinesis payload is decoded and decompressed into memory
/// already paged in, instead of a fresh allocation the kernel must fault in
/// page by page. A buffer comes back with the bytes it held (its length),
/// so that [`Scratch::room`] zeroes only what no payload has used yet.
/// Buffers above [`Scratch::KEEP`] are freed, not kept.
pub(crate) struct Scratch(Vec<u8>);

impl Scratch {
    /// The largest buffer kept for the next payload.
    const KEEP: usize = 16 << 20;
    /// Buffers kept per thread (a payload inside a payload takes a second).
    const KEPT: usize = 4;

    thread_local! {
        static POOL: std::cell::RefCell<Vec<Vec<u8>>> = const { std::cell::RefCell::new(Vec::new()) };
    }

    /// A buffer as an earlier payload left it: its bytes are stale.
    pub fn take() -> Self {
        Self(Self::POOL.with(|pool| pool.borrow_mut().pop()).unwrap_or_default())
    }

    /// The first `n` bytes of the buffer, to be overwritten.
    pub fn room(&mut self, n: usize) -> &mut [u8] {
        if self.0.len() < n {
            self.0.resize(n, 0);
        }
        &mut self.0[..n]
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
            let buffer = std::mem::take(&mut self.0);
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
/// Kinesis payload, a small object) into the start of `out`, with
/// libdeflate, about twice as fast as streaming, and returns its size. Only
/// for exactly one member ending where the input ends, within `limit`:
/// anything else (several members, trailing bytes, damage, a size past the
/// limit) returns `None`, and the streaming path decodes it and reports what
/// is wrong and where.
pub(crate) fn gunzip_whole(bytes: &[u8], limit: u64, out: &mut Scratch) -> Option<usize> {
    use std::cell::RefCell;
    thread_local! {
        static INFLATER: RefCell<libdeflater::Decompressor> = RefCell::new(libdeflater::Decompressor::new());
    }
    const HEADER: usize = 10;
    const TRAILER: usize = 8;
    if Codec::sniff(bytes) != Codec::Gzip || bytes.len() < HEADER + TRAILER {
        return None;
    }
    let trailer = &bytes[bytes.len() - TRAILER..];
    let size = u32::from_le_bytes([trailer[4], trailer[5], trailer[6], trailer[7]]);
    // The size is modulo 2^32: a bomb that wraps it fails below for want of
    // room, and the streaming path stops it at the limit.
    let size = usize::try_from(size).ok().filter(|s| *s as u64 <= limit)?;
    // libdeflate reads one member and ignores what follows it. A second
    // member would begin with these bytes; where they occur (by chance,
    // about one payload in forty), a decoder that reports what it left
    // unread decides instead.
    if memchr::memmem::find(&bytes[HEADER..], &[0x1f, 0x8b, 0x08]).is_some() {
        out.clear();
        let mut member = flate2::bufread::GzDecoder::new(bytes);
        let read = (&mut member).take(size as u64 + 1).read_to_end(out);
        return (read.is_ok_and(|n| n == size) && member.into_inner().is_empty()).then_some(size);
    }
    let room = out.room(size);
    let written = INFLATER.with(|d| d.borrow_mut().gzip_decompress(bytes, room));
    // libdeflate checked the member's own CRC and size. What could follow
    // the member is no second member (its magic would have been found) but
    // bytes that decode to nothing; the size in the input's last four bytes
    // tells them apart, and the streaming path reports them.
    written.ok().filter(|n| *n == size)
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
            let mut out = Scratch::take();
            gunzip_whole(bytes, limit, &mut out).map(|n| out[..n].to_vec())
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
        let mut out = Scratch::take();
        assert_eq!(gunzip_whole(&one, 1 << 20, &mut out).map(|n| &out[..n]), Some(&text[..]));
        let hidden = [one.clone(), gzip(b"{\"kind\":\"Event\"}\n"), one.clone()].concat();
        assert_eq!(gunzip_whole(&hidden, 1 << 20, &mut out), None);
        assert_eq!(gunzip_whole(&[&one[..], b"\x1f\x8b\x08"].concat(), 1 << 20, &mut out), None);
        assert_eq!(gunzip_whole(&one, 100, &mut out), None, "past the limit");
    }

    #[test]
    fn scratch_buffers_come_back_with_their_bytes_and_large_ones_are_not_kept() {
        let mut a = Scratch::take();
        a.room(7).copy_from_slice(b"payload");
        let capacity = a.capacity();
        drop(a);
        let mut b = Scratch::take();
        assert_eq!(b.capacity(), capacity, "the buffer was kept for the next payload");
        assert_eq!(&b[..], b"payload", "its bytes are not zeroed again");
        assert_eq!(b.room(3), b"pay");
        assert_eq!(b.room(9), b"payload\0\0");
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
