//! TLS for `ofmipd`: a rustls server configuration from PEM files, reloadable.
//!
//! The certificate chain and key are read with rustls' own PEM reader (not the archived
//! rustls-pemfile). TLS 1.2 and 1.3 with rustls' safe default cipher suites (the ring
//! provider, the only one compiled in). [`Reloadable`] lets SIGHUP or a changed file on
//! disk swap the certificate without a restart; handshakes in progress keep the old one.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("TLS certificate {}: {message}", path.display())]
    Cert { path: PathBuf, message: String },
    #[error("TLS key {}: {message}", path.display())]
    Key { path: PathBuf, message: String },
    #[error("TLS setup: {0}")]
    Config(String),
}

/// Session resumption state, kept across certificate reloads so that clients holding a
/// ticket or session ID resume after a reload too: stateless TLS 1.3 tickets (keys
/// drawn at start and rotated every 6 hours) and a cache of TLS 1.2 sessions.
#[derive(Clone)]
pub struct Resumption {
    ticketer: Arc<dyn rustls::server::ProducesTickets>,
    cache: Arc<dyn rustls::server::StoresServerSessions>,
}

/// TLS 1.2 sessions remembered (a few hundred bytes each).
const SESSION_CACHE: usize = 4096;

impl Resumption {
    pub fn new() -> Result<Resumption, TlsError> {
        Ok(Resumption {
            ticketer: rustls::crypto::ring::Ticketer::new().map_err(|e| TlsError::Config(e.to_string()))?,
            cache: rustls::server::ServerSessionMemoryCache::new(SESSION_CACHE),
        })
    }
}

/// Build an acceptor from a PEM certificate chain and a PEM private key.
pub fn load_acceptor(cert: &Path, key: &Path, resumption: &Resumption) -> Result<TlsAcceptor, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| TlsError::Cert {
            path: cert.into(),
            message: e.to_string(),
        })?
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Cert {
            path: cert.into(),
            message: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Cert {
            path: cert.into(),
            message: "no certificate found (expected PEM)".into(),
        });
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Key {
        path: key.into(),
        message: e.to_string(),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Config(format!("certificate and key do not match or are unusable: {e}")))?;
    config.ticketer = resumption.ticketer.clone();
    config.session_storage = resumption.cache.clone();
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// An acceptor that can be replaced while the server runs.
pub struct Reloadable {
    cert: PathBuf,
    key: PathBuf,
    resumption: Resumption,
    current: RwLock<(TlsAcceptor, Option<SystemTime>)>,
}

fn mtime(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

impl Reloadable {
    pub fn new(cert: &Path, key: &Path) -> Result<Reloadable, TlsError> {
        let resumption = Resumption::new()?;
        let a = load_acceptor(cert, key, &resumption)?;
        Ok(Reloadable {
            cert: cert.into(),
            key: key.into(),
            resumption,
            current: RwLock::new((a, newest(cert, key))),
        })
    }

    pub fn acceptor(&self) -> TlsAcceptor {
        self.current.read().expect("lock").0.clone()
    }

    /// Reload from disk; on error the old certificate stays in use.
    pub fn reload(&self) -> Result<(), TlsError> {
        let a = load_acceptor(&self.cert, &self.key, &self.resumption)?;
        *self.current.write().expect("lock") = (a, newest(&self.cert, &self.key));
        Ok(())
    }

    /// Reload if either file changed since the last load.
    pub fn reload_if_changed(&self) -> Option<Result<(), TlsError>> {
        let seen = self.current.read().expect("lock").1;
        let now = newest(&self.cert, &self.key);
        (now != seen).then(|| self.reload())
    }
}

fn newest(a: &Path, b: &Path) -> Option<SystemTime> {
    mtime(a).max(mtime(b))
}
