//! What each fuzz target does with its input, and what it checks besides "no panic".
//!
//! One function per target in `fuzz_targets/`, taking the raw input. The hermetic test
//! tier includes this file too (tests/fuzz_regressions.rs) and replays the seed corpus
//! and every saved crasher through the same functions, so a crash, once fixed, stays
//! fixed without a nightly toolchain. Only `tmda` and std are used here for that reason.
//!
//! Nothing here touches the network; the filter target declines `include` of a path
//! with a slash (it would read any file on the machine, /dev/zero included).

use std::path::Path;
use std::sync::OnceLock;

use tmda::address::{TagNames, Tagger};
use tmda::config::{Config, ConfigError, Namespace, ini, python};
use tmda::dsn::{Failure, Notice, RecipientFate};
use tmda::filter::{self, Source};
use tmda::inject::{Injector, Options};
use tmda::key::CryptKey;
use tmda::message::address::{encode_words, formataddr, getaddresses, parseaddr};
use tmda::message::{Eol, Header, Message};
use tmda::smtp::data::{Decoder, Problem};
use tmda::smtp::session::{DeliveryOutcome, Peer, Secret};
use tmda::smtp::{AuthOutcome, Command, Input, Output, Policy, Reply, Session, TlsMode};

/// What a target does with one input.
pub type Target = fn(&[u8]);

/// The targets, by name, for replaying saved inputs.
pub const TARGETS: &[(&str, Target)] = &[
    ("smtp_session", smtp_session),
    ("smtp_command", smtp_command),
    ("smtp_data", smtp_data),
    ("config", config),
    ("filter", filter),
    ("message_header", message_header),
    ("address_list", address_list),
];

// ---------------------------------------------------------------------------
// SMTP

/// A reply as the client would see it: one code, CRLF line ends, none too long.
fn check_reply(r: &Reply) {
    assert!((200..=599).contains(&r.code), "code {}", r.code);
    let wire = r.to_wire();
    assert!(wire.ends_with("\r\n"), "{wire:?}");
    for line in wire.split_terminator("\r\n") {
        assert!(!line.contains(['\r', '\n']), "bare line ending in {wire:?}");
        assert!(line.len() <= 512, "reply line over 512 octets: {line:?}");
        assert!(line.starts_with(&r.code.to_string()), "{wire:?}");
    }
}

/// The longest command line, CRLF included (server.rs's default `max_line`).
const MAX_LINE: usize = 512;
/// The longest AUTH line or SASL response (server.rs, after RFC 4954 section 4).
const AUTH_LINE: usize = 12288;

/// A whole client dialogue against one session, played the way server.rs drives it.
///
/// Byte 0 is the setup: bits 0-1 the TLS mode, bit 2 CRAM-MD5, bits 3-4 what the auth
/// sources say (accept, deny, temporary failure, accept only "alice"), bits 5-6 how the
/// relay answers (with one recipient: accepted, throttled, 4xx, 5xx; with more: a
/// configuration error, a refused sender, or some recipients failed with or without a
/// notification sent), bit 7 `--tls-auth-only`. The rest is what the client sends:
/// lines end at LF (a CR before it is dropped), DATA goes through a [`Decoder`],
/// STARTTLS succeeds at once.
pub fn smtp_session(data: &[u8]) {
    let Some((&setup, mut stream)) = data.split_first() else {
        return;
    };
    let tls = [TlsMode::None, TlsMode::Optional, TlsMode::Required, TlsMode::Implicit][usize::from(setup & 3)];
    let max_recipients = 3;
    let mut s = Session::new(
        Policy {
            hostname: "mx.example".into(),
            tls,
            tls_auth_only: setup & 0x80 != 0,
            cram_md5: setup & 4 != 0,
            max_size: 2000,
            max_recipients,
            max_auth_failures: 3,
        },
        Peer {
            ip: "192.0.2.7".into(),
            name: Some("client.example".into()),
        },
    );
    s.set_challenge_seed(7);
    check_reply(&s.greeting());
    let auth_needs_tls = tls == TlsMode::Required || setup & 0x80 != 0;
    let mut tls_up = tls == TlsMode::Implicit;
    let mut accepted: Option<String> = None;
    loop {
        let next = match stream.iter().position(|&b| b == b'\n') {
            None => return,
            Some(i) => {
                let mut line = &stream[..i];
                stream = &stream[i + 1..];
                if line.last() == Some(&b'\r') {
                    line = &line[..line.len() - 1];
                }
                // As server.rs: AUTH lines and SASL responses may be longer.
                let auth = s.in_auth_exchange() || line.get(..5).is_some_and(|v| v.eq_ignore_ascii_case(b"AUTH "));
                if line.len() + 2 > if auth { AUTH_LINE } else { MAX_LINE } {
                    Input::LineTooLong
                } else {
                    Input::Line(line)
                }
            }
        };
        let mut out = s.handle(next);
        // Carry out what the session asks for until it waits for the client again.
        loop {
            let follow = match out {
                Output::Nothing => None,
                Output::Reply(r) => {
                    check_reply(&r);
                    None
                }
                Output::ReplyThenClose(r) => {
                    check_reply(&r);
                    return;
                }
                Output::ReplyThenStartTls(r) => {
                    check_reply(&r);
                    assert!(!tls_up, "STARTTLS twice");
                    tls_up = true;
                    // RFC 3207: everything learnt before TLS is forgotten, AUTH included.
                    accepted = None;
                    Some(Input::TlsEstablished)
                }
                Output::ReplyThenData(r) => {
                    check_reply(&r);
                    assert_eq!(r.code, 354);
                    assert!(accepted.is_some(), "DATA without AUTH");
                    let mut d = Decoder::new(s.max_size(), 1000);
                    let mut body = vec![];
                    // Without the end marker the client just went away.
                    let Some(used) = d.feed(stream, &mut body) else {
                        return;
                    };
                    stream = &stream[used..];
                    Some(Input::DataDone {
                        problem: d.problem(),
                        now: 1_700_000_000,
                    })
                }
                Output::Authenticate(attempt) => {
                    assert!(
                        !auth_needs_tls || tls_up,
                        "AUTH before STARTTLS under --tls=on or --tls-auth-only"
                    );
                    assert!(accepted.is_none(), "a second AUTH was taken");
                    if let Secret::CramMd5 { challenge, .. } = &attempt.secret {
                        assert!(setup & 4 != 0, "CRAM-MD5 when not offered");
                        assert!(!challenge.is_empty());
                    }
                    let outcome = match (setup >> 3) & 3 {
                        0 => AuthOutcome::Accepted,
                        1 => AuthOutcome::Denied,
                        2 => AuthOutcome::Temporary,
                        _ if attempt.user == "alice" => AuthOutcome::Accepted,
                        _ => AuthOutcome::Denied,
                    };
                    if outcome == AuthOutcome::Accepted {
                        // User names are case-insensitive; the session keeps them lower-cased.
                        accepted = Some(attempt.user.to_lowercase());
                    }
                    Some(Input::AuthResult(outcome))
                }
                Output::Deliver(env) => {
                    assert_eq!(accepted.as_deref(), Some(env.user.as_str()), "relayed without AUTH");
                    assert_eq!(s.user(), Some(env.user.as_str()));
                    assert!(tls != TlsMode::Required || tls_up, "relayed before STARTTLS");
                    assert!((1..=max_recipients).contains(&env.recipients.len()));
                    for a in env.recipients.iter().chain([&env.mail_from, &env.received]) {
                        assert!(!a.contains(['\r', '\n']), "line break in the envelope: {a:?}");
                    }
                    let fates = |status: &str, notice| DeliveryOutcome::Partial {
                        fates: env
                            .recipients
                            .iter()
                            .enumerate()
                            .map(|(i, r)| RecipientFate {
                                recipient: r.clone(),
                                failure: (i > 0).then(|| Failure {
                                    status: status.into(),
                                    diagnostic: format!("smtp; 550 {status} no\r\n250 {}", "y".repeat(600)),
                                }),
                            })
                            .collect(),
                        notice,
                    };
                    let several = usize::from(env.recipients.len() > 1);
                    Some(Input::Delivered(match usize::from(setup >> 5 & 3) + 4 * several {
                        0 => DeliveryOutcome::Accepted,
                        1 => DeliveryOutcome::Throttled,
                        2 => DeliveryOutcome::Transient("cfg:3:5: bad value\n  hint: quote it".into()),
                        3 => DeliveryOutcome::Permanent(format!("550 no such user\r\n250 {}", "x".repeat(600))),
                        4 => DeliveryOutcome::ConfigError("cfg:1:1: SECRET = 'x'\r\n250 ok".into()),
                        5 => DeliveryOutcome::SenderRefused(format!("<{}>\r\n250 ok", env.mail_from)),
                        6 => fates("5.1.1", Notice::Sent(env.mail_from.clone())),
                        _ => fates("4.4.1", Notice::NotSent("no sender\r\n250 ok".into())),
                    }))
                }
            };
            match follow {
                Some(input) => out = s.handle(input),
                None => break,
            }
        }
        if accepted.is_some() {
            assert_eq!(s.user(), accepted.as_deref(), "the session's user changed");
        }
    }
}

/// One command line. The session refuses lines that are not UTF-8 before parsing.
pub fn smtp_command(data: &[u8]) {
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(cmd) = Command::parse(line) else {
        return;
    };
    let _ = cmd.allowed_before_tls();
    let params = match &cmd {
        // The name goes into the Received field.
        Command::Ehlo(name) | Command::Helo(name) => {
            assert!(!name.is_empty() && !name.chars().any(char::is_control), "{name:?}");
            return;
        }
        Command::Mail { from: path, params } | Command::Rcpt { to: path, params } => {
            assert!(path.len() <= 256, "{path:?}");
            assert!(
                !path.contains(|c: char| c.is_control() || " <>".contains(c)),
                "{path:?}"
            );
            params
        }
        _ => return,
    };
    for (k, _) in params {
        assert!(
            !k.is_empty()
                && k.bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-')
        );
    }
}

/// DATA read the plain way: the text ends at the first CRLF "." CRLF (or at "." CRLF
/// right at the start); it is cut into lines at CRLF; a line's leading dot is dropped;
/// a CR or LF left inside a line is a bare line ending. Returns (end offset, text with
/// LF line ends, bare line ending seen), or None when the end marker is not there.
fn reference_data(input: &[u8]) -> Option<(usize, Vec<u8>, bool)> {
    let (end, body) = if input.starts_with(b".\r\n") {
        (3, &input[..0])
    } else {
        let at = input.windows(5).position(|w| w == b"\r\n.\r\n")?;
        (at + 5, &input[..at + 2])
    };
    let mut out = vec![];
    let mut bare = false;
    let mut rest = body;
    while !rest.is_empty() {
        let eol = rest.windows(2).position(|w| w == b"\r\n").expect("body ends in CRLF");
        let mut line = &rest[..eol];
        rest = &rest[eol + 2..];
        if line.first() == Some(&b'.') {
            line = &line[1..];
        }
        bare |= line.iter().any(|&b| b == b'\r' || b == b'\n');
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    Some((end, out, bare))
}

/// What a decoder made of its input: (end offset, output, problem).
type Decoded = (Option<usize>, Vec<u8>, Option<Problem>);

/// Decode `input` cut into chunks at `cuts`.
fn decode(input: &[u8], cuts: &[usize], max_size: u64, max_line: usize) -> Decoded {
    let mut d = Decoder::new(max_size, max_line);
    let mut out = vec![];
    let mut from = 0;
    for &to in cuts.iter().chain([&input.len()]) {
        let to = to.clamp(from, input.len());
        if let Some(n) = d.feed(&input[from..to], &mut out) {
            assert!(n <= to - from);
            return (Some(from + n), out, d.problem());
        }
        from = to;
    }
    (None, out, d.problem())
}

/// The DATA decoder, cut into chunks anywhere, against a plain line-by-line reading.
///
/// Byte 0: bits 0-3 how many chunk lengths follow (one byte each), bit 4 small limits.
/// The rest is the DATA stream.
pub fn smtp_data(data: &[u8]) {
    let Some((&setup, rest)) = data.split_first() else {
        return;
    };
    let n = usize::from(setup & 15).min(rest.len());
    let (lens, input) = rest.split_at(n);
    let mut cuts = vec![];
    let mut at = 0;
    for &l in lens {
        at += usize::from(l);
        cuts.push(at);
    }
    let (max_size, max_line) = if setup & 16 != 0 { (200, 40) } else { (1 << 30, 1 << 30) };
    let (end, out, problem) = decode(input, &[], max_size, max_line);
    let chunked = decode(input, &cuts, max_size, max_line);
    // A refused message's partial text is thrown away, so only then may it differ.
    let same = (end, problem) == (chunked.0, chunked.2) && (problem.is_some() || out == chunked.1);
    assert!(
        same,
        "the result depends on how the input was cut ({cuts:?}): end {end:?} or {:?}, problem {problem:?} or {:?}",
        chunked.0, chunked.2
    );
    let want = reference_data(input);
    assert_eq!(end, want.as_ref().map(|w| w.0), "the end of DATA");
    let Some((_, text, bare)) = want else {
        return;
    };
    if bare {
        assert!(problem.is_some(), "a bare line ending went unnoticed");
    }
    match problem {
        None => assert_eq!(out, text),
        Some(Problem::BareLineEnding) => assert!(bare, "a bare line ending that is not there"),
        Some(Problem::TooBig) => assert!(text.len() as u64 > max_size),
        Some(Problem::LineTooLong) => assert!(max_line < input.len()),
    }
}

// ---------------------------------------------------------------------------
// Configuration and filter files

/// The line an error names is one of the input's (or just after its end).
fn check_config_error(e: &ConfigError, text: &str) {
    let msg = e.to_string();
    assert!(!msg.is_empty());
    if let ConfigError::Syntax { path, line, .. } = e {
        assert_eq!(path, Path::new("cfg"), "{msg}");
        let lines = text.bytes().filter(|&b| b == b'\n' || b == b'\r').count() + 1;
        assert!((1..=lines).contains(line), "line {line} of {lines}: {msg}");
    }
}

/// A configuration file: byte 0 even for TMDA's Python subset, odd for the INI form;
/// then the settings are typed as `Config::load` would. Files must be UTF-8.
pub fn config(data: &[u8]) {
    let Some((&kind, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let mut ns = Namespace::with_builtins();
    ns.env.insert("HOME".into(), "/home/jason".into());
    let read = if kind & 1 == 0 {
        python::exec(text, Path::new("cfg"), &mut ns)
    } else {
        ini::exec(text, Path::new("cfg"), &mut ns)
    };
    if let Err(e) = read {
        check_config_error(&e, text);
        return;
    }
    if let Ok(config) = Config::from_namespace(ns, vec![]) {
        let _ = (
            config.username(),
            config.hostname(),
            config.fullname(),
            config.default_address(),
        );
        let _ = config.effective_dated_timeout();
    }
}

/// A filter file (lossy UTF-8, as `parse_file` reads it), then each of its plain
/// `to`/`from` rules tried against addresses made from the same text.
pub fn filter(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if text.to_ascii_lowercase().contains("include") && text.contains('/') {
        return;
    }
    let vars = |n: &str| match n {
        "USERNAME" => Some("jason".to_string()),
        "HOSTNAME" => Some("example.com".to_string()),
        _ => None,
    };
    let f = match filter::parse::parse_str(&text, Path::new("f"), &vars) {
        Ok(f) => f,
        Err(e) => {
            assert!(!e.errors.is_empty());
            for (path, line, msg) in &e.errors {
                assert!(!msg.is_empty());
                // Errors in an included (relative) file name that file.
                if path == Path::new("f") {
                    assert!(*line <= text.lines().count() + 1, "line {line}: {msg}");
                }
            }
            return;
        }
    };
    // to-file and to-cdb rules read files: only the plain rules are evaluated.
    let plain = filter::Filter {
        rules: f
            .rules
            .into_iter()
            .filter(|r| matches!(r.source, Source::To | Source::From))
            .inspect(|r| {
                let _ = r.describe(&r.then);
            })
            .collect(),
        files: f.files,
    };
    for probe in text.split_whitespace().take(8) {
        let _ = plain.first_match(probe, "jason@example.com");
        let _ = plain.first_match("someone@example.org", probe);
    }
    incoming_filter(&text, &vars);
}

/// The same text as an incoming filter: its address rules and the message rules that
/// read no file and run nothing (body, headers, size) tried against a message made of
/// the text itself.
fn incoming_filter(text: &str, vars: &dyn Fn(&str) -> Option<String>) {
    use filter::{Direction, Source, Subject, incoming::MessageView};
    let Ok(f) = filter::parse::parse_str_for(Direction::Incoming, text, Path::new("f"), vars) else {
        return;
    };
    let plain = filter::Filter {
        rules: f
            .rules
            .into_iter()
            .filter(|r| {
                matches!(
                    r.source,
                    Source::To | Source::From | Source::Body | Source::Headers | Source::Size
                )
            })
            .inspect(|r| {
                let _ = r.describe(&r.then);
            })
            .collect(),
        files: f.files,
    };
    let (headers, body) = text.split_once("\n\n").unwrap_or((text, ""));
    let body = body.as_bytes();
    let senders: Vec<&str> = text.split_whitespace().take(4).collect();
    let _ = plain.first_match_in(&Subject {
        direction: Direction::Incoming,
        recipients: &["jason-dated-1.abc@example.com"],
        senders: &senders,
        message: Some(MessageView {
            headers,
            body: &body,
            size: text.len() as u64,
        }),
    });
}

// ---------------------------------------------------------------------------
// Messages and addresses

/// Every line of a header block is a field ("Name:" with a printable name) or a
/// continuation, and the block ends with the empty line.
fn assert_well_formed(header: &[u8]) {
    let text = String::from_utf8_lossy(header).replace("\r\n", "\n");
    let block = text
        .strip_suffix("\n\n")
        .unwrap_or_else(|| panic!("no blank line after {text:?}"));
    for line in block.split('\n') {
        if line.starts_with([' ', '\t']) {
            continue;
        }
        let name = line.split(':').next().unwrap_or_default();
        assert!(
            line.contains(':') && !name.is_empty() && name.bytes().all(|b| (33..=126).contains(&b)),
            "{line:?} is neither a field nor a continuation in\n{text}"
        );
    }
}

struct Outgoing {
    config: Config,
    filter: filter::Filter,
    tagger: Tagger,
}

/// A configuration and filter that exercise every kind of header rewrite.
fn outgoing() -> &'static Outgoing {
    static SETUP: OnceLock<Outgoing> = OnceLock::new();
    SETUP.get_or_init(|| {
        let mut ns = Namespace::with_builtins();
        python::exec(
            "USERNAME = 'jason'\nHOSTNAME = 'example.com'\nFULLNAME = 'Jason'\n\
             ADDED_HEADERS_CLIENT = {'X-Fact': 'Niagara'}\nPURGED_HEADERS_CLIENT = ['x-purge']\n\
             FINGERPRINT = ['message-id', 'from', 'body']\nX_TMDA_IN_SUBJECT = True\n",
            Path::new("cfg"),
            &mut ns,
        )
        .expect("the fuzz configuration reads");
        Outgoing {
            config: Config::from_namespace(ns, vec![]).expect("the fuzz configuration is valid"),
            filter: filter::parse::parse_str(
                "to *@example.org sender\nto b@* tag reply-to kw=lists mail-followup-to dated\n\
                 from *@example.com dated=1d\nto c* exp=other@example.net\nto *.net bare\n",
                Path::new("f"),
                &|_| None,
            )
            .expect("the fuzz filter is valid"),
            tagger: Tagger {
                key: CryptKey::from_bytes(b"fuzz key".to_vec()),
                hmac_bytes: 3,
                delimiter: "-".into(),
                tags: TagNames::default(),
            },
        }
    })
}

/// A message: its header is kept byte for byte, survives changes as a header, and
/// every copy the outgoing pipeline makes of it has a well-formed header.
pub fn message_header(data: &[u8]) {
    let Ok(msg) = Message::from_vec(data.to_vec()) else {
        return;
    };
    // Lossless: (mbox From_ line) header (blank line) body.
    let mut body = vec![];
    msg.for_each_body_chunk(|c| {
        body.extend_from_slice(c);
        Ok(())
    })
    .expect("an in-memory body reads");
    assert!(data.ends_with(&body), "the body is not the message's tail");
    let head = msg.header.to_bytes();
    let start = if data.starts_with(b"From ") {
        data.iter().position(|&b| b == b'\n').map_or(data.len(), |i| i + 1)
    } else {
        0
    };
    let unterminated = !data[..data.len() - body.len()].ends_with(b"\n");
    if !unterminated {
        assert!(
            data[start..].starts_with(&head),
            "the header was not kept byte for byte"
        );
    }

    // Reading and changing it, with names and values from the message itself.
    let text = String::from_utf8_lossy(data);
    let words: Vec<&str> = text.split([':', '\n']).take(6).collect();
    let mut h = msg.header.clone();
    for w in &words {
        let _ = (h.get(w), h.get_all(w), h.get_source(w), h.contains(w));
    }
    let value = words.last().copied().unwrap_or_default();
    h.set("Subject", value);
    h.append("X-Appended", value);
    h.prepend("Received", value);
    h.remove_all(words.first().copied().unwrap_or_default());
    let _ = h.names();
    if !h.to_bytes().is_empty() {
        let mut block = h.to_bytes();
        block.extend_from_slice(h.eol.as_bytes());
        assert_well_formed(&block);
    }
    let mut fresh = Header::new(Eol::CrLf);
    fresh.set("From", &formataddr(value, value));
    assert_well_formed(&[fresh.to_bytes(), b"\r\n".to_vec()].concat());

    // The outgoing pipeline: plan the copies, render each header.
    let o = outgoing();
    let mut inj = Injector::new(&o.config, &o.filter, 1_700_000_000);
    inj.lend_tagger(&o.tagger);
    inj.set_inline(true);
    if let Ok(plan) = inj.plan(&msg, &Options::default()) {
        for copy in plan.copies.iter().take(8) {
            assert!(!copy.recipient.is_empty());
            assert!(!copy.recipient.contains(['\r', '\n']), "{:?}", copy.recipient);
            assert!(!copy.sender.contains(['\r', '\n']), "{:?}", copy.sender);
            if let Ok(r) = plan.render(copy, &msg) {
                assert_well_formed(&r.header);
            }
        }
    }
}

/// Address lists (one header value per line), single addresses, display names and
/// encoded words, and tagged addresses made from and checked against what they give.
pub fn address_list(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let values: Vec<&str> = text.split('\n').collect();
    let list = getaddresses(&values);
    for (name, addr) in list.iter().take(16) {
        let formatted = formataddr(name, addr);
        // However odd the name, it stays inside the one field it is written into.
        let mut one = Header::new(Eol::Lf);
        one.set("To", &formatted);
        assert_well_formed(&[one.to_bytes(), b"\n".to_vec()].concat());
        let _ = parseaddr(&formatted);
    }
    let first = values.first().copied().unwrap_or_default();
    let (name, addr) = parseaddr(first);
    for word in encode_words(&name).split(' ') {
        assert!(word.len() <= 75 && word.is_ascii(), "{word:?}");
    }
    let _ = tmda::address::split_lower(first);
    let _ = tmda::address::addr_spec(first);

    // Tagged addresses: what is made from a plain address verifies. (A sender address
    // is made for the sender's bare address, lower-cased, as tmda sendmail does.)
    let t = &outgoing().tagger;
    let now = 1_700_000_000;
    let sender = values.get(1).map(|s| tmda::address::addr_spec(s).to_lowercase());
    let _ = t.verify(first, sender.as_deref(), now);
    let plain =
        |a: &str| !a.is_empty() && !a.contains(|c: char| c.is_whitespace() || c.is_control() || "<>".contains(c));
    if !plain(&addr) {
        return;
    }
    if let Some(sender) = sender.filter(|s| plain(s))
        && let Ok(made) = t.sender(&addr, &sender)
    {
        assert!(t.verify(&made, Some(&sender), now).is_ok(), "{made:?} for {sender:?}");
    }
    if let Ok(made) = t.keyword(&addr, &name) {
        assert!(t.verify(&made, None, now).is_ok(), "{made:?}");
    }
    if let Ok(made) = t.dated(&addr, now, 86400) {
        assert!(t.verify(&made, None, now).is_ok(), "{made:?}");
    }
}
