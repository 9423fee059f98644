//! Pipelined timestamp requests (RFC 9112 §9.3.2) to a plain-HTTP TSA that keeps its
//! connections open: one thread of the client writes every request queued meanwhile in one
//! `write` on one keep-alive connection and reads the replies in order, checking each
//! ([`ReplyChecker`]) before its token goes to whoever asked ([`super::PendingToken`]).
//!
//! Why: a run asked for two tokens a licence, each from a thread blocked on its own
//! connection, eight such threads a core. On loopback a `send` cost ≈ 20 µs of the sender's
//! CPU (the receiver's TCP work runs in its context), and the blocked threads shared the
//! caches with the rendering ones. Here the renderers never wait: they queue requests and
//! collect tokens once their chunk is signed.
//!
//! RFC 9112 §9.3.2 advises against pipelining after a non-idempotent method: were the
//! connection lost, the client could not tell which requests the server acted on. For a
//! timestamp request that is harmless — asked again, the TSA signs another token over the same
//! imprint — so requests without a reply are sent again on a new connection. A new
//! connection carries one request until its reply says the server keeps it open; only then
//! are up to [`MAX_IN_FLIGHT`] written ahead. Failures back off as single requests do
//! (`BACKOFF`), and after the last retry every request waiting is answered
//! [`TsaError::Unavailable`].

use std::collections::VecDeque;
use std::io::Write;
use std::sync::{Arc, mpsc};
use std::thread::Thread;
use std::time::{Duration, Instant};

use super::asn1::TimeStampReq;
use super::http::{Attempt, BACKOFF, MAX_REPLY_BYTES, reply_body};
use super::plain_http::{Connection, Exchange, Failure, PlainHttp};
use super::{Token, TsaError};

/// Checks a reply body against its request and reads the token ([`super::token::ReplyChecker`]).
pub(super) type Check = Box<dyn Fn(&TimeStampReq, &[u8]) -> Result<Token, TsaError> + Send>;

/// Requests written ahead of their replies on one connection: enough to keep a TSA busy across
/// a round trip, few enough that their bytes (≈ 300 each) always fit in the socket buffers, so
/// a write never waits on a server that waits on us to read.
pub(super) const MAX_IN_FLIGHT: usize = 64;

/// One request: its HTTP bytes, what its reply must answer, and where the token goes.
pub(super) struct Job {
    pub http: Vec<u8>,
    pub req: TimeStampReq,
    pub reply: mpsc::SyncSender<Result<Token, TsaError>>,
    /// Replies that asked to try again later (HTTP 5xx, 429).
    pub retries: u32,
}

/// How long a batch's replies and the next requests gather before they are read and written.
/// A licence's two tokens are asked for within ≈ 1 ms of each other, and a local TSA signs
/// one in ≈ 0.1–0.3 ms; a token is not needed before its chunk is signed (or a caller waits,
/// and then this is cut short).
const GATHER: Duration = Duration::from_millis(10);

/// The queue of the client's pipelining thread; the thread ends when this is dropped.
#[derive(Debug)]
pub(super) struct Pipeline {
    jobs: mpsc::Sender<Job>,
    thread: Thread,
}

impl Pipeline {
    /// Starts the thread that speaks to `plain`'s server.
    pub(super) fn start(
        plain: Arc<PlainHttp>,
        check: Check,
        url: String,
    ) -> std::io::Result<Pipeline> {
        let (jobs, queue) = mpsc::channel();
        let worker = Worker {
            plain,
            check,
            url,
            conn: None,
            depth: 1,
            served: 0,
            written: VecDeque::new(),
            queued: VecDeque::new(),
            failures: 0,
        };
        let handle = std::thread::Builder::new()
            .name("elicence-tsa".into())
            .spawn(move || worker.run(&queue))?;
        Ok(Pipeline { jobs, thread: handle.thread().clone() })
    }

    /// The pipelining thread, to unpark when a caller waits for a token.
    pub(super) fn thread(&self) -> &Thread {
        &self.thread
    }

    /// Queues `job`; false when the thread has ended.
    pub(super) fn send(&self, job: Job) -> bool {
        self.jobs.send(job).is_ok()
    }
}

struct Worker {
    plain: Arc<PlainHttp>,
    check: Check,
    url: String,
    conn: Option<Connection>,
    /// Requests the current connection may have without a reply: 1 until it has shown itself
    /// persistent, then [`MAX_IN_FLIGHT`].
    depth: usize,
    /// Written on the current connection, in order, awaiting their replies.
    written: VecDeque<Job>,
    /// Not written yet, in order.
    queued: VecDeque<Job>,
    /// Replies read on the current connection.
    served: usize,
    /// Connections lost in a row without a reply in between.
    failures: u32,
}

impl Worker {
    fn run(mut self, queue: &mpsc::Receiver<Job>) {
        loop {
            if self.written.is_empty() && self.queued.is_empty() {
                match queue.recv() {
                    Ok(job) => self.queued.push_back(job),
                    Err(_) => return,
                }
            }
            self.queued.extend(queue.try_iter());
            self.write_queued();
            if self.written.is_empty() {
                continue;
            }
            // The TSA answers the batch meanwhile and the next requests gather, so that the
            // replies are read together and the next write carries several requests: a few
            // wake-ups and one `send` a batch rather than each a token. A caller that needs its
            // token now cuts this short ([`super::PendingToken::wait`] unparks this thread).
            std::thread::park_timeout(GATHER);
            while !self.written.is_empty() {
                self.read_one();
                // A TSA slower than the gathering: keep it busy.
                self.queued.extend(queue.try_iter());
                if self.queued.len() >= MAX_IN_FLIGHT / 4 {
                    self.write_queued();
                }
            }
        }
    }

    /// Writes as many queued requests as the connection may take, in one write.
    fn write_queued(&mut self) {
        let room = self.depth.saturating_sub(self.written.len()).min(self.queued.len());
        if room == 0 {
            return;
        }
        if self.conn.is_none() {
            let deadline = Instant::now() + self.plain.timeout();
            match self.plain.connect(deadline) {
                Ok(stream) => {
                    self.conn = Some(Connection::new(stream, deadline, self.plain.timeout()));
                    self.depth = 1;
                    self.served = 0;
                }
                Err(failure) => return self.lost(failure_text(failure), false),
            }
        }
        let room = room.min(self.depth);
        let batch: Vec<Job> = self.queued.drain(..room).collect();
        let mut bytes = Vec::with_capacity(batch.iter().map(|j| j.http.len()).sum());
        for job in &batch {
            bytes.extend_from_slice(&job.http);
        }
        self.written.extend(batch);
        let Some(conn) = self.conn.as_mut() else { return };
        if let Err(e) = conn.stream().write_all(&bytes) {
            let stale = self.served > 0;
            self.lost(e.to_string(), stale);
        }
    }

    /// Reads the reply to the oldest request written and answers it.
    fn read_one(&mut self) {
        let Some(conn) = self.conn.as_mut() else { return };
        conn.set_deadline(Instant::now() + self.plain.timeout(), self.plain.timeout());
        let reply = match conn.read_reply(MAX_REPLY_BYTES as usize) {
            Ok(reply) => reply,
            Err(Exchange::Failed(Failure::Redirect(code))) => {
                // Not followed here (the URL answered without one when the client started):
                // this request fails, the connection goes.
                self.conn = None;
                self.requeue_written();
                if let Some(job) = self.queued.pop_front() {
                    let detail = format!("HTTP {code}: the TSA now redirects");
                    let _ = job.reply.send(Err(TsaError::BadReply { detail }));
                }
                return;
            }
            // A connection that has served replies, closed by the server (idle too long, or
            // its limit of requests a connection): again on a new one, at once. Each new
            // connection carries one request until it answers, so this always progresses.
            Err(e) if self.served > 0 => return self.lost(failure_text(e.into_failure()), true),
            Err(e) => return self.lost(failure_text(e.into_failure()), false),
        };
        self.served += 1;
        let Some(mut job) = self.written.pop_front() else { return };
        self.failures = 0;
        if reply.keep_alive {
            self.depth = MAX_IN_FLIGHT;
        } else {
            // The server closes after this reply: the requests written after it go again.
            self.conn = None;
            self.requeue_written();
        }
        match reply_body(reply) {
            Ok(body) => {
                let _ = job.reply.send((self.check)(&job.req, &body));
            }
            Err(Attempt::Fatal(e)) => {
                let _ = job.reply.send(Err(e));
            }
            Err(Attempt::Retry(why)) => match BACKOFF.get(job.retries as usize) {
                Some(pause) => {
                    std::thread::sleep(*pause);
                    job.retries += 1;
                    self.queued.push_front(job);
                }
                None => {
                    let _ = job.reply.send(Err(unavailable(&self.url, why)));
                }
            },
        }
    }

    /// The connection failed (`why`): its requests go again on a new one after a pause, or,
    /// after the last retry, every request waiting fails. A `stale` connection (one that had
    /// served replies and was closed by the server) is replaced without a pause.
    fn lost(&mut self, why: String, stale: bool) {
        self.conn = None;
        self.requeue_written();
        if stale {
            return;
        }
        match BACKOFF.get(self.failures as usize) {
            Some(pause) => {
                self.failures += 1;
                std::thread::sleep(*pause);
            }
            None => {
                self.failures = 0;
                for job in self.queued.drain(..) {
                    let _ = job.reply.send(Err(unavailable(&self.url, why.clone())));
                }
            }
        }
    }

    /// The written requests without a reply go back to the front of the queue, in order.
    fn requeue_written(&mut self) {
        while let Some(job) = self.written.pop_back() {
            self.queued.push_front(job);
        }
    }
}

/// Every attempt at `url` failed, the last because of `why`.
fn unavailable(url: &str, why: String) -> TsaError {
    TsaError::Unavailable { url: url.to_owned(), attempts: BACKOFF.len() as u32 + 1, detail: why }
}

fn failure_text(failure: Failure) -> String {
    match failure {
        Failure::Transport(why) => why,
        Failure::Redirect(code) => format!("HTTP {code}"),
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Read};
    use std::net::{TcpListener, TcpStream};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use der::Encode;

    use super::*;
    use crate::timestamp::token::{imprint_of, request};

    /// How the test server answers.
    #[derive(Clone, Copy)]
    struct Behaviour {
        /// Replies on a connection before the server closes it (after reading all it was sent).
        per_connection: usize,
        /// Says `Connection: close` with every reply (an HTTP/1.1 server that does not keep
        /// connections).
        close: bool,
        /// The status of the reply to every n-th request (counted over the server's life), once.
        fail_every: Option<(usize, u16)>,
    }

    /// What the server saw.
    #[derive(Default)]
    struct Seen {
        connections: AtomicUsize,
        requests: AtomicUsize,
        /// The most requests read from a connection before the replies to them were written.
        most_ahead: AtomicUsize,
    }

    /// A loopback server that answers each POST with its own body (the request's DER), in
    /// order; it reads everything the client has sent before answering, so pipelined requests
    /// are seen as such.
    fn serve(behaviour: Behaviour) -> (Arc<PlainHttp>, Arc<Seen>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/tsa", listener.local_addr().expect("addr"));
        let seen = Arc::new(Seen::default());
        let counted = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                counted.connections.fetch_add(1, Ordering::SeqCst);
                let seen = counted.clone();
                std::thread::spawn(move || answer(stream, behaviour, &seen));
            }
        });
        let plain = PlainHttp::for_url(&url, Duration::from_secs(5), "test").expect("plain URL");
        (Arc::new(plain), seen)
    }

    fn answer(stream: TcpStream, behaviour: Behaviour, seen: &Seen) {
        let mut writer = stream.try_clone().expect("clone");
        let mut reader = BufReader::new(stream);
        let mut bodies = VecDeque::new();
        let mut answered = 0;
        loop {
            // Every request already sent (at least one), then the replies to them.
            loop {
                let mut length = 0;
                let mut line = String::new();
                loop {
                    line.clear();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    if line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.strip_prefix("Content-Length: ") {
                        length = v.trim().parse().expect("length");
                    }
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).expect("body");
                bodies.push_back(body);
                if reader.buffer().is_empty() {
                    break;
                }
            }
            seen.most_ahead.fetch_max(bodies.len(), Ordering::SeqCst);
            while let Some(body) = bodies.pop_front() {
                let n = seen.requests.fetch_add(1, Ordering::SeqCst) + 1;
                let status = match behaviour.fail_every {
                    Some((every, status)) if n.is_multiple_of(every) => status,
                    _ => 200,
                };
                let connection = if behaviour.close { "Connection: close\r\n" } else { "" };
                let head = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/timestamp-reply\r\n\
                     {connection}Content-Length: {}\r\n\r\n",
                    body.len()
                );
                let _ = writer.write_all(head.as_bytes());
                let _ = writer.write_all(&body);
                answered += 1;
                if behaviour.close || answered == behaviour.per_connection {
                    return;
                }
            }
        }
    }

    /// The echoed body must be the request: the reply went to the job that asked.
    fn echo_check() -> Check {
        Box::new(|req: &TimeStampReq, body: &[u8]| {
            let der = req.to_der().map_err(|e| TsaError::Encode { detail: e.to_string() })?;
            if body != der {
                return Err(TsaError::BadReply { detail: "another request's reply".into() });
            }
            Ok(Token {
                der: body.to_vec(),
                gen_time: chrono::Utc::now(),
                imprint: req.message_imprint.clone(),
                serial: String::new(),
            })
        })
    }

    /// Queues `n` requests at once and returns, in order, what each message got.
    fn stamp_many(plain: &Arc<PlainHttp>, n: usize) -> Vec<(Vec<u8>, Result<Token, TsaError>)> {
        let pipeline = Pipeline::start(plain.clone(), echo_check(), "test".into()).expect("start");
        let mut waiting = Vec::new();
        for i in 0..n {
            let message = format!("message {i}").into_bytes();
            let imprint = imprint_of(&message).expect("imprint");
            let nonce = (i as u64 + 1).to_be_bytes();
            let (req, der) = request(&imprint, &nonce).expect("request");
            let http = plain.request(&der, "application/timestamp-query", "x");
            let (reply, token) = mpsc::sync_channel(1);
            assert!(pipeline.send(Job { http, req, reply, retries: 0 }));
            waiting.push((message, token));
        }
        waiting
            .into_iter()
            .map(|(message, token)| {
                let token = token.recv_timeout(Duration::from_secs(30)).expect("an answer");
                (message, token)
            })
            .collect()
    }

    fn assert_each_got_its_own(results: &[(Vec<u8>, Result<Token, TsaError>)]) {
        for (message, token) in results {
            let token = token.as_ref().expect("token");
            assert_eq!(token.imprint, imprint_of(message).expect("imprint"));
        }
    }

    #[test]
    fn requests_are_written_ahead_on_one_kept_connection() {
        let keep = Behaviour { per_connection: usize::MAX, close: false, fail_every: None };
        let (plain, seen) = serve(keep);
        let results = stamp_many(&plain, 300);
        assert_each_got_its_own(&results);
        assert_eq!(seen.connections.load(Ordering::SeqCst), 1);
        assert_eq!(seen.requests.load(Ordering::SeqCst), 300);
        // The first request alone (the connection not yet known to stay open), then several
        // written before their replies: pipelined.
        assert!(seen.most_ahead.load(Ordering::SeqCst) > 1);
    }

    #[test]
    fn requests_a_closed_connection_left_unanswered_are_sent_again() {
        // The server answers 7 requests a connection and drops the rest it was sent.
        let limited = Behaviour { per_connection: 7, close: false, fail_every: None };
        let (plain, seen) = serve(limited);
        let results = stamp_many(&plain, 200);
        assert_each_got_its_own(&results);
        assert!(seen.connections.load(Ordering::SeqCst) >= 200 / 7);

        // A server that closes after every reply: one request a connection, none lost.
        let closing = Behaviour { per_connection: usize::MAX, close: true, fail_every: None };
        let (plain, seen) = serve(closing);
        let results = stamp_many(&plain, 40);
        assert_each_got_its_own(&results);
        assert_eq!(seen.connections.load(Ordering::SeqCst), 40);
        assert_eq!(seen.most_ahead.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn busy_replies_are_retried_and_refusals_are_the_requests_own() {
        // Every 5th reply says 503 once: asked again after a pause, then answered.
        let busy =
            Behaviour { per_connection: usize::MAX, close: false, fail_every: Some((5, 503)) };
        let (plain, _) = serve(busy);
        assert_each_got_its_own(&stamp_many(&plain, 12));

        // Every 4th reply is 400: that request fails, and only it.
        let refusing =
            Behaviour { per_connection: usize::MAX, close: false, fail_every: Some((4, 400)) };
        let (plain, _) = serve(refusing);
        let results = stamp_many(&plain, 12);
        let failed: Vec<usize> =
            results.iter().enumerate().filter(|(_, (_, t))| t.is_err()).map(|(i, _)| i).collect();
        assert_eq!(failed, [3, 7, 11]);
        for (i, (_, token)) in results.iter().enumerate() {
            if let Err(e) = token {
                assert!(matches!(e, TsaError::BadReply { detail } if detail == "HTTP 400"), "{i}");
            }
        }
    }

    #[test]
    fn a_server_that_is_gone_fails_every_request_after_the_retries() {
        let port = TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr");
        let url = format!("http://{port}/");
        let plain = Arc::new(PlainHttp::for_url(&url, Duration::from_secs(2), "t").expect("url"));
        let results = stamp_many(&plain, 5);
        for (_, token) in results {
            assert!(matches!(token, Err(TsaError::Unavailable { attempts: 4, .. })), "{token:?}");
        }
    }
}
