//! Generated input against the parts that read what others wrote: the SMTP session and
//! DATA decoder (the network), configuration and filter files, messages, tagged
//! addresses. Whatever the input, none of them panics, and each keeps its promises: the
//! decoder agrees with a plain line-by-line reading however the bytes are cut, no
//! session delivers without a successful AUTH (nor before STARTTLS under --tls=on), and
//! a rewritten header is still a header. Where TMDA leaned on Python, Python itself is
//! the oracle (fnmatch, configuration values). A fixed-seed generator makes every run
//! the same, so a failure names the case that reproduces it.

use std::path::Path;

use tmda::address::{Kind, TagNames, Tagger};
use tmda::config::{Config, Namespace, python};
use tmda::filter;
use tmda::inject::{Injector, Options};
use tmda::key::CryptKey;
use tmda::message::Message;
use tmda::smtp::data::{Decoder, Problem};
use tmda::smtp::session::{DeliveryOutcome, Peer};
use tmda::smtp::{AuthOutcome, Input, Output, Policy, Reply, Session, TlsMode};

/// splitmix64: small, fast and good enough to spread test cases.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn bytes_from(&mut self, alphabet: &[u8], max_len: usize) -> Vec<u8> {
        let n = self.below(max_len + 1);
        (0..n).map(|_| *self.pick(alphabet)).collect()
    }
}

// ---------------------------------------------------------------------------
// DATA

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

#[test]
fn data_decoder_agrees_with_a_line_by_line_reading_however_the_input_is_cut() {
    let mut rng = Rng(1);
    let alphabet = b"\r\n\r\n...ab \xff";
    let mut ended = 0;
    for case in 0..20_000 {
        let mut input = rng.bytes_from(alphabet, 40);
        if rng.chance(50) {
            input.extend_from_slice(b"\r\n.\r\n");
            input.extend(rng.bytes_from(alphabet, 5));
        }
        // Up to four chunks, cut anywhere.
        let mut cuts: Vec<usize> = (0..rng.below(4)).map(|_| rng.below(input.len() + 1)).collect();
        cuts.sort_unstable();
        cuts.push(input.len());
        let mut d = Decoder::new(1 << 20, 1 << 20);
        let mut out = vec![];
        let mut end = None;
        let mut from = 0;
        for &to in &cuts {
            if let Some(n) = d.feed(&input[from..to], &mut out) {
                end = Some(from + n);
                break;
            }
            from = to;
        }
        let want = reference_data(&input);
        let ctx = format!("case {case}: {input:?} cut at {cuts:?}");
        match want {
            None => assert_eq!(end, None, "{ctx}"),
            Some((want_end, want_text, bare)) => {
                ended += 1;
                assert_eq!(end, Some(want_end), "{ctx}");
                assert_eq!(d.problem() == Some(Problem::BareLineEnding), bare, "{ctx}");
                if !bare {
                    assert_eq!(out, want_text, "{ctx}");
                }
            }
        }
    }
    assert!(ended > 5_000, "too few complete messages generated ({ended})");
}

// ---------------------------------------------------------------------------
// SMTP sessions

fn b64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn command_line(rng: &mut Rng) -> Vec<u8> {
    let plain = format!("AUTH PLAIN {}", b64("\0jason\0secret"));
    let lines = [
        "EHLO client.example",
        "HELO client.example",
        "EHLO",
        "ehlo x",
        "MAIL FROM:<a@example.com>",
        "MAIL FROM:<>",
        "MAIL FROM:<a@example.com> SIZE=100 BODY=8BITMIME",
        "MAIL FROM:<a@example.com> SMTPUTF8",
        "MAIL FROM:<a@example.com> SIZE=99999999999999999999",
        "MAIL FROM:<a@example.com> FOO=BAR",
        "MAIL FROM:a@example.com",
        "mail from:<x@y> AUTH=<>",
        "RCPT TO:<b@example.org>",
        "RCPT TO:<c@example.org>",
        "RCPT TO:<postmaster>",
        "RCPT TO:<>",
        "RCPT TO:<\u{fc}@example.org>",
        "DATA",
        "RSET",
        "NOOP",
        "QUIT",
        "STARTTLS",
        "VRFY x",
        "HELP",
        "BDAT 10 LAST",
        &plain,
        "AUTH PLAIN",
        "AUTH PLAIN =",
        "AUTH PLAIN !!!",
        "AUTH LOGIN",
        "AUTH LOGIN amFzb24=",
        "AUTH CRAM-MD5",
        "AUTH XOAUTH2 x",
        "AUTH",
        "*",
        "amFzb24=",
        "c2VjcmV0",
        "amFzb24gMDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
        "",
    ];
    if rng.chance(10) {
        // Anything at all: control bytes, invalid UTF-8, very long.
        return rng.bytes_from(b"MAILRCPT:<>@ \x00\x01\x7f\xc3\xa9\xff\r=", 700);
    }
    rng.pick(&lines).as_bytes().to_vec()
}

fn check_reply(r: &Reply, ctx: &str) {
    assert!((200..=599).contains(&r.code), "{ctx}: code {}", r.code);
    let wire = r.to_wire();
    assert!(wire.ends_with("\r\n"), "{ctx}: {wire:?}");
    for line in wire.split_terminator("\r\n") {
        assert!(!line.contains(['\r', '\n']), "{ctx}: bare line ending in {wire:?}");
        assert!(line.len() <= 512, "{ctx}: reply line over 512 octets: {line:?}");
        assert!(line.starts_with(&r.code.to_string()), "{ctx}: {wire:?}");
    }
}

/// One generated dialogue; the generator plays client, auth sources and relay.
fn dialogue(rng: &mut Rng, case: usize) {
    let tls = *rng.pick(&[TlsMode::None, TlsMode::Optional, TlsMode::Required, TlsMode::Implicit]);
    let policy = Policy {
        hostname: "mx.example".into(),
        tls,
        tls_auth_only: rng.chance(20),
        cram_md5: rng.chance(50),
        max_size: 1000,
        max_recipients: 2,
        max_auth_failures: 3,
    };
    let mut s = Session::new(
        policy,
        Peer {
            ip: "192.0.2.7".into(),
            name: None,
        },
    );
    s.set_challenge_seed(rng.next());
    check_reply(&s.greeting(), "greeting");
    let mut accepted: Option<String> = None;
    let mut tls_up = tls == TlsMode::Implicit;
    let mut log = vec![];
    for _ in 0..rng.below(40) {
        let line;
        let mut next = if rng.chance(3) {
            Input::LineTooLong
        } else if rng.chance(1) {
            Input::Timeout
        } else {
            line = command_line(rng);
            log.push(String::from_utf8_lossy(&line).chars().take(60).collect::<String>());
            Input::Line(&line)
        };
        // Feed the input, then whatever the driver would feed in answer.
        loop {
            let ctx = format!("case {case} ({tls:?}) after {log:?}");
            let follow = match s.handle(next) {
                Output::Reply(r) => {
                    check_reply(&r, &ctx);
                    None
                }
                Output::ReplyThenClose(r) => {
                    check_reply(&r, &ctx);
                    return;
                }
                Output::ReplyThenStartTls(r) => {
                    check_reply(&r, &ctx);
                    assert!(!tls_up, "{ctx}: STARTTLS twice");
                    tls_up = true;
                    // RFC 3207: everything learnt before TLS is forgotten, AUTH included.
                    accepted = None;
                    Some(Input::TlsEstablished)
                }
                Output::ReplyThenData(r) => {
                    check_reply(&r, &ctx);
                    assert_eq!(r.code, 354, "{ctx}");
                    assert!(accepted.is_some(), "{ctx}: DATA without AUTH");
                    let problem = *rng.pick(&[
                        None,
                        None,
                        Some(Problem::TooBig),
                        Some(Problem::BareLineEnding),
                        Some(Problem::LineTooLong),
                    ]);
                    Some(Input::DataDone {
                        problem,
                        now: 1_700_000_000,
                    })
                }
                Output::Authenticate(attempt) => {
                    assert!(
                        tls != TlsMode::Required || tls_up,
                        "{ctx}: AUTH before STARTTLS under --tls=on"
                    );
                    assert!(accepted.is_none(), "{ctx}: a second AUTH was taken");
                    let outcome = *rng.pick(&[AuthOutcome::Accepted, AuthOutcome::Denied, AuthOutcome::Temporary]);
                    if outcome == AuthOutcome::Accepted {
                        // User names are case-insensitive; the session keeps them lower-cased.
                        accepted = Some(attempt.user.to_lowercase());
                    }
                    Some(Input::AuthResult(outcome))
                }
                Output::Deliver(env) => {
                    assert_eq!(
                        accepted.as_deref(),
                        Some(env.user.as_str()),
                        "{ctx}: relayed without AUTH"
                    );
                    assert_eq!(s.user(), Some(env.user.as_str()), "{ctx}");
                    assert!(tls != TlsMode::Required || tls_up, "{ctx}: relayed before STARTTLS");
                    assert!(
                        (1..=2).contains(&env.recipients.len()),
                        "{ctx}: {} recipients",
                        env.recipients.len()
                    );
                    let outcome = rng
                        .pick(&[
                            DeliveryOutcome::Accepted,
                            DeliveryOutcome::Throttled,
                            DeliveryOutcome::Transient("cfg:3:5: bad value\n  hint: quote it".into()),
                            DeliveryOutcome::Permanent(format!("550 no such user\r\n250 {}", "x".repeat(600))),
                        ])
                        .clone();
                    Some(Input::Delivered(outcome))
                }
                Output::Nothing => None,
            };
            match follow {
                Some(input) => next = input,
                None => break,
            }
        }
        if accepted.is_some() {
            assert_eq!(s.user(), accepted.as_deref(), "case {case}: the session's user changed");
        }
    }
}

#[test]
fn generated_smtp_dialogues_never_relay_without_auth() {
    let mut rng = Rng(2);
    for case in 0..4_000 {
        dialogue(&mut rng, case);
    }
}

// ---------------------------------------------------------------------------
// Configuration and filter files

const CONFIG: &str = "import os\n\
USERNAME = 'jason'\n\
HOSTNAME = \"example.com\"\n\
FULLNAME = u'J\\xe4son M.'\n\
LISTS = os.path.join(os.path.expanduser('~/.tmda'), 'lists')\n\
CONFIRM_ADDRESS = '%s-confirm@%s' % (USERNAME, HOSTNAME)\n\
HMAC_BYTES = 3\n\
TIMEOUT = '5d'\n\
FINGERPRINT = ['message-id', 'date', \"body\"]\n\
ADDED_HEADERS_CLIENT = {'X-Fact': 'Niagara', \"Organization\": 'ACME',}\n\
PURGED_HEADERS_CLIENT = ('x-mailer',)\n\
MAIL_TRANSPORT = 'smtp'; SMTPHOST = 'localhost:25'\n\
os.environ['TMDAIDHOST'] = 'mail.example.com'\n\
X = (1 + 2) * 3 - -4\n\
S = '''multi\nline''' + r'\\d' + str(7) + 'ABC'.lower()\n\
T = [S, X, None, True, On, 0x1f, 1e3][-1]\n";

const TOKENS: &[&str] = &[
    "'",
    "\"",
    "'''",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ":",
    ",",
    "\\",
    "\n",
    "\t",
    " ",
    "#",
    "=",
    "+",
    "-",
    "*",
    "%",
    "%s",
    "%d",
    "0x",
    "1e",
    "\\x",
    "\\u",
    "\\N",
    "é",
    "\r",
    "\0",
    "os.",
    "environ",
    "[0]",
    "[-9]",
    "str(",
    "int(",
    ".lower()",
    "USERNAME",
    "None",
    "9223372036854775807",
    "-9223372036854775808",
    "+=",
    ";",
    "\u{feff}",
    "if ",
    "f'",
];

fn mutate(rng: &mut Rng, text: &str) -> String {
    let mut s: Vec<char> = text.chars().collect();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(s.len() + 1);
        match rng.below(4) {
            0 if at < s.len() => {
                let n = rng.below(8).min(s.len() - at);
                s.drain(at..at + n);
            }
            1 if at < s.len() => {
                let n = rng.below(12).min(s.len() - at);
                let copy: Vec<char> = s[at..at + n].to_vec();
                let to = rng.below(s.len() + 1);
                s.splice(to..to, copy);
            }
            _ => {
                let tok: Vec<char> = rng.pick(TOKENS).chars().collect();
                s.splice(at..at, tok);
            }
        }
    }
    s.into_iter().collect()
}

#[test]
fn damaged_configurations_are_errors_naming_the_place() {
    let mut rng = Rng(3);
    let lines = CONFIG.lines().count() + 20;
    let mut ok = 0;
    for case in 0..5_000 {
        let text = mutate(&mut rng, CONFIG);
        let mut ns = Namespace::with_builtins();
        ns.env.insert("HOME".into(), "/home/jason".into());
        match python::exec(&text, Path::new("cfg"), &mut ns) {
            Err(e) => {
                let msg = e.to_string();
                let place = msg
                    .strip_prefix("cfg:")
                    .unwrap_or_else(|| panic!("case {case}: {msg:?}\n{text}"));
                let line: usize = place.split(':').next().unwrap().parse().unwrap();
                assert!((1..=lines).contains(&line), "case {case}: line {line} in {msg:?}");
            }
            Ok(()) => {
                ok += 1;
                // Settings are checked next: an error there names the setting and its origin.
                if let Err(e) = Config::from_namespace(ns, vec![]) {
                    assert!(!e.to_string().is_empty());
                }
            }
        }
    }
    assert!(
        ok > 200,
        "too few mutations stayed valid ({ok}): the generator is not reaching the settings"
    );
}

const FILTER: &str = "# outgoing\n\
macro LISTS to-file -optional /nonexistent/lists\n\
macro TAGGED(who, how) to who how\n\
LISTS kw=lists\n\
TAGGED(*@example.org, dated=5d)\n\
to *@=mycompany.com bare\n\
to tmda-users@tmda.net\n    tag from kw=tmda reply-to kw=tmda\n\
from jason@mastaler.com dated=2w\n\
to \"quoted pattern\" exp=\"J <j@x>\"\n\
to ${USERNAME}@x sender\n\
include -optional /nonexistent/other\n";

#[test]
fn damaged_filters_are_errors_naming_file_and_line() {
    let mut rng = Rng(4);
    let vars = |n: &str| (n == "USERNAME").then(|| "jason".to_string());
    let lines = FILTER.lines().count() + 20;
    for case in 0..5_000 {
        let text = mutate(&mut rng, FILTER);
        if let Err(e) = filter::parse::parse_str(&text, Path::new("f"), &vars) {
            for msg in e.to_string().lines() {
                let place = msg
                    .strip_prefix("f:")
                    .unwrap_or_else(|| panic!("case {case}: {msg:?}\n{text}"));
                let line: usize = place.split(':').next().unwrap().parse().unwrap();
                assert!((1..=lines).contains(&line), "case {case}: line {line} in {msg:?}");
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Messages through the outgoing pipeline

fn tagger() -> Tagger {
    Tagger {
        key: CryptKey::from_bytes(b"robustness test key".to_vec()),
        hmac_bytes: 3,
        delimiter: "-".into(),
        tags: TagNames::default(),
    }
}

fn header_value(rng: &mut Rng) -> String {
    let pieces = [
        "a@example.org",
        "<b@example.org>",
        "\"Last, First\" <c@example.org>",
        "(comment)",
        ",",
        " ",
        "\t",
        "=?utf-8?q?J=C3=A4son?=",
        "=?bogus?x?",
        "\u{e4}",
        "<",
        ">",
        "\"",
        "\\",
        ":",
        ";",
        "@",
        "group: d@example.org;",
        "\n ",
        "\r",
        "\nBcc: injected@example.net",
        "x",
    ];
    (0..rng.below(8)).map(|_| *rng.pick(&pieces)).collect()
}

/// Every line of a header block is a field ("Name:" with a printable name) or a
/// continuation, and the block ends with the empty line.
fn assert_well_formed(header: &[u8], ctx: &str) {
    let text = String::from_utf8_lossy(header);
    let text = text.replace("\r\n", "\n");
    let block = text
        .strip_suffix("\n\n")
        .unwrap_or_else(|| panic!("{ctx}: no blank line after {text:?}"));
    for line in block.split('\n') {
        if line.starts_with([' ', '\t']) {
            continue;
        }
        let name = line.split(':').next().unwrap();
        assert!(
            line.contains(':') && !name.is_empty() && name.bytes().all(|b| (33..=126).contains(&b)),
            "{ctx}: {line:?} is neither a field nor a continuation in\n{text}"
        );
    }
}

#[test]
fn generated_messages_are_tagged_into_well_formed_headers() {
    let mut ns = Namespace::with_builtins();
    python::exec(
        "USERNAME = 'jason'\nHOSTNAME = 'example.com'\nFULLNAME = 'Jason'\nADDED_HEADERS_CLIENT = {'X-Fact': 'Niagara'}\n\
         FINGERPRINT = ['message-id', 'body']\nX_TMDA_IN_SUBJECT = True\n",
        Path::new("cfg"),
        &mut ns,
    )
    .unwrap();
    let config = Config::from_namespace(ns, vec![]).unwrap();
    let filter = filter::parse::parse_str(
        "to *@example.org sender\nto b@* tag reply-to kw=lists\nfrom *@example.com dated=1d\n",
        Path::new("f"),
        &|_| None,
    )
    .unwrap();
    let tagger = tagger();
    let mut inj = Injector::new(&config, &filter, 1_700_000_000);
    inj.lend_tagger(&tagger);
    inj.set_inline(true);
    let names = [
        "From",
        "To",
        "Cc",
        "Bcc",
        "Reply-To",
        "Subject",
        "X-TMDA",
        "Resent-From",
        "Resent-To",
        "Message-ID",
        "Mail-Followup-To",
        "Date",
        "X-Other",
    ];
    let mut rng = Rng(5);
    let mut planned = 0;
    for case in 0..3_000 {
        let mut text = String::new();
        for _ in 0..1 + rng.below(7) {
            let name = rng.pick(&names);
            let value = if *name == "X-TMDA" {
                rng.pick(&[
                    "dated", "sender", "bare", "kw=x", "exp=e@x", "dated=5d", "ext=z", "nope", "",
                ])
                .to_string()
            } else {
                header_value(&mut rng)
            };
            text.push_str(&format!("{name}: {value}\n"));
        }
        if rng.chance(80) {
            text.push_str("To: someone@example.net\n");
        }
        text.push_str("\nbody line\n.\n");
        let msg = Message::from_vec(text.clone().into_bytes()).unwrap();
        let ctx = format!("case {case}:\n{text}");
        if let Ok(plan) = inj.plan(&msg, &Options::default()) {
            for copy in &plan.copies {
                planned += 1;
                assert!(!copy.recipient.is_empty(), "{ctx}");
                assert!(!copy.recipient.contains(['\r', '\n']), "{ctx} {:?}", copy.recipient);
                assert!(!copy.sender.contains(['\r', '\n']), "{ctx}");
                assert_well_formed(&plan.render(copy, &msg).unwrap().header, &ctx);
            }
        }
    }
    assert!(planned > 1_000, "too few messages were planned ({planned})");
}

// ---------------------------------------------------------------------------
// Tagged addresses

#[test]
fn made_addresses_verify_and_junk_does_not() {
    let t = tagger();
    let mut rng = Rng(6);
    let now = 1_700_000_000;
    let junk = b"abc-.@+=_0123456789xyzdatedsenderkeywordconfirm\xc3\xa4 ";
    for case in 0..5_000 {
        // Whatever comes in is a verdict, never a panic.
        let input = String::from_utf8_lossy(&rng.bytes_from(junk, 60)).into_owned();
        let _ = t.verify(&input, None, now);
        let _ = t.verify(&input, Some(&input), now);
        // What we make verifies for what it was made for.
        let word = String::from_utf8_lossy(&rng.bytes_from(junk, 20)).into_owned();
        let base = "jason@example.com";
        let sender = format!("{}@example.org", word.trim());
        if let Ok(a) = t.sender(base, &sender) {
            let v = t
                .verify(&a, Some(&sender), now)
                .unwrap_or_else(|f| panic!("case {case}: {a}: {f}"));
            assert_eq!(v.kind, Kind::Sender, "case {case}: {a}");
        }
        if let Ok(a) = t.keyword(base, &word) {
            let v = t
                .verify(&a, None, now)
                .unwrap_or_else(|f| panic!("case {case}: {a}: {f}"));
            assert_eq!(v.kind, Kind::Keyword, "case {case}: {a}");
        }
        let a = t.dated(base, now, 5 * 86400).unwrap();
        assert!(t.verify(&a, None, now + 86400).is_ok(), "case {case}: {a}");
        assert!(t.verify(&a, None, now + 6 * 86400).is_err(), "case {case}: {a}");
    }
}

// ---------------------------------------------------------------------------
// Everything else that parses text

/// Text made of the characters these parsers treat specially, plus some that no one does.
fn any_text(rng: &mut Rng, max_len: usize) -> String {
    const PIECES: &[&str] = &[
        "!",
        "@=",
        "[!a-z]",
        "[]-]",
        "a",
        "Z",
        "0",
        "9",
        " ",
        "\t",
        "\r",
        "\n",
        "\r\n",
        "\0",
        "\u{7f}",
        "@",
        ".",
        ",",
        ";",
        ":",
        "<",
        ">",
        "\"",
        "'",
        "\\",
        "(",
        ")",
        "[",
        "]",
        "{",
        "}",
        "=",
        "?",
        "*",
        "-",
        "+",
        "/",
        "$",
        "%",
        "#",
        "~",
        "é",
        "\u{1f600}",
        "\u{feff}",
        "=?utf-8?b?",
        "?=",
        "://",
        "imap",
        "ldap",
        "{CRAM-MD5}",
        "{SHA512-CRYPT}",
        "$6$",
        "{ARGON2ID}",
        "$argon2id$",
        "[section]",
        "d",
        "w",
        "m",
        "y",
        "h",
    ];
    let n = rng.below(max_len + 1);
    (0..n).map(|_| *rng.pick(PIECES)).collect()
}

#[test]
fn every_other_parser_takes_any_text() {
    use tmda::auth::{remote::Remote, scheme::Stored};
    use tmda::interval::Interval;
    use tmda::message::address::{encode_words, formataddr, getaddresses, parseaddr};
    use tmda::message::{Eol, Header};

    let mut rng = Rng(7);
    for case in 0..5_000 {
        let a = any_text(&mut rng, 30);
        let b = any_text(&mut rng, 30);
        let ctx = format!("case {case}: {a:?} {b:?}");

        let _ = getaddresses(&[&a, &b]);
        let (name, addr) = parseaddr(&a);
        let formatted = formataddr(&name, &addr);
        // However odd the name, it stays inside the one field it is written into.
        let mut one = Header::new(Eol::Lf);
        one.set("From", &formatted);
        let field = String::from_utf8(one.to_bytes()).unwrap();
        assert!(field.starts_with("From:"), "{ctx}: {field:?}");
        assert!(
            field.split_terminator('\n').skip(1).all(|l| l.starts_with(' ')) && !field.contains('\r'),
            "{ctx}: {field:?}"
        );
        for word in encode_words(&b).split(' ') {
            assert!(word.len() <= 75 && word.is_ascii(), "{ctx}: {word:?}");
        }

        // Filter patterns: the fnmatch-style matcher against any text, both ways round.
        let _ = filter::pattern_matches(&a.to_lowercase(), &b);
        let _ = filter::fnmatch::fnmatch(&b, &a);
        let _ = Interval::parse(&a);
        let _ = Remote::parse(&a);
        if let Ok(stored) = Stored::parse(&a) {
            // Only cheap schemes here: a generated argon2 or crypt string is not checked.
            if stored.is_cheap() {
                let _ = stored.verify(&b);
                let _ = stored.cram_md5(b.as_bytes());
            }
        }

        let mut ns = Namespace::with_builtins();
        let _ = tmda::config::ini::exec(&format!("[tmda]\n{a}\n{b}\n"), Path::new("ini"), &mut ns);

        // A header block of arbitrary lines: reading, changing and writing it back out.
        let text = format!("{a}\n{b}\n");
        let lines: Vec<&[u8]> = text.as_bytes().split_inclusive(|&c| c == b'\n').collect();
        let mut h = Header::from_lines(lines, Eol::Lf);
        let _ = (h.get(&a), h.get_all("to"), h.get_source(&b), h.names());
        h.set("Subject", &b);
        h.append(&a, &b);
        h.remove_all("to");
        let out = h.to_bytes();
        assert!(out.is_empty() || out.ends_with(b"\n"), "{ctx}");

        let msg = format!("{a}\n{b}\n\n{a}");
        let _ = Message::from_vec(msg.into_bytes());
    }
}

// ---------------------------------------------------------------------------
// The real daemon, one session on standard input

/// A client stream: mostly a sensible dialogue, with junk, overlong and unterminated
/// lines, bare line endings and smuggling attempts mixed in.
fn client_stream(rng: &mut Rng) -> Vec<u8> {
    let mut out = vec![];
    if rng.chance(70) {
        // Now and then a client name with control characters, which must not reach Received.
        out.extend_from_slice(if rng.chance(30) {
            b"EHLO c\rd\x01e\r\n"
        } else {
            b"EHLO c\r\n"
        });
        out.extend_from_slice(b"AUTH PLAIN AGFsaWNlAHdvbmRlcmxhbmQ=\r\n");
    }
    for _ in 0..rng.below(30) {
        let piece: Vec<u8> = match rng.below(16) {
            0 => b"EHLO c\r\n".to_vec(),
            1 if rng.chance(50) => b"HELO c\r\n".to_vec(),
            1 => b"EHLO c\rd\x01e\r\n".to_vec(),
            2 | 3 => b"AUTH PLAIN AGFsaWNlAHdvbmRlcmxhbmQ=\r\n".to_vec(),
            4 if rng.chance(20) => b"AUTH PLAIN AGFsaWNlAHdyb25n\r\n".to_vec(),
            5 => b"MAIL FROM:<a@example.com>\r\n".to_vec(),
            6 => b"RCPT TO:<x@example.org>\r\n".to_vec(),
            7 | 8 => {
                let mut d = b"MAIL FROM:<a@example.com>\r\nRCPT TO:<x@example.org>\r\nDATA\r\n".to_vec();
                if rng.chance(70) {
                    // Well-formed text, dot-stuffed lines included.
                    for _ in 0..rng.below(6) {
                        d.extend(rng.bytes_from(b"Subject: x..abc", 20));
                        d.extend_from_slice(b"\r\n");
                    }
                } else {
                    d.extend(rng.bytes_from(b"Subject: x\r\n\r\n.\n.\r\n\rabc", 80));
                }
                d.extend_from_slice(if rng.chance(80) { b"\r\n.\r\n" } else { b"\n.\n" });
                d
            }
            9 => b"RSET\r\nNOOP\r\n".to_vec(),
            10 => b"STARTTLS\r\n".to_vec(),
            11 => {
                let mut l = rng.bytes_from(b"AB: <>@\x00\xff\x7f\r\n", 40);
                l.extend_from_slice(b"\r\n");
                l
            }
            12 => vec![b'x'; 400 + rng.below(3000)],
            13 => b"MAIL FROM:<a@example.com>\nRCPT TO:<y@example.org>\n".to_vec(),
            14 if rng.chance(10) => b"QUIT\r\n".to_vec(),
            _ => b"*\r\n".to_vec(),
        };
        out.extend(piece);
    }
    out
}

#[test]
fn one_session_ofmipd_takes_generated_streams() {
    let up = crate::util::fake_smtp::FakeSmtp::start(crate::util::fake_smtp::Policy::default());
    let env = crate::ofmipd::setup(up.port);
    let mut rng = Rng(8);
    let mut accepted_total = 0;
    for case in 0..40 {
        let stream = client_stream(&mut rng);
        let before = up.transactions().len();
        let out = crate::ofmipd::run_one_session(&env, &["--timeout", "10"], &[], &stream);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let shown: String = String::from_utf8_lossy(&stream).chars().take(1500).collect();
        let ctx = format!("case {case}: {shown:?}");
        assert!(!stderr.contains("panicked"), "{ctx}\n{stderr}");
        assert_eq!(out.status.code(), Some(0), "{ctx}\n{stderr}");
        assert!(stdout.starts_with("220 mx.test ESMTP"), "{ctx}\n{stdout}");
        for line in stdout.split_inclusive('\n') {
            let b = line.as_bytes();
            assert!(
                line.ends_with("\r\n")
                    && b.len() >= 5
                    && b[..3].iter().all(u8::is_ascii_digit)
                    && matches!(b[3], b' ' | b'-'),
                "{ctx}: bad reply line {line:?}"
            );
        }
        let relayed = up.transactions()[before..].to_vec();
        let accepted = stdout.matches("250 2.0.0 Ok: message accepted").count();
        accepted_total += accepted;
        assert!(
            relayed.len() >= accepted,
            "{ctx}: {accepted} accepted, {} relayed",
            relayed.len()
        );
        if !stdout.contains("\r\n235 ") {
            assert!(relayed.is_empty(), "{ctx}: relayed without AUTH");
        }
        for t in &relayed {
            let bare = t.data.windows(2).any(|w| w[1] == b'\n' && w[0] != b'\r')
                || t.data.windows(2).any(|w| w[0] == b'\r' && w[1] != b'\n');
            assert!(!bare, "{ctx}: bare line ending relayed");
            let head = t.data.split(|&b| b == b'\n').take_while(|l| *l != b"\r").flatten();
            assert!(
                !head.clone().any(|&b| b < 0x20 && b != b'\r' && b != b'\t'),
                "{ctx}: control character in the relayed header"
            );
        }
    }
    assert!(
        accepted_total >= 10,
        "too few messages made it through ({accepted_total})"
    );
}

/// Python 3 running `script` with `input` on standard input: its output lines. Python is
/// the oracle for what TMDA, a Python program, did; it must be installed.
fn python_lines(script: &str, input: &str) -> Vec<String> {
    use std::io::Write as _;
    let mut py = std::process::Command::new("python3")
        .args(["-c", script])
        .env("PYTHONIOENCODING", "utf-8")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 is needed for this test (scripts/deps.sh installs it)");
    py.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = py.wait_with_output().unwrap();
    assert!(out.status.success(), "python3 failed on its input");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

/// `script` prints one line per input line; `ours` must print the same for each input.
fn assert_agrees_with_python(script: &str, inputs: &[String], ours: impl Fn(&str) -> String) {
    let python = python_lines(script, &inputs.join("\n"));
    assert_eq!(python.len(), inputs.len());
    let differ: Vec<String> = inputs
        .iter()
        .zip(&python)
        .filter_map(|(input, want)| {
            let got = ours(input);
            (&got != want).then(|| format!("{input:?}: ours {got}, Python {want}"))
        })
        .collect();
    assert!(
        differ.is_empty(),
        "{} of {} differ:\n{}",
        differ.len(),
        inputs.len(),
        differ[..differ.len().min(15)].join("\n")
    );
}

#[test]
fn fnmatch_agrees_with_pythons_which_tmda_used() {
    let mut rng = Rng(9);
    let name_chars = b"ab-.@xz]![";
    let pattern_pieces: &[&str] = &[
        "a", "b", "-", ".", "@", "*", "?", "[ab]", "[!a]", "[a-c]", "[]", "[!]", "]", "[", "x", "z", "[-a]", "[z-a]",
    ];
    let cases: Vec<(String, String)> = (0..3000)
        .map(|_| {
            let name = String::from_utf8(rng.bytes_from(name_chars, 8)).unwrap();
            let pattern: String = (0..rng.below(6)).map(|_| *rng.pick(pattern_pieces)).collect();
            (name, pattern)
        })
        .collect();
    let script = "import sys, fnmatch\nfor line in sys.stdin:\n    n, p = line.rstrip('\\n').split('\\t')\n    print(int(fnmatch.fnmatchcase(n, p)))\n";
    let mut input = String::new();
    for (n, p) in &cases {
        input.push_str(&format!("{n}\t{p}\n"));
    }
    let answers: Vec<bool> = python_lines(script, &input).iter().map(|l| l == "1").collect();
    assert_eq!(answers.len(), cases.len());
    for ((name, pattern), python) in cases.iter().zip(answers) {
        assert_eq!(
            filter::fnmatch::fnmatch(name, pattern),
            python,
            "fnmatch({name:?}, {pattern:?}): Python says {python}"
        );
    }
}

/// A Python expression of the data-only subset TMDA configs use, of the given type
/// ("s" string, "i" int, "l" list, "t" tuple, "d" dict), from `rng`.
fn py_expr(rng: &mut Rng, ty: char, depth: usize) -> String {
    let leaf = depth >= 3;
    match ty {
        's' => match rng.below(if leaf { 4 } else { 8 }) {
            0 => format!(
                "'{}'",
                rng.pick(&["", "a b", "it\\'s", "tab\\there", "\\x41\\101", "caf\\xe9"])
            ),
            1 => format!("\"{}\"", rng.pick(&["x", "say 'hi'", "back\\\\slash", "nl\\n"])),
            2 => format!("r'{}'", rng.pick(&["\\d+", "a\\nb", "C:\\x"])),
            3 => format!("'''{}'''", rng.pick(&["one\ntwo", "q\"q", ""])),
            4 => format!("{} + {}", py_expr(rng, 's', depth + 1), py_expr(rng, 's', depth + 1)),
            5 => format!("{} * {}", py_expr(rng, 's', depth + 1), rng.below(4)),
            6 => format!(
                "'%s-%d' % ({}, {})",
                py_expr(rng, 's', depth + 1),
                py_expr(rng, 'i', depth + 1)
            ),
            _ => format!("'a' 'b' {}", rng.pick(&["'c'", "\"d\""])),
        },
        'i' => match rng.below(if leaf { 3 } else { 6 }) {
            0 => rng.below(1000).to_string(),
            1 => format!("0x{:x}", rng.below(4096)),
            2 => format!("0o{:o}", rng.below(512)),
            3 => format!("{} + {}", py_expr(rng, 'i', depth + 1), py_expr(rng, 'i', depth + 1)),
            4 => format!("-({})", py_expr(rng, 'i', depth + 1)),
            _ => format!("{} * {}", py_expr(rng, 'i', depth + 1), rng.below(50)),
        },
        'l' | 't' => {
            let items: Vec<String> = (0..if leaf { rng.below(2) } else { rng.below(4) })
                .map(|_| {
                    let t = *rng.pick(&['s', 'i', 'l', 't']);
                    py_expr(rng, t, depth + 1)
                })
                .collect();
            match (ty, items.len()) {
                ('l', _) => format!("[{}]", items.join(", ")),
                (_, 1) => format!("({},)", items[0]),
                _ => format!("({})", items.join(", ")),
            }
        }
        _ => {
            let items: Vec<String> = (0..rng.below(3))
                .map(|_| {
                    let k = py_expr(rng, 's', depth + 1);
                    let t = *rng.pick(&['s', 'i', 'l']);
                    format!("{k}: {}", py_expr(rng, t, depth + 1))
                })
                .collect();
            format!("{{{}}}", items.join(", "))
        }
    }
}

#[test]
fn config_values_agree_with_python() {
    let mut rng = Rng(10);
    let mut text = String::new();
    let n = 600;
    for i in 0..n {
        let ty = *rng.pick(&['s', 'i', 'l', 't', 'd']);
        text.push_str(&format!("X{i} = {}\n", py_expr(&mut rng, ty, 0)));
        if rng.chance(20) {
            // Earlier names, and += on them.
            text.push_str(&format!("X{i} = X{i}\n"));
        }
    }
    let mut ns = Namespace::with_builtins();
    python::exec(&text, Path::new("generated"), &mut ns).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let script =
        format!("import sys\nexec(sys.stdin.read())\nfor i in range({n}):\n    print(repr(globals()['X%d' % i]))\n");
    let python = python_lines(&script, &text);
    assert_eq!(python.len(), n);
    for (i, want) in python.iter().enumerate() {
        let got = ns.get(&format!("X{i}")).unwrap().py_repr();
        let line = text.lines().find(|l| l.starts_with(&format!("X{i} ="))).unwrap();
        assert_eq!(&got, want, "X{i}: {line}");
    }
}

#[test]
fn address_lists_parse_as_pythons_email_utils_does() {
    use tmda::message::address::getaddresses;
    let mut rng = Rng(11);
    let pieces: &[&str] = &[
        "a@example.org",
        "b@x.org",
        "<c@x.org>",
        "Name <d@x.org>",
        "\"Last, First\" <e@x.org>",
        "f@x.org (Comment)",
        "(lead) g@x.org",
        "Group: h@x.org, i@x.org;",
        "Empty:;",
        "\"q\\\"uote\" <j@x.org>",
        "=?utf-8?q?J=C3=A4son?= <k@x.org>",
        "l@[192.0.2.1]",
        "m.n@x.org",
        "<@route:o@x.org>",
        "plain",
        "",
    ];
    let values: Vec<String> = (0..1500)
        .map(|_| {
            let n = 1 + rng.below(3);
            (0..n).map(|_| *rng.pick(pieces)).collect::<Vec<_>>().join(", ")
        })
        .collect();
    let script = "import sys, email.utils\nfor line in sys.stdin:\n    v = line.rstrip('\\n')\n    print(repr([a for n, a in email.utils.getaddresses([v]) if a]))\n";
    assert_agrees_with_python(script, &values, |v| {
        let got: Vec<String> = getaddresses(&[v]).into_iter().map(|(_, a)| format!("'{a}'")).collect();
        format!("[{}]", got.join(", "))
    });
}

#[test]
fn display_names_are_formatted_as_pythons_formataddr_does() {
    use tmda::message::address::formataddr;
    let mut rng = Rng(12);
    let pieces: &[&str] = &[
        "Jason",
        " ",
        "M.",
        "Smith",
        ",",
        "\"",
        "\\",
        "(x)",
        "<",
        "@",
        "J\u{e4}son",
        "\u{1f600}",
        ";",
        ":",
        "[1]",
        "-",
        "'",
    ];
    let names: Vec<String> = (0..1500)
        .map(|_| (0..1 + rng.below(5)).map(|_| *rng.pick(pieces)).collect())
        .collect();
    let script = "import sys, email.utils\nfor line in sys.stdin:\n    print(email.utils.formataddr((line.rstrip('\\n'), 'j@example.com')))\n";
    assert_agrees_with_python(script, &names, |name| formataddr(name, "j@example.com"));
}

#[test]
fn header_values_read_as_pythons_email_parser_gives_them() {
    let mut rng = Rng(13);
    let values: &[&str] = &[
        "x",
        "",
        " ",
        "a  b",
        "\t tab",
        "v\n folded",
        "v\n\tfolded\n  twice",
        "trailing ",
        "=?utf-8?q?h=C3=A9?=",
    ];
    let names: &[&str] = &["Subject", "From", "X-A", "subject"];
    // One header block per line of input, with "|" for its line breaks.
    let blocks: Vec<String> = (0..1000)
        .map(|_| {
            (0..1 + rng.below(4))
                .map(|_| {
                    format!(
                        "{}:{}{}\n",
                        rng.pick(names),
                        rng.pick(&["", " ", "  "]),
                        rng.pick(values)
                    )
                })
                .collect::<String>()
                .replace('\n', "|")
        })
        .collect();
    let script = "import sys, email\nfor line in sys.stdin:\n    m = email.message_from_string(line.rstrip('\\n').replace('|', '\\n') + '\\nbody\\n')\n    print(repr([m.get('subject'), m.get('x-a')]))\n";
    assert_agrees_with_python(script, &blocks, |block| {
        let msg = Message::from_vec(format!("{}\nbody\n", block.replace('|', "\n")).into_bytes()).unwrap();
        let py = |v: Option<String>| v.map_or("None".to_string(), |v| tmda::config::Value::Str(v).py_repr());
        format!(
            "[{}, {}]",
            py(msg.header.get_source("subject")),
            py(msg.header.get_source("x-a"))
        )
    });
}
