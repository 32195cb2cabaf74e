//! SMTP load client for `benches/relay.sh` and `benches/tls.sh`: N concurrent clients
//! each send M messages (10 KB) to 127.0.0.1:PORT, optionally with AUTH PLAIN, either
//! over one connection per client or with a new connection (and AUTH) per message.
//! Prints messages/s, the p50/p99 latency of one message (MAIL to the final 250, or the
//! whole connection with `--per-connection`) and the client's own CPU time.
//!
//! `--tls` speaks implicit TLS (rustls, ring provider; TLS 1.3, or 1.2 only with
//! `--tls12`). The server's certificate is not checked at all (no chain, no handshake
//! signature): a benchmark of the server must not spend its cores on the client.
//! Without `--resume` every handshake is a full one; with it all connections share one
//! client session store, so handshakes resume (TLS 1.3 tickets; with `--tls12`, session
//! IDs, which exercises the server's session cache). Full and resumed handshakes are
//! counted and printed, so a run shows what it measured.
//!
//! `--threads N` sets the client's tokio worker threads (2; 1 is the current-thread
//! runtime, the cheapest per connection).
//!
//! `--idle N` instead opens N plain connections, reads their greetings, holds them for
//! `--hold` seconds and closes them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, HandshakeKind, SignatureScheme};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

struct Opts {
    port: u16,
    clients: usize,
    messages: usize,
    auth: Option<String>,
    per_connection: bool,
    idle: usize,
    hold: u64,
    threads: usize,
    tls: bool,
    resume: bool,
    tls12: bool,
}

fn parse() -> Opts {
    let mut o = Opts {
        port: 0,
        clients: 1,
        messages: 100,
        auth: None,
        per_connection: false,
        idle: 0,
        hold: 5,
        threads: 2,
        tls: false,
        resume: false,
        tls12: false,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let v = |i: usize| args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--port" => o.port = v(i).parse().unwrap(),
            "--clients" => o.clients = v(i).parse().unwrap(),
            "--messages" => o.messages = v(i).parse().unwrap(),
            "--auth" => o.auth = Some(v(i)),
            "--idle" => o.idle = v(i).parse().unwrap(),
            "--hold" => o.hold = v(i).parse().unwrap(),
            "--threads" => o.threads = v(i).parse().unwrap(),
            flag @ ("--per-connection" | "--tls" | "--resume" | "--tls12") => {
                *match flag {
                    "--per-connection" => &mut o.per_connection,
                    "--tls" => &mut o.tls,
                    "--resume" => &mut o.resume,
                    _ => &mut o.tls12,
                } = true;
                i += 1;
                continue;
            }
            "--bench" => {
                i += 1;
                continue;
            }
            other => panic!("unknown option {other} (see benches/relay.rs)"),
        }
        i += 2;
    }
    assert!(o.port != 0, "--port is required");
    assert!(o.tls || !(o.resume || o.tls12), "--resume and --tls12 need --tls");
    o
}

/// Accepts any certificate and any handshake signature (see the module comment).
#[derive(Debug)]
struct NoVerify(Vec<SignatureScheme>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.clone()
    }
}

/// One client configuration for the whole run: with `--resume` its session store is
/// what lets later connections resume; without it resumption is off.
fn tls_connector(o: &Opts) -> TlsConnector {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let schemes = provider.signature_verification_algorithms.supported_schemes();
    let versions: &[&rustls::SupportedProtocolVersion] = if o.tls12 {
        &[&rustls::version::TLS12]
    } else {
        &[&rustls::version::TLS13]
    };
    let mut c = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(NoVerify(schemes)))
        .with_no_client_auth();
    c.resumption = if o.resume {
        // Session IDs only for TLS 1.2, so that the server's session cache is what resumes.
        rustls::client::Resumption::in_memory_sessions(256)
            .tls12_resumption(rustls::client::Tls12Resumption::SessionIdOnly)
    } else {
        rustls::client::Resumption::disabled()
    };
    TlsConnector::from(Arc::new(c))
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// How one connection's handshake went.
#[derive(Clone, Copy, PartialEq)]
enum Handshake {
    Plain,
    Full,
    Resumed,
}

struct Client {
    // Writes go through the BufReader to the stream underneath.
    io: BufReader<Box<dyn Stream>>,
    handshake: Handshake,
}

impl Client {
    async fn reply(&mut self) -> String {
        let mut all = String::new();
        loop {
            let mut l = String::new();
            if self.io.read_line(&mut l).await.unwrap() == 0 {
                panic!("connection closed; got {all:?}");
            }
            all.push_str(&l);
            if l.as_bytes().get(3) != Some(&b'-') {
                return all;
            }
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.io.write_all(bytes).await.unwrap();
        // A no-op for TCP; tokio-rustls sends its records in write_all already.
        self.io.flush().await.unwrap();
    }

    async fn cmd(&mut self, line: &str, want: &str) {
        self.send(line.as_bytes()).await;
        let r = self.reply().await;
        assert!(r.starts_with(want), "{line:?} -> {r:?}");
    }

    async fn open(port: u16, auth: &Option<String>, tls: Option<&TlsConnector>) -> Client {
        let s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        s.set_nodelay(true).unwrap();
        let (io, handshake): (Box<dyn Stream>, _) = match tls {
            None => (Box::new(s), Handshake::Plain),
            Some(t) => {
                let name = ServerName::try_from("bench.test").unwrap();
                let s = t.connect(name, s).await.unwrap();
                let kind = match s.get_ref().1.handshake_kind() {
                    Some(HandshakeKind::Resumed) => Handshake::Resumed,
                    _ => Handshake::Full,
                };
                (Box::new(s), kind)
            }
        };
        let mut c = Client {
            io: BufReader::new(io),
            handshake,
        };
        let g = c.reply().await;
        assert!(g.starts_with("220"), "{g}");
        c.cmd("EHLO bench.test\r\n", "250").await;
        if let Some(up) = auth {
            use base64::Engine as _;
            let (u, p) = up.split_once(':').unwrap();
            let b = base64::engine::general_purpose::STANDARD.encode(format!("\0{u}\0{p}"));
            // 235 from ofmipd; smtp-sink takes any credentials with 250.
            c.cmd(&format!("AUTH PLAIN {b}\r\n"), "2").await;
        }
        c
    }

    async fn message(&mut self, body: &[u8]) {
        self.send(b"MAIL FROM:<bench@example.com>\r\nRCPT TO:<rcpt@example.org>\r\nDATA\r\n")
            .await;
        for want in ["250", "250", "354"] {
            let r = self.reply().await;
            assert!(r.starts_with(want), "{r}");
        }
        self.send(body).await;
        let r = self.reply().await;
        assert!(r.starts_with("250"), "{r}");
    }

    async fn quit(mut self) {
        if self.handshake == Handshake::Plain {
            // As before TLS was added here: QUIT and close without waiting.
            let _ = self.io.write_all(b"QUIT\r\n").await;
        } else {
            // A TLS client waits for 221 (closing first would cut the server's reply).
            self.cmd("QUIT\r\n", "221").await;
        }
    }
}

fn body() -> Vec<u8> {
    let mut b = b"From: Bench <bench@example.com>\r\nTo: rcpt@example.org\r\nSubject: relay benchmark\r\n\r\n".to_vec();
    let line = b"The quick brown fox jumps over the lazy dog 0123456789 abcdefghij\r\n";
    while b.len() < 10 * 1024 {
        b.extend_from_slice(line);
    }
    b.extend_from_slice(b".\r\n");
    b
}

fn main() {
    let o = parse();
    // Two worker threads unless told (`--threads 1`: one thread, tokio's current-thread runtime).
    let rt = if o.threads <= 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(o.threads)
            .enable_all()
            .build()
    };
    rt.unwrap().block_on(run(o));
}

async fn run(o: Opts) {
    if o.idle > 0 {
        let mut conns = vec![];
        for _ in 0..o.idle {
            let s = TcpStream::connect(("127.0.0.1", o.port)).await.unwrap();
            let mut r = BufReader::new(s);
            let mut g = String::new();
            r.read_line(&mut g).await.unwrap();
            assert!(g.starts_with("220"));
            conns.push(r);
        }
        println!("holding {} idle connections for {} s", conns.len(), o.hold);
        tokio::time::sleep(Duration::from_secs(o.hold)).await;
        return;
    }
    let body = Arc::new(body());
    let tls = o.tls.then(|| tls_connector(&o));
    let cpu_before = cpu_seconds();
    let start = Instant::now();
    let mut tasks = vec![];
    for _ in 0..o.clients {
        let (auth, body, port, n, per) = (o.auth.clone(), body.clone(), o.port, o.messages, o.per_connection);
        let tls = tls.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(n);
            let mut resumed = 0usize;
            let mut c = if per {
                None
            } else {
                Some(Client::open(port, &auth, tls.as_ref()).await)
            };
            for _ in 0..n {
                let t = Instant::now();
                if per {
                    let mut one = Client::open(port, &auth, tls.as_ref()).await;
                    resumed += usize::from(one.handshake == Handshake::Resumed);
                    one.message(&body).await;
                    one.quit().await;
                } else {
                    c.as_mut().unwrap().message(&body).await;
                }
                lat.push(t.elapsed());
            }
            if let Some(c) = c {
                resumed += usize::from(c.handshake == Handshake::Resumed);
            }
            (lat, resumed)
        }));
    }
    let (mut all, mut resumed) = (vec![], 0);
    for t in tasks {
        let (lat, r) = t.await.unwrap();
        all.extend(lat);
        resumed += r;
    }
    let secs = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_before;
    all.sort();
    let p = |q: f64| all[((all.len() as f64 * q) as usize).min(all.len() - 1)].as_secs_f64() * 1000.0;
    let connections = if o.per_connection { all.len() } else { o.clients };
    let tls_note = if o.tls {
        format!(
            " tls={}: {} full, {} resumed handshakes",
            if o.tls12 { "1.2" } else { "1.3" },
            connections - resumed,
            resumed
        )
    } else {
        String::new()
    };
    println!(
        "clients={} messages={} per_connection={} auth={}{tls_note} => {:.0} msg/s, p50 {:.2} ms, p99 {:.2} ms; client CPU {:.0}% of a core",
        o.clients,
        all.len(),
        o.per_connection,
        o.auth.is_some(),
        all.len() as f64 / secs,
        p(0.50),
        p(0.99),
        cpu / secs * 100.0
    );
}

/// User and system CPU time of this process so far.
fn cpu_seconds() -> f64 {
    let mut u = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a whole rusage into the pointer it is given, which points
    // at a zeroed, properly aligned rusage that lives across the call.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, u.as_mut_ptr()) };
    assert_eq!(rc, 0, "getrusage");
    // SAFETY: zero-initialised and filled in by the successful call above.
    let u = unsafe { u.assume_init() };
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}
