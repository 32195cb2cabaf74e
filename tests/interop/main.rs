//! Interoperability tier: the built `tmda` binary against real peers from Debian's
//! packages (Postfix's smtp-sink, mutt, msmtp, ...), each started by the test on a
//! loopback port and stopped by PID. A missing peer fails the test with the package
//! to install: `scripts/deps.sh` installs them all. Nothing here is skipped.

mod auth;
mod compat;
mod deploy;
mod docs;
mod filter;
mod global;
mod ofmipd;
mod peers;
mod pending;
mod response;
mod sendmail;
mod terminal;
