//! The SMTP server side of `tmda ofmipd`, without any I/O.
//!
//! [`Session`] is a state machine: the network shell (`server`) feeds it lines
//! ([`Input`]) and carries out what it answers ([`Output`]): send a reply, switch to
//! TLS, check credentials, deliver the spooled message. [`data::Decoder`] turns DATA
//! bytes into the message, undoing dot-stuffing. Nothing here opens a file or socket,
//! so whole dialogues are tested in memory.
//!
//! RFCs: 5321 (SMTP), 3207 (STARTTLS), 4954 (AUTH), 4616 (PLAIN), 2195 (CRAM-MD5),
//! 1870 (SIZE), 2920 (PIPELINING), 6152 (8BITMIME), 2034/3463 (enhanced codes),
//! 6531 (SMTPUTF8), 3848 (ESMTPSA in Received).

pub mod command;
pub mod data;
pub mod reply;
pub mod session;

pub use command::Command;
pub use reply::Reply;
pub use session::{Attempt, AuthOutcome, Envelope, Input, Output, Policy, Session, TlsMode};
