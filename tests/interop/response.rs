//! Auto-responses rendered by TMDA's own Python code (TMDAng, the venv `scripts/deps.sh`
//! makes at /opt/tmdang, or `TMDANG_VENV`) and by `tmda::response`, compared byte for
//! byte: TMDA's nine templates and hand-written user templates (`Name.CHARSET:`
//! fields, `BodyCharset`, non-ASCII values, CRLF files), at each
//! `AUTORESPONSE_INCLUDE_SENDER_COPY` level.
//!
//! What differs per run is fixed on both sides rather than normalised: the Python driver
//! pins `time.time()` (Date, Message-ID), `Defaults.PID`, `TMDAIDHOST` and the random
//! number behind the MIME boundary, and runs with `TZ=UTC`; the Rust side gets the same
//! values through `Stamp`. The `X-Delivery-Agent` value is an input on our side and is
//! set to TMDAng's.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use tmda::response::{self, Kind, Original, SenderCopy, Settings, Stamp, Template};

const NOW: u64 = 1_700_000_000;
const DATE: &str = "Tue, 14 Nov 2023 22:13:20 +0000";
const PID: u32 = 4242;
const TOKEN: u64 = 1_234_567_890_123_456_789;
const AGENT: &str = "TMDA/1.1.12+ (Nikka)";

/// Reads a JSON case, renders with TMDA's maketext and AutoResponse, prints the message.
const DRIVER: &str = r#"
import sys, json, io
cfg = json.load(open(sys.argv[1]))
from TMDA import Defaults, Util, AutoResponse
import email.generator, time
for k, v in cfg['defaults'].items():
    setattr(Defaults, k, v)
Defaults.PID = cfg['pid']
class FixedRandom:
    def randrange(self, n): return cfg['token']
email.generator.random = FixedRandom()
time.time = lambda: cfg['time']
raw = open(cfg['original'], 'rb').read()
msgin = Util.msg_from_file(io.BytesIO(raw), isBytes=True)
v = {}
v['original_message'] = Util.msg_as_string(msgin)
v['original_message_headers'] = Util.headers_as_raw_string(msgin)
v['original_message_body'] = Util.body_as_raw_string(msgin)
v['original_message_size'] = len(v['original_message'])
v.update(cfg['vars'])
text = Util.maketext(cfg['template'], v)
ar = AutoResponse.AutoResponse(msgin, text, cfg['mode'], cfg['recipient'])
ar.create()
sys.stdout.buffer.write(Util.msg_as_string(ar.mimemsg, 78).encode('utf-8', 'surrogateescape'))
"#;

/// TMDAng's venv, after checking its Python is there.
fn venv() -> PathBuf {
    crate::peers::tmdang("python");
    crate::peers::tmdang_venv()
}

fn tmda_templates() -> PathBuf {
    let lib = venv().join("lib");
    for e in std::fs::read_dir(&lib).unwrap() {
        let p = e.unwrap().path().join("site-packages/TMDA/templates");
        if p.is_dir() {
            return p;
        }
    }
    panic!("no TMDA/templates under {}", lib.display());
}

struct Case {
    /// The template file's bytes (a user's template, or one of TMDA's read from the venv).
    template: Vec<u8>,
    kind: Kind,
    level: i64,
    max_size: u64,
    original: Vec<u8>,
    vars: Vec<(&'static str, String)>,
    added: Vec<(&'static str, &'static str)>,
    purged: Vec<&'static str>,
}

impl Case {
    fn new(template: &[u8], kind: Kind) -> Case {
        Case {
            template: template.to_vec(),
            kind,
            level: 2,
            max_size: 50000,
            original: ORIGINAL.to_vec(),
            vars: vec![
                ("FULLNAME", "Test User".into()),
                ("recipient_address", "testuser@nowhere.com".into()),
                (
                    "confirm_accept_address",
                    "testuser-confirm-1700000000.4242.abcdef@nowhere.com".into(),
                ),
                ("confirm_append_address", "alice@example.org".into()),
                ("pending_lifetime", "14 days".into()),
                ("envelope_sender", "alice@example.org".into()),
                ("subject", "Hello there".into()),
            ],
            added: vec![],
            purged: vec![],
        }
    }

    fn mode(&self) -> &'static str {
        match self.kind {
            Kind::Request => "request",
            Kind::Accept => "accept",
            Kind::Bounce => "bounce",
        }
    }
}

const ORIGINAL: &[u8] = b"Return-Path: <alice@example.org>\r\nFrom: Alice <alice@example.org>\r\nTo: testuser@nowhere.com\r\nSubject: Hello there\r\nMessage-ID: <abc@example.org>\r\nReferences: <r1@x.org>\r\n <r2@x.org>\r\n\r\nHi, this is the body.\r\nSecond line.\r\n";

fn json_str(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    // Characters outside the BMP would need surrogate pairs; the cases have none.
    o.push('"');
    o
}

fn python(case: &Case, dir: &Path) -> Vec<u8> {
    let home = dir.join("home");
    std::fs::create_dir_all(home.join(".tmda")).unwrap();
    std::fs::write(
        home.join(".tmda/crypt_key"),
        "b7fdc8a5afe5f364c87e2f984cbbd27450255675\n",
    )
    .unwrap();
    std::fs::set_permissions(
        home.join(".tmda/crypt_key"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    std::fs::write(
        home.join(".tmda/config"),
        "MAIL_TRANSFER_AGENT = 'postfix'\nDELIVERY = '/dev/null'\nFULLNAME = 'Test User'\nUSERNAME = 'testuser'\nHOSTNAME = 'nowhere.com'\n",
    )
    .unwrap();
    std::fs::write(dir.join("template.txt"), &case.template).unwrap();
    std::fs::write(dir.join("original.eml"), &case.original).unwrap();
    std::fs::write(dir.join("driver.py"), DRIVER).unwrap();
    let vars: Vec<String> = case
        .vars
        .iter()
        .map(|(k, v)| format!("{}: {}", json_str(k), json_str(v)))
        .collect();
    let added: Vec<String> = case
        .added
        .iter()
        .map(|(k, v)| format!("{}: {}", json_str(k), json_str(v)))
        .collect();
    let purged: Vec<String> = case.purged.iter().map(|k| json_str(k)).collect();
    let mut defaults = format!(
        "\"AUTORESPONSE_INCLUDE_SENDER_COPY\": {}, \"CONFIRM_MAX_MESSAGE_SIZE\": {}",
        case.level, case.max_size
    );
    if !added.is_empty() {
        defaults.push_str(&format!(", \"ADDED_HEADERS_SERVER\": {{{}}}", added.join(", ")));
    }
    if !purged.is_empty() {
        defaults.push_str(&format!(", \"PURGED_HEADERS_SERVER\": [{}]", purged.join(", ")));
    }
    let json = format!(
        "{{\"template\": {}, \"original\": {}, \"mode\": \"{}\", \"recipient\": \"alice@example.org\", \"pid\": {PID}, \"token\": {TOKEN}, \"time\": {NOW}, \"defaults\": {{{defaults}}}, \"vars\": {{{}}}}}",
        json_str(&dir.join("template.txt").display().to_string()),
        json_str(&dir.join("original.eml").display().to_string()),
        case.mode(),
        vars.join(", ")
    );
    std::fs::write(dir.join("case.json"), json).unwrap();
    let out = Command::new(venv().join("bin/python"))
        .arg(dir.join("driver.py"))
        .arg(dir.join("case.json"))
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", &home)
        .env("LANG", "C.UTF-8")
        .env("TZ", "UTC")
        .env("TMDAIDHOST", "idhost.example")
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "TMDA's renderer failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn ours(case: &Case) -> Vec<u8> {
    let (head, body) = split(&case.original);
    let original = Original {
        header: head,
        body: &body,
    };
    let tpl = Template::from_bytes("template.txt", &case.template).unwrap();
    let map: BTreeMap<String, String> = case.vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let vars = |name: &str| -> Option<String> {
        map.get(name)
            .cloned()
            .or_else(|| response::original_var(&original, name).map(|r| r.unwrap()))
    };
    let text = tpl.render(&vars).unwrap();
    let settings = Settings {
        sender_copy: SenderCopy::from_level(case.level),
        max_message_size: case.max_size,
        added_headers: case.added.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        purged_headers: case.purged.iter().map(|k| k.to_string()).collect(),
        delivery_agent: AGENT.into(),
        ..Settings::default()
    };
    let stamp = Stamp {
        date: DATE.into(),
        message_id: response::mime::message_id(NOW, PID, "TMDA", "idhost.example"),
        boundary_token: TOKEN,
    };
    let mut out = vec![];
    let reply = response::Reply {
        kind: case.kind,
        rendered: &text,
        origin: &tpl.origin,
        to: "alice@example.org",
    };
    response::compose(&reply, &original, &settings, &stamp, &mut out).unwrap();
    out
}

/// Header block (without the empty line) and body of a raw message.
fn split(m: &[u8]) -> (&[u8], &[u8]) {
    for (i, w) in m.windows(2).enumerate() {
        if w == b"\n\n" {
            return (&m[..i + 1], &m[i + 2..]);
        }
        if i + 4 <= m.len() && &m[i..i + 4] == b"\r\n\r\n" {
            return (&m[..i + 2], &m[i + 4..]);
        }
    }
    (m, &[])
}

fn same(name: &str, case: &Case) {
    let dir = tempfile::tempdir().unwrap();
    let want = python(case, dir.path());
    let got = ours(case);
    if want != got {
        let (w, g) = (String::from_utf8_lossy(&want), String::from_utf8_lossy(&got));
        let line = w.lines().zip(g.lines()).position(|(a, b)| a != b).unwrap_or(0);
        panic!(
            "{name}: differs from TMDA at line {}\n--- TMDA\n{w}\n--- ours\n{g}",
            line + 1
        );
    }
}

#[test]
fn tmdas_own_templates_render_the_same() {
    let dir = tmda_templates();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".txt"))
        .collect();
    names.sort();
    assert_eq!(names.len(), 9, "{names:?}");
    for name in names {
        let kind = match name.as_str() {
            "confirm_request.txt" => Kind::Request,
            "confirm_accept.txt" => Kind::Accept,
            _ => Kind::Bounce,
        };
        let case = Case::new(&std::fs::read(dir.join(&name)).unwrap(), kind);
        same(&name, &case);
    }
}

#[test]
fn our_builtins_render_as_tmda_would_render_them() {
    for (name, text) in response::template::BUILTIN {
        let kind = if name.starts_with("bounce") {
            Kind::Bounce
        } else {
            Kind::Request
        };
        same(name, &Case::new(text.as_bytes(), kind));
    }
}

const CHARSETS: &str = "From.UTF-8: \"Jörg Müller\" <%(recipient_address)s>\nSubject.ISO-8859-1: Bitte bestätigen Sie Ihre Nachricht an %(recipient_address)s - eine sehr lange Betreffzeile\nReply-To.US-ASCII: \"Test, User\" <%(confirm_accept_address)s>\nX-Note.UTF-8: Grüße aus Köln, %(FULLNAME)s\nX-Plain: a plain value: %(subject)s\nBodyCharset: utf-8\n\nHallo %(FULLNAME)s, Grüße!\n%(pending_lifetime)s and 100%% sure.\n";

#[test]
fn user_templates_with_charsets_at_every_level() {
    for level in [0, 1, 2] {
        for kind in [Kind::Request, Kind::Accept, Kind::Bounce] {
            let mut case = Case::new(CHARSETS.as_bytes(), kind);
            case.level = level;
            same(&format!("charsets level {level} {kind:?}"), &case);
        }
    }
}

#[test]
fn crlf_template_latin1_body_and_non_ascii_values() {
    let tpl = "From: %(FULLNAME)s <%(recipient_address)s>\r\nSubject: Re: %(subject)s\r\nX-Who: %(FULLNAME)s\r\nBodyCharset: iso-8859-1\r\n\r\nCher %(FULLNAME)s, votre message est arrivé. Une ligne très longue qui dépasse largement soixante-seize caractères, pour voir.\r\nFin   \r\n";
    for level in [0, 2] {
        let mut case = Case::new(tpl.as_bytes(), Kind::Request);
        case.level = level;
        case.vars[0].1 = "Zoë Ågren".into();
        case.vars[6].1 = "Grüße".into();
        same(&format!("crlf latin-1 level {level}"), &case);
    }
}

#[test]
fn encoded_subject_from_the_original() {
    let tpl =
        "From: \"%(FULLNAME)s\" <%(recipient_address)s>\nSubject.UTF-8: Re: %(subject)s\nBodyCharset: us-ascii\n\nx\n";
    let mut case = Case::new(tpl.as_bytes(), Kind::Bounce);
    case.vars[6].1 = "=?utf-8?q?Gr=C3=BC=C3=9Fe?= =?iso-8859-1?q?caf=E9?= und so".into();
    same("encoded subject", &case);
}

#[test]
fn the_original_attached_long_fields_multipart_and_size_limit() {
    let long = format!(
        "Received: from mail.example.org (mail.example.org [192.0.2.1]) by mx.nowhere.com (Postfix) with ESMTPS id ABCDEF0123 for <testuser@nowhere.com>; Tue, 14 Nov 2023 22:13:19 +0000 (UTC)\r\nFrom: Alice <alice@example.org>\r\nTo: testuser@nowhere.com\r\nSubject: {}\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"b1\"\r\nMessage-ID: <abc@example.org>\r\n\r\npreamble\r\n--b1\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nplain part\r\n--b1\r\nContent-Type: text/html; charset=us-ascii\r\n\r\n<p>html part</p>\r\n--b1--\r\n",
        "word ".repeat(30).trim_end()
    );
    for level in [1, 2] {
        let mut case = Case::new(CHARSETS.as_bytes(), Kind::Request);
        case.level = level;
        case.original = long.clone().into_bytes();
        same(&format!("long fields level {level}"), &case);
    }
    let mut case = Case::new(CHARSETS.as_bytes(), Kind::Request);
    case.original = long.into_bytes();
    case.max_size = 300;
    same("size limit", &case);
    let mut case = Case::new(CHARSETS.as_bytes(), Kind::Request);
    case.max_size = 0;
    same("no size limit", &case);
}

#[test]
fn original_in_a_charset_gets_that_charset_in_the_headers_part() {
    let orig = b"From: a@example.org\nSubject: x\nContent-Type: text/plain; charset=\"UTF-8\"\n\nbody\n";
    let mut case = Case::new(CHARSETS.as_bytes(), Kind::Request);
    case.level = 1;
    case.original = orig.to_vec();
    same("utf-8 original, headers part", &case);
}

#[test]
fn original_message_variables_in_the_body() {
    let tpl = "Subject: copy\n\nHeaders:\n%(original_message_headers)sBody:\n%(original_message_body)s\nSize: %(original_message_size)s\nAll:\n%(original_message)s";
    let mut case = Case::new(tpl.as_bytes(), Kind::Bounce);
    case.level = 0;
    same("original variables", &case);
}

#[test]
fn added_and_purged_server_headers() {
    let mut case = Case::new(CHARSETS.as_bytes(), Kind::Request);
    case.added = vec![("X-Zeta", "last"), ("Precedence", "junk"), ("X-Alpha", "first")];
    case.purged = vec!["X-Delivery-Agent", "in-reply-to"];
    same("added and purged", &case);
}
