//! A delivery instruction, as TMDA reads one (JK `TMDA/Deliver.py` `get_instructions`;
//! spec §8): its first and last characters say what it is.

use std::path::{Path, PathBuf};

use super::Error;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instruction {
    /// `|command`: run by `/bin/sh -c` with the message on its standard input.
    Program(String),
    /// `&addr`, or an address beginning with a letter or digit: send it on.
    Forward(String),
    /// `:path`: an MMDF mailbox.
    Mmdf(PathBuf),
    /// `/path` or `~/path`, not ending `/`: an mbox.
    Mbox(PathBuf),
    /// `/path/` or `~/path/`: a Maildir.
    Maildir(PathBuf),
    /// `_filter_`: to standard output.
    Stdout,
    /// `_qok_`: qmail goes on with the next line of the `.qmail` file.
    Qok,
}

impl Instruction {
    /// Read `text`; `~` and `~/…` are taken relative to `home`.
    pub fn parse(text: &str, home: &Path) -> Result<Instruction, Error> {
        let bad = |reason| Error::BadInstruction {
            text: text.to_string(),
            reason,
        };
        let Some(first) = text.chars().next() else {
            return Err(bad("it is empty"));
        };
        let last = text.chars().next_back().unwrap_or(first);
        // TMDA strips only the rest of `|`, `&` and `:` forms (Python's str.strip()).
        let rest = || text[first.len_utf8()..].trim();
        Ok(match first {
            '|' => {
                if rest().is_empty() {
                    return Err(bad("no command follows the |"));
                }
                Instruction::Program(rest().to_string())
            }
            '&' => {
                if rest().is_empty() {
                    return Err(bad("no address follows the &"));
                }
                Instruction::Forward(rest().to_string())
            }
            // Python's isalnum(), which takes any Unicode letter or digit.
            c if c.is_alphanumeric() => Instruction::Forward(text.to_string()),
            ':' => {
                if rest().is_empty() {
                    return Err(bad("no file follows the :"));
                }
                Instruction::Mmdf(expand(rest(), home).map_err(bad)?)
            }
            '/' | '~' if last != '/' => Instruction::Mbox(expand(text, home).map_err(bad)?),
            '/' | '~' => Instruction::Maildir(expand(text, home).map_err(bad)?),
            _ if text == "_filter_" => Instruction::Stdout,
            _ if text == "_qok_" => Instruction::Qok,
            _ => return Err(Error::Unrecognized(text.to_string())),
        })
    }
}

/// `~` and `~/rest` under `home`; other paths as they are. A path ending `/` keeps it, so
/// a Maildir stays recognisable.
fn expand(path: &str, home: &Path) -> Result<PathBuf, &'static str> {
    let Some(after) = path.strip_prefix('~') else {
        return Ok(PathBuf::from(path));
    };
    if after.is_empty() {
        return Ok(home.to_path_buf());
    }
    let Some(rel) = after.strip_prefix('/') else {
        return Err("~user paths are not supported: write the full path");
    };
    let mut s = home.as_os_str().to_os_string();
    if !s.to_string_lossy().ends_with('/') {
        s.push("/");
    }
    s.push(rel);
    Ok(PathBuf::from(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Instruction, Error> {
        Instruction::parse(s, Path::new("/home/jo"))
    }

    #[test]
    fn every_form() {
        use Instruction::*;
        let cases: &[(&str, Instruction)] = &[
            ("|/usr/bin/procmail -d jo", Program("/usr/bin/procmail -d jo".into())),
            ("|  cat > /tmp/x  ", Program("cat > /tmp/x".into())),
            ("&jo@example.org", Forward("jo@example.org".into())),
            ("& jo@example.org ", Forward("jo@example.org".into())),
            ("jo@example.org", Forward("jo@example.org".into())),
            ("7jo@example.org", Forward("7jo@example.org".into())),
            ("élan@example.org", Forward("élan@example.org".into())),
            (":/var/mail/jo", Mmdf("/var/mail/jo".into())),
            (": ~/mmdf", Mmdf("/home/jo/mmdf".into())),
            ("/var/mail/jo", Mbox("/var/mail/jo".into())),
            ("~/Mailbox", Mbox("/home/jo/Mailbox".into())),
            ("~", Mbox("/home/jo".into())),
            ("/home/jo/Maildir/", Maildir("/home/jo/Maildir/".into())),
            ("~/Maildir/", Maildir("/home/jo/Maildir/".into())),
            ("~/", Maildir("/home/jo/".into())),
            ("/", Maildir("/".into())),
            ("_filter_", Stdout),
            ("_qok_", Qok),
        ];
        for (text, want) in cases {
            assert_eq!(&parse(text).unwrap(), want, "{text}");
        }
        // A home given with a trailing slash gives no double slash.
        assert_eq!(
            Instruction::parse("~/Maildir/", Path::new("/home/jo/")).unwrap(),
            Maildir("/home/jo/Maildir/".into())
        );
    }

    #[test]
    fn errors_say_what_is_wrong() {
        for (text, msg) in [
            ("", "delivery instruction \"\": it is empty"),
            ("|", "delivery instruction \"|\": no command follows the |"),
            ("|   ", "delivery instruction \"|   \": no command follows the |"),
            ("&", "delivery instruction \"&\": no address follows the &"),
            (":", "delivery instruction \":\": no file follows the :"),
            (
                "~bob/Maildir/",
                "delivery instruction \"~bob/Maildir/\": ~user paths are not supported: write the full path",
            ),
            ("_qok", "delivery instruction \"_qok\" is not recognized"),
            ("_filter_ ", "delivery instruction \"_filter_ \" is not recognized"),
            ("./Maildir/", "delivery instruction \"./Maildir/\" is not recognized"),
            (
                " /var/mail/jo",
                "delivery instruction \" /var/mail/jo\" is not recognized",
            ),
            ("\"|cat\"", "delivery instruction \"\\\"|cat\\\"\" is not recognized"),
        ] {
            let e = parse(text).unwrap_err();
            assert_eq!(e.to_string(), msg);
            assert_eq!(e.exit_code(), crate::exit::Sysexit::TempFail);
        }
    }
}
