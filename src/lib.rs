//! `tmda`: the client side of TMDA, the Tagged Message Delivery Agent.
//!
//! # Architecture
//!
//! ```text
//!   ~/.tmda/config ──► config::Config ──┐
//!   ~/.tmda/crypt_key ──► key::CryptKey ─┼──► address (tagged addresses: create / verify)
//!                                        │
//!   cli::{address, check_address, keygen}┘   (thin shells: parse argv, print, exit code)
//! ```
//!
//! The library is sans-IO wherever it can be: `address::tag` computes cookies from
//! bytes, `config::python` parses configuration text, and only `config::Config::load`,
//! `key` and the `cli` modules touch files, the environment or the terminal.
//!
//! Compatibility with TMDA 1.1.x is bit for bit: an address made here verifies on an
//! unmodified TMDA installation with the same key, and the other way round.

pub mod address;
pub mod auth;
pub mod budget;
pub mod child;
pub mod cli;
pub mod clock;
pub mod config;
pub mod delivery;
pub mod dsn;
pub mod error;
pub mod exit;
pub mod filter;
pub mod inject;
pub mod interval;
pub mod key;
pub mod launcher;
pub mod message;
pub mod proxy;
pub mod safe_dir;
pub mod server;
pub mod smtp;
pub mod syslog;
pub mod systemd;
pub mod tls;
pub mod transport;

pub use error::Error;
