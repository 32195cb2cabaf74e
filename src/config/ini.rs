//! TMDA's `CONFIG_EXEC = False` form: an INI file with a `[TMDA_CONFIG]` section.
//!
//! Syntax as Python's ConfigParser: `name = value` or `name: value`, `#`/`;` comment
//! lines, indented continuation lines, `%(name)s` interpolation. Names are
//! case-insensitive and become upper-case variables. Deliberate differences from TMDA,
//! which pasted every value into `NAME = "value"` and exec'd it: any whole number
//! becomes an int (TMDA only did this for single digits, so `HMAC_BYTES = 10` broke),
//! and true/yes/on / false/no/off become booleans (in TMDA the string "False" was true).

use std::collections::BTreeMap;
use std::path::Path;

use super::ConfigError;
use super::python::{Namespace, Origin};
use super::value::Value;

pub const SECTION: &str = "TMDA_CONFIG";

pub fn exec(source: &str, path: &Path, ns: &mut Namespace) -> Result<(), ConfigError> {
    let err = |line: usize, message: String| ConfigError::Syntax {
        path: path.to_path_buf(),
        line,
        col: 1,
        message,
        hint: None,
    };
    // section -> (name -> (raw value, line))
    let mut sections: BTreeMap<String, BTreeMap<String, (String, usize)>> = BTreeMap::new();
    let mut current: Option<String> = None;
    let mut last_key: Option<String> = None;
    for (i, raw) in source.lines().enumerate() {
        let lineno = i + 1;
        let line = raw.trim_end();
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            // Continuation of the previous value.
            let (Some(sec), Some(key)) = (&current, &last_key) else {
                return Err(err(lineno, "indented line does not continue a value".into()));
            };
            let entry = sections
                .get_mut(sec)
                .and_then(|s| s.get_mut(key))
                .expect("key was inserted");
            entry.0.push('\n');
            entry.0.push_str(trimmed);
            continue;
        }
        if let Some(rest) = trimmed.strip_prefix('[') {
            let Some(name) = rest.strip_suffix(']') else {
                return Err(err(
                    lineno,
                    format!("malformed section header {}", crate::exit::quote(trimmed)),
                ));
            };
            current = Some(name.to_string());
            sections.entry(name.to_string()).or_default();
            last_key = None;
            continue;
        }
        // A line that names a secret is not quoted in errors: its value may follow.
        let quoted = if super::is_secret_name(trimmed) {
            "a line naming a secret (not shown)".to_string()
        } else {
            crate::exit::quote(trimmed)
        };
        let Some(sec) = &current else {
            return Err(err(lineno, format!("{quoted} comes before any [section] header")));
        };
        let Some(sep) = trimmed.find(['=', ':']) else {
            return Err(err(lineno, format!("expected 'name = value', found {quoted}")));
        };
        let key = trimmed[..sep].trim().to_lowercase();
        if key.is_empty() {
            return Err(err(lineno, "missing option name before '='".into()));
        }
        let value = trimmed[sep + 1..].trim().to_string();
        sections
            .get_mut(sec)
            .expect("section exists")
            .insert(key.clone(), (value, lineno));
        last_key = Some(key);
    }
    let defaults = sections.get("DEFAULT").cloned().unwrap_or_default();
    let Some(section) = sections.get(SECTION) else {
        return Err(ConfigError::Syntax {
            path: path.to_path_buf(),
            line: 1,
            col: 1,
            message: format!("no [{SECTION}] section (CONFIG_EXEC is False, so this file is read as INI)"),
            hint: None,
        });
    };
    let mut merged = defaults.clone();
    merged.extend(section.clone());
    for (key, (raw, line)) in &merged {
        let text = interpolate(raw, &merged, 0).map_err(|m| {
            if super::is_secret_name(key) {
                err(
                    *line,
                    format!("bad interpolation in the value of {key} (not shown: it may be secret)"),
                )
            } else {
                err(*line, m)
            }
        })?;
        let value = convert(&text);
        ns.set(
            &key.to_uppercase(),
            value,
            Origin::File {
                path: path.to_path_buf(),
                line: *line,
            },
        );
    }
    Ok(())
}

fn interpolate(raw: &str, all: &BTreeMap<String, (String, usize)>, depth: usize) -> Result<String, String> {
    if depth > 10 {
        return Err("interpolation is nested too deeply (a loop?)".into());
    }
    let mut out = String::new();
    let mut rest = raw;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        if let Some(r) = rest.strip_prefix('%') {
            out.push('%');
            rest = r;
        } else if let Some(r) = rest.strip_prefix('(') {
            let Some(close) = r.find(")s") else {
                return Err(format!(
                    "bad interpolation in {}: expected %(name)s",
                    crate::exit::quote(raw)
                ));
            };
            let name = r[..close].to_lowercase();
            let Some((v, _)) = all.get(&name) else {
                return Err(format!("%({name})s refers to an option that is not set"));
            };
            out.push_str(&interpolate(v, all, depth + 1)?);
            rest = &r[close + 2..];
        } else {
            return Err(format!(
                "'%' must be followed by '%' or '(name)s' in {}",
                crate::exit::quote(raw)
            ));
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn convert(text: &str) -> Value {
    if !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && let Ok(i) = text.parse()
    {
        return Value::Int(i);
    }
    match text.to_lowercase().as_str() {
        "true" | "yes" | "on" => Value::Bool(true),
        "false" | "no" | "off" => Value::Bool(false),
        "none" => Value::None,
        _ => Value::Str(text.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_tmda_config_section() {
        let mut ns = Namespace::default();
        let src = "# comment\n[DEFAULT]\nhome = /home/j\n\n[TMDA_CONFIG]\nhmac_bytes = 4\nRecipient_Delimiter: +\n\
                   crypt_key_file = %(home)s/.tmda/key\nx_tmda_in_subject = False\nfullname = Jason\n  Mastaler\npct = 50%%\n";
        exec(src, Path::new("ini"), &mut ns).unwrap();
        assert_eq!(ns.get("HMAC_BYTES"), Some(&Value::Int(4)));
        assert_eq!(ns.get("RECIPIENT_DELIMITER"), Some(&Value::Str("+".into())));
        assert_eq!(ns.get("CRYPT_KEY_FILE"), Some(&Value::Str("/home/j/.tmda/key".into())));
        assert_eq!(ns.get("X_TMDA_IN_SUBJECT"), Some(&Value::Bool(false)));
        assert_eq!(ns.get("FULLNAME"), Some(&Value::Str("Jason\nMastaler".into())));
        assert_eq!(ns.get("PCT"), Some(&Value::Str("50%".into())));
        assert_eq!(
            ns.vars["HMAC_BYTES"].1,
            Origin::File {
                path: "ini".into(),
                line: 6
            }
        );
    }

    #[test]
    fn errors() {
        let e = |src: &str| {
            let mut ns = Namespace::default();
            exec(src, Path::new("ini"), &mut ns).unwrap_err().to_string()
        };
        assert!(e("[OTHER]\na=1\n").contains("no [TMDA_CONFIG] section"));
        assert!(e("a = 1\n").starts_with("ini:1:1: \"a = 1\" comes before any [section]"));
        assert!(e("[TMDA_CONFIG]\njunk\n").starts_with("ini:2:1: expected 'name = value'"));
        assert!(e("[TMDA_CONFIG]\na = %(nope)s\n").starts_with("ini:2:1: %(nope)s refers"));
        assert!(e("[TMDA_CONFIG\n").contains("malformed section header"));
        // A line naming a secret is never quoted.
        for src in [
            "smtpauth_password hunter2\n",
            "[TMDA_CONFIG]\nsmtpauth_password hunter2\n",
            "[TMDA_CONFIG]\nsmtpauth_password = hunter2 %(x\n",
        ] {
            let got = e(src);
            assert!(!got.contains("hunter2") && got.contains("not shown"), "{got}");
        }
    }
}
