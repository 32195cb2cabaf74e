//! Man pages and shell completions, rendered from the clap definitions.
//!
//! Nothing here runs at build time: the integration test `generated` renders every file
//! in memory and compares it with the copy committed under `man/` and `completions/`
//! (`TMDA_UPDATE_GENERATED=1 cargo test --test integration generated` rewrites them).
//! Prose clap cannot know (exit status, files, differences from TMDA, the config
//! reference) is kept here as data next to the pages it belongs to.

use clap_complete::Shell;

use super::Applet;

/// One generated file: its path relative to the repository root, and its bytes.
pub struct Generated {
    pub path: String,
    pub contents: Vec<u8>,
}

/// Configuration settings tmda reads: name, default, meaning (tmda-config(5)).
pub const SETTINGS: &[(&str, &str, &str)] = &[
    (
        "ACTION_OUTGOING",
        "\"dated\"",
        "How outgoing mail is tagged when no outgoing filter rule matches: bare[=append], dated[=TIMEOUT], sender[=ADDRESS], domain[=ADDRESS], exp=ADDRESS, ext=EXT, kw=KEYWORD.",
    ),
    (
        "ADDED_HEADERS_CLIENT",
        "None",
        "A dict of header: value pairs added to every outgoing message. Entries whose value is None are skipped.",
    ),
    (
        "ALLOW_MODE_640",
        "False",
        "Accept a CRYPT_KEY_FILE with mode 640 (otherwise only 400 and 600 are accepted).",
    ),
    (
        "BARE_APPEND",
        "None",
        "File to which recipients of bare=append messages are added.",
    ),
    (
        "CONFIG_EXEC",
        "True",
        "Only in the global file: if False, the user's file is read as INI with a [TMDA_CONFIG] section instead of Python assignments.",
    ),
    (
        "CONFIRM_ADDRESS",
        "None",
        "Fixed address on which confirmation addresses are based.",
    ),
    (
        "CRYPT_KEY_FILE",
        "DATADIR/crypt_key",
        "The secret key: 40 hex digits. Must be mode 400 or 600 (640 with ALLOW_MODE_640).",
    ),
    ("DATADIR", "~/.tmda", "Directory for TMDA's files."),
    (
        "DATED_TIMEOUT",
        "\"5d\"",
        "Lifetime of dated addresses: a number and one of Y (365 days), M (30 days), w, d, h, m, s. $TMDA_TIMEOUT overrides it.",
    ),
    (
        "FILTER_OUTGOING",
        "DATADIR/filters/outgoing",
        "The outgoing filter file. $TMDA_FILTER_OUTGOING overrides it.",
    ),
    (
        "FINGERPRINT",
        "None",
        "Headers (or \"body\") whose values are signed into an X-TMDA-Fingerprint header.",
    ),
    (
        "FULLNAME",
        "$TMDANAME, $QMAILNAME, $NAME, $MAILNAME or the GECOS name",
        "Your name, for From headers.",
    ),
    (
        "HMAC_BYTES",
        "3",
        "Length of the MAC in cookies, in bytes (1 to 20). Changing it invalidates every address made before.",
    ),
    (
        "HOSTNAME",
        "$TMDAHOST, $QMAILHOST, $MAILHOST or the host's FQDN",
        "The domain of your address.",
    ),
    (
        "LOGFILE_OUTGOING",
        "None",
        "File to which a summary of each outgoing message is appended.",
    ),
    (
        "MAIL_FOLLOWUP_TO",
        "None",
        "Mailing-list addresses (a list, or a file with one per line) for which a Mail-Followup-To header is added.",
    ),
    (
        "MAIL_TRANSFER_AGENT",
        "\"qmail\"",
        "The MTA: exim, postfix, qmail or sendmail (decides how a null sender is passed to SENDMAIL_PROGRAM).",
    ),
    (
        "MAIL_TRANSPORT",
        "\"sendmail\"",
        "How mail is sent on: \"sendmail\" (SENDMAIL_PROGRAM) or \"smtp\" (SMTPHOST).",
    ),
    (
        "MESSAGE_FROM_STYLE",
        "\"angles\"",
        "\"angles\" (Full Name <address>) or \"address\" for tagged From and Resent-From headers.",
    ),
    (
        "MESSAGE_TAG_HEADER_STYLE",
        "\"angles\"",
        "The same for other tagged headers (tag action).",
    ),
    (
        "PURGED_HEADERS_CLIENT",
        "[\"bcc\", \"resent-bcc\"]",
        "Headers removed from outgoing messages.",
    ),
    (
        "RECIPIENT_DELIMITER",
        "\"-\"",
        "Separator between user name and address extension.",
    ),
    (
        "SENDMAIL_PROGRAM",
        "/usr/sbin/sendmail or /usr/lib/sendmail",
        "The MTA's sendmail interface, for MAIL_TRANSPORT \"sendmail\".",
    ),
    ("SMTPAUTH_PASSWORD", "None", "Password for the upstream SMTP server."),
    (
        "SMTPAUTH_USERNAME",
        "None",
        "User name for the upstream SMTP server (AUTH PLAIN, else LOGIN). If the server refuses the credentials the \
message is deferred (exit 75, SMTP 451), not bounced, so nothing is lost while the password is fixed.",
    ),
    (
        "SMTPHOST",
        "\"localhost\"",
        "Upstream SMTP server, HOST or HOST:PORT, for MAIL_TRANSPORT \"smtp\". Each tagged copy is one \
transaction (MAIL, RCPT and DATA pipelined when the server offers PIPELINING; HELO when it refuses EHLO); \
tmda ofmipd keeps idle connections open for reuse for up to 30 seconds, and under load \
sends a message's MAIL, RCPT and DATA right behind the previous message's final dot on a \
busy connection (RFC 2920) instead of taking another.",
    ),
    ("SMTPSSL", "False", "Use STARTTLS with the upstream SMTP server."),
    (
        "SMTPSSL_CAFILE",
        "None",
        "A PEM file of CA certificates to trust, besides the system's, for the upstream SMTP server (a private CA). New in tmda.",
    ),
    (
        "SMTPSSL_CERTFILE",
        "None",
        "Client certificate chain (PEM) for the upstream SMTP server.",
    ),
    (
        "SMTPSSL_KEYFILE",
        "None",
        "Client key (PEM) for the upstream SMTP server.",
    ),
    (
        "SMTPSSL_VERIFY",
        "True",
        "Verify the upstream SMTP server's certificate and name (TMDA never did). New in tmda.",
    ),
    (
        "SMTP_MAX_SESSIONS_PER_CONNECTION",
        "0",
        "Messages sent over one upstream connection before it is reopened; 0 for no limit.",
    ),
    (
        "TAGS_CONFIRM",
        "[\"confirm\"]",
        "Tag names of confirmation addresses; the first is used for new ones.",
    ),
    (
        "TAGS_DATED",
        "[\"dated\"]",
        "Tag names of dated addresses; the first is used for new ones.",
    ),
    (
        "TAGS_KEYWORD",
        "[\"keyword\"]",
        "Tag names of keyword addresses; the first is used for new ones.",
    ),
    (
        "TAGS_SENDER",
        "[\"sender\"]",
        "Tag names of sender addresses; the first is used for new ones.",
    ),
    (
        "TMDAINJECT",
        "None",
        "Letters: d forces a new Date header, i a new Message-ID.",
    ),
    (
        "TMDARC",
        "~/.tmda/config",
        "Only in the global file: where the user's file is.",
    ),
    (
        "USERNAME",
        "$TMDAUSER, $QMAILUSER, $USER, $LOGNAME or the login name",
        "The local part of your address.",
    ),
    (
        "X_TMDA_IN_SUBJECT",
        "False",
        "Look for \"X-TMDA action\" at the start of the Subject and use it like an X-TMDA header.",
    ),
];

/// sysexits(3) as every command uses them (tests/exit_codes.rs checks each command's
/// error cases against this table).
pub const EXIT_CODES: &[(u8, &str)] = &[
    (0, "success"),
    (
        1,
        "the answer is no: check\\-address: the address does not verify; passwd check, checkauth: the password is wrong",
    ),
    (64, "usage error: unknown option, missing or extra argument"),
    (
        65,
        "bad data: a password or address that is not acceptable, a malformed password file",
    ),
    (
        66,
        "an input file is missing: a file named with \\-a, \\-O, \\-c, or the password file",
    ),
    (67, "no such user (passwd change and remove)"),
    (
        69,
        "unavailable: a program that is needed (\\-A, the sendmail program) is missing",
    ),
    (73, "cannot create: the key or user exists (use \\-\\-force, \\-\\-yes)"),
    (74, "I/O error"),
    (
        75,
        "temporary failure, try again later (an auth source or the relay could not be reached)",
    ),
    (
        77,
        "permission denied: a file others can read (key, password file) or with the wrong owner",
    ),
    (78, "configuration error"),
];

fn exit_status() -> String {
    let mut s = String::from("Exit codes follow sysexits(3):");
    for (code, text) in EXIT_CODES {
        s.push_str(&format!("\n.TP\n.B {code}\n{text}"));
    }
    s
}

/// tmda filter's deliberate differences from TMDA's tmda\-filter (bugs fixed, unsafe
/// defaults changed); everything else behaves as TMDA 1.1.12.
const FILTER_DIFFERENCES: &str = "Kept as in TMDA, because set\\-ups rely on them: \\-d discards everything \
(challenges, held messages and acceptance notices too); acceptance notices come From the confirm address; \
\\-autocdb searches the text file; unknown ACTION_* words mean confirm; the confirm and done cookies, the pending \
queue's file names, the RESPONSE_DIR records and LOGFILE_INCOMING are TMDA's, so either program can take over a mailbox.
.PP
Fixed on purpose:
.IP \\(bu 2
A from\\-file (or \\-cdb) rule no longer adds its senders' domains to the sender list of later rules (TMDA's \
\\(lqfrom example.org drop\\(rq then matched other senders).
.IP \\(bu 2
A bare sender or recipient under MAIL_TRANSFER_AGENT = sendmail is qualified with HOSTNAME, not the machine's name.
.IP \\(bu 2
TAGS_CONFIRM entries are compared without regard to case; dispositions written in capitals (OK) work (TMDA ignored \
such rules); a quoted option (deliver=\\(dq|procmail \\-m rc\\(dq) loses its quotes (TMDA kept them and failed).
.IP \\(bu 2
Sizes (size rules, logs) are counted in bytes, not characters.
.IP \\(bu 2
What crashed TMDA's Python 3 ports works: Maildir and mbox delivery, the Maildir pending queue, a dict \
ACTION_EXPIRED_DATED, ADDED_HEADERS_SERVER, an action stored as a from\\-dbm value, and \\-c, \\-I, \\-e and \\-S, which are applied before the \
configuration is read.
.IP \\(bu 2
Every delivery and every held message is written to a temporary name, synced and linked into place, the directory \
synced: a crash leaves a full copy or none. An mbox is locked with fcntl and a dot\\-lock (TMDA: flock only), \
waits are bounded, and a crashed append is cut back. If sending the challenge fails, the held copy is taken back \
out, so the MTA's retry does not hold the message twice.
.IP \\(bu 2
A message is stored as received: no U+FFFD for 8\\-bit bodies, no re\\-encoding of headers. A held message \
without Return\\-Path gets one from the envelope (TMDA could then never release it). An empty message is \
delivered rather than failing for ever.
.IP \\(bu 2
A header block over 1 MiB (TMDA read any size into memory) is filtered on the whole fields within its first MiB; \
the fields after them are kept at the top of the body, after an empty line, so nothing is lost and the message \
is not deferred until the MTA bounces it; a warning goes to the MTA\\(aqs log. tmda pending reads such a message \
held by TMDA the same way.
.IP \\(bu 2
A confirmation whitelists the envelope sender, never a Return\\-Path the sender wrote (a held message whose \
first Return\\-Path is not the envelope sender gets the envelope's on top), and an address is added to \
CONFIRM_APPEND and the other *_APPEND lists as a pattern that matches only itself (* as [*], ? as [?]): TMDA \
let a stranger who confirmed with Return\\-Path <*@*>, or X\\-Primary\\-Address *@their.domain, whitelist \
everyone. An address with white space is not added.
.IP \\(bu 2
A valid X\\-TMDA\\-Confirm\\-Done is honoured only while its held message is queued: a replayed released copy \
goes through the filter like any other message. The held copy is removed after the released one is delivered.
.IP \\(bu 2
No auto\\-response to a sender with control characters or white space, to a TMDA confirm address, or to a message \
with any Auto\\-Submitted value but no. Template directories named after a sender or recipient never leave \
TEMPLATE_DIR; a template cannot reach CRYPT_KEY or any *PASSWORD*, *SECRET* or *KEY* setting.
.IP \\(bu 2
An internationalised (non\\-ASCII) sender or recipient address is written in UTF\\-8 in auto\\-responses, and \
text that a template's us\\-ascii charset cannot hold goes out as UTF\\-8 (TMDA failed, and the MTA retried the \
message until it bounced).
.IP \\(bu 2
LOGFILE_INCOMING shows control characters in the values the sender writes (From, Subject, the envelope...) \
as ?, all but tab, and a line break in a value as a new line that starts with a tab, so grep reads the log as \
text, tail \\-f passes no escape sequences to the terminal, and no value writes a line that reads as a field \
(TMDA wrote them as they came).
.IP \\(bu 2
A mistake in the options exits 75, so the MTA keeps the message (TMDA\\(aqs option parser exited 2, which \
Postfix bounces). Words that are not options are still ignored, now with a warning.
.IP \\(bu 2
\\-S runs the script with the user and host as arguments (TMDA built a shell command from the address) and, \
when it finds no home, exits 75 (TMDA exited 0 and the message was lost).
.IP \\(bu 2
Regular expressions in body and headers rules are Python\\-like (fancy\\-regex) with a bound on backtracking; \
body rules search the first 8 MiB. pipe rules are stopped after 60 seconds. to\\-dbm and from\\-dbm read \
the lists Python\\(aqs dbm modules write (dbm.dumb, GDBM, Berkeley DB hash, found the way Python\\(aqs whichdb finds \
them) without Python; files over 64 MiB, Berkeley DB btree, 1.85 and encrypted databases and old ndbm .pag files are \
refused, saying what was found. SQL and Mailman list sources are not supported: all reported with the file and line.";

/// tmda pending's deliberate differences from TMDA's tmda\-pending.
const PENDING_DIFFERENCES: &str = "Options, prompts and output (summaries, \\-T lines, \\-s links, the \
PENDING_CACHE pickle) are TMDA's, so scripts and cron jobs keep working.
.IP \\(bu 2
In a terminal the interactive mode is a full\\-screen list (age, size, sender, subject); on a pipe, with TERM=dumb \
or with \\-\\-line\\-prompts it asks TMDA's questions line by line. On the list, w whitelists and releases, b \
blacklists and deletes, and deleting several marked messages asks first.
.IP \\(bu 2
\\-Y and \\-O each use their own interval (TMDA used the \\-Y one for both); ids are sorted as numbers (TMDA: as \
strings); \\-c is applied before the configuration is read; \\-T prints None for a missing field, \\-C works, and \
\\-W or \\-B without their list is refused before anything is done (TMDA's Python 3 port crashed on these).
.IP \\(bu 2
A message is locked while it is released or deleted, and a release is stamped on the held file: two runs at once \
send a message once. As in TMDA the held copy stays queued until the released copy comes back through tmda filter, \
so nothing is lost when the transport fails; a failure on one message is reported and the run goes on.
.IP \\(bu 2
Control characters in the headers shown (the sender writes them) are printed as ?, all but newline and tab: TMDA \
printed escape sequences and carriage returns as they came, to act on the user's terminal.
.IP \\(bu 2
New: \\-\\-json, \\-\\-digest (a mail to yourself listing newly held messages with mailto: release links, sent \
to your keyword address \\(lqdigest\\(rq so your own filter delivers it; see contrib/systemd/user for a daily timer).";

/// Hand-written sections per page: (title, roff text).
fn extra_sections(page: &str) -> Vec<(&'static str, String)> {
    let config_files = "~/.tmda/config (or $TMDARC, or \\-c FILE), /etc/tmdarc (or $GLOBAL_TMDARC), ~/.tmda/crypt_key (CRYPT_KEY_FILE)";
    let authfile = "/etc/tofmipd when run as root, else ~/.tmda/tofmipd: the password file (\\-a), user:password lines, \
mode 600 or 400";
    let files = match page {
        "tmda-passwd" => format!("{authfile}; .tofmipd.lock beside it while a change is made."),
        "tmda-checkauth" => {
            format!("{authfile}; /etc/ipauthmap (as root) or ~/.tmda/ipauthmap for \\-R with host 0.0.0.0.")
        }
        "tmda-ofmipd" => format!(
            "{authfile}, owned by the user ofmipd runs as; /etc/ipauthmap or ~/.tmda/ipauthmap; each user's {config_files}; \
~/.tmda/filters/outgoing."
        ),
        "tmda-sendmail" => format!("{config_files}; ~/.tmda/filters/outgoing (FILTER_OUTGOING, or \\-O FILE)."),
        "tmda-filter" => format!(
            "{config_files}; ~/.tmda/filters/incoming (FILTER_INCOMING, or \\-I FILE); ~/.tmda/pending (PENDING_DIR); \
~/.tmda/responses (RESPONSE_DIR); templates in \\-t DIR, TEMPLATE_DIR and /etc/tmda, else built in; LOGFILE_INCOMING."
        ),
        "tmda-pending" => format!(
            "{config_files}; ~/.tmda/pending (PENDING_DIR, PENDING_QUEUE_FORMAT); ~/.tmda/.pendingcache (PENDING_CACHE, \\-C); \
~/.tmda/pending\\-digest (the ids already listed by \\-\\-digest); the PENDING_*_APPEND lists."
        ),
        "tmda" => format!("{config_files}; {authfile}."),
        _ => format!("{config_files}."),
    };
    let env = match page {
        "tmda-passwd" | "tmda-checkauth" => "HOME locates ~/.tmda/tofmipd. SSL_CERT_FILE names CA certificates to trust for \\-R (checkauth)."
            .to_string(),
        _ => "TMDA_NOW pins the clock (seconds since the epoch) for reproducible output; TMDA_TIMEOUT overrides DATED_TIMEOUT; \
HOME, TMDAUSER, TMDAHOST, TMDANAME and their qmail equivalents supply defaults as in TMDA. TMDA_NO_WARN=1 silences \
the warnings about the configuration (an unknown variable, USERNAME or HOSTNAME not set)."
            .to_string(),
    };
    let env = if page == "tmda-filter" {
        "SENDER, RECIPIENT and EXT (qmail) or EXTENSION (Postfix, Exim, procmail) give the envelope; HOST is read \
with \\-S. TMDARC, TMDA_FILTER_INCOMING and TMDA_TEMPLATE_DIR are what \\-c, \\-I and \\-t set. TMDAIDHOST, \
QMAILIDHOST and TMDAIDTAG shape Message\\-IDs. TMDA_NOW pins the clock. TMDA_PENDING_CLEANUP=1 cleans the pending \
queue on this run whatever PENDING_CLEANUP_ODDS says."
            .to_string()
    } else {
        env
    };
    let env = if page == "tmda-pending" {
        "PAGER shows a message (\\-S, s), else less or more. USER or LOGNAME and the machine's name are the \
\\-\\-vhome\\-script arguments. REMOTE_ADDR and HTTP_USER_AGENT, when both are set (a web front end), give a \
released message's X\\-TMDA\\-CGI field. TERM=dumb chooses the line prompts. TMDARC is what \\-c sets; TMDA_NOW pins the clock."
            .to_string()
    } else {
        env
    };
    let status = if page == "tmda-pending" {
        "0 on success, also when nothing was held. 1 when the pending queue does not exist (as TMDA) or \\-\\-vhome\\-script \
failed. When some messages could not be released or deleted the run goes on and the status is that of the first \
failure (75 when the transport may accept it later, 69 when it refused, 66 when a file it needs is missing...). \
An id that is not in the queue, or a word that is no id, is reported as \\(lqID not found!\\(rq (not with \\-q) and \
skipped without changing the status, as TMDA did. 64 for a mistake in the options, 78 for one in the configuration (\\-W or \\-B without their PENDING_*_APPEND)."
            .to_string()
    } else if page == "tmda-filter" {
        "As MAIL_TRANSFER_AGENT expects: under qmail 99 when the message was delivered, held, challenged, \
bounced or dropped (the rest of the .qmail file is skipped) and 0 for DELIVERY = \"_qok_\"; under postfix, exim \
and sendmail 0. With \\-p: 0 when the message was printed, 99 otherwise. 75 (EX_TEMPFAIL) for every failure, \
under every MTA, so that the MTA keeps the message and tries again; nothing is half delivered or half held. \
A mistake in the options (an unknown option, one without its value) is such a failure too: 75, not 64, which \
qmail\\-local and Postfix\\(aqs local treat as permanent, so one typo in ~/.qmail, ~/.forward or mailbox_command \
would bounce every message. Words that are not options are ignored, as TMDA ignored them, with a warning on \
standard error. \\-\\-help, \\-\\-version and \\-V exit 0."
            .to_string()
    } else {
        exit_status()
    };
    let mut v = vec![("EXIT STATUS", status), ("FILES", files), ("ENVIRONMENT", env)];
    match page {
        "tmda-filter" => v.push(("DIFFERENCES FROM TMDA", FILTER_DIFFERENCES.into())),
        "tmda-pending" => v.push(("DIFFERENCES FROM TMDA", PENDING_DIFFERENCES.into())),
        "tmda-address" => v.push((
            "COMPATIBILITY",
            "Output is identical to TMDA's tmda\\-address for the same key, configuration and time. \
Keywords are sanitised with the RFC 2822 atom set of later TMDA releases (1.1.12 also let \\(aq.\\(aq and \\(aq,\\(aq through). \
Unlike TMDA, an unknown upper\\-case variable in the configuration (a misspelt setting) and a USERNAME or HOSTNAME guessed \
from the login or machine name are warned about on standard error, except with \\-n, \\-\\-quiet or TMDA_NO_WARN=1 (Emacs\\(aqs \
shell\\-command\\-to\\-string, which Gnus users call tmda\\-address \\-dn with, mixes standard error into the address)."
                .into(),
        )),
        "tmda-check-address" => v.push((
            "COMPATIBILITY",
            "Output is TMDA's. Unlike TMDA, the exit status is 1 when the address does not verify, \\-v (which key, and a \
guessed USERNAME or HOSTNAME) is new, and unknown upper\\-case variables in the configuration are warned about on standard \
error (\\-\\-quiet or TMDA_NO_WARN=1 silence it).".into(),
        )),
        "tmda-keygen" => v.push((
            "COMPATIBILITY",
            "\\-\\-install and \\-\\-force are additions: TMDA only printed the key. \\-\\-install refuses a directory \
others can write to unless it has the sticky bit.".into(),
        )),
        "tmda-ofmipd" => {
            v.push((
                "AUTHENTICATION",
                "Sources are tried in the order given (\\-a, \\-A, \\-R, \\-m; any number of each); the first that accepts wins. With none \
given, the default authfile is used: /etc/tofmipd when started as root, else ~/.tmda/tofmipd. The authfile holds \
user:password lines (# comments); it must be mode 600 or 400 and owned by the user ofmipd runs as, or ofmipd refuses to \
start. CRAM\\-MD5 is offered only when every source can verify it (an authprog cannot). A checkpassword program gets \
user, password and time, NUL-terminated, on descriptor 3; exit 0 accepts, 111 is a temporary failure. \\-R logs in to \
imap, imaps, pop3, pop3s or apop servers, or binds to ldap or ldaps as the DN template with %s replaced by the escaped user name \
(default ports 143, 993, 110, 995, 110, 389, 636); TLS certificates are verified (SSL_CERT_FILE names a PEM bundle to trust a \
private CA); when no source accepts and one could not be asked (down or slow), the answer is 454 4.7.0 (RFC 4954) and the attempt costs the same delay and counts toward the client address's budget as a refusal, so an outage never makes guessing cheaper; host 0.0.0.0 picks the server from the ipauthmap \
file (/etc/ipauthmap as root, else ~/.tmda/ipauthmap; lines LOCALIP:SERVER[:PORT] or LOCALIP SERVER [PORT]). \\-m uses PAM. \
Authfile entries may be cleartext, {CRAM\\-MD5}, crypt(3) ($1$, $5$, $6$, $y$, DES) or {ARGON2ID} (see tmda\\-passwd(1)). The login name is lower-cased once and that one name is both checked and used; a name that starts with \\- or holds a control character is refused without asking any source. Passwords are never logged.".into(),
            ));
            v.push((
                "SECURITY",
                ".IP \\(bu 2\nGuessing: after \\-\\-max\\-auth\\-failures (3) refused or undecided attempts a session is closed (421); each is answered after \\-\\-auth\\-delay (500 ms) times the number so far. Across connections, a client address with \\-\\-auth\\-limit\\-ip (30) such attempts within \\-\\-auth\\-window (600 s) is refused without asking; a user with \\-\\-auth\\-limit\\-user (10) refused passwords is refused only from addresses that have been failing, so the user, from an address that has not, gets in at the first try, and nobody can lock a user out. Attempts refused for an address's budget do not count against the user they named. At most \\-\\-auth\\-memory (10,000) addresses and users are remembered; expired entries, then the oldest, are forgotten. With \\-1 each process starts afresh, so they share a locked file (\\-\\-budget\\-file; default /run/tmda/ofmipd\\-budget when started as root, else $XDG_RUNTIME_DIR/tmda\\-ofmipd\\-budget, else /run/tmda/ofmipd\\-budget when writable, else ~/.tmda/ofmipd\\-budget; mode 0600, never through a symbolic link, at most 2,000 entries of each kind).\n.IP \\(bu 2\nSlow and silent clients: a TLS handshake must finish within \\-\\-tls\\-timeout (30 s); a command line must be complete within \\-\\-timeout of the moment it is awaited (bytes that trickle in do not restart it); DATA must start within \\-\\-data\\-timeout and then average \\-\\-min\\-data\\-rate (500 bytes a second); a session that has not authenticated ends after \\-\\-unauth\\-timeout (60 s); one client address may hold \\-\\-connections\\-per\\-ip (10) connections, over which it is told 421. A command line that grows past its limit (512 octets; 12,288 for AUTH) is answered 500 5.5.2 and the connection closed. Behind stunnel, xinetd or a load balancer that does not send the PROXY protocol, every client has the proxy's address: raise \\-\\-connections\\-per\\-ip and \\-\\-auth\\-limit\\-ip there.\n.IP \\(bu 2\nTLS: with \\-\\-tls=on only EHLO, STARTTLS, NOOP and QUIT are accepted before the handshake (RFC 3207); \\-\\-tls\\-auth\\-only offers AUTH only under TLS. A listener on a non\\-loopback address that offers AUTH without TLS is warned about at start\\-up.\n.IP \\(bu 2\nSenders: as in TMDA any From is accepted from an authenticated user, unless \\-\\-restrict\\-sender is given; then a message whose From, Sender (Resent\\- forms when resending) or MAIL FROM is not one of the user's own \\(em USERNAME@HOSTNAME, its tagged forms (USERNAME, RECIPIENT_DELIMITER, anything), the OFMIPD_ALLOWED_SENDERS list of the user's configuration, the \\-\\-sender\\-map lines for the login; an entry @domain allows the whole domain \\(em gets 553 5.7.1 before any copy is sent.\n.IP \\(bu 2\nConfiguration errors: the client is told only \"configuration error; see the server log\" (451 4.3.5); errors never quote the value of a setting whose name contains PASSWORD, SECRET or KEY.".into(),
            ));
            v.push((
                "MODES",
                "Personal: started by an ordinary user, mail is tagged with that user's configuration (or ~USER/.tmda/config of the \
authenticated user if it is readable; which users exist is remembered for 30 seconds). A user's configuration, filter and key are parsed once and kept; their files are looked at again at most once a second, so an edit applies to messages from a \
second later on. Relay connections are kept open between messages (up to 64 idle ones, each closed after 30 idle seconds). Global: started as root, ofmipd binds its ports, then runs as \\-u USER (default \
tofmipd); each message is handed to a child process running tmda sendmail with the authenticated user's uid, gid and \
groups and HOME. The network process keeps no way back to root (real, effective and saved uids are all USER's): a \
launcher forked before it dropped root starts the per-user children and runs the \\-m PAM checks, and trusts nothing \
else from it. It may only be told \"this login authenticated, deliver this message\" or \"check this password \
with PAM service S\" (one named with \\-m); it looks the account up itself and serves only ordinary accounts: uid at \
least \\-\\-min\\-uid (default UID_MIN from /etc/login.defs, else 1000), not uid 65534, not with group 0 as its primary group, not USER, with a \
home directory that exists (the login shell is not looked at: mail\\-only accounts often have nologin); anything else \
is refused with 554 and logged by the launcher. It builds every program path, argument and variable itself: \
recipients go after \\-\\-, the sender, the Received field and the login into variables, and a login beginning with \
\\- or . or holding / or a control character is refused. PAM checks there are limited to 10 failures per login in 10 \
minutes, 300 checks a minute and 8 at once, and one that takes over 10 seconds is stopped (each counts as a source that could not be asked). Checkpassword programs \
(\\-A) run in the network process, as USER. One session (\\-1): SMTP on standard input and \
output, the client taken from $TCPREMOTEIP and $TCPREMOTEHOST (tcpserver), $REMOTE_HOST (xinetd) or the socket. When \
descriptor 0 is a socket (inetd, tcpserver, stunnel's exec, systemd's Accept=yes) the session reads and writes that \
socket, as TMDA's \"used both for input & output\" said, so a wrapper may send standard output to a log file; a pipe pair \
is read on standard input and answered on standard output.".into(),
            ));
            v.push((
                "DELIVERY OUTCOMES",
                "Every copy of a message is tried, one per recipient, whatever became of the ones before it (TMDA stopped at the \
first failure, so later recipients were never tried). Then: every recipient got it: 250. Nobody got it: 451 when every \
failure may pass later (the client retries, and nobody gets it twice), else 554 naming each recipient's fate. Some got it \
and some did not: a 451 would have the client send it again to those who got it, and a 554 would tell the user nobody \
did, so the answer is 250 and the envelope sender is sent a delivery status notification (RFC 3464 multipart/report, \
from MAILER\\-DAEMON@HOSTNAME with the null envelope sender, through the same transport as the message) naming every \
failed recipient with Final\\-Recipient, Action: failed, Status and Diagnostic\\-Code (smtp; and the relay's reply), \
followed by the message's header (text/rfc822\\-headers). A temporary failure among them is reported as failed too, with \
its 4.x.x status, since ofmipd keeps no queue to retry it (as Postfix reports a message that expired in its queue): the \
notification asks the user to send it again to those recipients. No notification is ever sent for a message whose \
envelope sender is null (<>), nor when it cannot be sent: the answer is then 554, naming who got the message. A relay \
that cannot be reached or refuses the login fails the remaining copies at once rather than being dialled per recipient. \
In global mode the user's tmda sendmail does all this as the user and reports each fate on its standard error.".into(),
            ));
            v.push((
                "LOGGING",
                "\\-L logs one event per line, in key=value form where a program reads it: client=ADDRESS on every \
line about a connection, login=USER, auth=accepted|denied|unavailable|refused with source=, event=connect|disconnect|\
timeout|tls\\-failed|start|listen|stop, and for each message id=ID (a per\\-message queue id), from=, to=, \
outcome=delivered|partly\\-delivered|deferred|refused|throttled and reason=; when a message's copies fared differently, \
one more line per recipient with to=, outcome=delivered|failed, status= and reason=. Values with spaces are quoted. \
\\-d adds the protocol trace (AUTH data redacted). Lines go to standard error, or with \\-\\-syslog to syslog with \
facility mail, which is the default when ofmipd detaches (its standard error is then /dev/null); problems the operator \
must hear of (a certificate that cannot be reloaded) are logged even without \\-L. $TMDA_SYSLOG_SOCKET names the \
datagram socket to use instead of /dev/log (the tests point it at a socket of their own). A record that finds the \
socket's queue full is dropped rather than waited for. \\-\\-pid\\-file FILE holds the daemon's process id \
(written after detaching, removed at exit when it can be). A fail2ban filter for refused passwords: \
failregex = tmda\\-ofmipd\\\\[\\\\d+\\\\]: client=<HOST> login=\\\\S+ auth=(denied|refused)".into(),
            ));
            v.push((
                "SIGNALS",
                "SIGTERM or SIGINT: stop accepting connections; idle sessions are told 421 and closed, a message being received or \
relayed is finished first (within 30 seconds); exit 0. SIGHUP: reload the TLS certificate and key (a changed file is also \
picked up within 30 seconds without a signal); on error the old certificate stays in use.".into(),
            ));
            v.push((
                "EXAMPLES",
                ".nf\ntmda ofmipd \\-f \\-L \\-p 127.0.0.1:8025\n\
tmda ofmipd \\-p :587 \\-\\-tls=on \\-\\-ssl\\-cert /etc/ssl/mail.pem \\-\\-ssl\\-key /etc/ssl/mail.key\n\
tmda ofmipd \\-p :465 \\-\\-ssl \\-\\-ssl\\-cert cert.pem \\-\\-ssl\\-key key.pem \\-a /etc/tofmipd \\-A \"/usr/sbin/checkpassword /bin/true\"\n\
tcpserver \\-R \\-u UID \\-g GID 0 8025 tmda ofmipd \\-1\n.fi".into(),
            ));
            v.push((
                "DIFFERENCES FROM TMDA",
                "Kept for TMDA's old clients and its test suite: AUTH right after the greeting, without EHLO or HELO; MAIL \
before AUTH answered 530 whatever its arguments (even MAIL TO: x@y); MAIL FROM: with nothing after the colon 501; \
STARTTLS on a server without TLS configured 502 5.5.1 (not offered, so not implemented); \\-1 reading and writing a \
socket on descriptor 0. Fixed on purpose: HELO exists; MAIL, RCPT and DATA all require AUTH and a greeting; QUIT ends an AUTH exchange; a lone dot right \
after DATA is an empty message; a failed relay is answered with 451 (temporary) or 554 instead of a dropped connection; \
every copy is tried, and when only some recipients got the message the answer is 250 with a delivery status \
notification to the sender (see DELIVERY OUTCOMES); the Received field is per session; the null sender is <> rather \
than the text \"<>\"; invalid base64 gets 501; \\-\\-tls=localoptional looks at the client's address, not ours; STARTTLS \
discards anything pipelined before the handshake; only CRLF.CRLF ends DATA and a bare CR or LF refuses the message \
(SMTP smuggling). New: SIZE, PIPELINING, 8BITMIME, ENHANCEDSTATUSCODES, SMTPUTF8 (a message that uses it is passed \
on with SMTPUTF8, and refused with 554 if the SMTP relay does not offer it; the sendmail transport passes it to the \
program as is; non\\-ASCII addresses without it get 553 5.6.7), timeouts, failure budgets, certificate reload, \
\\-\\-hostname, \\-\\-max\\-size, \\-\\-timeout, \\-\\-data\\-timeout, \\-\\-delivery\\-timeout (a delivery program that overstays is stopped \
with whatever it started, and the client told to retry), \\-\\-syslog and \\-\\-pid\\-file (a detached TMDA logged nowhere). \\-\\-ciphers is accepted and ignored: rustls always uses its \
safe TLS 1.2 and 1.3 suites. With \\-S in global mode, qmail's virtualdomains file (\\-v) names the system user in charge of the domain; the vhome script and the delivery run as that user, with the virtual user's home. That user must be an ordinary account too (for a vpopmail user below UID_MIN, lower \\-\\-min\\-uid); the vhome script gets the virtual user's name and domain as its two arguments, and a login whose name or domain begins with \\- is refused. \
A \\-A program that does not exist stops ofmipd at start\\-up (exit 69) instead of failing every login; an authfile refused for \
its mode or owner is reported with the chmod or chown that fixes it (exit 77). An unknown upper\\-case variable in a user's \
configuration is logged once per file (TMDA ignored it), never sent to the client.".into(),
            ));
        }
        "tmda-passwd" => v.push((
            "FILE FORMAT",
            "One user:password line per user; # comment lines and blank lines are kept. User names are case-insensitive. \
A password is stored as written (plain), or with a Dovecot scheme prefix: {CRAM\\-MD5} (the same as doveadm pw \\-s CRAM\\-MD5), \
{SHA512\\-CRYPT}$6$..., {ARGON2ID}$argon2id$...; entries written by doveadm pw work too, and these prefixed entries can be \
used by Dovecot's passwd\\-file passdb. TMDA itself only reads plain entries. Changes take a lock (.FILE.lock beside the \
file, never opened through a symbolic link), are written to a temporary file, synced and renamed into place, keeping \
mode and owner; a file readable by others is refused, and so is a directory others can write to unless it has the \
sticky bit (they could swap the file or its lock). A file readable by others is refused with exit 77 and the chmod that \
fixes it. A new file is mode 600; when root creates /etc/tofmipd (or any file with \\-u USER) it is given to the user ofmipd \
runs as, tofmipd unless \\-u says otherwise, since ofmipd refuses a file it does not own. A file named with \\-a in a \
directory that does not exist is refused (exit 66), and add, change and remove each print one line saying what they did \
to which file.".into(),
        )),
        "tmda-sendmail" => {
            v.push((
                "SET BY TMDA-OFMIPD",
                "In global mode tmda\\-ofmipd runs tmda sendmail as the authenticated user with: TMDA_OFMIPD_RECEIVED \
(the Received field), TMDA_OFMIPD_SMTPUTF8=1 (the client asked for SMTPUTF8), TMDA_OFMIPD_HOSTNAME and \
TMDA_OFMIPD_MAIL_FROM (when only some recipients got the message, a delivery status notification from \
MAILER\\-DAEMON@HOSTNAME goes to MAIL_FROM through the user's transport, and a line \
\"delivery status notification sent to <MAIL_FROM>\" or \"no delivery status notification: WHY\" follows the \
recipients' lines; see tmda\\-ofmipd(8)), TMDA_OFMIPD_CONFIG (the \\-\\-configdir \
configuration, used when it exists and \\-c is not given), and with \\-\\-pure\\-proxy TMDA_OFMIPD_PURE_PROXY=1 and \
TMDA_OFMIPD_MAIL_FROM: a user without a configuration then has the message passed unaltered to $TMDA_SENDMAIL_PROGRAM \
(default /usr/sbin/sendmail) with \\-f MAIL_FROM \\-i \\-\\- RECIPIENTS. With \\-\\-restrict\\-sender: TMDA_OFMIPD_RESTRICT_SENDER=1, TMDA_OFMIPD_MAIL_FROM and TMDA_OFMIPD_ALLOWED_SENDERS (the sender map's entries for the login, comma\\-separated); a refused sender exits 77."
                    .into(),
            ));
            v.push((
                "DELIVERY FAILURES",
                "Every copy is tried, whatever became of the ones before it. When some failed, each recipient's fate is \
named on standard error, one line each: \"delivered to <RCPT>\" or \"not delivered to <RCPT>: STATUS; DIAGNOSTIC\", \
where STATUS is an RFC 3463 code (4.x.x: may pass later) and DIAGNOSTIC the relay's reply (smtp; 550 5.1.1 ...) or \
what the sendmail program said (x\\-unix; ...). The exit status is the worst: a permanent failure's (the first one's) \
over 75. A relay that cannot be reached, or refuses SMTPAUTH_USERNAME/SMTPAUTH_PASSWORD, fails the remaining copies at \
once. \\-v shows the conversation with the MTA on standard error as it happens (\"\\-\\-> \" what is sent, \
\"<\\-\\- \" what comes back; AUTH data redacted); through the sendmail program, its command line and exit status."
                    .into(),
            ));
            v.push((
                "DESCRIPTION OF THE PIPELINE",
                "For each recipient (the arguments; with \\-t or without arguments $QMAILRCPTS or the To, Cc, Bcc and \
Apparently\\-To fields, or their Resent\\- forms when the message has a Resent\\-From) the first matching rule of the \
outgoing filter (see tmda\\-filter(5)), an X\\-TMDA field, or ACTION_OUTGOING decides how From (or Resent\\-From), \
the envelope sender and any other tagged fields are written. Each recipient gets its own copy. Once per message a Received \
field is added, Date and Message\\-ID when missing (or always with TMDAINJECT), X\\-Delivery\\-Agent, and \
Mail\\-Followup\\-To with MAIL_FOLLOWUP_TO; per copy FINGERPRINT, ADDED_HEADERS_CLIENT and PURGED_HEADERS_CLIENT \
(Bcc and Resent\\-Bcc by default) apply. The body is never changed, and a large message is spooled to a temporary file \
rather than held in memory.".into(),
            ));
            v.push((
                "DIFFERENCES FROM TMDA",
                ".IP \\(bu 2\nHeader fields that are not changed stay byte for byte where they were; TMDA re\\-folded every field at 78 \
columns and moved changed ones to the end. New and changed fields are folded, and non\\-ASCII names RFC 2047 encoded.\n\
.IP \\(bu 2\nEach copy starts from the original header: a field one recipient's rule tags (such as Reply\\-To) is not \
removed from the next recipient's copy, as TMDA did.\n\
.IP \\(bu 2\nAn empty message, a message without recipients, an X\\-TMDA value that is not one action, an unknown \
action and an action name in capitals that TMDA silently treated as bare are errors (or, for capitals, work) instead of \
a crash, a dropped message or an untagged address.\n\
.IP \\(bu 2\nAn X\\-TMDA header (or X\\-TMDA in the Subject) asking for a shell= action is refused: the header \
travels with the message, so a message someone sent you and you bounce or resend, or one submitted by another user of \
a personal\\-mode ofmipd, would choose a command to run as you (TMDA ran it, and evaluated python= actions from the \
header too). shell= in your outgoing filter works as before.\n\
.IP \\(bu 2\nIn list files (to\\-file, from\\-file) the whole rest of an entry's line is its action, not only its \
second word. \\-autocdb and \\-autodbm are accepted and the text file is read directly (the result is the same).\n\
.IP \\(bu 2\nSMTP relaying verifies the server certificate (SMTPSSL_VERIFY, SMTPSSL_CAFILE), can use implicit TLS \
(SMTPSSL = \"implicit\"), reuses one connection for all copies, and refuses to continue without TLS when STARTTLS was \
asked for but not offered.\n\
.IP \\(bu 2\nThe sendmail program never inherits standard output, and its exit status is reported: 75 or a signal \
means try again later (exit 75), anything else is a permanent failure.\n\
.IP \\(bu 2\nAn unknown upper\\-case variable in the configuration (a misspelt setting, which TMDA ignored) is warned about \
on standard error, once, with the setting probably meant; \\-\\-quiet or TMDA_NO_WARN=1 silence it. Under tmda\\-ofmipd the \
warning goes to ofmipd\\(aqs log, never into an SMTP reply.\n\
.IP \\(bu 2\nEvery copy is tried and every failed recipient named with its reason; tmda\\-inject stopped at the first \
failure, so the recipients after it were never tried (see DELIVERY FAILURES).\n\
.IP \\(bu 2\n\\-v shows the SMTP dialogue (TMDA ignored it). \\-M says when the filter file does not exist, and which \
ACTION_OUTGOING applies then and where it was set (TMDA said only \"Sorry, no matching lines.\").".into(),
            ));
        }
        _ => {}
    }
    v
}

/// Text for roff: backslashes and hyphens escaped, a leading dot or quote neutralised.
fn roff(text: &str) -> String {
    let t = text.replace('\\', "\\e").replace('-', "\\-");
    if t.starts_with('.') || t.starts_with('\'') {
        format!("\\&{t}")
    } else {
        t
    }
}

/// One option or argument as the synopsis shows it: `[-a|--authfile FILE]`.
fn synopsis_arg(a: &clap::Arg) -> Option<String> {
    if a.is_hide_set() {
        return None;
    }
    let values = a.get_value_names().map(|v| {
        v.iter()
            .map(|n| format!("\\fI{}\\fR", roff(n)))
            .collect::<Vec<_>>()
            .join(" ")
    });
    let takes_value = a.get_num_args().is_some_and(|n| n.takes_values())
        && !matches!(
            a.get_action(),
            clap::ArgAction::SetTrue | clap::ArgAction::Help | clap::ArgAction::Version | clap::ArgAction::HelpLong
        );
    let many = a.get_num_args().is_some_and(|n| n.max_values() > 1);
    if a.is_positional() {
        let v = values.unwrap_or_else(|| format!("\\fI{}\\fR", roff(a.get_id().as_str())));
        let v = if many { format!("{v}...") } else { v };
        return Some(if a.is_required_set() { v } else { format!("[{v}]") });
    }
    let mut names = vec![];
    if let Some(c) = a.get_short() {
        names.push(format!("\\fB\\-{}\\fR", roff(&c.to_string())));
    }
    if let Some(l) = a.get_long() {
        names.push(format!("\\fB\\-\\-{}\\fR", roff(l)));
    }
    if names.is_empty() {
        return None;
    }
    let mut s = names.join("|");
    if takes_value {
        let v = values.unwrap_or_else(|| format!("\\fI{}\\fR", roff(&a.get_id().as_str().to_uppercase())));
        s.push(' ');
        s.push_str(&v);
    }
    Some(if a.is_required_set() { s } else { format!("[{s}]") })
}

/// SYNOPSIS: every option with its value (clap_mangen's shows `[-f ]` for a short
/// option with a value), and one line per subcommand.
fn synopsis(cmd: &clap::Command, page: &str) -> String {
    let name = format!("\\fB{}\\fR", roff(page));
    let options: Vec<String> = cmd
        .get_arguments()
        .filter(|a| !a.is_positional())
        .filter_map(synopsis_arg)
        .collect();
    let positionals: Vec<String> = cmd.get_positionals().filter_map(synopsis_arg).collect();
    let subs: Vec<&clap::Command> = cmd.get_subcommands().filter(|c| c.get_name() != "help").collect();
    let mut lines = vec![];
    if page == "tmda" {
        lines.push(format!(
            "{name} \\fICOMMAND\\fR [\\fIOPTION\\fR...] [\\fIARGUMENT\\fR...]"
        ));
        lines.push(format!("{name} {}", options.join(" ")));
    } else if subs.is_empty() {
        lines.push(
            format!("{name} {} {}", options.join(" "), positionals.join(" "))
                .trim_end()
                .to_string(),
        );
    } else {
        for sub in subs {
            let args: Vec<String> = sub.get_positionals().filter_map(synopsis_arg).collect();
            lines.push(
                format!(
                    "{name} [\\fIOPTION\\fR...] \\fB{}\\fR {}",
                    roff(sub.get_name()),
                    args.join(" ")
                )
                .trim_end()
                .to_string(),
            );
        }
        lines.push(format!("where \\fIOPTION\\fR is {}", options.join(" ")));
    }
    lines.join("\n.br\n")
}

/// The pages a page's SEE ALSO names: every one is in man/ (tested) or a system page.
fn see_also(page: &str) -> &'static str {
    match page {
        "tmda" => {
            "tmda\\-address(1), tmda\\-check\\-address(1), tmda\\-keygen(1), tmda\\-passwd(1), tmda\\-checkauth(1), \
tmda\\-sendmail(8), tmda\\-ofmipd(8), tmda\\-config(5), tmda\\-filter(5)"
        }
        "tmda-address" | "tmda-check-address" | "tmda-keygen" => "tmda(1), tmda\\-config(5)",
        "tmda-sendmail" => "tmda(1), tmda\\-filter(5), tmda\\-config(5), tmda\\-ofmipd(8), sendmail(8)",
        "tmda-ofmipd" => "tmda(1), tmda\\-passwd(1), tmda\\-checkauth(1), tmda\\-sendmail(8), tmda\\-config(5)",
        "tmda-passwd" => "tmda(1), tmda\\-ofmipd(8), tmda\\-checkauth(1)",
        "tmda-checkauth" => "tmda(1), tmda\\-ofmipd(8), tmda\\-passwd(1)",
        _ => "tmda(1)",
    }
}

/// COMMANDS: the subcommands, with the page that describes each (tmda(1)) or their
/// arguments (tmda-passwd(1)).
fn commands_section(cmd: &clap::Command, page: &str) -> Option<String> {
    let subs: Vec<&clap::Command> = cmd.get_subcommands().filter(|c| c.get_name() != "help").collect();
    if subs.is_empty() {
        return None;
    }
    let mut s = String::new();
    for sub in subs {
        let about = sub.get_about().map(|a| a.to_string()).unwrap_or_default();
        if page == "tmda" {
            let applet = super::Applet::ALL.iter().find(|a| a.word() == sub.get_name())?;
            let section = if matches!(
                applet,
                super::Applet::Sendmail | super::Applet::Ofmipd | super::Applet::Filter
            ) {
                8
            } else {
                1
            };
            s.push_str(&format!(
                ".TP\n\\fBtmda {}\\fR (also \\fB{}\\fR)\n{}. See {}({section}).\n",
                roff(sub.get_name()),
                roff(applet.legacy_name()),
                roff(about.trim_end_matches('.')),
                roff(applet.legacy_name())
            ));
        } else {
            let args: Vec<String> = sub.get_positionals().filter_map(synopsis_arg).collect();
            s.push_str(&format!(
                ".TP\n\\fB{}\\fR {}\n{}\n",
                roff(sub.get_name()),
                args.join(" "),
                roff(&about)
            ));
            for a in sub.get_positionals() {
                if let Some(h) = a.get_help() {
                    s.push_str(&format!(
                        ".RS\n.TP\n{}\n{}\n.RE\n",
                        synopsis_arg(a).unwrap_or_default().trim_matches(['[', ']']),
                        roff(&h.to_string())
                    ));
                }
            }
        }
    }
    Some(s)
}

fn render_man(cmd: clap::Command, section: &str, page: &str) -> Vec<u8> {
    let mut cmd = cmd;
    cmd.build();
    let mut buf = format!(
        ".ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\n.TH {page} {section} \"\" \"tmda {}\"\n.SH NAME\n{} \\- {}\n.SH SYNOPSIS\n{}\n",
        env!("CARGO_PKG_VERSION"),
        roff(page),
        roff(&cmd.get_about().map(|a| a.to_string()).unwrap_or_default()),
        synopsis(&cmd, page),
    )
    .into_bytes();
    let man = clap_mangen::Man::new(cmd.clone());
    man.render_description_section(&mut buf)
        .expect("rendering to memory cannot fail");
    man.render_options_section(&mut buf)
        .expect("rendering to memory cannot fail");
    if let Some(text) = commands_section(&cmd, page) {
        buf.extend_from_slice(format!(".SH COMMANDS\n{text}").as_bytes());
    }
    for (title, text) in extra_sections(page) {
        buf.extend_from_slice(format!(".SH \"{title}\"\n{text}\n").as_bytes());
    }
    buf.extend_from_slice(format!(".SH \"SEE ALSO\"\n{}\n", see_also(page)).as_bytes());
    buf
}

/// tmda-config(5): the configuration reference.
fn render_config_page() -> Vec<u8> {
    let mut s = String::new();
    s.push_str(&format!(
        ".TH tmda-config 5 \"\" \"tmda {}\"\n",
        env!("CARGO_PKG_VERSION")
    ));
    s.push_str(".SH NAME\ntmda\\-config \\- the TMDA configuration file, as read by tmda\n");
    s.push_str(".SH DESCRIPTION\n\
tmda reads TMDA's configuration files unchanged: first the global file (/etc/tmdarc, or $GLOBAL_TMDARC), \
then the user's file (\\-c FILE, else $TMDARC, else TMDARC as set by the global file, else ~/.tmda/config). \
A missing global file or a missing ~/.tmda/config is fine (the defaults apply); a file named with \\-c or $TMDARC must exist.\n\
.PP\n\
TMDA executed these files as Python. tmda never executes them: it reads the subset real configurations use and \
reports anything else as an error with file, line and column. Allowed are\n\
.IP \\(bu 2\n\
NAME = value and NAME += value; os.environ[\"NAME\"] = \"value\" (sets the environment, e.g. TMDAIDHOST); import lines (ignored);\n\
.IP \\(bu 2\n\
strings in every Python form (single, double and triple quotes, r'' raw strings, escapes, adjacent literals concatenated), \
integers (0o640, 0x1f), floats, True, False, None and TMDA's aliases on/On/ON/yes/Yes/YES/true/TRUE and off/Off/OFF/no/No/NO/false/FALSE;\n\
.IP \\(bu 2\n\
lists, tuples and dicts (over several lines inside brackets), + and % (%s %r %d %i %%) on strings, names assigned earlier;\n\
.IP \\(bu 2\n\
os.path.expanduser(), os.path.join(), os.environ.get(), os.environ[...], os.getenv(), str(), int(), and .lower()/.upper()/.strip() on strings.\n\
.PP\n\
With CONFIG_EXEC = False in the global file, the user's file is read as INI: a [TMDA_CONFIG] section of name = value lines \
(names case-insensitive), %(name)s interpolation and indented continuation lines. Unlike TMDA, whole numbers become integers and \
true/yes/on and false/no/off become booleans (TMDA kept \"False\" as a string, which counted as true).\n\
.PP\n\
Every variable a file sets is kept, including ones tmda does not use, so outgoing filters can refer to it as ${NAME}.\n\
.PP\n\
An upper\\-case variable that neither TMDA (any of its variables, the incoming side included) nor tmda knows is most likely \
a misspelt setting, which would do nothing: the commands warn about it on standard error, once per run, with the setting \
probably meant (USERNMAE: did you mean USERNAME?). Lower\\-case names, your own helpers, are not checked. \\-\\-quiet or \
TMDA_NO_WARN=1 silences the warning; tmda ofmipd logs it once per file.\n");
    s.push_str(".SH SETTINGS\nSettings tmda reads, with their defaults. Paths have ~ expanded.\n");
    for (name, dflt, text) in SETTINGS {
        s.push_str(&format!(
            ".TP\n.B {name}\n{text} Default: {}.\n",
            dflt.replace('\\', "\\\\").replace('-', "\\-")
        ));
    }
    s.push_str(".SH \"SEE ALSO\"\ntmda(1), tmda\\-address(1), tmda\\-check\\-address(1), tmda\\-keygen(1)\n");
    s.into_bytes()
}

/// tmda-filter(5): the filter syntax (prose; it has no clap definition).
const FILTER_PAGE: &str = r#".TH tmda-filter 5 "" "tmda"
.SH NAME
tmda\-filter \- filter files: FILTER_OUTGOING (tmda sendmail, tmda ofmipd) and FILTER_INCOMING (tmda filter)
.SH DESCRIPTION
The outgoing filter decides, for each recipient, how a message is tagged. The first matching rule wins; when none matches,
ACTION_OUTGOING applies (dated by default). The incoming filter decides what tmda filter does with a message to your
address; see INCOMING FILTERS below. tmda reads TMDA's filter files unchanged; both kinds share the syntax below.
.PP
A rule starts in column 1 and continues on lines that begin with white space; a blank line or a new rule in column 1 ends it.
A line whose first non-blank character is # is a comment, and so is everything after " #" on a line. Tabs count as spaces.
.SH RULES
.TP
.B to PATTERN ACTION
Matches the recipient against PATTERN, a case-insensitive shell wildcard (*, ?, [seq], [!seq]).
user@=example.com matches user@example.com and user@ANY.example.com.
.TP
.B from PATTERN ACTION
Matches your own From address.
.TP
.B to-file [-optional] FILE ACTION
.TQ
.B from-file [-optional] FILE ACTION
Each line of FILE is a PATTERN, optionally followed by an action that overrides ACTION for that entry. The address and its
domain are both looked up. Without \-optional a missing FILE is an error. \-autocdb and \-autodbm are accepted.
.TP
.B to-cdb [-optional] FILE ACTION
.TQ
.B from-cdb [-optional] FILE ACTION
Exact (lower-case) lookup of the address, then its domain, in a cdb database; a non-empty value is an action override.
.TP
.B to-dbm [-optional] FILE ACTION
.TQ
.B from-dbm [-optional] FILE ACTION
The same in a list written by Python\(aqs dbm modules, as TMDA made them, looked for as Python\(aqs whichdb does:
FILE.pag beside FILE.dir (GDBM\(aqs ndbm emulation), FILE.db (Python 3\(aqs dbm.ndbm on Berkeley DB, as on Debian),
FILE.dir and FILE.dat (the portable dbm.dumb), else FILE itself, by its magic number: a GDBM file (dbm.gnu, Python 2\(aqs
gdbm) or a Berkeley DB hash database (Python 2\(aqs anydbm through dbhash). Files are read directly, without Python or
the C libraries, up to 64 MiB. Berkeley DB btree, 1.85 and encrypted databases are refused with the way to convert them
(db5.3_dump FILE | db5.3_load \-t hash NEW), as is anything else, naming what was found.
.SH ACTIONS
.TP
.B bare\fR[\fB=append\fR]
Your untagged address; with =append the recipient is added to BARE_APPEND unless already there.
.TP
.B dated\fR[\fB=TIMEOUT\fR]
A dated address, valid for TIMEOUT (e.g. 5d, 24h) or DATED_TIMEOUT.
.TP
.B sender\fR[\fB=ADDRESS\fR]
A sender address for the recipient (or ADDRESS).
.TP
.B domain\fR[\fB=ADDRESS\fR]
A sender address for the recipient's domain (or ADDRESS's).
.TP
.B exp=ADDRESS\fR, \fBexplicit=ADDRESS\fR, \fBas=ADDRESS
Exactly ADDRESS.
.TP
.B ext=EXT\fR, \fBextension=EXT
user\-EXT@host (with RECIPIENT_DELIMITER).
.TP
.B kw=KEYWORD\fR, \fBkeyword=KEYWORD
A keyword address.
.TP
.B shell=COMMAND
The output of COMMAND (run by /bin/sh with $TMDA_RECIPIENT set); use the tag form to quote a command with spaces.
A command still running after 60 seconds, or printing more than 64 KiB, is stopped (with anything it started) and the
message is refused. Only filter rules may use shell=, not an X\-TMDA header.
.TP
.B default
ACTION_OUTGOING.
.TP
.B tag HEADER ACTION \fR[\fIHEADER ACTION\fR ...]
Several headers at once. HEADER is from, envelope (the envelope sender), resent-from, or any other field name such as
reply-to, which is then set to the tagged address. A value that is not an action (quote it if it has spaces) is used as
literal text, e.g. tag reply-to "List <list@example.org>".
.SH "MACROS, INCLUDES AND VARIABLES"
.TP
.B macro NAME\fR[\fB(ARG, ...)\fR] \fBTEXT
Defines NAME; later rules have NAME (or NAME(values)) replaced by TEXT with the arguments substituted. Names are
case-insensitive whole words.
.TP
.B include \fR[\fB-optional\fR] \fBFILE
Reads FILE's rules here. A missing FILE is an error unless \-optional; a file may not include itself.
.TP
.B ${NAME}
Replaced by the configuration variable NAME (any variable your config sets), else the environment variable NAME.
An unset NAME is an error.
.SH "INCOMING FILTERS"
FILTER_INCOMING (default ~/.tmda/filters/incoming) uses the same rules, macros, includes and variables. to rules match
the recipient address with its tag; from rules match every sender of the message: the envelope sender, X\-Primary\-Address
(as PRIMARY_ADDRESS_MATCH allows), and the From and Reply\-To addresses. List files and cdb files look up each address,
then each domain. Incoming filters also have:
.TP
.B to-ezmlm \fR[\fB-optional\fR] \fBDIR ACTION\fR, \fBfrom-ezmlm\fR ...
The subscribers of the ezmlm list in DIR.
.TP
.B body \fR[\fB-case\fR] \fBREGEX ACTION\fR, \fBheaders\fR [\fB-case\fR] \fBREGEX ACTION
A Python\-style regular expression searched in the body (its first 8 MiB) or the header block, line by line
(MULTILINE), ignoring case unless \-case. Quote it if it has spaces.
.TP
.B body-file \fR[\fB-case\fR] [\fB-optional\fR] \fBFILE ACTION\fR, \fBheaders-file\fR ...
Each line of FILE (a quoted string or its first word; # starts a comment) is such a regular expression.
.TP
.B size <BYTES ACTION\fR, \fBsize >BYTES ACTION
The message's size in bytes (no space after < or >).
.TP
.B pipe COMMAND ACTION\fR, \fBpipe-headers COMMAND ACTION
Matches when COMMAND (run by /bin/sh, quoted if it has spaces) exits 0 given the message (or its header block) on
standard input; stopped after 60 seconds.
.PP
Their actions say what happens to the message: \fBok\fR, \fBaccept\fR, \fBdeliver\fR[\fB=INSTRUCTION\fR] (delivered,
to INSTRUCTION instead of DELIVERY: a Maildir ending in /, an mbox, |program, or an address); \fBbounce\fR, \fBreject\fR
[\fB=TEMPLATE\fR] (a failure notice, FILTER_BOUNCE_CC); \fBdrop\fR, \fBexit\fR, \fBstop\fR (discarded, FILTER_DROP_CC);
\fBconfirm\fR[\fB=TEMPLATE\fR] (held and a confirmation request sent); \fBhold\fR (held, nothing sent). The second column of
a list file overrides the rule's action (its first word only, as in TMDA). An outgoing action in an incoming filter is
accepted and never decides, as in TMDA. Unlike TMDA, a list rule's domains do not leak into later rules, and actions
in capitals work.
.SH ERRORS
Every problem is reported with file and line, all of them at once, and nothing is sent (tmda filter exits 75, so the MTA
keeps the message). The incoming sources above and incoming actions are errors in an outgoing filter, as are sources tmda
does not implement (to-sql, to-mailman, GDBM or Berkeley DB files) and python= actions.
.SH EXAMPLE
.nf
# ~/.tmda/filters/outgoing
macro LISTS to-file -optional ~/.tmda/lists
LISTS kw=lists
to *@=mycompany.com bare
to-file ~/.tmda/whitelist sender
to tmda-users@tmda.net
    tag from kw=tmda reply-to kw=tmda
from jason@mastaler.com dated=2w
.fi
.PP
.nf
# ~/.tmda/filters/incoming
from *@=spammer.example drop
from-file -optional ~/.tmda/lists/blacklist drop
from-file -optional ~/.tmda/lists/whitelist ok
from-file -optional ~/.tmda/lists/confirmed ok
headers "^list-id: .*tmda-users" deliver=~/Mail/tmda/
size >5000000 bounce=bounce_too_big.txt
.fi
.SH "SEE ALSO"
tmda\-sendmail(8), tmda\-filter(8), tmda\-config(5)
"#;

/// Every generated file, rendered in memory.
pub fn render_all() -> Vec<Generated> {
    let mut out = vec![Generated {
        path: "man/tmda.1".into(),
        contents: render_man(super::command(), "1", "tmda"),
    }];
    for a in Applet::ALL {
        let section = if matches!(a, Applet::Sendmail | Applet::Ofmipd | Applet::Filter) {
            "8"
        } else {
            "1"
        };
        out.push(Generated {
            path: format!("man/{}.{section}", a.legacy_name()),
            contents: render_man(a.command(), section, a.legacy_name()),
        });
    }
    out.push(Generated {
        path: "man/tmda-config.5".into(),
        contents: render_config_page(),
    });
    out.push(Generated {
        path: "man/tmda-filter.5".into(),
        contents: FILTER_PAGE.as_bytes().to_vec(),
    });
    for (shell, file) in [
        (Shell::Bash, "tmda.bash"),
        (Shell::Zsh, "_tmda"),
        (Shell::Fish, "tmda.fish"),
    ] {
        let mut buf = Vec::new();
        clap_complete::generate(shell, &mut super::command(), "tmda", &mut buf);
        // The old names (tmda-address, tmda-inject, ...) are commands of their own in
        // scripts and shells; bash and fish files can complete several commands. (A
        // zsh #compdef file completes the one command it is named after.)
        if shell != Shell::Zsh {
            for a in Applet::ALL {
                let names = std::iter::once(a.legacy_name())
                    .chain(a.aliases().iter().copied().filter(|n| n.starts_with("tmda")));
                for name in names {
                    clap_complete::generate(shell, &mut a.command_named(name), name, &mut buf);
                }
            }
        }
        out.push(Generated {
            path: format!("completions/{file}"),
            contents: buf,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// fish expands `$` inside the double-quoted value lists clap_complete writes, so
    /// one `$6$` in a value's help kept the whole file from loading (see: #11; the
    /// interop tier loads the file in fish itself).
    #[test]
    fn r11_no_dollar_in_value_help() {
        fn check(cmd: &clap::Command, bad: &mut Vec<String>) {
            for a in cmd.get_arguments() {
                for v in a.get_possible_values() {
                    if v.get_help().is_some_and(|h| h.to_string().contains('$')) {
                        bad.push(format!("{} {}: {}", cmd.get_name(), a.get_id(), v.get_name()));
                    }
                }
            }
            for sub in cmd.get_subcommands() {
                check(sub, bad);
            }
        }
        let mut bad = vec![];
        check(&super::super::command(), &mut bad);
        assert!(bad.is_empty(), "{bad:?}");
    }

    /// Postfix-style check: every setting tmda reads is documented in tmda-config(5).
    #[test]
    fn every_known_setting_is_documented() {
        let page = String::from_utf8(render_config_page()).unwrap();
        for name in crate::config::KNOWN_SETTINGS {
            assert!(
                page.contains(&format!(".B {name}\n")),
                "{name} is missing from tmda-config(5)"
            );
        }
        assert_eq!(
            SETTINGS.len(),
            crate::config::KNOWN_SETTINGS.len(),
            "SETTINGS documents something tmda does not read"
        );
    }
}
