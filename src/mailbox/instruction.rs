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
    /// Read `text`; `~` and `~/…` are taken relative to `home`, `~user/…` relative to that
    /// user's home in the password database (as Python's `expanduser`).
    pub fn parse(text: &str, home: &Path) -> Result<Instruction, Error> {
        Instruction::parse_with(text, home, |user| crate::os::home_of_user(user).map(PathBuf::from))
    }

    /// [`Instruction::parse`] with the home directories of other users from `home_of`.
    pub fn parse_with(
        text: &str,
        home: &Path,
        home_of: impl Fn(&str) -> Option<PathBuf>,
    ) -> Result<Instruction, Error> {
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
                Instruction::Mmdf(expand(rest(), home, &home_of).map_err(bad)?)
            }
            '/' | '~' if last != '/' => Instruction::Mbox(expand(text, home, &home_of).map_err(bad)?),
            '/' | '~' => Instruction::Maildir(expand(text, home, &home_of).map_err(bad)?),
            _ if text == "_filter_" => Instruction::Stdout,
            _ if text == "_qok_" => Instruction::Qok,
            _ => return Err(Error::Unrecognized(text.to_string())),
        })
    }
}

/// `~` and `~/rest` under `home`, `~user/rest` under that user's; other paths as they
/// are. A path ending `/` keeps it, so a Maildir stays recognisable.
fn expand(path: &str, home: &Path, home_of: &dyn Fn(&str) -> Option<PathBuf>) -> Result<PathBuf, &'static str> {
    let Some(after) = path.strip_prefix('~') else {
        return Ok(PathBuf::from(path));
    };
    let (user, rest) = after.split_at(after.find('/').unwrap_or(after.len()));
    let base = if user.is_empty() {
        home.to_path_buf()
    } else {
        // Python left the path as it was, and the delivery failed on a file "~bob/...".
        home_of(user).ok_or("no such user in the password database")?
    };
    let mut s = base.into_os_string();
    if rest.is_empty() {
        return Ok(PathBuf::from(s));
    }
    if s.to_string_lossy().ends_with('/') {
        s.push(&rest[1..]);
    } else {
        s.push(rest);
    }
    Ok(PathBuf::from(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Instruction, Error> {
        Instruction::parse_with(s, Path::new("/home/jo"), |user| {
            (user == "bob").then(|| PathBuf::from("/srv/bob"))
        })
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
            ("~bob/Maildir/", Maildir("/srv/bob/Maildir/".into())),
            ("~bob", Mbox("/srv/bob".into())),
            (":~bob/mmdf", Mmdf("/srv/bob/mmdf".into())),
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
        // The real password database: root's home.
        assert_eq!(
            Instruction::parse("~root/mbox", Path::new("/x")).unwrap(),
            Mbox(PathBuf::from(crate::os::home_of_user("root").unwrap()).join("mbox"))
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
                "~nobody-here/Maildir/",
                "delivery instruction \"~nobody-here/Maildir/\": no such user in the password database",
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
