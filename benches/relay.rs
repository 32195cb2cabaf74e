//! SMTP load client for `benches/relay.sh`: N concurrent clients each send M messages
//! (10 KB) to 127.0.0.1:PORT, optionally with AUTH PLAIN, either over one connection per
//! client or with a new connection (and AUTH) per message. Prints messages/s and the
//! p50/p99 latency of one message (MAIL to the final 250). `--idle N` instead opens N
//! connections, reads their greetings, holds them for `--hold` seconds and closes them.

use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

struct Opts {
    port: u16,
    clients: usize,
    messages: usize,
    auth: Option<String>,
    per_connection: bool,
    idle: usize,
    hold: u64,
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
            "--per-connection" => {
                o.per_connection = true;
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
    o
}

struct Client {
    r: BufReader<tokio::net::tcp::OwnedReadHalf>,
    w: tokio::net::tcp::OwnedWriteHalf,
}

impl Client {
    async fn reply(&mut self) -> String {
        let mut all = String::new();
        loop {
            let mut l = String::new();
            if self.r.read_line(&mut l).await.unwrap() == 0 {
                panic!("connection closed; got {all:?}");
            }
            all.push_str(&l);
            if l.as_bytes().get(3) != Some(&b'-') {
                return all;
            }
        }
    }

    async fn cmd(&mut self, line: &str, want: &str) {
        self.w.write_all(line.as_bytes()).await.unwrap();
        let r = self.reply().await;
        assert!(r.starts_with(want), "{line:?} -> {r:?}");
    }

    async fn open(port: u16, auth: &Option<String>) -> Client {
        let s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        s.set_nodelay(true).unwrap();
        let (r, w) = s.into_split();
        let mut c = Client {
            r: BufReader::new(r),
            w,
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
        self.w
            .write_all(b"MAIL FROM:<bench@example.com>\r\nRCPT TO:<rcpt@example.org>\r\nDATA\r\n")
            .await
            .unwrap();
        for want in ["250", "250", "354"] {
            let r = self.reply().await;
            assert!(r.starts_with(want), "{r}");
        }
        self.w.write_all(body).await.unwrap();
        let r = self.reply().await;
        assert!(r.starts_with("250"), "{r}");
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

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let o = parse();
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
    let body = std::sync::Arc::new(body());
    let start = Instant::now();
    let mut tasks = vec![];
    for _ in 0..o.clients {
        let (auth, body, port, n, per) = (o.auth.clone(), body.clone(), o.port, o.messages, o.per_connection);
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(n);
            let mut c = if per {
                None
            } else {
                Some(Client::open(port, &auth).await)
            };
            for _ in 0..n {
                let t = Instant::now();
                if per {
                    let mut one = Client::open(port, &auth).await;
                    one.message(&body).await;
                    let _ = one.w.write_all(b"QUIT\r\n").await;
                } else {
                    c.as_mut().unwrap().message(&body).await;
                }
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let mut all = vec![];
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let secs = start.elapsed().as_secs_f64();
    all.sort();
    let p = |q: f64| all[((all.len() as f64 * q) as usize).min(all.len() - 1)].as_secs_f64() * 1000.0;
    println!(
        "clients={} messages={} per_connection={} auth={} => {:.0} msg/s, p50 {:.2} ms, p99 {:.2} ms",
        o.clients,
        all.len(),
        o.per_connection,
        o.auth.is_some(),
        all.len() as f64 / secs,
        p(0.50),
        p(0.99)
    );
}
