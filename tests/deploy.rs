//! Running behind proxies and under a service manager, with the real binary: PROXY
//! protocol headers (v1 and v2) from a trusted peer give the client's real address to
//! the Received field, the log, the per-address cap and the guessing budget; a header
//! from anyone else, or none from a trusted peer, is refused. Socket activation and
//! readiness notification as systemd does them.

use std::time::Duration;

use crate::hostile::{ALICE_OK, Client, code, daemon, plain};
use crate::ofmipd::setup;
use crate::util::fake_smtp::{FakeSmtp, Policy};

fn v2_header(client: [u8; 4], port: u16) -> Vec<u8> {
    let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    h.extend_from_slice(&[0x21, 0x11, 0, 12]);
    h.extend_from_slice(&client);
    h.extend_from_slice(&[127, 0, 0, 1]);
    h.extend_from_slice(&port.to_be_bytes());
    h.extend_from_slice(&587u16.to_be_bytes());
    h
}

/// Connect from 127.0.0.1 (the "proxy"), send `header`, then speak SMTP.
fn proxied(port: u16, header: &[u8]) -> Client {
    let mut c = Client::from("127.0.0.1", port);
    c.send_raw(header);
    assert!(c.reply().starts_with("220 "), "no greeting after the header");
    assert!(c.cmd("EHLO t").starts_with("250"));
    c
}

#[test]
fn a_trusted_proxy_names_the_real_client() {
    let up = FakeSmtp::start(Policy::default());
    let env = setup(up.port);
    let d = daemon(&env, &["--proxy-protocol", "127.0.0.0/30", "--auth-delay", "0"]);
    for (i, header) in [
        b"PROXY TCP4 192.0.2.10 127.0.0.1 40000 587\r\n".to_vec(),
        v2_header([198, 51, 100, 20], 40001),
    ]
    .into_iter()
    .enumerate()
    {
        let mut c = proxied(d.port, &header);
        assert_eq!(code(&c.cmd(ALICE_OK)), "235");
        c.cmd("MAIL FROM:<alice@first.example>");
        c.cmd("RCPT TO:<x@y.org>");
        c.cmd("DATA");
        assert_eq!(code(&c.cmd("Subject: t\r\n\r\nbody\r\n.")), "250");
        let data = String::from_utf8_lossy(&up.transactions()[i].data).into_owned();
        let want = ["[192.0.2.10]", "[198.51.100.20]"][i];
        let received = data.lines().find(|l| l.starts_with("Received:")).unwrap_or("");
        assert!(received.contains(want), "{received}");
        assert!(!data.contains("127.0.0.1"), "{data}");
    }
    let log = d.log_showing("client=198.51.100.20 event=connect");
    assert!(
        log.contains("client=192.0.2.10 event=connect") && log.contains("client=198.51.100.20 event=connect"),
        "{log}"
    );
}

#[test]
fn limits_and_budgets_follow_the_real_client() {
    let env = setup(1);
    let d = daemon(
        &env,
        &[
            "--proxy-protocol",
            "127.0.0.1",
            "--auth-delay",
            "0",
            "--auth-limit-ip",
            "3",
            "--connections-per-ip",
            "2",
        ],
    );
    // Three failures from 192.0.2.1 put that client over its budget...
    let mut a = proxied(d.port, b"PROXY TCP4 192.0.2.1 127.0.0.1 1 587\r\n");
    for _ in 0..3 {
        a.cmd(&plain("bob", "wrong"));
    }
    let mut a = proxied(d.port, b"PROXY TCP4 192.0.2.1 127.0.0.1 2 587\r\n");
    assert_eq!(code(&a.cmd(ALICE_OK)), "535");
    // ...while another client of the same proxy is not affected.
    let mut b = proxied(d.port, b"PROXY TCP4 192.0.2.2 127.0.0.1 3 587\r\n");
    assert_eq!(code(&b.cmd(ALICE_OK)), "235");
    // The per-address cap counts clients, not the proxy: 192.0.2.3 may hold two.
    let _c1 = proxied(d.port, b"PROXY TCP4 192.0.2.3 127.0.0.1 4 587\r\n");
    let _c2 = proxied(d.port, b"PROXY TCP4 192.0.2.3 127.0.0.1 5 587\r\n");
    let mut c3 = Client::from("127.0.0.1", d.port);
    c3.send_raw(b"PROXY TCP4 192.0.2.3 127.0.0.1 6 587\r\n");
    assert_eq!(code(&c3.reply()), "421");
    let _d1 = proxied(d.port, b"PROXY TCP4 192.0.2.4 127.0.0.1 7 587\r\n");
}

#[test]
fn headers_are_required_from_the_proxy_and_refused_from_others() {
    let env = setup(1);
    let d = daemon(&env, &["--proxy-protocol", "127.0.0.1", "--timeout", "2"]);
    // No header from the trusted peer: closed without a greeting.
    let mut c = Client::from("127.0.0.1", d.port);
    c.send_raw(b"EHLO sneaky\r\n");
    assert!(c.closed_within(Duration::from_secs(5)));
    // A silent trusted peer is closed at the deadline.
    let mut c = Client::from("127.0.0.1", d.port);
    assert!(c.closed_within(Duration::from_secs(5)));
    // A malformed header: closed.
    let mut c = Client::from("127.0.0.1", d.port);
    c.send_raw(b"PROXY TCP4 999.0.0.1 127.0.0.1 1 2\r\n");
    assert!(c.closed_within(Duration::from_secs(5)));
    // From an untrusted address, a header is refused, in either version.
    let mut c = Client::from("127.0.0.2", d.port);
    c.send_raw(b"PROXY TCP4 192.0.2.9 127.0.0.1 1 587\r\n");
    let r = c.reply();
    assert!(r.starts_with("220"), "{r}");
    let r = c.reply();
    assert!(r.starts_with("554 5.7.0"), "{r}");
    let mut c = Client::from("127.0.0.2", d.port);
    c.send_raw(&v2_header([192, 0, 2, 9], 1));
    assert!(c.reply().starts_with("220"));
    assert!(c.reply().starts_with("554 5.7.0"));
    // And an ordinary client there is served as before.
    let mut c = Client::greeted("127.0.0.2", d.port);
    assert_eq!(code(&c.cmd(ALICE_OK)), "235");
    let log = d.log_showing("not named by --proxy-protocol");
    assert!(log.contains("does not start with a PROXY header"), "{log}");
    assert!(log.contains("not named by --proxy-protocol"), "{log}");
}

// ---- TLS session resumption ----------------------------------------------------------

/// Accepts any server certificate: these tests look at resumption, not at trust.
#[derive(Debug)]
struct AnyCert(std::sync::Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &rustls::pki_types::CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &rustls::pki_types::CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn client_config(tls12_session_ids: bool) -> std::sync::Arc<rustls::ClientConfig> {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] = if tls12_session_ids {
        &[&rustls::version::TLS12]
    } else {
        &[&rustls::version::TLS13]
    };
    let mut c = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(std::sync::Arc::new(AnyCert(provider)))
        .with_no_client_auth();
    if tls12_session_ids {
        c.resumption = rustls::client::Resumption::in_memory_sessions(16)
            .tls12_resumption(rustls::client::Tls12Resumption::SessionIdOnly);
    }
    std::sync::Arc::new(c)
}

/// One implicit-TLS session: greeting, EHLO, QUIT; whether the handshake resumed.
fn tls_session(port: u16, config: &std::sync::Arc<rustls::ClientConfig>) -> bool {
    use std::io::{BufRead, Write};
    let tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let name = rustls::pki_types::ServerName::try_from("mx.test").unwrap();
    let conn = rustls::ClientConnection::new(config.clone(), name).unwrap();
    let mut tls = std::io::BufReader::new(rustls::StreamOwned::new(conn, tcp));
    let mut line = String::new();
    tls.read_line(&mut line).unwrap();
    assert!(line.starts_with("220 "), "{line}");
    // TLS 1.3 tickets come after the handshake: a round trip makes sure they arrived.
    tls.get_mut().write_all(b"EHLO c\r\n").unwrap();
    loop {
        line.clear();
        tls.read_line(&mut line).unwrap();
        if line.as_bytes().get(3) == Some(&b' ') {
            break;
        }
    }
    let resumed = tls.get_ref().conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
    let _ = tls.get_mut().write_all(b"QUIT\r\n");
    resumed
}

#[test]
fn implicit_tls_sessions_greet_and_end_with_close_notify() {
    use std::io::{BufRead, Read, Write};
    let env = setup(1);
    let (cert, key) = crate::hostile::self_signed(&env);
    let d = daemon(&env, &["-d", "--ssl", "--ssl-cert", &cert, "--ssl-key", &key]);
    // The greeting rides with the handshake's last flight; the 221 with close_notify.
    for (what, tls12) in [("TLS 1.3", false), ("TLS 1.2", true)] {
        // The second session resumes: the greeting also rides with a short handshake.
        let config = client_config(tls12);
        for round in 0..2 {
            let tcp = std::net::TcpStream::connect(("127.0.0.1", d.port)).unwrap();
            tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let name = rustls::pki_types::ServerName::try_from("mx.test").unwrap();
            let conn = rustls::ClientConnection::new(config.clone(), name).unwrap();
            let mut tls = std::io::BufReader::new(rustls::StreamOwned::new(conn, tcp));
            let mut line = String::new();
            tls.read_line(&mut line).unwrap();
            assert!(line.starts_with("220 mx.test "), "{what}: {line}");
            let resumed = tls.get_ref().conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
            assert_eq!(resumed, round == 1, "{what}, session {round}");
            tls.get_mut().write_all(b"QUIT\r\n").unwrap();
            line.clear();
            tls.read_line(&mut line).unwrap();
            assert!(line.starts_with("221 "), "{what}: {line}");
            // rustls reports a close without close_notify as UnexpectedEof.
            let mut rest = vec![];
            let n = tls.read_to_end(&mut rest);
            assert_eq!(n.map_err(|e| e.kind()), Ok(0), "{what}: no clean TLS close after 221");
        }
    }
    let log = d.log_text();
    assert_eq!(log.matches("> 220 mx.test").count(), 4, "the greeting is traced: {log}");
    assert_eq!(log.matches("> 221").count(), 4, "{log}");
    assert_eq!(log.matches("< QUIT").count(), 4, "{log}");
}

type TlsClient = std::io::BufReader<rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>>;

/// An implicit-TLS connection, greeted.
fn tls_open(port: u16, config: &std::sync::Arc<rustls::ClientConfig>) -> TlsClient {
    let tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let name = rustls::pki_types::ServerName::try_from("mx.test").unwrap();
    let conn = rustls::ClientConnection::new(config.clone(), name).unwrap();
    let mut tls = std::io::BufReader::new(rustls::StreamOwned::new(conn, tcp));
    let greeting = tls_reply(&mut tls);
    assert!(greeting.starts_with("220 "), "{greeting}");
    tls
}

fn tls_reply(tls: &mut TlsClient) -> String {
    use std::io::BufRead;
    let mut all = String::new();
    loop {
        let mut line = String::new();
        tls.read_line(&mut line).unwrap();
        all.push_str(&line);
        if line.as_bytes().get(3) != Some(&b'-') {
            return all;
        }
    }
}

fn tls_cmd(tls: &mut TlsClient, line: &str) -> String {
    use std::io::Write;
    tls.get_mut().write_all(format!("{line}\r\n").as_bytes()).unwrap();
    tls_reply(tls)
}

fn served_certificate(tls: &TlsClient) -> Vec<u8> {
    tls.get_ref().conn.peer_certificates().expect("a certificate")[0].to_vec()
}

#[test]
fn sighup_swaps_the_certificate_and_open_tls_sessions_carry_on() {
    let up = FakeSmtp::start(Policy::default());
    let env = setup(up.port);
    let (cert, key) = crate::hostile::self_signed(&env);
    let d = daemon(
        &env,
        &["--ssl", "--ssl-cert", &cert, "--ssl-key", &key, "--auth-delay", "0"],
    );
    let config = client_config(false);
    let mut open = tls_open(d.port, &config);
    let first = served_certificate(&open);
    assert!(tls_cmd(&mut open, "EHLO c").starts_with("250"));
    // A new certificate in place of the old one, and a reload, mid-session.
    let other = setup(1);
    let (cert2, key2) = crate::hostile::self_signed(&other);
    std::fs::copy(&cert2, &cert).unwrap();
    std::fs::copy(&key2, &key).unwrap();
    unsafe { libc::kill(d.pid() as i32, libc::SIGHUP) };
    std::thread::sleep(Duration::from_millis(300));
    // A client of its own: a resumed session would report the certificate it began with.
    let fresh = tls_open(d.port, &client_config(false));
    let second = served_certificate(&fresh);
    assert_ne!(first, second, "SIGHUP must swap in the new certificate");
    use rustls::pki_types::pem::PemObject;
    let want = rustls::pki_types::CertificateDer::from_pem_file(&cert2).unwrap();
    assert_eq!(second, want.to_vec(), "the new file's certificate is served");
    // The session opened before the reload goes on to send a message.
    assert_eq!(code(&tls_cmd(&mut open, ALICE_OK)), "235");
    assert_eq!(code(&tls_cmd(&mut open, "MAIL FROM:<alice@first.example>")), "250");
    assert_eq!(code(&tls_cmd(&mut open, "RCPT TO:<x@y.org>")), "250");
    assert_eq!(code(&tls_cmd(&mut open, "DATA")), "354");
    assert_eq!(code(&tls_cmd(&mut open, "Subject: t\r\n\r\nbody\r\n.")), "250");
    assert_eq!(code(&tls_cmd(&mut open, "QUIT")), "221");
    assert_eq!(up.transactions().len(), 1);
}

#[test]
fn tls_sessions_resume_with_tickets_and_session_ids_even_after_a_reload() {
    let env = setup(1);
    let (cert, key) = crate::hostile::self_signed(&env);
    let d = daemon(&env, &["--ssl", "--ssl-cert", &cert, "--ssl-key", &key]);
    for (what, session_ids) in [("TLS 1.3 tickets", false), ("TLS 1.2 session IDs", true)] {
        let config = client_config(session_ids);
        assert!(
            !tls_session(d.port, &config),
            "{what}: the first handshake is a full one"
        );
        assert!(tls_session(d.port, &config), "{what}: not resumed");
        // A certificate reload keeps what resumption needs.
        unsafe { libc::kill(d.pid() as i32, libc::SIGHUP) };
        std::thread::sleep(Duration::from_millis(300));
        assert!(tls_session(d.port, &config), "{what}: not resumed after SIGHUP");
    }
}
