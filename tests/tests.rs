//! The one integration-test binary: runs the real `tmda` executable, and (`robustness`)
//! feeds the library generated input.
//!
//! Hermetic: every test gets its own temporary HOME, no network, no root.

mod util;

mod address;
mod check_address;
mod config_errors;
mod deploy;
mod dialogs;
mod exit_codes;
mod filter;
mod fuzz_regressions;
mod generated;
pub(crate) mod hostile;
mod hostile_privsep;
mod init;
mod inject;
mod keygen;
mod layers;
mod multicall;
pub(crate) mod ofmipd;
mod passwd;
mod pending;
mod readme;
mod robustness;
mod sendmail;
mod warnings;
