//! The `tmda` binary: everything lives in the library; this only hands over argv.
use std::process::ExitCode;

fn main() -> ExitCode {
    tmda::cli::main(std::env::args_os())
}
