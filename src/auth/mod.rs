//! Checking SMTP AUTH credentials against the configured sources, in order.
//!
//! Each [`Source`] says Accepted, Denied or Unavailable (could not ask: a server down,
//! a program that timed out). The [`Chain`] accepts if any source accepts; if none
//! does and one was unavailable, the outcome is "temporary": ofmipd answers 535 saying an
//! auth server could not be reached, checkauth exits 75 (111 as a checkpassword program),
//! and it does not count as a failed guess. Sources are blocking;
//! the network shell runs them off its event loop. Passwords are never logged.

pub mod checkpw;
pub mod file;
pub mod pam;
pub mod remote;
pub mod scheme;

/// Credentials to check.
#[derive(Clone, PartialEq, Eq)]
pub struct Attempt {
    pub user: String,
    pub secret: Secret,
}

#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    Password(String),
    /// CRAM-MD5: the challenge we sent and the hex digest the client answered.
    CramMd5 {
        challenge: String,
        digest: String,
    },
}

impl std::fmt::Debug for Attempt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.secret {
            Secret::Password(_) => "password",
            Secret::CramMd5 { .. } => "cram-md5",
        };
        write!(f, "Attempt {{ user: {:?}, {kind}: <redacted> }}", self.user)
    }
}

/// The verdict on an [`Attempt`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthOutcome {
    Accepted,
    Denied,
    /// No source accepted and one could not be asked (a server down): 454, counted
    /// like a refusal toward the session's and the address's limits.
    Temporary,
}

/// One source's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Accepted,
    Denied,
    Unavailable(String),
}

pub trait Source: Send + Sync {
    /// For logs: which source this is (never includes secrets).
    fn describe(&self) -> String;

    fn check_password(&self, user: &str, password: &str) -> Verdict;

    /// The same, knowing the local address the client connected to (ipauthmap).
    fn check_password_from(&self, user: &str, password: &str, _local: Option<std::net::IpAddr>) -> Verdict {
        self.check_password(user, password)
    }

    /// CRAM-MD5 needs the stored secret; sources that cannot do it say `None`.
    fn check_cram_md5(&self, _user: &str, _challenge: &str, _digest: &str) -> Option<Verdict> {
        None
    }

    fn supports_cram_md5(&self) -> bool {
        false
    }

    /// The answer, if it can be had without waiting on anything or working hard (a
    /// cleartext entry of a local file): then the network shell need not hand the
    /// attempt to a thread that may block. `None` means "ask the blocking way".
    fn check_quickly(&self, _user: &str, _secret: &Secret) -> Option<Verdict> {
        None
    }
}

/// The sources of a server, tried in the order given on the command line.
pub struct Chain {
    pub sources: Vec<Box<dyn Source>>,
}

impl Chain {
    /// CRAM-MD5 can be offered only if every source can verify it.
    pub fn supports_cram_md5(&self) -> bool {
        !self.sources.is_empty() && self.sources.iter().all(|s| s.supports_cram_md5())
    }

    /// Check credentials; also returns what each source said, for the log.
    pub fn check(&self, user: &str, secret: &Secret) -> (AuthOutcome, Vec<(String, Verdict)>) {
        self.check_from(user, secret, None)
    }

    /// Check, knowing the local address the client connected to.
    pub fn check_from(
        &self,
        user: &str,
        secret: &Secret,
        local: Option<std::net::IpAddr>,
    ) -> (AuthOutcome, Vec<(String, Verdict)>) {
        self.run(|s| match secret {
            Secret::Password(p) => Some(s.check_password_from(user, p, local)),
            Secret::CramMd5 { challenge, digest } => s.check_cram_md5(user, challenge, digest),
        })
    }

    /// [`Chain::check_from`] when every source it would ask can answer at once
    /// ([`Source::check_quickly`]); `None` if one cannot.
    pub fn check_quickly(&self, user: &str, secret: &Secret) -> Option<(AuthOutcome, Vec<(String, Verdict)>)> {
        let mut slow = false;
        let result = self.run(|s| {
            if slow {
                return None;
            }
            let v = s.check_quickly(user, secret);
            slow = v.is_none();
            v
        });
        (!slow).then_some(result)
    }

    /// Ask each source in turn (`None`: it cannot answer this kind of secret).
    fn run(&self, mut ask: impl FnMut(&dyn Source) -> Option<Verdict>) -> (AuthOutcome, Vec<(String, Verdict)>) {
        let mut trail = vec![];
        let mut unavailable = false;
        for s in &self.sources {
            let Some(v) = ask(s.as_ref()) else { continue };
            let accepted = v == Verdict::Accepted;
            unavailable |= matches!(v, Verdict::Unavailable(_));
            trail.push((s.describe(), v));
            if accepted {
                return (AuthOutcome::Accepted, trail);
            }
        }
        (
            if unavailable {
                AuthOutcome::Temporary
            } else {
                AuthOutcome::Denied
            },
            trail,
        )
    }
}

/// Constant-time equality of two secrets (the length is not hidden).
pub fn secret_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// HMAC-MD5 of `challenge` keyed with `password`, in hex (RFC 2195).
pub fn cram_md5_digest(password: &[u8], challenge: &[u8]) -> String {
    use hmac::{Hmac, KeyInit, Mac};
    let mut m = <Hmac<md5::Md5> as KeyInit>::new_from_slice(password).expect("HMAC takes any key length");
    m.update(challenge);
    m.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(Verdict, bool);
    impl Source for Fixed {
        fn describe(&self) -> String {
            format!("fixed {:?}", self.0)
        }
        fn check_password(&self, _: &str, _: &str) -> Verdict {
            self.0.clone()
        }
        fn supports_cram_md5(&self) -> bool {
            self.1
        }
    }

    fn pw() -> Secret {
        Secret::Password("x".into())
    }

    #[test]
    fn chain_semantics() {
        let c = Chain {
            sources: vec![
                Box::new(Fixed(Verdict::Denied, true)),
                Box::new(Fixed(Verdict::Accepted, true)),
            ],
        };
        let (o, trail) = c.check("u", &pw());
        assert_eq!(o, AuthOutcome::Accepted);
        assert_eq!(trail.len(), 2);
        assert!(c.supports_cram_md5());
        let c = Chain {
            sources: vec![
                Box::new(Fixed(Verdict::Unavailable("down".into()), false)),
                Box::new(Fixed(Verdict::Denied, true)),
            ],
        };
        assert_eq!(c.check("u", &pw()).0, AuthOutcome::Temporary);
        assert!(!c.supports_cram_md5());
        let c = Chain {
            sources: vec![
                Box::new(Fixed(Verdict::Unavailable("down".into()), false)),
                Box::new(Fixed(Verdict::Accepted, false)),
            ],
        };
        assert_eq!(c.check("u", &pw()).0, AuthOutcome::Accepted);
        assert_eq!(Chain { sources: vec![] }.check("u", &pw()).0, AuthOutcome::Denied);
    }

    #[test]
    fn rfc2195_example() {
        let challenge = "<1896.697170952@postoffice.reston.mci.net>";
        assert_eq!(
            cram_md5_digest(b"tanstaaftanstaaf", challenge.as_bytes()),
            "b913a602c7eda7a495b4e6e7334d3890"
        );
    }
}
