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
    ("response_template", response_template),
    ("rfc2047", rfc2047),
    ("pending_release", pending_release),
    ("mailbox_quoting", mailbox_quoting),
    ("incoming_envelope", incoming_envelope),
    ("incoming_rule", incoming_rule),
    ("dbm_file", dbm_file),
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
        message: Some(MessageView::new(headers, &body, text.len() as u64)),
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

// ---------------------------------------------------------------------------
// The incoming side

/// `data` cut at NUL bytes into at most `n` parts (the last part keeps any later NULs;
/// missing parts are empty).
fn parts(data: &[u8], n: usize) -> Vec<&[u8]> {
    let mut out: Vec<&[u8]> = data.splitn(n, |&b| b == 0).collect();
    out.resize(n, b"");
    out
}

/// A field name is one or more printable ASCII characters other than `:`, then `:`.
fn name_of(line: &[u8]) -> Option<&[u8]> {
    let colon = line.iter().position(|&b| b == b':')?;
    let name = &line[..colon];
    (!name.is_empty() && name.iter().all(|&b| (33..=126).contains(&b))).then_some(name)
}

/// The fields of a header block as raw bytes (each with its continuation lines), read
/// the plain way: an mbox `From ` line first is skipped; the block ends at an empty line
/// or at a line that is neither a field nor (after a field) a continuation.
fn raw_fields(block: &[u8]) -> Vec<&[u8]> {
    let mut fields: Vec<(usize, usize)> = vec![];
    let mut pos = 0;
    for line in block.split_inclusive(|&b| b == b'\n') {
        let start = pos;
        pos += line.len();
        if start == 0 && line.starts_with(b"From ") {
            continue;
        }
        if line == b"\n" || line == b"\r\n" {
            break;
        }
        if line.starts_with(b" ") || line.starts_with(b"\t") {
            match fields.last_mut() {
                Some(f) => f.1 = pos,
                None => break,
            }
        } else if name_of(line).is_some() {
            fields.push((start, pos));
        } else {
            break;
        }
    }
    fields.into_iter().map(|(s, e)| &block[s..e]).collect()
}

/// Values a template variable may have: each tries to break out of the field it is put
/// into (by a line break of every kind, an empty line, or an encoded line break); the
/// field it would add is always `X-Injected`.
const HOSTILE: &[&str] = &[
    "a\nX-Injected: 1",
    "\r\nX-Injected: 2",
    "b\rX-Injected: 3\r",
    "c\n\nX-Injected: 4",
    "=?utf-8?q?=0AX-Injected:_5?=",
    "=?utf-8?b?CgpYLUluamVjdGVkOiA2?=",
    "caf\u{e9} \u{1F600} \u{2028}\u{85}\x0cd\n\tX-Injected: 7 continued",
    "<alice@example.org>",
];

/// A template rendered against hostile values and composed into an auto-response with
/// (part of) an original message: the response's header is well-formed and no value
/// adds a field; its MIME boundary occurs only where it belongs.
///
/// Byte 0: bits 0-1 `AUTORESPONSE_INCLUDE_SENDER_COPY` (0, 1, 2, 2), bit 2 a 200-byte
/// `CONFIRM_MAX_MESSAGE_SIZE` (else none), bits 3-4 the kind, bit 5 the `To:` address
/// is the free value. Then, cut at NUL: the template, the original message, the free
/// value (`%(free)s`). `%(a)s` .. `%(h)s` are [`HOSTILE`], `%(n)s` is `42`.
pub fn response_template(data: &[u8]) {
    use tmda::response::{Kind, Original, Reply, SenderCopy, Settings, Stamp, Template, compose};
    let Some((&setup, rest)) = data.split_first() else {
        return;
    };
    let p = parts(rest, 3);
    let Ok(t) = Template::from_bytes("fuzz.txt", p[0]) else {
        return;
    };
    let free = String::from_utf8_lossy(p[2]).into_owned();
    let vars = |name: &str| -> Option<String> {
        match name {
            "free" => Some(free.clone()),
            "n" => Some("42".into()),
            _ if name.len() == 1 && (b'a'..=b'h').contains(&name.as_bytes()[0]) => {
                Some(HOSTILE[usize::from(name.as_bytes()[0] - b'a')].into())
            }
            _ => None,
        }
    };
    let Ok(rendered) = t.render(&vars) else {
        return;
    };
    if !t.text.contains('%') {
        assert_eq!(rendered, t.text);
    }
    let (oheader, obody) = match p[1].windows(2).position(|w| w == b"\n\n") {
        Some(i) => (&p[1][..i + 1], &p[1][i + 2..]),
        None => (p[1], &b""[..]),
    };
    let sender_copy = SenderCopy::from_level(i64::from(setup & 3));
    let settings = Settings {
        sender_copy,
        max_message_size: if setup & 4 != 0 { 200 } else { 0 },
        ..Settings::default()
    };
    let kind = [Kind::Request, Kind::Accept, Kind::Bounce, Kind::Request][usize::from(setup >> 3 & 3)];
    let to = if setup & 0x20 != 0 {
        free.as_str()
    } else {
        "alice@example.org"
    };
    let stamp = Stamp {
        date: "Tue, 14 Nov 2023 22:13:20 +0000".into(),
        message_id: "<1700000000.7.TMDA@example.com>".into(),
        boundary_token: 7,
    };
    let body: &[u8] = obody;
    let mut out = vec![];
    let reply = Reply {
        kind,
        rendered: &rendered,
        origin: "fuzz.txt",
        to,
    };
    let original = Original {
        header: oheader,
        body: &body,
    };
    if compose(&reply, &original, &settings, &stamp, &mut out).is_err() {
        return;
    }
    let end = out
        .windows(2)
        .position(|w| w == b"\n\n")
        .expect("the response has a header and a body");
    let head = &out[..end + 2];
    assert_well_formed(head);
    // Only the template's own text can name a field X-Injected.
    let lower = |b: &[u8]| String::from_utf8_lossy(b).to_lowercase();
    if !lower(p[0]).contains("injected") && (!lower(p[2]).contains("injected")) {
        for line in head.split(|&b| b == b'\n') {
            let name = name_of(line).filter(|_| !line.starts_with(b" ") && !line.starts_with(b"\t"));
            assert!(
                !name.is_some_and(|n| n.eq_ignore_ascii_case(b"x-injected")),
                "a value added a field:\n{}",
                String::from_utf8_lossy(head)
            );
        }
    }
    // A multipart response: its boundary separates the two parts and ends the message,
    // and no line of the content is mistaken for it.
    if sender_copy != SenderCopy::None {
        let text = String::from_utf8_lossy(&out);
        let b = text
            .split("boundary=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .expect("a multipart response names its boundary");
        let (sep, close) = (format!("--{b}"), format!("--{b}--"));
        let lines: Vec<&[u8]> = out.split(|&b| b == b'\n').collect();
        let count = |m: &str| lines.iter().filter(|l| **l == m.as_bytes()).count();
        assert_eq!((count(&sep), count(&close)), (2, 1), "{text}");
        assert!(out.ends_with(format!("{close}\n").as_bytes()), "{text}");
    }
}

/// RFC 2047: what `encode_words` makes decodes to the text it was made from; a value
/// without `=?` is left alone; and any value decodes without panicking, as do the
/// values of a header read from the input.
pub fn rfc2047(data: &[u8]) {
    use tmda::message::decode::decode_words;
    let text = String::from_utf8_lossy(data);
    let decoded = decode_words(&text);
    if !text.contains("=?") {
        assert_eq!(decoded, text);
    }
    let encoded = encode_words(&text);
    assert_eq!(decode_words(&encoded), text, "{encoded:?}");
    let _ = encode_words(&decoded);
    for line in text.lines().take(8) {
        let _ = decode_words(line);
    }
    if let Ok(msg) = Message::from_vec(data.to_vec()) {
        for name in msg.header.names().into_iter().take(8) {
            let _ = msg.header.get_decoded(name);
        }
    }
}

/// Pending ids and releases. Byte 0: bit 0 `tmda pending -r` (else a confirmation), bit
/// 1 with a CGI value, bit 2 with a recipient given. Then, cut at NUL: the stored header
/// block, the done cookie, the date, the CGI value, the recipient, a list file and an
/// address for it.
///
/// Ids: only `DIGITS.DIGITS` (no leading zeros, in range) reads, and it writes back the
/// same. Release: every field it does not name is kept byte for byte and in order,
/// `Delivered-To` renamed; what it adds comes last, once each, and can neither start a
/// field of its own nor carry a bare CR; sender and recipient have no control characters. A list
/// holding an address (alone on its line) lists it.
pub fn pending_release(data: &[u8]) {
    use tmda::pending::{MessageId, ReleaseMode, is_listed, release};
    let Some((&setup, rest)) = data.split_first() else {
        return;
    };
    let p = parts(rest, 7);
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let (cookie, date, cgi, recipient) = (text(p[1]), text(p[2]), text(p[3]), text(p[4]));

    for candidate in [cookie.as_str(), date.as_str(), recipient.as_str()] {
        if let Ok(id) = MessageId::parse(candidate) {
            let (t, pid) = candidate.split_once('.').expect("an id has a dot");
            let canonical =
                |n: &str| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && (n == "0" || !n.starts_with('0'));
            assert!(canonical(t) && canonical(pid), "{candidate:?}");
            assert_eq!(id.to_string(), candidate);
            assert_eq!(id.timestamp().to_string(), t);
            assert_eq!(id.pid().to_string(), pid);
        }
    }
    if rest.len() >= 12 {
        let t = u64::from_le_bytes(rest[..8].try_into().unwrap());
        let pid = u32::from_le_bytes(rest[8..12].try_into().unwrap());
        let id = MessageId::new(t, pid);
        assert_eq!(MessageId::parse(&id.to_string()), Ok(id));
    }

    let mode = if setup & 1 != 0 {
        ReleaseMode::Released {
            cgi: (setup & 2 != 0).then_some(cgi.as_str()),
        }
    } else {
        ReleaseMode::Confirmed
    };
    let given = (setup & 4 != 0).then_some(recipient.as_str());
    if let Ok(r) = release(p[0], &cookie, &date, mode, given) {
        assert!(
            !r.recipient.is_empty() && !r.recipient.contains(char::is_control),
            "{:?}",
            r.recipient
        );
        assert!(!r.sender.contains(char::is_control), "{:?}", r.sender);
        let out = r.header.to_bytes();
        let eol = r.header.eol.as_bytes();
        assert_well_formed(&[out.as_slice(), eol].concat());

        let mut named = vec!["return-path", "x-tmda-recipient", "x-tmda-confirm-done"];
        let added: &[&str] = match mode {
            ReleaseMode::Confirmed => {
                named.push("x-tmda-confirmed");
                &["X-TMDA-Confirm-Done", "X-TMDA-Confirmed"]
            }
            ReleaseMode::Released { cgi: None } => {
                named.push("x-tmda-released");
                &["X-TMDA-Confirm-Done", "X-TMDA-Released"]
            }
            ReleaseMode::Released { cgi: Some(_) } => {
                named.extend(["x-tmda-released", "x-tmda-cgi"]);
                &["X-TMDA-Confirm-Done", "X-TMDA-Released", "X-TMDA-CGI"]
            }
        };
        let want: Vec<Vec<u8>> = raw_fields(p[0])
            .into_iter()
            .filter(|f| {
                !named
                    .iter()
                    .any(|n| name_of(f).unwrap().eq_ignore_ascii_case(n.as_bytes()))
            })
            .map(|f| {
                let name = name_of(f).unwrap();
                let mut f = if name.eq_ignore_ascii_case(b"delivered-to") {
                    [&b"Old-Delivered-To"[..], &f[name.len()..]].concat()
                } else {
                    f.to_vec()
                };
                if !f.ends_with(b"\n") {
                    f.extend_from_slice(eol);
                }
                f
            })
            .collect();
        let kept = want.concat();
        assert!(
            out.starts_with(&kept),
            "untouched fields changed:\n{:?}\nbecame\n{:?}",
            String::from_utf8_lossy(&kept),
            String::from_utf8_lossy(&out)
        );
        let names = r.header.names();
        assert_eq!(&names[names.len() - added.len()..], added);
        let tail = &out[kept.len()..];
        assert_eq!(raw_fields(&[tail, eol].concat()).len(), added.len(), "{tail:?}");
        for (i, &b) in tail.iter().enumerate() {
            if b == b'\r' {
                assert!(eol == b"\r\n" && tail.get(i + 1) == Some(&b'\n'), "bare CR in {tail:?}");
            }
        }
    }

    let list = p[5];
    let address = text(p[6]);
    let _ = is_listed(list, &address);
    let key = address.trim();
    if !key.is_empty()
        && !key.starts_with('#')
        && !address.contains(['\t', '\n', '\r'])
        && !key.split('#').next().unwrap_or("").trim().is_empty()
    {
        let with = [list, b"\n", address.as_bytes(), b"\n"].concat();
        assert!(
            is_listed(&with, &address),
            "{address:?} not found in {:?}",
            String::from_utf8_lossy(&with)
        );
    }
}

/// mbox quoting and delivery instructions. Byte 0: how many chunk lengths follow (low 4
/// bits); then those lengths (0 is an empty chunk); the rest is a message.
///
/// Quoting the message cut into those chunks (the lengths repeat) gives exactly what
/// quoting each line on its own gives, and a quoter used again after `finish` starts
/// afresh. Each of the message's first lines read as a delivery instruction: programs
/// and forwards are non-empty and trimmed, mailbox paths are absolute, Maildirs end in
/// `/` and mboxes do not.
pub fn mailbox_quoting(data: &[u8]) {
    use tmda::mailbox::Instruction;
    use tmda::mailbox::mbox::FromQuoter;
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let n = usize::from(n & 15).min(rest.len());
    let (lens, msg) = rest.split_at(n);
    let mut want = vec![];
    for line in msg.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b"From ") {
            want.push(b'>');
        }
        want.extend_from_slice(line);
    }
    let mut q = FromQuoter::new();
    for round in 0..2 {
        let mut got = vec![];
        let mut rest = msg;
        let mut i = 0;
        while !rest.is_empty() {
            let len = lens.get(i % n.max(1)).map_or(rest.len(), |&l| usize::from(l));
            // A run of empty chunks must not stall the loop.
            let len = if i >= 4 * n.max(1) && len == 0 { 1 } else { len };
            let (chunk, r) = rest.split_at(len.min(rest.len()));
            q.feed(chunk, &mut got);
            rest = r;
            i += 1;
        }
        q.finish(&mut got);
        assert!(
            got == want,
            "round {round}: chunked {:?}\none-shot {:?}",
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&want)
        );
    }

    let text = String::from_utf8_lossy(msg);
    let home = Path::new("/home/jo");
    for line in text.split('\n').take(8) {
        let home_of = |user: &str| (user == "bob").then(|| std::path::PathBuf::from("/srv/bob"));
        let Ok(i) = Instruction::parse_with(line, home, home_of) else {
            continue;
        };
        match i {
            Instruction::Program(c) | Instruction::Forward(c) => {
                assert!(
                    !c.is_empty() && c.trim() == c.as_str() || c == line,
                    "{line:?} -> {c:?}"
                )
            }
            Instruction::Mmdf(p) => {
                let given = line[1..].trim();
                assert!(p.is_absolute() || !given.starts_with(['~', '/']), "{line:?} -> {p:?}");
            }
            Instruction::Mbox(p) => {
                assert!(p.is_absolute(), "{line:?} -> {p:?}");
                assert!(
                    !p.as_os_str().to_string_lossy().ends_with('/') || line == "~",
                    "{line:?} -> {p:?}"
                );
            }
            Instruction::Maildir(p) => {
                assert!(p.is_absolute(), "{line:?} -> {p:?}");
                assert!(p.as_os_str().to_string_lossy().ends_with('/'), "{line:?} -> {p:?}");
            }
            Instruction::Stdout | Instruction::Qok => {}
        }
    }
}

/// The envelope `tmda filter` reads from its environment, the whitelisting address, the
/// sender list and the log entry made from them.
///
/// Byte 0: bits 0-1 the MTA (qmail, sendmail, postfix, exim), bit 2 a `RECIPIENT_HEADER`
/// value, bits 3-5 `PRIMARY_ADDRESS_MATCH`. Then, cut at NUL: the environment (entries
/// `NAME=value` separated by byte 1, so values may hold line breaks), the recipient
/// header's value, the delimiter, the virtualdomains text, and the message's header.
///
/// The sender is never empty and the extension is lower case; the whitelisting address
/// is the sender or X-Primary-Address's address; the sender list is lower case, each
/// address once, the sender first; every line of a log entry is one of its fields (in
/// order, each at most once) or a continuation (tab first), and it ends with its action
/// line and an empty line.
pub fn incoming_envelope(data: &[u8]) {
    use tmda::incoming::envelope::{Settings, confirm_append_address, sender_list};
    use tmda::incoming::{Envelope, log};
    let Some((&setup, rest)) = data.split_first() else {
        return;
    };
    let p = parts(rest, 5);
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let env_text = text(p[0]);
    let env = |name: &str| {
        env_text
            .split('\x01')
            .filter_map(|e| e.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    };
    let delimiter = text(p[2]);
    let virtualdomains = text(p[3]);
    let settings = Settings {
        mta: ["qmail", "sendmail", "postfix", "exim"][usize::from(setup & 3)],
        delimiter: &delimiter,
        recipient_header: (setup & 4 != 0).then(|| text(p[1])),
        hostname: "example.com",
        virtualdomains: Some(&virtualdomains),
    };
    let Ok(e) = Envelope::read(&env, &settings) else {
        return;
    };
    assert!(!e.sender.is_empty());
    assert_eq!(e.extension, e.extension.to_lowercase());
    let _ = e.tag(&delimiter);
    let _ = e.tag("-");

    let header = Message::from_vec(p[4].to_vec())
        .map(|m| m.header)
        .unwrap_or_else(|_| Header::new(Eol::Lf));
    let x_primary = header.get_source("X-Primary-Address");
    let level = setup >> 3 & 7;
    let append = confirm_append_address(x_primary.as_deref(), &e.sender, level, &delimiter);
    let primary = x_primary.as_deref().map(|x| parseaddr(x).1);
    assert!(append == e.sender || Some(&append) == primary.as_ref(), "{append:?}");
    let from = header.get_all("From");
    let reply_to = header.get_all("Reply-To");
    let list = sender_list(&e.sender, &append, &from, &reply_to);
    assert_eq!(list.first(), Some(&e.sender.to_lowercase()));
    for (i, a) in list.iter().enumerate() {
        assert!(!a.is_empty() && *a == a.to_lowercase(), "{a:?}");
        assert!(!list[..i].contains(a), "{a:?} twice in {list:?}");
    }

    let s = log::Subject {
        x_primary,
        envelope_sender: e.sender.clone(),
        from: header.get_source("From"),
        reply_to: header.get_source("Reply-To"),
        to: e.recipient_address.clone(),
        subject: header.get_source("Subject"),
        size: p[4].len() as u64,
    };
    let entry = log::entry(
        "Tue, 14 Nov 2023 22:13:20 +0000",
        &s,
        "CONFIRM pending 1700000000.7.msg",
    );
    let body = entry.strip_suffix("\n\n").expect("an entry ends with an empty line");
    let tags = [
        "Date: ", "XPri: ", "Sndr: ", "From: ", "Rept: ", "  To: ", "Subj: ", "Actn: ",
    ];
    let mut next = 0;
    for line in body.split('\n') {
        if line.starts_with('\t') {
            continue;
        }
        let i = tags.iter().position(|t| line.starts_with(t));
        assert!(
            i.is_some_and(|i| i >= next),
            "{line:?} is no field of (or out of order in)\n{entry}"
        );
        next = i.unwrap() + 1;
    }
    assert!(
        body.rsplit('\n').next().unwrap().starts_with("Actn: CONFIRM pending"),
        "{entry}"
    );
    assert!(
        !entry.chars().any(|c| c.is_control() && c != '\n' && c != '\t'),
        "a control character in the log: {entry:?}"
    );
}

/// Incoming rule pieces: a disposition, a size pattern and a regular expression (the
/// first line), the regular expression run over the rest. Byte 0 bit 0: `-case`.
///
/// A disposition is one of the action words in lower case, a `drop`/`hold` has no
/// option and an option is never empty; a size pattern written back reads the same;
/// the regular expression compiles and runs in bounded time (the fuzzer's timeout).
pub fn incoming_rule(data: &[u8]) {
    use tmda::filter::incoming::{regex, size_pattern};
    use tmda::filter::{Disposal, Disposition};
    let Some((&setup, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let (first, subject) = text.split_once('\n').unwrap_or((&text, ""));
    if let Some(Ok(d)) = Disposition::parse(first) {
        let words = [
            "ok", "accept", "deliver", "bounce", "reject", "drop", "exit", "stop", "confirm", "hold",
        ];
        assert!(words.contains(&d.word.as_str()), "{d:?}");
        assert!(d.option.as_ref().is_none_or(|o| !o.is_empty()), "{d:?}");
        if matches!(d.kind, Disposal::Drop | Disposal::Hold) {
            assert_eq!(d.option, None);
        }
        let again = Disposition::parse(&d.word)
            .expect("the word is an action")
            .expect("and valid");
        assert_eq!(again.kind, d.kind);
    }
    if let Ok(Some((op, n))) = size_pattern(first) {
        assert_eq!(size_pattern(&format!("{op}{n}")), Ok(Some((op, n))));
    }
    if let Ok(re) = regex(first, setup & 1 != 0) {
        let _ = re.is_match(subject);
        let _ = re.find(subject);
    }
}

// ---------------------------------------------------------------------------
// dbm lists

/// A `from-dbm` list file, given whole to both binary readers (GDBM's magic number is
/// at byte 0, Berkeley DB's at 12, so one input can be taken for either). Besides not
/// panicking: a key the reader lists is found by a lookup, with the value listed first
/// for it, and the dispatcher agrees with the reader it picks.
pub fn dbm_file(data: &[u8]) {
    use tmda::filter::dbm::{bdb, gdbm, lookup_bytes};
    let mut first = None;
    let mut n = 0usize;
    if gdbm::each(data, |k, v| {
        n += 1;
        first.get_or_insert_with(|| (k.to_vec(), v.to_vec()));
        false
    })
    .is_ok()
        && let Some((k, v)) = first
    {
        // The scan is deterministic: the first pair for a key is the one a lookup finds.
        assert_eq!(gdbm::get(data, &k).unwrap(), Some(v.clone()));
        assert_eq!(lookup_bytes(data, &k, false).unwrap(), Some(v));
        assert!(n >= 1);
    }
    let _ = gdbm::get(data, b"bob@x.org");
    if let Ok(pairs) = bdb::pairs(data)
        && let Some((k, v)) = pairs.first()
    {
        assert_eq!(bdb::get(data, k).unwrap().as_ref(), Some(v));
        if !gdbm::is_gdbm(data) {
            assert_eq!(lookup_bytes(data, k, false).unwrap().as_ref(), Some(v));
        }
    }
    let _ = bdb::get(data, b"bob@x.org");
    let _ = lookup_bytes(data, b"spam.example", true);
}
