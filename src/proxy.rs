//! The PROXY protocol (HAProxy's, versions 1 and 2): a load balancer or TLS proxy in
//! front of ofmipd says, before anything else, which client it is passing on. Without
//! it every client behind stunnel, haproxy or xinetd has the proxy's address, and the
//! Received field, the log, the per-address limits and the guessing budgets lose the
//! real one.
//!
//! Framing is ours and reads exactly the header's bytes, never more, so what follows
//! (SMTP, or a TLS handshake) is left on the connection untouched; the bytes are parsed
//! with the `ppp` crate. A header is at most 107 octets (v1) or 16 + 512 (v2, which
//! may carry TLVs), and must arrive within a deadline.

use std::net::{IpAddr, SocketAddr};

use tokio::io::{AsyncRead, AsyncReadExt};

/// Peers whose connections must start with a PROXY header (`--proxy-protocol FROM`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trusted {
    nets: Vec<Cidr>,
}

/// An address range, `192.0.2.0/24`, `2001:db8::/32`, or one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl std::str::FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Cidr, String> {
        let bad = || format!("{} is not an address or address/prefix", crate::exit::quote(s));
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let net: IpAddr = addr.trim_matches(['[', ']']).parse().map_err(|_| bad())?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?,
        };
        Ok(Cidr { net, prefix })
    }
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - self.prefix as u32).unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX.checked_shl(128 - self.prefix as u32).unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// An IPv4 client on an IPv6 socket is an IPv4 client.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

impl Trusted {
    pub fn new(nets: Vec<Cidr>) -> Trusted {
        Trusted { nets }
    }

    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    /// Connections from `peer` must send a header.
    pub fn expects_header(&self, peer: IpAddr) -> bool {
        self.nets.iter().any(|n| n.contains(peer))
    }
}

/// What a header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The client's address and the address it connected to.
    Proxied { client: SocketAddr, server: SocketAddr },
    /// The proxy speaks for itself (a health check: v2 LOCAL, v1 UNKNOWN).
    Local,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProxyError {
    #[error("no PROXY header arrived in time")]
    Timeout,
    #[error("the connection closed before the PROXY header was complete")]
    Closed,
    #[error("the connection does not start with a PROXY header")]
    Missing,
    #[error("malformed PROXY header: {0}")]
    Malformed(String),
}

const V1_PREFIX: &[u8] = b"PROXY ";
const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// RFC-less but HAProxy's own limit for a v1 line, CRLF included.
const V1_MAX: usize = 107;
/// Address block and TLVs we accept after the 16 fixed octets of a v2 header.
const V2_MAX_EXTRA: usize = 512;

/// Whether `start` (the first bytes a client sent) is a PROXY header, of either version.
pub fn looks_like_header(start: &[u8]) -> bool {
    let n = start.len().min(V2_SIGNATURE.len());
    (n >= V1_PREFIX.len() && start.starts_with(V1_PREFIX))
        || (n == V2_SIGNATURE.len() && start[..n] == V2_SIGNATURE[..])
}

/// Read exactly one header from `conn`, by `deadline`.
pub async fn read_header<S: AsyncRead + Unpin>(
    conn: &mut S,
    deadline: tokio::time::Instant,
) -> Result<Origin, ProxyError> {
    match tokio::time::timeout_at(deadline, read_exact_header(conn)).await {
        Ok(r) => r,
        Err(_) => Err(ProxyError::Timeout),
    }
}

async fn read_exact_header<S: AsyncRead + Unpin>(conn: &mut S) -> Result<Origin, ProxyError> {
    let closed = |_| ProxyError::Closed;
    let mut buf = vec![0u8; 12];
    conn.read_exact(&mut buf).await.map_err(closed)?;
    if buf[..] == V2_SIGNATURE[..] {
        buf.resize(16, 0);
        conn.read_exact(&mut buf[12..]).await.map_err(closed)?;
        let len = u16::from_be_bytes([buf[14], buf[15]]) as usize;
        if len > V2_MAX_EXTRA {
            return Err(ProxyError::Malformed(format!("{len} octets of addresses and TLVs")));
        }
        buf.resize(16 + len, 0);
        conn.read_exact(&mut buf[16..]).await.map_err(closed)?;
        return parse(&buf);
    }
    if !buf.starts_with(V1_PREFIX) {
        return Err(ProxyError::Missing);
    }
    // A v1 line ends with CRLF; read it a byte at a time so nothing after it is taken.
    while !buf.ends_with(b"\r\n") {
        if buf.len() >= V1_MAX {
            return Err(ProxyError::Malformed("a version 1 line longer than 107 octets".into()));
        }
        let mut b = [0u8; 1];
        conn.read_exact(&mut b).await.map_err(closed)?;
        buf.push(b[0]);
    }
    parse(&buf)
}

/// Parse one whole header (exactly its bytes).
pub fn parse(bytes: &[u8]) -> Result<Origin, ProxyError> {
    use ppp::HeaderResult;
    let malformed = |e: &dyn std::fmt::Display| ProxyError::Malformed(e.to_string());
    match HeaderResult::parse(bytes) {
        HeaderResult::V1(Ok(h)) => match h.addresses {
            ppp::v1::Addresses::Tcp4(a) => Ok(Origin::Proxied {
                client: SocketAddr::new(a.source_address.into(), a.source_port),
                server: SocketAddr::new(a.destination_address.into(), a.destination_port),
            }),
            ppp::v1::Addresses::Tcp6(a) => Ok(Origin::Proxied {
                client: SocketAddr::new(a.source_address.into(), a.source_port),
                server: SocketAddr::new(a.destination_address.into(), a.destination_port),
            }),
            ppp::v1::Addresses::Unknown => Ok(Origin::Local),
        },
        HeaderResult::V2(Ok(h)) => {
            if h.command == ppp::v2::Command::Local {
                return Ok(Origin::Local);
            }
            match h.addresses {
                ppp::v2::Addresses::IPv4(a) => Ok(Origin::Proxied {
                    client: SocketAddr::new(a.source_address.into(), a.source_port),
                    server: SocketAddr::new(a.destination_address.into(), a.destination_port),
                }),
                ppp::v2::Addresses::IPv6(a) => Ok(Origin::Proxied {
                    client: SocketAddr::new(a.source_address.into(), a.source_port),
                    server: SocketAddr::new(a.destination_address.into(), a.destination_port),
                }),
                // A client on a Unix socket, or none given: the proxy speaks for it.
                ppp::v2::Addresses::Unix(_) | ppp::v2::Addresses::Unspecified => Ok(Origin::Local),
            }
        }
        HeaderResult::V1(Err(e)) => Err(malformed(&e)),
        HeaderResult::V2(Err(e)) => Err(malformed(&e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let n: Cidr = "192.0.2.0/24".parse().unwrap();
        assert!(n.contains("192.0.2.77".parse().unwrap()));
        assert!(!n.contains("192.0.3.1".parse().unwrap()));
        assert!(n.contains("::ffff:192.0.2.1".parse().unwrap()), "v4-mapped");
        let one: Cidr = "127.0.0.1".parse().unwrap();
        assert!(one.contains("127.0.0.1".parse().unwrap()) && !one.contains("127.0.0.2".parse().unwrap()));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("203.0.113.9".parse().unwrap()));
        let v6: Cidr = "[2001:db8::]/32".parse().unwrap();
        assert!(v6.contains("2001:db8:1::5".parse().unwrap()) && !v6.contains("2001:db9::1".parse().unwrap()));
        for bad in ["", "1.2.3", "1.2.3.4/33", "::/129", "x/8", "1.2.3.4/-1"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    fn read(bytes: &[u8]) -> (Result<Origin, ProxyError>, Vec<u8>) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut r = bytes;
            let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(1);
            let o = read_header(&mut r, deadline).await;
            (o, r.to_vec())
        })
    }

    #[test]
    fn version_1_leaves_what_follows() {
        let (o, rest) = read(b"PROXY TCP4 192.0.2.5 198.51.100.1 56324 587\r\nEHLO x\r\n");
        assert_eq!(
            o.unwrap(),
            Origin::Proxied {
                client: "192.0.2.5:56324".parse().unwrap(),
                server: "198.51.100.1:587".parse().unwrap()
            }
        );
        assert_eq!(rest, b"EHLO x\r\n");
        let (o, rest) = read(b"PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n\x16\x03\x01");
        assert!(matches!(o.unwrap(), Origin::Proxied { client, .. } if client.ip().to_string() == "2001:db8::1"));
        assert_eq!(rest, b"\x16\x03\x01");
        assert_eq!(read(b"PROXY UNKNOWN\r\nEHLO").0.unwrap(), Origin::Local);
    }

    #[test]
    fn version_2_leaves_what_follows() {
        let mut h = V2_SIGNATURE.to_vec();
        h.extend_from_slice(&[0x21, 0x11, 0, 12, 192, 0, 2, 5, 198, 51, 100, 1, 0xdc, 0x04, 0x02, 0x4b]);
        h.extend_from_slice(b"EHLO x\r\n");
        let (o, rest) = read(&h);
        assert_eq!(
            o.unwrap(),
            Origin::Proxied {
                client: "192.0.2.5:56324".parse().unwrap(),
                server: "198.51.100.1:587".parse().unwrap()
            }
        );
        assert_eq!(rest, b"EHLO x\r\n");
        // LOCAL (a health check).
        let mut local = V2_SIGNATURE.to_vec();
        local.extend_from_slice(&[0x20, 0x00, 0, 0]);
        assert_eq!(read(&local).0.unwrap(), Origin::Local);
    }

    #[test]
    fn bad_headers_are_refused() {
        assert_eq!(read(b"EHLO client.example\r\n").0, Err(ProxyError::Missing));
        assert_eq!(read(b"PROXY").0, Err(ProxyError::Closed));
        assert!(matches!(
            read(format!("PROXY TCP4 {}\r\n", "1".repeat(200)).as_bytes()).0,
            Err(ProxyError::Malformed(_))
        ));
        assert!(matches!(
            read(b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n").0,
            Err(ProxyError::Malformed(_))
        ));
        let mut big = V2_SIGNATURE.to_vec();
        big.extend_from_slice(&[0x21, 0x11, 0xff, 0xff]);
        assert!(matches!(read(&big).0, Err(ProxyError::Malformed(_))));
        let mut bad_version = V2_SIGNATURE.to_vec();
        bad_version.extend_from_slice(&[0x31, 0x11, 0, 12]);
        bad_version.extend_from_slice(&[0; 12]);
        assert!(matches!(read(&bad_version).0, Err(ProxyError::Malformed(_))));
        assert!(looks_like_header(b"PROXY TCP4") && looks_like_header(V2_SIGNATURE));
        assert!(!looks_like_header(b"EHLO x") && !looks_like_header(b"PROX"));
    }

    #[test]
    fn a_silent_proxy_times_out() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (mut a, _b) = tokio::io::duplex(64);
            let deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(50);
            assert_eq!(read_header(&mut a, deadline).await, Err(ProxyError::Timeout));
        });
    }
}
