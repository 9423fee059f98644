//! A minimal HTTP/1.1 client (RFC 9112) for the one exchange a TSA needs over `http://`: a POST
//! of a small body on a pooled keep-alive connection, written with one `write`, and its reply
//! read into one buffer. ureq did the same with about three times the system calls (a socket
//! timeout set before each read and write, a non-blocking probe of every pooled connection)
//! and its per-request configuration; `https://` and URLs with user info still go through it.
//!
//! Replies are framed as RFC 9112 §6.3 says: `Transfer-Encoding: chunked`, else
//! `Content-Length`, else until the server closes. A connection goes back to the pool only
//! after a complete reply that does not close it (`Connection: close`, HTTP/1.0 without
//! keep-alive). A pooled connection the server has closed meanwhile is replaced once, on the
//! same attempt, when not a byte of the reply came back.
//!
//! Memory: a reply's head at most [`MAX_HEAD_BYTES`], its body at most the caller's limit.
//! Nothing here panics on what the server sends: a malformed reply is a [`Failure`].

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Largest reply head (status line and header fields) read.
const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Header fields parsed in a reply head; more is a malformed reply.
const MAX_HEADERS: usize = 48;
/// How far past its deadline an attempt may run before the socket's timeout is shortened.
const TIMEOUT_SLACK: Duration = Duration::from_secs(1);
const CLOSED_EARLY: &str = "connection closed before the whole reply";
/// Free bytes a connection's buffer has before each read.
const READ_ROOM: usize = 8192;
/// Idle keep-alive connections kept (one per thread that may wait on the TSA at once).
const MAX_IDLE: usize = 256;

/// Why an exchange failed.
#[derive(Debug)]
pub(super) enum Failure {
    /// The network: refused, reset, closed early, timed out, or a reply that is not HTTP.
    Transport(String),
    /// The server answered with a redirect, which this client does not follow.
    Redirect(u16),
}

/// A reply: status code, `Content-Type` and body.
#[derive(Debug)]
pub(super) struct Reply {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
    /// The server keeps the connection open after this reply (RFC 9112 §9.3).
    pub keep_alive: bool,
}

/// The server of an `http://` URL and the request target to POST to.
#[derive(Debug)]
pub(super) struct PlainHttp {
    /// `host:port`, for the `Host` field and for connecting.
    authority: String,
    /// The request target (path and query), `/` when the URL has none.
    target: String,
    user_agent: &'static str,
    timeout: Duration,
    idle: Mutex<Vec<TcpStream>>,
}

impl PlainHttp {
    /// A client for `url` when it is a plain `http://` URL without user info; `None` otherwise.
    pub(super) fn for_url(
        url: &str,
        timeout: Duration,
        user_agent: &'static str,
    ) -> Option<PlainHttp> {
        let rest = url.get(..7).filter(|s| s.eq_ignore_ascii_case("http://")).and(url.get(7..))?;
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (host, tail) = rest.split_at(end);
        if host.is_empty() || host.contains('@') {
            return None;
        }
        let target = tail.split('#').next().unwrap_or_default();
        let target = match target {
            "" => "/".to_owned(),
            t if t.starts_with('?') => format!("/{t}"),
            t => t.to_owned(),
        };
        // RFC 3986 §3.2.3: without a port, 80; an IPv6 literal is in brackets.
        let has_port = host
            .rsplit_once(':')
            .is_some_and(|(_, port)| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()));
        let authority = if has_port { host.to_owned() } else { format!("{host}:80") };
        Some(PlainHttp { authority, target, user_agent, timeout, idle: Mutex::new(Vec::new()) })
    }

    /// The bytes of a POST of `body` with `content_type`, asking for `accept`.
    pub(super) fn request(&self, body: &[u8], content_type: &str, accept: &str) -> Vec<u8> {
        let mut request = Vec::with_capacity(256 + body.len());
        let _ = write!(
            request,
            "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: {}\r\nContent-Type: {content_type}\r\n\
             Accept: {accept}\r\nContent-Length: {}\r\n\r\n",
            self.target,
            self.authority,
            self.user_agent,
            body.len()
        );
        request.extend_from_slice(body);
        request
    }

    /// The time an attempt may take in all.
    pub(super) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// POSTs `body` with `content_type`, asking for `accept`, and reads the reply (its body at
    /// most `max_body` bytes), all within the client's timeout.
    pub(super) fn post(
        &self,
        body: &[u8],
        content_type: &str,
        accept: &str,
        max_body: usize,
    ) -> Result<Reply, Failure> {
        let deadline = Instant::now() + self.timeout;
        let request = self.request(body, content_type, accept);
        let pooled = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        if let Some(stream) = pooled {
            match exchange(stream, &request, deadline, self.timeout, max_body) {
                // Closed by the server while idle: a new connection, same attempt.
                Err(Exchange::Stale(_)) => {}
                other => return self.finish(other),
            }
        }
        let stream = self.connect(deadline)?;
        self.finish(exchange(stream, &request, deadline, self.timeout, max_body))
    }

    fn finish(
        &self,
        outcome: Result<(Reply, Option<TcpStream>), Exchange>,
    ) -> Result<Reply, Failure> {
        match outcome {
            Ok((reply, keep)) => {
                if let (Some(stream), Ok(mut idle)) = (keep, self.idle.lock())
                    && idle.len() < MAX_IDLE
                {
                    idle.push(stream);
                }
                Ok(reply)
            }
            Err(Exchange::Stale(why) | Exchange::Failed(Failure::Transport(why))) => {
                Err(Failure::Transport(why))
            }
            Err(Exchange::Failed(failure)) => Err(failure),
        }
    }

    /// A new connection to the server, with the client's timeouts and no Nagle delay.
    pub(super) fn connect(&self, deadline: Instant) -> Result<TcpStream, Failure> {
        let io = |e: std::io::Error| Failure::Transport(format!("{}: {e}", self.authority));
        let addrs: Vec<SocketAddr> = self.authority.to_socket_addrs().map_err(io)?.collect();
        let mut last = Failure::Transport(format!("{}: no address", self.authority));
        for addr in addrs {
            let left = remaining(deadline).map_err(Exchange::into_failure)?;
            match TcpStream::connect_timeout(&addr, left) {
                Ok(stream) => {
                    // A small request and a small reply, each in one write: no Nagle delay.
                    stream.set_nodelay(true).map_err(io)?;
                    stream.set_read_timeout(Some(self.timeout)).map_err(io)?;
                    stream.set_write_timeout(Some(self.timeout)).map_err(io)?;
                    return Ok(stream);
                }
                Err(e) => last = io(e),
            }
        }
        Err(last)
    }
}

/// How one exchange on one connection ended, when it did not end with a reply.
pub(super) enum Exchange {
    /// Nothing came back on a connection that had been idle: the server may have closed it.
    Stale(String),
    Failed(Failure),
}

impl Exchange {
    pub(super) fn into_failure(self) -> Failure {
        match self {
            Exchange::Stale(why) => Failure::Transport(why),
            Exchange::Failed(failure) => failure,
        }
    }
}

fn remaining(deadline: Instant) -> Result<Duration, Exchange> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|left| !left.is_zero())
        .ok_or_else(|| Exchange::Failed(Failure::Transport("timed out".into())))
}

/// Writes `request` on `stream` (whose read timeout is `timeout`) and reads the reply; returns
/// the stream too when it may be used again.
fn exchange(
    mut stream: TcpStream,
    request: &[u8],
    deadline: Instant,
    timeout: Duration,
    max_body: usize,
) -> Result<(Reply, Option<TcpStream>), Exchange> {
    stream.write_all(request).map_err(|e| Exchange::Stale(e.to_string()))?;
    let mut conn = Connection::new(stream, deadline, timeout);
    let reply = conn.read_reply(max_body)?;
    // Bytes beyond the reply: not ours to interpret, so the connection is not used again.
    // A shortened read timeout is restored for the next exchange.
    let reusable = reply.keep_alive
        && conn.unread().is_empty()
        && (conn.read_timeout == timeout || conn.stream.set_read_timeout(Some(timeout)).is_ok());
    let keep = reusable.then_some(conn.stream);
    Ok((reply, keep))
}

fn transport(why: String) -> Exchange {
    Exchange::Failed(Failure::Transport(why))
}

enum Framing {
    Chunked,
    Length(u64),
    UntilClose,
}

/// The body's framing (RFC 9112 §6.3), whether the connection stays open (§9.3) and the
/// `Content-Type`.
fn framing_of(head: &httparse::Response) -> Result<(Framing, bool, String), Exchange> {
    let mut framing = Framing::UntilClose;
    let mut chunked = false;
    let mut close = head.version != Some(1);
    let mut content_type = String::new();
    for field in head.headers.iter() {
        let value = std::str::from_utf8(field.value).unwrap_or_default().trim();
        if field.name.eq_ignore_ascii_case("transfer-encoding") {
            // Chunked must be the last coding; anything else is refused rather than guessed.
            if value.eq_ignore_ascii_case("chunked") {
                chunked = true;
            } else {
                return Err(transport(format!("Transfer-Encoding {value:?}")));
            }
        } else if field.name.eq_ignore_ascii_case("content-length") {
            let len =
                value.parse::<u64>().map_err(|_| transport(format!("Content-Length {value:?}")))?;
            match framing {
                Framing::Length(other) if other != len => {
                    return Err(transport("two different Content-Length fields".into()));
                }
                _ => framing = Framing::Length(len),
            }
        } else if field.name.eq_ignore_ascii_case("connection") {
            for option in value.split(',').map(str::trim) {
                if option.eq_ignore_ascii_case("close") {
                    close = true;
                } else if option.eq_ignore_ascii_case("keep-alive") && head.version == Some(0) {
                    close = false;
                }
            }
        } else if field.name.eq_ignore_ascii_case("content-type") {
            value.clone_into(&mut content_type);
        }
    }
    if chunked {
        framing = Framing::Chunked;
    }
    Ok((framing, !close, content_type))
}

/// A connection's stream with what has been read from it and not consumed yet
/// (`buf[start..end]`; `buf` beyond `end` is room for the next read, zeroed once).
pub(super) struct Connection {
    stream: TcpStream,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    deadline: Instant,
    /// The socket's read timeout, as last set.
    read_timeout: Duration,
}

impl Connection {
    /// A connection on `stream` (whose read timeout is `read_timeout`), reading until `deadline`.
    pub(super) fn new(stream: TcpStream, deadline: Instant, read_timeout: Duration) -> Connection {
        Connection { stream, buf: Vec::new(), start: 0, end: 0, deadline, read_timeout }
    }

    /// The socket, for writing requests.
    pub(super) fn stream(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    /// Reads until `deadline` from now on (a pipelined client waits for each reply in turn),
    /// with the socket's read timeout `timeout` again if an earlier wait shortened it.
    pub(super) fn set_deadline(&mut self, deadline: Instant, timeout: Duration) {
        self.deadline = deadline;
        if self.read_timeout != timeout && self.stream.set_read_timeout(Some(timeout)).is_ok() {
            self.read_timeout = timeout;
        }
    }

    /// Reads one reply, its body at most `max_body` bytes; what the server sent after it (the
    /// replies to pipelined requests) stays unread for the next call. A redirect is a failure.
    pub(super) fn read_reply(&mut self, max_body: usize) -> Result<Reply, Exchange> {
        // Consumed bytes are dropped before a long-lived connection's buffer grows.
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        // Head: status line and fields (RFC 9112 §2.1); 1xx interim replies are skipped.
        let (status, content_type, framing, keep_alive, head_len) = loop {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut head = httparse::Response::new(&mut headers);
            match head.parse(self.unread()) {
                Ok(httparse::Status::Complete(len)) => {
                    let status = head.code.unwrap_or(0);
                    if (100..200).contains(&status) {
                        self.start += len;
                        continue;
                    }
                    let (framing, keep_alive, content_type) = framing_of(&head)?;
                    break (status, content_type, framing, keep_alive, len);
                }
                Ok(httparse::Status::Partial) if self.unread().len() < MAX_HEAD_BYTES => {
                    let fresh = self.end == 0;
                    match self.fill() {
                        Ok(true) => {}
                        Ok(false) if fresh => return Err(Exchange::Stale("closed".into())),
                        Err(why) if fresh => return Err(Exchange::Stale(why)),
                        Ok(false) => return Err(transport(CLOSED_EARLY.into())),
                        Err(why) => return Err(transport(why)),
                    }
                }
                Ok(httparse::Status::Partial) => {
                    return Err(transport(format!("reply head over {MAX_HEAD_BYTES} bytes")));
                }
                Err(e) => return Err(transport(format!("not an HTTP reply: {e}"))),
            }
        };
        self.start += head_len;
        if (300..400).contains(&status) {
            return Err(Exchange::Failed(Failure::Redirect(status)));
        }
        let (body, keep_alive) = match framing {
            Framing::Chunked => (self.read_chunked(max_body)?, keep_alive),
            Framing::Length(len) if len > max_body as u64 => {
                return Err(transport(format!("reply body of {len} bytes")));
            }
            Framing::Length(len) => (self.read_exact_body(len as usize)?, keep_alive),
            Framing::UntilClose => (self.read_to_close(max_body)?, false),
        };
        Ok(Reply { status, content_type, body, keep_alive })
    }

    fn unread(&self) -> &[u8] {
        self.buf.get(self.start..self.end).unwrap_or_default()
    }

    /// Reads more into `buf`: `false` at the end of the stream; fails on an error or at the
    /// deadline.
    fn fill(&mut self) -> Result<bool, String> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        let left = remaining(self.deadline).map_err(|e| match e.into_failure() {
            Failure::Transport(why) => why,
            Failure::Redirect(code) => format!("HTTP {code}"),
        })?;
        // The socket's timeout is the whole attempt's; shortened once the attempt has used
        // more than a second of it (not before each read: that is a system call each).
        if self.read_timeout > left + TIMEOUT_SLACK {
            self.stream.set_read_timeout(Some(left)).map_err(|e| e.to_string())?;
            self.read_timeout = left;
        }
        // Room for at least 8 KiB more (several replies of a pipelined batch in one read):
        // consumed bytes make way first.
        if self.buf.len() - self.end < READ_ROOM && self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.len() - self.end < READ_ROOM {
            let grown = (self.end + READ_ROOM).max(2 * self.buf.len());
            self.buf.resize(grown, 0);
        }
        let end = self.end;
        let read = loop {
            match self.stream.read(&mut self.buf[end..]) {
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        match read {
            Ok(n) => {
                self.end += n;
                Ok(n > 0)
            }
            Err(e) => Err(e.to_string()),
        }
    }

    /// More bytes, which must come.
    fn more(&mut self) -> Result<(), Exchange> {
        match self.fill() {
            Ok(true) => Ok(()),
            Ok(false) => Err(transport(CLOSED_EARLY.into())),
            Err(why) => Err(transport(why)),
        }
    }

    /// The next `len` bytes.
    fn take(&mut self, len: usize) -> Result<Vec<u8>, Exchange> {
        while self.unread().len() < len {
            self.more()?;
        }
        let body = self.unread().get(..len).unwrap_or_default().to_vec();
        self.start += len;
        Ok(body)
    }

    fn read_exact_body(&mut self, len: usize) -> Result<Vec<u8>, Exchange> {
        self.take(len)
    }

    /// A line ending in CRLF (RFC 9112 §7.1), without it; at most 4 KiB.
    fn line(&mut self) -> Result<Vec<u8>, Exchange> {
        loop {
            if let Some(at) = self.unread().windows(2).position(|w| w == b"\r\n") {
                let line = self.take(at)?;
                self.start += 2;
                return Ok(line);
            }
            if self.unread().len() > 4096 {
                return Err(transport("chunk line over 4 KiB".into()));
            }
            self.more()?;
        }
    }

    /// A chunked body (RFC 9112 §7.1): chunks until the last (size 0), then trailer fields.
    fn read_chunked(&mut self, max_body: usize) -> Result<Vec<u8>, Exchange> {
        let mut body = Vec::new();
        loop {
            let line = self.line()?;
            let text = std::str::from_utf8(&line).unwrap_or_default();
            let size = text.split(';').next().unwrap_or_default().trim();
            let size = u64::from_str_radix(size, 16)
                .map_err(|_| transport(format!("chunk size {text:?}")))?;
            if size == 0 {
                break;
            }
            if body.len() as u64 + size > max_body as u64 {
                return Err(transport(format!("reply body over {max_body} bytes")));
            }
            body.extend_from_slice(&self.take(size as usize)?);
            if !self.line()?.is_empty() {
                return Err(transport("no CRLF after a chunk".into()));
            }
        }
        // Trailer fields, up to the empty line.
        while !self.line()?.is_empty() {}
        Ok(body)
    }

    /// Everything until the server closes the connection, at most `max_body` bytes.
    fn read_to_close(&mut self, max_body: usize) -> Result<Vec<u8>, Exchange> {
        loop {
            if self.unread().len() > max_body {
                return Err(transport(format!("reply body over {max_body} bytes")));
            }
            match self.fill() {
                Ok(true) => {}
                Ok(false) => {
                    let body = self.unread().to_vec();
                    self.start = self.end;
                    return Ok(body);
                }
                Err(why) => return Err(transport(why)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A server on loopback that answers every request on a connection with the next of
    /// `replies` (raw bytes), closing the connection after `per_connection` replies; counts
    /// connections.
    fn serve(replies: Vec<&'static [u8]>, per_connection: usize) -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/tsa?x=1", listener.local_addr().expect("addr"));
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = connections.clone();
        std::thread::spawn(move || {
            let mut next = replies.into_iter().cycle();
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                counted.fetch_add(1, Ordering::SeqCst);
                for _ in 0..per_connection {
                    // The request: head, then a Content-Length body of 3 bytes.
                    let mut seen = Vec::new();
                    let mut byte = [0u8; 1];
                    while !seen.ends_with(b"\r\n\r\nabc") {
                        match stream.read(&mut byte) {
                            Ok(1) => seen.push(byte[0]),
                            _ => break,
                        }
                    }
                    assert!(seen.starts_with(b"POST /tsa?x=1 HTTP/1.1\r\nHost: 127.0.0.1:"));
                    let _ = stream.write_all(next.next().unwrap_or_default());
                }
            }
        });
        (url, connections)
    }

    fn client_for(url: &str) -> PlainHttp {
        PlainHttp::for_url(url, Duration::from_secs(5), "test").expect("plain http URL")
    }

    fn post(client: &PlainHttp) -> Result<Reply, Failure> {
        client.post(b"abc", "application/x", "application/y", 1 << 16)
    }

    #[test]
    fn urls_it_speaks_and_those_it_leaves_to_ureq() {
        let c = |url| PlainHttp::for_url(url, Duration::from_secs(1), "t");
        let at = |url| c(url).map(|p| (p.authority, p.target));
        assert_eq!(at("http://tsa.example"), Some(("tsa.example:80".into(), "/".into())));
        assert_eq!(at("HTTP://h:8080/a/b?c#f"), Some(("h:8080".into(), "/a/b?c".into())));
        assert_eq!(at("http://[::1]/"), Some(("[::1]:80".into(), "/".into())));
        assert_eq!(at("http://[::1]:3161?q"), Some(("[::1]:3161".into(), "/?q".into())));
        for other in ["https://h/", "http://user:pw@h/", "http:///x", "ftp://h/"] {
            assert!(c(other).is_none(), "{other}");
        }
    }

    #[test]
    fn content_length_replies_reuse_one_connection() {
        let reply: &[u8] =
            b"HTTP/1.1 200 OK\r\nContent-Type: application/y\r\nContent-Length: 5\r\n\r\nhello";
        let (url, connections) = serve(vec![reply], 100);
        let client = client_for(&url);
        for _ in 0..3 {
            let r = post(&client).expect("reply");
            assert_eq!(
                (r.status, r.content_type.as_str(), &r.body[..]),
                (200, "application/y", &b"hello"[..])
            );
        }
        assert_eq!(connections.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn chunked_interim_and_close_delimited_replies() {
        let chunked: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nhel\r\n2\r\nlo\r\n0\r\nTrailer: 1\r\n\r\n";
        let (url, connections) = serve(vec![chunked], 100);
        let client = client_for(&url);
        for _ in 0..2 {
            assert_eq!(post(&client).expect("chunked").body, b"hello");
        }
        assert_eq!(connections.load(Ordering::SeqCst), 1);

        // HTTP/1.0 without a length: the body ends when the server closes, and the next request
        // needs a new connection.
        let (url, connections) = serve(vec![b"HTTP/1.0 503 Busy\r\n\r\nlater"], 1);
        let client = client_for(&url);
        for _ in 0..2 {
            let r = post(&client).expect("close-delimited");
            assert_eq!((r.status, &r.body[..]), (503, &b"later"[..]));
        }
        assert_eq!(connections.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_connection_the_server_closed_while_idle_is_replaced() {
        // Keep-alive by the reply's word, but the server closes after each reply.
        let reply: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        let (url, connections) = serve(vec![reply], 1);
        let client = client_for(&url);
        for _ in 0..3 {
            assert_eq!(post(&client).expect("reply").body, b"ok");
        }
        assert_eq!(connections.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn malformed_and_oversized_replies_and_redirects_are_failures() {
        let cases: [(&'static [u8], &str); 5] = [
            (b"SMTP ready\r\n\r\n", "not an HTTP reply"),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 99999999\r\n\r\n", "reply body of"),
            (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", "Transfer-Encoding"),
            (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "chunk size"),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", "closed before"),
        ];
        for (reply, expected) in cases {
            let (url, _) = serve(vec![reply], 1);
            match post(&client_for(&url)) {
                Err(Failure::Transport(why)) => assert!(why.contains(expected), "{why}"),
                other => panic!("{other:?}"),
            }
        }
        let (url, _) = serve(
            vec![b"HTTP/1.1 301 Moved\r\nLocation: https://x/\r\nContent-Length: 0\r\n\r\n"],
            1,
        );
        assert!(matches!(post(&client_for(&url)), Err(Failure::Redirect(301))));
        let refused = format!("http://127.0.0.1:{}/", {
            let l = TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").port()
        });
        assert!(matches!(post(&client_for(&refused)), Err(Failure::Transport(_))));
    }
}
