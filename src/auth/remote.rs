//! `-R/--remoteauth PROTO://HOST[:PORT][/DN]`: check credentials by logging in to a
//! mail or directory server, as TMDA did: IMAP `LOGIN`, POP3 `USER`/`PASS`, APOP, or an
//! LDAP simple bind as the DN made from the template (`%s` is the user name).
//!
//! Beyond TMDA: imaps, pop3s and ldaps verify the server certificate against the
//! system's roots (set `SSL_CERT_FILE` to a PEM bundle to trust a private CA);
//! connection and response timeouts, so a dead server fails the attempt cleanly;
//! credentials are escaped for each protocol (IMAP quoted strings or literals, RFC 4514
//! DN escaping) and CR, LF or NUL are refused, so no credential can inject commands;
//! an empty password never reaches LDAP (an empty simple bind "succeeds" anonymously).
//! With host `0.0.0.0` the server is chosen by the local address the client connected
//! to, from the ipauthmap file (`/etc/ipauthmap` as root, else `~/.tmda/ipauthmap`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::{Source, Verdict};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Imap,
    Imaps,
    Pop3,
    Pop3s,
    Apop,
    Ldap,
    Ldaps,
}

impl Proto {
    fn default_port(self) -> u16 {
        match self {
            Proto::Imap => 143,
            Proto::Imaps => 993,
            Proto::Pop3 | Proto::Apop => 110,
            Proto::Pop3s => 995,
            Proto::Ldap => 389,
            Proto::Ldaps => 636,
        }
    }

    fn tls(self) -> bool {
        matches!(self, Proto::Imaps | Proto::Pop3s | Proto::Ldaps)
    }
}

#[derive(Debug, Clone)]
pub struct Remote {
    pub proto: Proto,
    pub host: String,
    pub port: u16,
    pub dn: Option<String>,
    pub timeout: Duration,
    pub ipauthmap: PathBuf,
    text: String,
}

impl Remote {
    /// Parse and validate `proto://host[:port][/dn]` (checked at start-up).
    pub fn parse(url: &str) -> Result<Remote, String> {
        let (proto, rest) = url.split_once("://").ok_or("expected PROTO://HOST[:PORT][/DN]")?;
        let proto = match proto.to_ascii_lowercase().as_str() {
            "imap" => Proto::Imap,
            "imaps" => Proto::Imaps,
            "pop3" => Proto::Pop3,
            "pop3s" => Proto::Pop3s,
            "apop" => Proto::Apop,
            "ldap" => Proto::Ldap,
            "ldaps" => Proto::Ldaps,
            other => {
                return Err(format!(
                    "protocol {} is not supported (imap, imaps, pop3, pop3s, apop, ldap, ldaps)",
                    crate::exit::quote(other)
                ));
            }
        };
        let (hostport, dn) = match rest.split_once('/') {
            Some((h, d)) => (h, Some(d.to_string())),
            None => (rest, None),
        };
        let (host, port) = if let Some(h) = hostport.strip_prefix('[') {
            let (h, p) = h.split_once(']').ok_or("unterminated [IPv6] address")?;
            (h.to_string(), p.strip_prefix(':'))
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (hostport.to_string(), None),
            }
        };
        let port = match port {
            Some(p) => p.parse().map_err(|_| format!("bad port {}", crate::exit::quote(p)))?,
            None => proto.default_port(),
        };
        let host = if host.is_empty() { "localhost".to_string() } else { host };
        if matches!(proto, Proto::Ldap | Proto::Ldaps) {
            let dn = dn.as_deref().unwrap_or("");
            if dn.matches("%s").count() != 1 {
                return Err("LDAP needs a DN template containing %s exactly once, e.g. ldap://host/uid=%s,ou=people,dc=example,dc=com".into());
            }
        } else if dn.as_deref().is_some_and(|d| !d.is_empty()) {
            return Err("a DN only makes sense for ldap:// and ldaps://".into());
        }
        // SAFETY: geteuid has no preconditions and cannot fail.
        let ipauthmap = if unsafe { libc::geteuid() } == 0 {
            PathBuf::from("/etc/ipauthmap")
        } else {
            PathBuf::from(crate::os::expanduser("~/.tmda/ipauthmap"))
        };
        Ok(Remote {
            proto,
            host,
            port,
            dn,
            // Dovecot delays answers to repeated failures by up to 15 s (its auth penalty).
            timeout: Duration::from_secs(20),
            ipauthmap,
            text: url.to_string(),
        })
    }

    /// The server to ask: with host 0.0.0.0, looked up by our local address.
    fn target(&self, local: Option<IpAddr>) -> (String, u16) {
        if self.host != "0.0.0.0" {
            return (self.host.clone(), self.port);
        }
        let map = read_ipauthmap(&self.ipauthmap);
        match local {
            _ if map.is_empty() => (
                local.map(|i| i.to_string()).unwrap_or_else(|| "127.0.0.1".into()),
                self.port,
            ),
            Some(ip) => map
                .iter()
                .find(|(k, _, _)| *k == ip)
                .map(|(_, h, p)| (h.clone(), p.unwrap_or(self.port)))
                .unwrap_or(("127.0.0.1".into(), self.port)),
            None => ("127.0.0.1".into(), self.port),
        }
    }

    fn connect(&self, host: &str, port: u16) -> Result<Box<dyn ReadWrite>, String> {
        let addr = (host, port)
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {host}: {}", crate::exit::describe_io(&e)))?
            .next()
            .ok_or_else(|| format!("{host} has no address"))?;
        let tcp = TcpStream::connect_timeout(&addr, self.timeout).map_err(|e| crate::exit::describe_io(&e))?;
        tcp.set_read_timeout(Some(self.timeout)).ok();
        tcp.set_write_timeout(Some(self.timeout)).ok();
        tcp.set_nodelay(true).ok();
        if !self.proto.tls() {
            return Ok(Box::new(tcp));
        }
        let config = client_tls_config()?;
        let name = rustls::pki_types::ServerName::try_from(host.to_string()).map_err(|e| format!("{host}: {e}"))?;
        let conn = rustls::ClientConnection::new(config, name).map_err(|e| e.to_string())?;
        Ok(Box::new(rustls::StreamOwned::new(conn, tcp)))
    }
}

trait ReadWrite: Read + Write + Send {}
impl<T: Read + Write + Send> ReadWrite for T {}

fn client_tls_config() -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    // Honours SSL_CERT_FILE / SSL_CERT_DIR, the documented way to trust a private CA.
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// `ip:ip[:port]` or `ip ip [port]` lines; `#` comments.
fn read_ipauthmap(path: &std::path::Path) -> Vec<(IpAddr, String, Option<u16>)> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return vec![];
    };
    text.lines()
        .filter_map(|l| {
            let l = l.split('#').next()?.trim();
            if l.is_empty() {
                return None;
            }
            let parts: Vec<&str> = if l.contains(char::is_whitespace) {
                l.split_whitespace().collect()
            } else {
                l.split(':').collect()
            };
            let from: IpAddr = parts.first()?.trim_matches(['[', ']']).parse().ok()?;
            let to = parts.get(1)?.trim_matches(['[', ']']).to_string();
            Some((from, to, parts.get(2).and_then(|p| p.parse().ok())))
        })
        .collect()
}

fn has_control(s: &str) -> bool {
    s.contains(['\r', '\n', '\0'])
}

/// IMAP astring for LOGIN: a quoted string, or a literal for 8-bit text (RFC 3501 4.3).
fn imap_string(s: &str) -> (String, Option<String>) {
    if s.is_ascii() {
        (format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"")), None)
    } else {
        (format!("{{{}}}", s.len()), Some(s.to_string()))
    }
}

fn line<R: BufRead>(r: &mut R) -> Result<String, String> {
    let mut l = String::new();
    // Read at most one byte past the limit: a server that never ends its line cannot
    // make us buffer without bound.
    match r.by_ref().take(64 * 1024 + 1).read_line(&mut l) {
        Ok(0) => Err("connection closed".into()),
        Ok(_) if l.len() > 64 * 1024 => Err("response too long".into()),
        Ok(_) => Ok(l.trim_end().to_string()),
        Err(e) => Err(e.to_string()),
    }
}

fn imap_login(stream: Box<dyn ReadWrite>, user: &str, pass: &str) -> Result<bool, String> {
    let mut r = BufReader::new(stream);
    let greet = line(&mut r)?;
    if !greet.starts_with("* OK") {
        return Err(format!("unexpected greeting {}", crate::exit::quote(&greet)));
    }
    let (u, ulit) = imap_string(user);
    let (p, plit) = imap_string(pass);
    // Literals wait for the server's "+" continuation before their bytes follow.
    let w =
        |r: &mut BufReader<Box<dyn ReadWrite>>, s: &str| r.get_mut().write_all(s.as_bytes()).map_err(|e| e.to_string());
    w(&mut r, &format!("a1 LOGIN {u}"))?;
    if let Some(lit) = ulit {
        w(&mut r, "\r\n")?;
        if !line(&mut r)?.starts_with('+') {
            return Ok(false);
        }
        w(&mut r, &lit)?;
    }
    w(&mut r, &format!(" {p}"))?;
    if let Some(lit) = plit {
        w(&mut r, "\r\n")?;
        if !line(&mut r)?.starts_with('+') {
            return Ok(false);
        }
        w(&mut r, &lit)?;
    }
    w(&mut r, "\r\n")?;
    // Untagged lines may come first (CAPABILITY...), but not without end.
    for _ in 0..100 {
        let l = line(&mut r)?;
        if let Some(rest) = l.strip_prefix("a1 ") {
            let ok = rest.starts_with("OK");
            let _ = w(&mut r, "a2 LOGOUT\r\n");
            return Ok(ok);
        }
    }
    Err("no answer to LOGIN after 100 lines".into())
}

fn pop3_login(stream: Box<dyn ReadWrite>, user: &str, pass: &str, apop: bool) -> Result<bool, String> {
    let mut r = BufReader::new(stream);
    let greet = line(&mut r)?;
    if !greet.starts_with("+OK") {
        return Err(format!("unexpected greeting {}", crate::exit::quote(&greet)));
    }
    let cmd = |r: &mut BufReader<Box<dyn ReadWrite>>, c: &str| -> Result<bool, String> {
        r.get_mut()
            .write_all(format!("{c}\r\n").as_bytes())
            .map_err(|e| e.to_string())?;
        Ok(line(r)?.starts_with("+OK"))
    };
    let ok = if apop {
        let stamp = match (greet.find('<'), greet.rfind('>')) {
            (Some(s), Some(e)) if s < e => &greet[s..=e],
            _ => return Err("the server offers no APOP timestamp".into()),
        };
        use md5::Digest;
        let digest: String = md5::Md5::digest(format!("{stamp}{pass}").as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        cmd(&mut r, &format!("APOP {user} {digest}"))?
    } else {
        cmd(&mut r, &format!("USER {user}"))? && cmd(&mut r, &format!("PASS {pass}"))?
    };
    let _ = r.get_mut().write_all(b"QUIT\r\n");
    Ok(ok)
}

/// RFC 4514 escaping of a value put into a DN.
pub fn escape_dn_value(v: &str) -> String {
    let mut out = String::new();
    let n = v.chars().count();
    for (i, c) in v.chars().enumerate() {
        match c {
            ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=' => {
                out.push('\\');
                out.push(c);
            }
            '#' if i == 0 => out.push_str("\\#"),
            ' ' if i == 0 || i + 1 == n => out.push_str("\\ "),
            '\0' => out.push_str("\\00"),
            c => out.push(c),
        }
    }
    out
}

fn ber_len(n: usize, out: &mut Vec<u8>) {
    if n < 128 {
        out.push(n as u8);
    } else {
        let bytes: Vec<u8> = n.to_be_bytes().iter().copied().skip_while(|&b| b == 0).collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
}

fn ber(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    ber_len(content.len(), &mut v);
    v.extend_from_slice(content);
    v
}

/// An LDAPv3 simple BindRequest (RFC 4511 4.2), message id 1.
pub fn bind_request(dn: &str, password: &str) -> Vec<u8> {
    let mut op = ber(0x02, &[3]);
    op.extend(ber(0x04, dn.as_bytes()));
    op.extend(ber(0x80, password.as_bytes()));
    let mut msg = ber(0x02, &[1]);
    msg.extend(ber(0x60, &op));
    ber(0x30, &msg)
}

/// Read one BER element (tag, content).
fn read_ber<R: Read>(r: &mut R) -> Result<(u8, Vec<u8>), String> {
    let mut b = [0u8; 1];
    r.read_exact(&mut b).map_err(|e| e.to_string())?;
    let tag = b[0];
    r.read_exact(&mut b).map_err(|e| e.to_string())?;
    let len = if b[0] < 128 {
        b[0] as usize
    } else {
        let n = (b[0] & 0x7f) as usize;
        if n == 0 || n > 4 {
            return Err("bad BER length".into());
        }
        let mut l = [0u8; 4];
        r.read_exact(&mut l[4 - n..]).map_err(|e| e.to_string())?;
        u32::from_be_bytes(l) as usize
    };
    if len > 1 << 20 {
        return Err("LDAP response too large".into());
    }
    let mut content = vec![0u8; len];
    r.read_exact(&mut content).map_err(|e| e.to_string())?;
    Ok((tag, content))
}

/// The resultCode of a BindResponse.
fn bind_result(msg: &[u8]) -> Result<u8, String> {
    let mut cur = std::io::Cursor::new(msg);
    let (t, _id) = read_ber(&mut cur)?;
    if t != 0x02 {
        return Err("bad LDAP message id".into());
    }
    let (t, op) = read_ber(&mut cur)?;
    if t != 0x61 {
        return Err(format!("unexpected LDAP response tag {t:#x}"));
    }
    let mut c = std::io::Cursor::new(op);
    let (t, code) = read_ber(&mut c)?;
    if t != 0x0a || code.len() != 1 {
        return Err("bad LDAP resultCode".into());
    }
    Ok(code[0])
}

fn ldap_bind(mut stream: Box<dyn ReadWrite>, dn: &str, pass: &str) -> Result<bool, String> {
    stream.write_all(&bind_request(dn, pass)).map_err(|e| e.to_string())?;
    let (t, msg) = read_ber(&mut stream)?;
    if t != 0x30 {
        return Err("bad LDAP response".into());
    }
    let code = bind_result(&msg)?;
    // UnbindRequest, message id 2.
    let _ = stream.write_all(&[0x30, 0x05, 0x02, 0x01, 0x02, 0x42, 0x00]);
    match code {
        0 => Ok(true),
        // invalidCredentials, noSuchObject, inappropriateAuthentication, invalidDNSyntax
        49 | 32 | 48 | 34 => Ok(false),
        other => Err(format!("LDAP resultCode {other}")),
    }
}

impl Source for Remote {
    fn describe(&self) -> String {
        format!("remoteauth {}", self.text)
    }

    fn check_password(&self, user: &str, password: &str) -> Verdict {
        self.check_from(user, password, None)
    }

    fn check_password_from(&self, user: &str, password: &str, local: Option<IpAddr>) -> Verdict {
        self.check_from(user, password, local)
    }
}

impl Remote {
    /// Check, choosing the server by our local address when the host is 0.0.0.0.
    pub fn check_from(&self, user: &str, password: &str, local: Option<IpAddr>) -> Verdict {
        if has_control(user) || has_control(password) || user.is_empty() {
            return Verdict::Denied;
        }
        if matches!(self.proto, Proto::Pop3 | Proto::Pop3s | Proto::Apop) && user.contains(' ') {
            return Verdict::Denied;
        }
        if matches!(self.proto, Proto::Ldap | Proto::Ldaps) && password.is_empty() {
            return Verdict::Denied;
        }
        let (host, port) = self.target(local);
        let result = self.connect(&host, port).and_then(|s| match self.proto {
            Proto::Imap | Proto::Imaps => imap_login(s, user, password),
            Proto::Pop3 | Proto::Pop3s => pop3_login(s, user, password, false),
            Proto::Apop => pop3_login(s, user, password, true),
            Proto::Ldap | Proto::Ldaps => {
                let dn = self
                    .dn
                    .as_deref()
                    .unwrap_or("%s")
                    .replacen("%s", &escape_dn_value(user), 1);
                ldap_bind(s, &dn, password)
            }
        });
        match result {
            Ok(true) => Verdict::Accepted,
            Ok(false) => Verdict::Denied,
            // The source's description names the server, unless ipauthmap chose it.
            Err(e) if self.host == "0.0.0.0" => Verdict::Unavailable(format!("server {host}:{port}: {e}")),
            Err(e) => Verdict::Unavailable(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server that says `script` whatever it is told.
    struct Scripted {
        script: std::io::Cursor<Vec<u8>>,
    }

    impl Read for Scripted {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.script.read(buf)
        }
    }

    impl Write for Scripted {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn server(script: &[u8]) -> Box<dyn ReadWrite> {
        Box::new(Scripted {
            script: std::io::Cursor::new(script.to_vec()),
        })
    }

    #[test]
    fn hostile_auth_servers_get_an_answer_not_a_crash() {
        // The APOP stamp's brackets the wrong way round used to slice backwards.
        assert!(pop3_login(server(b"+OK > ready <\r\n"), "u", "p", true).is_err());
        assert_eq!(pop3_login(server(b"+OK <1.2@h>\r\n+OK\r\n"), "u", "p", true), Ok(true));
        // Endless untagged lines end in an error, not a loop.
        let mut endless = b"* OK hi\r\n".to_vec();
        endless.extend(b"* CAPABILITY x\r\n".repeat(500));
        assert!(imap_login(server(&endless), "u", "p").is_err());
        // Generated junk: every answer is Ok or Err.
        let pieces: &[&[u8]] = &[
            b"* OK",
            b"+OK",
            b"-ERR",
            b"+",
            b"a1 OK",
            b"a1 NO",
            b"<",
            b">",
            b"\r\n",
            b"\n",
            b"x",
            b"\xff",
            b" ",
            b"\x30\x84\xff\xff\xff\xff",
            b"\x30\x0c\x02\x01\x01\x61\x07\x0a\x01\x00",
            b"\x02\x01",
        ];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..3000 {
            let mut script = vec![];
            for _ in 0..(seed % 12) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                script.extend_from_slice(pieces[(seed % pieces.len() as u64) as usize]);
            }
            let _ = imap_login(server(&script), "user", "pass");
            let _ = imap_login(server(&script), "us\"er", "p{ass");
            let _ = pop3_login(server(&script), "u", "p", false);
            let _ = pop3_login(server(&script), "u", "p", true);
            let _ = ldap_bind(server(&script), "uid=u", "p");
        }
    }

    #[test]
    fn urls() {
        let r = Remote::parse("imaps://mail.example.com").unwrap();
        assert_eq!(
            (r.proto, r.host.as_str(), r.port),
            (Proto::Imaps, "mail.example.com", 993)
        );
        let r = Remote::parse("pop3://pop.example.com:2110").unwrap();
        assert_eq!((r.proto, r.port), (Proto::Pop3, 2110));
        assert_eq!(Remote::parse("apop://h").unwrap().port, 110);
        assert_eq!(Remote::parse("pop3s://h").unwrap().port, 995);
        let r = Remote::parse("ldap://example.com/uid=%s,dc=example,dc=com").unwrap();
        assert_eq!((r.port, r.dn.as_deref()), (389, Some("uid=%s,dc=example,dc=com")));
        assert_eq!(Remote::parse("ldaps://[::1]:1636/cn=%s").unwrap().host, "::1");
        for bad in [
            "imap:/x",
            "smtp://x",
            "ldap://x",
            "ldap://x/cn=user",
            "ldap://x/cn=%s,%s",
            "imap://x:port",
            "imap://x/dn",
        ] {
            assert!(Remote::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn escaping() {
        assert_eq!(imap_string("al\"ice\\"), ("\"al\\\"ice\\\\\"".to_string(), None));
        assert_eq!(imap_string("jörg").0, "{5}");
        assert_eq!(escape_dn_value("a,b+c=d"), "a\\,b\\+c\\=d");
        assert_eq!(escape_dn_value(" #x "), "\\ #x\\ ");
        assert_eq!(escape_dn_value("#x"), "\\#x");
        assert_eq!(escape_dn_value("x*)(uid=*"), "x*)(uid\\=*");
    }

    #[test]
    fn ber_bind_request() {
        let b = bind_request("cn=a", "pw");
        assert_eq!(
            b,
            vec![
                0x30, 0x12, 0x02, 0x01, 0x01, 0x60, 0x0d, 0x02, 0x01, 0x03, 0x04, 0x04, b'c', b'n', b'=', b'a', 0x80,
                0x02, b'p', b'w'
            ]
        );
        let long = bind_request(&"d".repeat(300), "x");
        assert_eq!(&long[..2], &[0x30, 0x82]);
        // A BindResponse with resultCode 49 (invalidCredentials).
        let resp = [0x02, 0x01, 0x01, 0x61, 0x07, 0x0a, 0x01, 49, 0x04, 0x00, 0x04, 0x00];
        assert_eq!(bind_result(&resp).unwrap(), 49);
    }

    #[test]
    fn injection_and_empty_password_never_reach_the_server() {
        // Port 9 on loopback: nothing listens, so reaching the network would be "unavailable".
        let r = Remote::parse("imap://127.0.0.1:9").unwrap();
        assert_eq!(r.check_password("alice\r\na2 LOGOUT", "x"), Verdict::Denied);
        assert_eq!(r.check_password("alice", "pw\0"), Verdict::Denied);
        assert!(matches!(r.check_password("alice", "pw"), Verdict::Unavailable(_)));
        let l = Remote::parse("ldap://127.0.0.1:9/uid=%s").unwrap();
        assert_eq!(l.check_password("alice", ""), Verdict::Denied);
    }

    #[test]
    fn ipauthmap_forms() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("ipauthmap");
        std::fs::write(
            &p,
            "# map\n192.0.2.1:10.0.0.1:1143\n192.0.2.2 10.0.0.2\n2001:db8::1 imap6.example 993\n",
        )
        .unwrap();
        let m = read_ipauthmap(&p);
        assert_eq!(m[0], ("192.0.2.1".parse().unwrap(), "10.0.0.1".into(), Some(1143)));
        assert_eq!(m[1], ("192.0.2.2".parse().unwrap(), "10.0.0.2".into(), None));
        assert_eq!(
            m[2],
            ("2001:db8::1".parse().unwrap(), "imap6.example".into(), Some(993))
        );
        let mut r = Remote::parse("imap://0.0.0.0").unwrap();
        r.ipauthmap = p;
        assert_eq!(r.target(Some("192.0.2.1".parse().unwrap())), ("10.0.0.1".into(), 1143));
        assert_eq!(r.target(Some("192.0.2.2".parse().unwrap())), ("10.0.0.2".into(), 143));
        assert_eq!(r.target(Some("192.0.2.9".parse().unwrap())), ("127.0.0.1".into(), 143));
    }
}
