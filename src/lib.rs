//! `tmda`: TMDA, the Tagged Message Delivery Agent, in one binary: the client side
//! (tagging outgoing mail: `tmda sendmail`, `tmda ofmipd`) and the incoming side
//! (`tmda filter`, `tmda pending`).
//!
//! The library is sans-IO wherever it can be: `address::tag` computes cookies from
//! bytes, `config::python` parses configuration text, `smtp::session` is a state machine
//! fed lines; files, sockets and processes are touched by thin layers around them.
//!
//! Compatibility with TMDA 1.1.x is bit for bit: an address made here verifies on an
//! unmodified TMDA installation with the same key, and the other way round.
//!
//! # Floors
//!
//! Top to bottom. A module uses only modules on floors below its own, never one beside
//! it (`tests/layers.rs` checks this, and that the files inside a module form no circle):
//!
//! 9. `cli` — the command-line shells: parse argv, run, print, exit code
//! 8. `error` — the aggregate error the shells print, with its exit status
//! 7. `server`, `incoming` — the SMTP server's network loop; the incoming filter's run
//! 6. `delivery` — what ofmipd does with an accepted message (in process or as the user)
//! 5. `launcher` — the root launcher of global mode and its wire protocol
//! 4. `inject`, `smtp`, `pending`, `response` — the outgoing pipeline; the SMTP session; the pending queue; auto-responses
//! 3. `address`, `auth`, `filter`, `transport` — tagged addresses; credential sources; the filter engine; handing mail to the MTA
//! 2. `config`, `key`, `syslog`, `dsn`, `mailbox` — configuration as data; the crypt key; logging; status notifications; local delivery
//! 1. `clock`, `interval`, `child`, `safe_dir`, `budget`, `message`, `account`, `sender_policy`, `proxy`, `systemd`, `tls` — leaves over exit and os
//! 0. `exit`, `os` — exit statuses and words for failures; the operating system's databases
//!
//! # Architecture
//!
//! ```text
//!   ~/.tmda/config ──► config::Config ──┐
//!   ~/.tmda/crypt_key ──► key::CryptKey ─┼──► address (tagged addresses: create / verify)
//!                                        │
//!   message ─► filter ─► inject ─► transport ─► the MTA       (outgoing)
//!   MTA ─► incoming ─► filter, address, pending, response ─► mailbox / transport  (incoming)
//! ```

pub mod account;
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
pub mod incoming;
pub mod inject;
pub mod interval;
pub mod key;
pub mod launcher;
pub mod mailbox;
pub mod message;
pub mod os;
pub mod pending;
pub mod proxy;
pub mod response;
pub mod safe_dir;
pub mod sender_policy;
pub mod server;
pub mod smtp;
pub mod syslog;
pub mod systemd;
pub mod tls;
pub mod transport;

pub use error::Error;
