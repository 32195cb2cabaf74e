# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_tmda_global_optspecs
    string join \n V version h/help
end

function __fish_tmda_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_tmda_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_tmda_using_subcommand
    set -l cmd (__fish_tmda_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c tmda -n "__fish_tmda_needs_command" -s V -d 'Show full version information and exit'
complete -c tmda -n "__fish_tmda_needs_command" -l version -d 'Print version and exit'
complete -c tmda -n "__fish_tmda_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tmda -n "__fish_tmda_needs_command" -f -a "address" -d 'Generate a tagged e-mail address and print it to stdout'
complete -c tmda -n "__fish_tmda_needs_command" -f -a "check-address" -d 'Check a tagged (dated, keyword, sender or confirm) e-mail address'
complete -c tmda -n "__fish_tmda_needs_command" -f -a "keygen" -d 'Generate a unique 160-bit hex key'
complete -c tmda -n "__fish_tmda_needs_command" -f -a "sendmail" -d 'Tag outgoing mail with your TMDA addresses and hand it to the MTA'
complete -c tmda -n "__fish_tmda_needs_command" -f -a "ofmipd" -d 'Authenticated SMTP proxy that tags outgoing mail with TMDA addresses'
complete -c tmda -n "__fish_tmda_needs_command" -f -a "passwd" -d 'Manage the tofmipd password file of tmda ofmipd'
complete -c tmda -n "__fish_tmda_needs_command" -f -a "checkauth" -d 'Check credentials against the auth sources ofmipd would use'
complete -c tmda -n "__fish_tmda_needs_command" -f -a "init" -d 'Set up TMDA for this user: key, configuration, outgoing filter'
complete -c tmda -n "__fish_tmda_needs_command" -f -a "filter" -d 'Filter an incoming message: deliver, hold, challenge or bounce it (TMDA\'s tmda-filter)'
complete -c tmda -n "__fish_tmda_needs_command" -f -a "pending" -d 'List, release and delete the messages tmda filter holds (TMDA\'s tmda-pending)'
complete -c tmda -n "__fish_tmda_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tmda -n "__fish_tmda_using_subcommand address" -s c -l config-file -d 'Read this configuration file instead of ~/.tmda/config' -r -F
complete -c tmda -n "__fish_tmda_using_subcommand address" -s a -l address -d 'Base the tagged address on ADDRESS instead of USERNAME@HOSTNAME' -r
complete -c tmda -n "__fish_tmda_using_subcommand address" -s k -l keyword -d 'Make a keyword address for KEYWORD (wins over -s, -d and -t, as in TMDA)' -r
complete -c tmda -n "__fish_tmda_using_subcommand address" -s s -l sender -d 'Make a sender address for ADDRESS, which may also be a domain (wins over -d and -t)' -r
complete -c tmda -n "__fish_tmda_using_subcommand address" -s t -l timeout -d 'Make a dated address valid for TIMEOUT: a number and a unit, Y M w d h m or s (e.g. 5d, 24h); implies -d' -r
complete -c tmda -n "__fish_tmda_using_subcommand address" -s n -l no-newline -d 'Do not print a newline after the address (for calling from other programs; also keeps warnings off standard error, which some callers mix into the address)'
complete -c tmda -n "__fish_tmda_using_subcommand address" -s d -l dated -d 'Make a dated address with the default timeout (DATED_TIMEOUT, or $TMDA_TIMEOUT)'
complete -c tmda -n "__fish_tmda_using_subcommand address" -l quiet -d 'Do not warn about the configuration (unknown variables, USERNAME or HOSTNAME not set); TMDA_NO_WARN=1 does the same'
complete -c tmda -n "__fish_tmda_using_subcommand address" -s V -d 'Show full version information and exit'
complete -c tmda -n "__fish_tmda_using_subcommand address" -l version -d 'Print version and exit'
complete -c tmda -n "__fish_tmda_using_subcommand address" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tmda -n "__fish_tmda_using_subcommand check-address" -s c -l config-file -d 'Read this configuration file instead of ~/.tmda/config' -r -F
complete -c tmda -n "__fish_tmda_using_subcommand check-address" -s l -l localtime -d 'Show dates in the local time zone instead of UTC'
complete -c tmda -n "__fish_tmda_using_subcommand check-address" -s v -l verbose -d 'Also say (on standard error) which key file was used, and USERNAME and HOSTNAME when they were guessed from the login or machine name'
complete -c tmda -n "__fish_tmda_using_subcommand check-address" -l quiet -d 'Do not warn about the configuration (unknown variables); TMDA_NO_WARN=1 does the same'
complete -c tmda -n "__fish_tmda_using_subcommand check-address" -s V -d 'Show full version information and exit'
complete -c tmda -n "__fish_tmda_using_subcommand check-address" -l version -d 'Print version and exit'
complete -c tmda -n "__fish_tmda_using_subcommand check-address" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tmda -n "__fish_tmda_using_subcommand keygen" -s d -l device -d 'Read random bytes from DEVICE instead of /dev/urandom' -r -F
complete -c tmda -n "__fish_tmda_using_subcommand keygen" -s c -l config-file -d 'Configuration file that names CRYPT_KEY_FILE (for --install)' -r -F
complete -c tmda -n "__fish_tmda_using_subcommand keygen" -s b -l batch -d 'Print only the key'
complete -c tmda -n "__fish_tmda_using_subcommand keygen" -l install -d 'Write the key to CRYPT_KEY_FILE (mode 0600, atomically) instead of printing it'
complete -c tmda -n "__fish_tmda_using_subcommand keygen" -l force -d 'With --install: replace an existing key (invalidates all tagged addresses made with it)'
complete -c tmda -n "__fish_tmda_using_subcommand keygen" -l quiet -d 'Do not warn about the configuration (unknown variables); TMDA_NO_WARN=1 does the same'
complete -c tmda -n "__fish_tmda_using_subcommand keygen" -s V -d 'Show full version information and exit'
complete -c tmda -n "__fish_tmda_using_subcommand keygen" -l version -d 'Print version and exit'
complete -c tmda -n "__fish_tmda_using_subcommand keygen" -s h -l help -d 'Print help'
complete -c tmda -n "__fish_tmda_using_subcommand sendmail" -s f -d 'Envelope sender: ignored, the From field decides the tagged envelope sender (as in TMDA)' -r
complete -c tmda -n "__fish_tmda_using_subcommand sendmail" -s r -d 'Same as -f' -r
complete -c tmda -n "__fish_tmda_using_subcommand sendmail" -s F -d 'Full name to use when the From field has none and FULLNAME is not set' -r
complete -c tmda -n "__fish_tmda_using_subcommand sendmail" -s o -d 'Sendmail option such as -oi or -oem: ignored' -r
complete -c tmda -n "__fish_tmda_using_subcommand sendmail" -s b -d 'Mode: only -bm (deliver a message from standard input) is supported' -r
complete -c tmda -n "__fish_tmda_using_subcommand sendmail" -s B -d 'Body type (7BIT, 8BITMIME): ignored, the relay decides' -r
complete -c tmda -n "__fish_tmda_using_subcommand sendmail" -s N -d 'Delivery status notification conditions: ignored' -r
complete -c tmda -n "__fish_tmda_using_subcommand sendmail" -s R -d 'DSN return type: ignored' -r
complete -c tmda -n "__fish_tmda_using_subcommand sendmail" -s e -d 'Error reporting mode: ignored' -r
complete -c tmda -n "__fish_tmda_using_subcommand sendmail" -s p -d 'Protocol and host for the Received field: ignored' -r
complete -c tmda -n "__fish_tmda_using_subcommand sendmail" -s L -d 'Syslog label: ignored' -r
complete -c tmda -n "__fish_tmda_using_subcommand sendmail" -s X -d 'Traffic log file: ignored' -r
complete -c tmda -n "__fish_tmda_using_subcommand sendmail" -s A -d 'Alternative configuration (sendmail): ignored' -r
complete -c tmda -n "__fish_tmda_using_subcommand sendmail" -s c -d 'Read this configuration file instead of ~/.tmda/config (tmda-inject)' -r
complete -c tmda -n "__fish_tmda_using_subcommand sendmail" -s O -d 'Use this outgoing filter instead of FILTER_OUTGOING (tmda-inject)' -r
complete -c tmda -n "__fish_tmda_using_subcommand sendmail" -s M -d 'Show which outgoing filter rule matches RECIPIENT for SENDER, check the filter for errors, and exit (tmda-inject)' -r
complete -c tmda -n "__fish_tmda_using_subcommand sendmail" -s t -d 'Take the recipients from the To, Cc and Bcc fields (Resent- fields when resending); recipient arguments are ignored, as in TMDA'
complete -c tmda -n "__fish_tmda_using_subcommand sendmail" -s i -d 'Ignore lines with a single dot (always the case: the message ends at end of input)'
complete -c tmda -n "__fish_tmda_using_subcommand sendmail" -s v -d 'Verbose: show the conversation with the MTA on standard error (AUTH data redacted), as msmtp -v and sendmail -v do'
complete -c tmda -n "__fish_tmda_using_subcommand sendmail" -s m -d 'Also send to me: ignored'
complete -c tmda -n "__fish_tmda_using_subcommand sendmail" -s x -d 'Ignored'
complete -c tmda -n "__fish_tmda_using_subcommand sendmail" -s E -d 'Ignored'
complete -c tmda -n "__fish_tmda_using_subcommand sendmail" -s J -d 'Ignored'
complete -c tmda -n "__fish_tmda_using_subcommand sendmail" -s U -d 'Initial submission: ignored'
complete -c tmda -n "__fish_tmda_using_subcommand sendmail" -s G -d 'Gateway submission: ignored'
complete -c tmda -n "__fish_tmda_using_subcommand sendmail" -s n -d 'Do not alias: ignored'
complete -c tmda -n "__fish_tmda_using_subcommand sendmail" -s q -d 'Exit 99 after a successful delivery, so qmail\'s qfilter does not queue the message itself (tmda-inject)'
complete -c tmda -n "__fish_tmda_using_subcommand sendmail" -s V -d 'Show full version information and exit'
complete -c tmda -n "__fish_tmda_using_subcommand sendmail" -s h -d 'Show this help and exit'
complete -c tmda -n "__fish_tmda_using_subcommand sendmail" -l version -d 'Print version and exit'
complete -c tmda -n "__fish_tmda_using_subcommand sendmail" -l quiet -d 'Do not warn about the configuration (unknown variables); TMDA_NO_WARN=1 does the same'
complete -c tmda -n "__fish_tmda_using_subcommand sendmail" -l help -d 'Show this help and exit'
complete -c tmda -n "__fish_tmda_using_subcommand ofmipd" -l pid-file -d 'Write the daemon\'s process id to FILE (after detaching; removed on exit when it can be)' -r -F
complete -c tmda -n "__fish_tmda_using_subcommand ofmipd" -s u -l username -d 'Run as this user when started as root (default: tofmipd)' -r
complete -c tmda -n "__fish_tmda_using_subcommand ofmipd" -l min-uid -d 'Started as root: deliver for, and check PAM passwords of, only accounts with at least this uid (system accounts have less) [default: UID_MIN from /etc/login.defs, else 1000]' -r
complete -c tmda -n "__fish_tmda_using_subcommand ofmipd" -s c -l configdir -d 'Find each user\'s config in DIR/USER/config instead of ~USER/.tmda/config' -r -F
complete -c tmda -n "__fish_tmda_using_subcommand ofmipd" -s p -l proxyport -d 'Listen on HOST:PORT (repeatable; ":PORT" or "0.0.0.0:PORT" means all IPv4 interfaces). Default: FQDN:8025' -r
complete -c tmda -n "__fish_tmda_using_subcommand ofmipd" -s 6 -l ipv6proxyport -d 'Listen on IPv6 HOST:PORT (repeatable; ":PORT" means all IPv6 interfaces)' -r
complete -c tmda -n "__fish_tmda_using_subcommand ofmipd" -s C -l connections -d 'Handle at most NUM sessions at once; further connections wait until one ends' -r
complete -c tmda -n "__fish_tmda_using_subcommand ofmipd" -s t -l throttle-script -d 'Program run with the login name before each message; non-zero refuses it (450)' -r -F
complete -c tmda -n "__fish_tmda_using_subcommand ofmipd" -l tls -d 'Offer STARTTLS: optional, localoptional or on; needs --ssl-cert and --ssl-key' -r -f -a "optional\t'STARTTLS offered; AUTH allowed before it'
localoptional\t'Like optional for clients on a loopback address, like on for everyone else'
on\t'STARTTLS required before AUTH, MAIL and the rest'"
complete -c tmda -n "__fish_tmda_using_subcommand ofmipd" -l ssl-cert -d 'Certificate chain, PEM (reloaded on SIGHUP or when the file changes)' -r -F
complete -c tmda -n "__fish_tmda_using_subcommand ofmipd" -l ssl-key -d 'Private key, PEM (PKCS#8, PKCS#1 or SEC1)' -r -F
complete -c tmda -n "__fish_tmda_using_subcommand ofmipd" -l ciphers -d 'Accepted for compatibility and ignored: rustls always uses its own safe TLS 1.2/1.3 cipher suites' -r
complete -c tmda -n "__fish_tmda_using_subcommand ofmipd" -l hostname -d 'Name in the greeting and Received fields (default: this host\'s FQDN)' -r
complete -c tmda -n "__fish_tmda_using_subcommand ofmipd" -l max-size -d 'Largest message accepted, in bytes (advertised with SIZE)' -r
complete -c tmda -n "__fish_tmda_using_subcommand ofmipd" -l timeout -d 'Seconds to wait for a command before closing the connection (RFC 5321: at least 300)' -r
complete -c tmda -n "__fish_tmda_using_subcommand ofmipd" -l data-timeout -d 'Seconds to wait for more DATA before closing the connection' -r
complete -c tmda -n "__fish_tmda_using_subcommand ofmipd" -l delivery-timeout -d 'Seconds a delivery program (the sendmail program, global mode\'s per-user tmda sendmail, the throttle and vhome scripts) may run before it is stopped and the client told to try again (RFC 5321 has clients wait 10 minutes for the answer)' -r
complete -c tmda -n "__fish_tmda_using_subcommand ofmipd" -l threads -d 'Threads serving connections [default: one less than the number of CPUs, at least one, leaving a CPU to the MTA that ofmipd relays to]' -r
complete -c tmda -n "__fish_tmda_using_subcommand ofmipd" -l connections-per-ip -d 'Connections at once from one client address; more are told 421 and closed. Behind a proxy without the PROXY protocol every client has the proxy\'s address: raise it there' -r
complete -c tmda -n "__fish_tmda_using_subcommand ofmipd" -l proxy-protocol -d 'Connections from FROM (an address or a CIDR range; repeatable) must start with a PROXY protocol header (v1 or v2, as haproxy\'s send-proxy and stunnel\'s protocol = proxy send it), whose client address is then the client\'s; from anyone else a header is refused' -r
complete -c tmda -n "__fish_tmda_using_subcommand ofmipd" -l tls-timeout -d 'Seconds a TLS handshake may take (implicit TLS and STARTTLS; never more than --timeout)' -r
complete -c tmda -n "__fish_tmda_using_subcommand ofmipd" -l min-data-rate -d 'Bytes a second DATA must average once --data-timeout has passed (0: no minimum; --data-timeout then applies to each read)' -r
complete -c tmda -n "__fish_tmda_using_subcommand ofmipd" -l unauth-timeout -d 'Seconds a session may last before it has authenticated' -r
complete -c tmda -n "__fish_tmda_using_subcommand ofmipd" -l max-auth-failures -d 'Refused or undecided AUTH attempts in one session before it is closed (421)' -r
complete -c tmda -n "__fish_tmda_using_subcommand ofmipd" -l auth-delay -d 'Milliseconds to wait before answering a refused or undecided AUTH, times the number of such attempts so far in the session' -r
complete -c tmda -n "__fish_tmda_using_subcommand ofmipd" -l auth-limit-ip -d 'Refused or undecided AUTH attempts from one client address within --auth-window before it is refused without asking' -r
complete -c tmda -n "__fish_tmda_using_subcommand ofmipd" -l auth-limit-user -d 'Refused AUTH attempts for one user within --auth-window before that user is refused from addresses that have been failing (never from a clean one)' -r
complete -c tmda -n "__fish_tmda_using_subcommand ofmipd" -l auth-window -d 'Seconds a failed AUTH attempt is remembered' -r
complete -c tmda -n "__fish_tmda_using_subcommand ofmipd" -l auth-memory -d 'Addresses and users remembered (each); beyond it expired, then the oldest, are forgotten' -r
complete -c tmda -n "__fish_tmda_using_subcommand ofmipd" -l budget-file -d 'With -1: the file that one-session processes share failed-AUTH counts in (locked, mode 0600, at most 2,000 entries each). Default: /run/tmda/ofmipd-budget when started as root, else $XDG_RUNTIME_DIR/tmda-ofmipd-budget, else /run/tmda if writable, else ~/.tmda/ofmipd-budget' -r -F
complete -c tmda -n "__fish_tmda_using_subcommand ofmipd" -l sender-map -d 'For --restrict-sender: lines \'login address...\' (an address \'@domain\' allows the whole domain; re-read when it changes)' -r -F
complete -c tmda -n "__fish_tmda_using_subcommand ofmipd" -s a -l authfile -d 'Check credentials against this tofmipd file (user:password lines, mode 600 or 400). Default: /etc/tofmipd as root, else ~/.tmda/tofmipd' -r -F
complete -c tmda -n "__fish_tmda_using_subcommand ofmipd" -s A -l authprog -d 'Check credentials with a checkpassword program (user, password, time on descriptor 3)' -r
complete -c tmda -n "__fish_tmda_using_subcommand ofmipd" -s R -l remoteauth -d 'Check credentials against a remote server: imap, imaps, pop3, pop3s, apop, ldap or ldaps URL' -r
complete -c tmda -n "__fish_tmda_using_subcommand ofmipd" -s m -l pamauth -d 'Check credentials with PAM service SERVICE' -r
complete -c tmda -n "__fish_tmda_using_subcommand ofmipd" -s S -l vhome-script -d 'Program printing a virtual user\'s home directory, given the user and the domain' -r -F
complete -c tmda -n "__fish_tmda_using_subcommand ofmipd" -s v -l vdomains-path -d 'qmail\'s virtualdomains file (for VMailMgr set-ups)' -r -F
complete -c tmda -n "__fish_tmda_using_subcommand ofmipd" -s d -l debug -d 'Log the protocol trace too (AUTH data and passwords are never logged)'
complete -c tmda -n "__fish_tmda_using_subcommand ofmipd" -s L -l log -d 'Log sessions, authentication and delivery results to standard error'
complete -c tmda -n "__fish_tmda_using_subcommand ofmipd" -s b -l background -d 'Detach and run in the background (the default)'
complete -c tmda -n "__fish_tmda_using_subcommand ofmipd" -l syslog -d 'Log to syslog (facility mail) instead of standard error; the default when detached, whose standard error is /dev/null. $TMDA_SYSLOG_SOCKET names another socket than /dev/log'
complete -c tmda -n "__fish_tmda_using_subcommand ofmipd" -s f -l foreground -d 'Do not detach; run in the foreground'
complete -c tmda -n "__fish_tmda_using_subcommand ofmipd" -s 1 -l one-session -d 'Serve one SMTP session on standard input and output instead of listening'
complete -c tmda -n "__fish_tmda_using_subcommand ofmipd" -s P -l pure-proxy -d 'Relay mail of users without a TMDA config unaltered through $TMDA_SENDMAIL_PROGRAM (default /usr/sbin/sendmail)'
complete -c tmda -n "__fish_tmda_using_subcommand ofmipd" -l ssl -d 'TLS from the first byte (port 465 style); needs --ssl-cert and --ssl-key'
complete -c tmda -n "__fish_tmda_using_subcommand ofmipd" -l restrict-sender -d 'Refuse (553 5.7.1) a message whose From, Sender or envelope sender is not one of the user\'s own: USERNAME@HOSTNAME and its tagged forms, the config\'s OFMIPD_ALLOWED_SENDERS, or the --sender-map entries (Postfix\'s reject_sender_login_mismatch)'
complete -c tmda -n "__fish_tmda_using_subcommand ofmipd" -l tls-auth-only -d 'Offer AUTH only over TLS (after STARTTLS or with --ssl), as Postfix\'s smtpd_tls_auth_only'
complete -c tmda -n "__fish_tmda_using_subcommand ofmipd" -s F -l fallback -d 'With -R or -A, also try the default authfile last'
complete -c tmda -n "__fish_tmda_using_subcommand ofmipd" -s V -d 'Show full version information and exit'
complete -c tmda -n "__fish_tmda_using_subcommand ofmipd" -l version -d 'Print version and exit'
complete -c tmda -n "__fish_tmda_using_subcommand ofmipd" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tmda -n "__fish_tmda_using_subcommand passwd; and not __fish_seen_subcommand_from add change remove list check help" -s a -l authfile -d 'The password file [default: /etc/tofmipd as root, else ~/.tmda/tofmipd]' -r -F
complete -c tmda -n "__fish_tmda_using_subcommand passwd; and not __fish_seen_subcommand_from add change remove list check help" -s u -l username -d 'The user ofmipd runs as (its -u): a password file root creates for it is given to this user [default: tofmipd, for /etc/tofmipd]' -r
complete -c tmda -n "__fish_tmda_using_subcommand passwd; and not __fish_seen_subcommand_from add change remove list check help" -l scheme -d 'How new passwords are stored' -r -f -a "plain\t'Cleartext (TMDA compatible; allows CRAM-MD5)'
cram-md5\t'Dovecot\'s CRAM-MD5 context (allows CRAM-MD5; as good as cleartext for logging in over CRAM-MD5)'
argon2id\t'Argon2id (strongest; no CRAM-MD5; not readable by TMDA)'
sha512-crypt\t'SHA-512 crypt, as in /etc/shadow (no CRAM-MD5; not readable by TMDA)'"
complete -c tmda -n "__fish_tmda_using_subcommand passwd; and not __fish_seen_subcommand_from add change remove list check help" -l stdin -d 'Read the password from standard input (first line), for scripts'
complete -c tmda -n "__fish_tmda_using_subcommand passwd; and not __fish_seen_subcommand_from add change remove list check help" -s y -l yes -d 'Do not ask for confirmation (replacing or removing a user)'
complete -c tmda -n "__fish_tmda_using_subcommand passwd; and not __fish_seen_subcommand_from add change remove list check help" -s V -d 'Show full version information and exit'
complete -c tmda -n "__fish_tmda_using_subcommand passwd; and not __fish_seen_subcommand_from add change remove list check help" -l version -d 'Print version and exit'
complete -c tmda -n "__fish_tmda_using_subcommand passwd; and not __fish_seen_subcommand_from add change remove list check help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tmda -n "__fish_tmda_using_subcommand passwd; and not __fish_seen_subcommand_from add change remove list check help" -f -a "add" -d 'Add a user (asks before replacing an existing one)'
complete -c tmda -n "__fish_tmda_using_subcommand passwd; and not __fish_seen_subcommand_from add change remove list check help" -f -a "change" -d 'Change an existing user\'s password'
complete -c tmda -n "__fish_tmda_using_subcommand passwd; and not __fish_seen_subcommand_from add change remove list check help" -f -a "remove" -d 'Remove a user'
complete -c tmda -n "__fish_tmda_using_subcommand passwd; and not __fish_seen_subcommand_from add change remove list check help" -f -a "list" -d 'List the users and how their passwords are stored (the names --scheme takes)'
complete -c tmda -n "__fish_tmda_using_subcommand passwd; and not __fish_seen_subcommand_from add change remove list check help" -f -a "check" -d 'Check a user\'s password against the file (exit 0 if right, 1 if not)'
complete -c tmda -n "__fish_tmda_using_subcommand passwd; and not __fish_seen_subcommand_from add change remove list check help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tmda -n "__fish_tmda_using_subcommand passwd; and __fish_seen_subcommand_from add" -s a -l authfile -d 'The password file [default: /etc/tofmipd as root, else ~/.tmda/tofmipd]' -r -F
complete -c tmda -n "__fish_tmda_using_subcommand passwd; and __fish_seen_subcommand_from add" -s u -l username -d 'The user ofmipd runs as (its -u): a password file root creates for it is given to this user [default: tofmipd, for /etc/tofmipd]' -r
complete -c tmda -n "__fish_tmda_using_subcommand passwd; and __fish_seen_subcommand_from add" -l scheme -d 'How new passwords are stored' -r -f -a "plain\t'Cleartext (TMDA compatible; allows CRAM-MD5)'
cram-md5\t'Dovecot\'s CRAM-MD5 context (allows CRAM-MD5; as good as cleartext for logging in over CRAM-MD5)'
argon2id\t'Argon2id (strongest; no CRAM-MD5; not readable by TMDA)'
sha512-crypt\t'SHA-512 crypt, as in /etc/shadow (no CRAM-MD5; not readable by TMDA)'"
complete -c tmda -n "__fish_tmda_using_subcommand passwd; and __fish_seen_subcommand_from add" -l stdin -d 'Read the password from standard input (first line), for scripts'
complete -c tmda -n "__fish_tmda_using_subcommand passwd; and __fish_seen_subcommand_from add" -s y -l yes -d 'Do not ask for confirmation (replacing or removing a user)'
complete -c tmda -n "__fish_tmda_using_subcommand passwd; and __fish_seen_subcommand_from add" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tmda -n "__fish_tmda_using_subcommand passwd; and __fish_seen_subcommand_from change" -s a -l authfile -d 'The password file [default: /etc/tofmipd as root, else ~/.tmda/tofmipd]' -r -F
complete -c tmda -n "__fish_tmda_using_subcommand passwd; and __fish_seen_subcommand_from change" -s u -l username -d 'The user ofmipd runs as (its -u): a password file root creates for it is given to this user [default: tofmipd, for /etc/tofmipd]' -r
complete -c tmda -n "__fish_tmda_using_subcommand passwd; and __fish_seen_subcommand_from change" -l scheme -d 'How new passwords are stored' -r -f -a "plain\t'Cleartext (TMDA compatible; allows CRAM-MD5)'
cram-md5\t'Dovecot\'s CRAM-MD5 context (allows CRAM-MD5; as good as cleartext for logging in over CRAM-MD5)'
argon2id\t'Argon2id (strongest; no CRAM-MD5; not readable by TMDA)'
sha512-crypt\t'SHA-512 crypt, as in /etc/shadow (no CRAM-MD5; not readable by TMDA)'"
complete -c tmda -n "__fish_tmda_using_subcommand passwd; and __fish_seen_subcommand_from change" -l stdin -d 'Read the password from standard input (first line), for scripts'
complete -c tmda -n "__fish_tmda_using_subcommand passwd; and __fish_seen_subcommand_from change" -s y -l yes -d 'Do not ask for confirmation (replacing or removing a user)'
complete -c tmda -n "__fish_tmda_using_subcommand passwd; and __fish_seen_subcommand_from change" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tmda -n "__fish_tmda_using_subcommand passwd; and __fish_seen_subcommand_from remove" -s a -l authfile -d 'The password file [default: /etc/tofmipd as root, else ~/.tmda/tofmipd]' -r -F
complete -c tmda -n "__fish_tmda_using_subcommand passwd; and __fish_seen_subcommand_from remove" -s u -l username -d 'The user ofmipd runs as (its -u): a password file root creates for it is given to this user [default: tofmipd, for /etc/tofmipd]' -r
complete -c tmda -n "__fish_tmda_using_subcommand passwd; and __fish_seen_subcommand_from remove" -l scheme -d 'How new passwords are stored' -r -f -a "plain\t'Cleartext (TMDA compatible; allows CRAM-MD5)'
cram-md5\t'Dovecot\'s CRAM-MD5 context (allows CRAM-MD5; as good as cleartext for logging in over CRAM-MD5)'
argon2id\t'Argon2id (strongest; no CRAM-MD5; not readable by TMDA)'
sha512-crypt\t'SHA-512 crypt, as in /etc/shadow (no CRAM-MD5; not readable by TMDA)'"
complete -c tmda -n "__fish_tmda_using_subcommand passwd; and __fish_seen_subcommand_from remove" -l stdin -d 'Read the password from standard input (first line), for scripts'
complete -c tmda -n "__fish_tmda_using_subcommand passwd; and __fish_seen_subcommand_from remove" -s y -l yes -d 'Do not ask for confirmation (replacing or removing a user)'
complete -c tmda -n "__fish_tmda_using_subcommand passwd; and __fish_seen_subcommand_from remove" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tmda -n "__fish_tmda_using_subcommand passwd; and __fish_seen_subcommand_from list" -s a -l authfile -d 'The password file [default: /etc/tofmipd as root, else ~/.tmda/tofmipd]' -r -F
complete -c tmda -n "__fish_tmda_using_subcommand passwd; and __fish_seen_subcommand_from list" -s u -l username -d 'The user ofmipd runs as (its -u): a password file root creates for it is given to this user [default: tofmipd, for /etc/tofmipd]' -r
complete -c tmda -n "__fish_tmda_using_subcommand passwd; and __fish_seen_subcommand_from list" -l scheme -d 'How new passwords are stored' -r -f -a "plain\t'Cleartext (TMDA compatible; allows CRAM-MD5)'
cram-md5\t'Dovecot\'s CRAM-MD5 context (allows CRAM-MD5; as good as cleartext for logging in over CRAM-MD5)'
argon2id\t'Argon2id (strongest; no CRAM-MD5; not readable by TMDA)'
sha512-crypt\t'SHA-512 crypt, as in /etc/shadow (no CRAM-MD5; not readable by TMDA)'"
complete -c tmda -n "__fish_tmda_using_subcommand passwd; and __fish_seen_subcommand_from list" -l stdin -d 'Read the password from standard input (first line), for scripts'
complete -c tmda -n "__fish_tmda_using_subcommand passwd; and __fish_seen_subcommand_from list" -s y -l yes -d 'Do not ask for confirmation (replacing or removing a user)'
complete -c tmda -n "__fish_tmda_using_subcommand passwd; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tmda -n "__fish_tmda_using_subcommand passwd; and __fish_seen_subcommand_from check" -s a -l authfile -d 'The password file [default: /etc/tofmipd as root, else ~/.tmda/tofmipd]' -r -F
complete -c tmda -n "__fish_tmda_using_subcommand passwd; and __fish_seen_subcommand_from check" -s u -l username -d 'The user ofmipd runs as (its -u): a password file root creates for it is given to this user [default: tofmipd, for /etc/tofmipd]' -r
complete -c tmda -n "__fish_tmda_using_subcommand passwd; and __fish_seen_subcommand_from check" -l scheme -d 'How new passwords are stored' -r -f -a "plain\t'Cleartext (TMDA compatible; allows CRAM-MD5)'
cram-md5\t'Dovecot\'s CRAM-MD5 context (allows CRAM-MD5; as good as cleartext for logging in over CRAM-MD5)'
argon2id\t'Argon2id (strongest; no CRAM-MD5; not readable by TMDA)'
sha512-crypt\t'SHA-512 crypt, as in /etc/shadow (no CRAM-MD5; not readable by TMDA)'"
complete -c tmda -n "__fish_tmda_using_subcommand passwd; and __fish_seen_subcommand_from check" -l stdin -d 'Read the password from standard input (first line), for scripts'
complete -c tmda -n "__fish_tmda_using_subcommand passwd; and __fish_seen_subcommand_from check" -s y -l yes -d 'Do not ask for confirmation (replacing or removing a user)'
complete -c tmda -n "__fish_tmda_using_subcommand passwd; and __fish_seen_subcommand_from check" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tmda -n "__fish_tmda_using_subcommand passwd; and __fish_seen_subcommand_from help" -f -a "add" -d 'Add a user (asks before replacing an existing one)'
complete -c tmda -n "__fish_tmda_using_subcommand passwd; and __fish_seen_subcommand_from help" -f -a "change" -d 'Change an existing user\'s password'
complete -c tmda -n "__fish_tmda_using_subcommand passwd; and __fish_seen_subcommand_from help" -f -a "remove" -d 'Remove a user'
complete -c tmda -n "__fish_tmda_using_subcommand passwd; and __fish_seen_subcommand_from help" -f -a "list" -d 'List the users and how their passwords are stored (the names --scheme takes)'
complete -c tmda -n "__fish_tmda_using_subcommand passwd; and __fish_seen_subcommand_from help" -f -a "check" -d 'Check a user\'s password against the file (exit 0 if right, 1 if not)'
complete -c tmda -n "__fish_tmda_using_subcommand passwd; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tmda -n "__fish_tmda_using_subcommand checkauth" -s a -l authfile -d 'Check against this tofmipd file (repeatable)' -r -F
complete -c tmda -n "__fish_tmda_using_subcommand checkauth" -s A -l authprog -d 'Check with this checkpassword program (repeatable)' -r
complete -c tmda -n "__fish_tmda_using_subcommand checkauth" -s R -l remoteauth -d 'Check against this remote server (repeatable)' -r
complete -c tmda -n "__fish_tmda_using_subcommand checkauth" -s m -l pamauth -d 'Check with this PAM service (repeatable)' -r
complete -c tmda -n "__fish_tmda_using_subcommand checkauth" -s F -l fallback -d 'With -R or -A, also try the default authfile'
complete -c tmda -n "__fish_tmda_using_subcommand checkauth" -l stdin -d 'Read the password from standard input (first line) instead of the terminal'
complete -c tmda -n "__fish_tmda_using_subcommand checkauth" -l checkpassword -d 'Act as a checkpassword program: credentials on descriptor 3, then run PROGRAM'
complete -c tmda -n "__fish_tmda_using_subcommand checkauth" -s V -d 'Show full version information and exit'
complete -c tmda -n "__fish_tmda_using_subcommand checkauth" -l version -d 'Print version and exit'
complete -c tmda -n "__fish_tmda_using_subcommand checkauth" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tmda -n "__fish_tmda_using_subcommand init" -l username -d 'USERNAME: the local part of your address [default: your login name]' -r
complete -c tmda -n "__fish_tmda_using_subcommand init" -l hostname -d 'HOSTNAME: the domain of your address [default: this machine\'s FQDN]' -r
complete -c tmda -n "__fish_tmda_using_subcommand init" -l smtp -d 'Send through this SMTP relay (checked: it must answer EHLO)' -r
complete -c tmda -n "__fish_tmda_using_subcommand init" -l sendmail -d 'Send through this sendmail program (checked: it must exist and be executable) [default: /usr/sbin/sendmail]' -r -F
complete -c tmda -n "__fish_tmda_using_subcommand init" -l ofmipd-user -d 'Also add USER to ~/.tmda/tofmipd, for a personal tmda ofmipd (password asked, or read from standard input with --yes)' -r
complete -c tmda -n "__fish_tmda_using_subcommand init" -l incoming -d 'Also set up incoming mail (tmda filter): "forward" writes ~/.forward for an MTA that reads it (Postfix, Exim, sendmail); "postfix" prints the main.cf line for Postfix\'s mailbox_command; "none" leaves incoming mail alone' -r -f -a "forward\t''
postfix\t''
none\t''"
complete -c tmda -n "__fish_tmda_using_subcommand init" -s c -l config-file -d 'Write the configuration here instead of ~/.tmda/config' -r -F
complete -c tmda -n "__fish_tmda_using_subcommand init" -s y -l yes -d 'Ask nothing: take the values from the options (and defaults)'
complete -c tmda -n "__fish_tmda_using_subcommand init" -l force -d 'Replace files that exist (the key too: every address made with the old key stops verifying)'
complete -c tmda -n "__fish_tmda_using_subcommand init" -s V -d 'Show full version information and exit'
complete -c tmda -n "__fish_tmda_using_subcommand init" -l version -d 'Print version and exit'
complete -c tmda -n "__fish_tmda_using_subcommand init" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tmda -n "__fish_tmda_using_subcommand filter" -s c -l config-file -d 'Read this configuration file instead of ~/.tmda/config (sets TMDARC)' -r -F
complete -c tmda -n "__fish_tmda_using_subcommand filter" -s t -l template-dir -d 'Search this directory first for templates (sets TMDA_TEMPLATE_DIR)' -r -F
complete -c tmda -n "__fish_tmda_using_subcommand filter" -s I -l filter-incoming-file -d 'Use this incoming filter instead of FILTER_INCOMING (sets TMDA_FILTER_INCOMING)' -r -F
complete -c tmda -n "__fish_tmda_using_subcommand filter" -s e -l environ -d 'Set an environment variable before anything else is read (repeatable)' -r
complete -c tmda -n "__fish_tmda_using_subcommand filter" -s S -l vhome-script -d 'Virtual users (qmail with vpopmail or vmailmgr): find HOME with this script, given a user name and $HOST' -r -F
complete -c tmda -n "__fish_tmda_using_subcommand filter" -s M -l filter-match -d 'Show which incoming filter rule matches RECIPIENT and SENDER, and exit' -r
complete -c tmda -n "__fish_tmda_using_subcommand filter" -s d -l discard -d 'Discard instead of answering: no confirmation requests, no bounces, nothing held'
complete -c tmda -n "__fish_tmda_using_subcommand filter" -s p -l print -d 'Print a message that would be delivered on standard output (exit 0), and exit 99 for one that would not be'
complete -c tmda -n "__fish_tmda_using_subcommand filter" -s V -d 'Show full version information and exit'
complete -c tmda -n "__fish_tmda_using_subcommand filter" -l version -d 'Print version and exit'
complete -c tmda -n "__fish_tmda_using_subcommand filter" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tmda -n "__fish_tmda_using_subcommand pending" -l vhome-script -d 'Virtual users: run SCRIPT USER DOMAIN and use its output as HOME' -r -F
complete -c tmda -n "__fish_tmda_using_subcommand pending" -l vhome-user -d 'The user name for --vhome-script (default: $USER, else $LOGNAME)' -r
complete -c tmda -n "__fish_tmda_using_subcommand pending" -l vhome-domain -d 'The domain for --vhome-script (default: this machine\'s name)' -r
complete -c tmda -n "__fish_tmda_using_subcommand pending" -s c -l config-file -d 'Read this configuration file instead of ~/.tmda/config (sets TMDARC)' -r -F
complete -c tmda -n "__fish_tmda_using_subcommand pending" -s R -l recipient -d 'Use ADDRESS instead of the message\'s X-TMDA-Recipient for the release address and as the recipient of a release' -r
complete -c tmda -n "__fish_tmda_using_subcommand pending" -s Y -l younger -d 'Only messages younger than INTERVAL (s, m, h, d, w, M or Y: 30d)' -r
complete -c tmda -n "__fish_tmda_using_subcommand pending" -s O -l older -d 'Only messages older than INTERVAL' -r
complete -c tmda -n "__fish_tmda_using_subcommand pending" -s V -d 'Show full version information and exit'
complete -c tmda -n "__fish_tmda_using_subcommand pending" -l version -d 'Print version and exit'
complete -c tmda -n "__fish_tmda_using_subcommand pending" -s v -l verbose -d 'Display output (default)'
complete -c tmda -n "__fish_tmda_using_subcommand pending" -s q -l quiet -d 'Suppress output (not with interactive use)'
complete -c tmda -n "__fish_tmda_using_subcommand pending" -s p -l pretend -d 'Don\'t operate on messages, just show what would be done (implies --verbose)'
complete -c tmda -n "__fish_tmda_using_subcommand pending" -s i -l interactive -d 'Show each message and ask what to do with it (default)'
complete -c tmda -n "__fish_tmda_using_subcommand pending" -s b -l batch -d 'Operate without asking (use with caution)'
complete -c tmda -n "__fish_tmda_using_subcommand pending" -s C -l cache -d 'Only messages not in PENDING_CACHE (not seen before); add them to it'
complete -c tmda -n "__fish_tmda_using_subcommand pending" -l line-prompts -d 'Interactive mode with TMDA\'s line prompts even in a terminal'
complete -c tmda -n "__fish_tmda_using_subcommand pending" -s r -l release -d 'Release the messages'
complete -c tmda -n "__fish_tmda_using_subcommand pending" -s d -l delete -d 'Delete the messages'
complete -c tmda -n "__fish_tmda_using_subcommand pending" -s B -l blacklist -d 'Append each sender to PENDING_BLACKLIST_APPEND'
complete -c tmda -n "__fish_tmda_using_subcommand pending" -s W -l whitelist -d 'Append each sender to PENDING_WHITELIST_APPEND (and release the message if PENDING_WHITELIST_RELEASE is 1)'
complete -c tmda -n "__fish_tmda_using_subcommand pending" -s S -l show -d 'Show each whole message with $PAGER'
complete -c tmda -n "__fish_tmda_using_subcommand pending" -s s -l summary -d 'Add each message\'s release address (<mailto:...>) to its summary'
complete -c tmda -n "__fish_tmda_using_subcommand pending" -s T -l terse-summary -d 'One line per message: the id and TERSE_SUMMARY_HEADERS, tab-separated'
complete -c tmda -n "__fish_tmda_using_subcommand pending" -l json -d 'The summaries as one JSON array (implies --batch)'
complete -c tmda -n "__fish_tmda_using_subcommand pending" -l digest -d 'Mail yourself one message listing the messages held since the last digest, each with its release address (for a timer)'
complete -c tmda -n "__fish_tmda_using_subcommand pending" -s A -l ascending -d 'Operate on the messages oldest first (default)'
complete -c tmda -n "__fish_tmda_using_subcommand pending" -s D -l descending -d 'Operate on the messages newest first'
complete -c tmda -n "__fish_tmda_using_subcommand pending" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tmda -n "__fish_tmda_using_subcommand help; and not __fish_seen_subcommand_from address check-address keygen sendmail ofmipd passwd checkauth init filter pending help" -f -a "address" -d 'Generate a tagged e-mail address and print it to stdout'
complete -c tmda -n "__fish_tmda_using_subcommand help; and not __fish_seen_subcommand_from address check-address keygen sendmail ofmipd passwd checkauth init filter pending help" -f -a "check-address" -d 'Check a tagged (dated, keyword, sender or confirm) e-mail address'
complete -c tmda -n "__fish_tmda_using_subcommand help; and not __fish_seen_subcommand_from address check-address keygen sendmail ofmipd passwd checkauth init filter pending help" -f -a "keygen" -d 'Generate a unique 160-bit hex key'
complete -c tmda -n "__fish_tmda_using_subcommand help; and not __fish_seen_subcommand_from address check-address keygen sendmail ofmipd passwd checkauth init filter pending help" -f -a "sendmail" -d 'Tag outgoing mail with your TMDA addresses and hand it to the MTA'
complete -c tmda -n "__fish_tmda_using_subcommand help; and not __fish_seen_subcommand_from address check-address keygen sendmail ofmipd passwd checkauth init filter pending help" -f -a "ofmipd" -d 'Authenticated SMTP proxy that tags outgoing mail with TMDA addresses'
complete -c tmda -n "__fish_tmda_using_subcommand help; and not __fish_seen_subcommand_from address check-address keygen sendmail ofmipd passwd checkauth init filter pending help" -f -a "passwd" -d 'Manage the tofmipd password file of tmda ofmipd'
complete -c tmda -n "__fish_tmda_using_subcommand help; and not __fish_seen_subcommand_from address check-address keygen sendmail ofmipd passwd checkauth init filter pending help" -f -a "checkauth" -d 'Check credentials against the auth sources ofmipd would use'
complete -c tmda -n "__fish_tmda_using_subcommand help; and not __fish_seen_subcommand_from address check-address keygen sendmail ofmipd passwd checkauth init filter pending help" -f -a "init" -d 'Set up TMDA for this user: key, configuration, outgoing filter'
complete -c tmda -n "__fish_tmda_using_subcommand help; and not __fish_seen_subcommand_from address check-address keygen sendmail ofmipd passwd checkauth init filter pending help" -f -a "filter" -d 'Filter an incoming message: deliver, hold, challenge or bounce it (TMDA\'s tmda-filter)'
complete -c tmda -n "__fish_tmda_using_subcommand help; and not __fish_seen_subcommand_from address check-address keygen sendmail ofmipd passwd checkauth init filter pending help" -f -a "pending" -d 'List, release and delete the messages tmda filter holds (TMDA\'s tmda-pending)'
complete -c tmda -n "__fish_tmda_using_subcommand help; and not __fish_seen_subcommand_from address check-address keygen sendmail ofmipd passwd checkauth init filter pending help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tmda -n "__fish_tmda_using_subcommand help; and __fish_seen_subcommand_from passwd" -f -a "add" -d 'Add a user (asks before replacing an existing one)'
complete -c tmda -n "__fish_tmda_using_subcommand help; and __fish_seen_subcommand_from passwd" -f -a "change" -d 'Change an existing user\'s password'
complete -c tmda -n "__fish_tmda_using_subcommand help; and __fish_seen_subcommand_from passwd" -f -a "remove" -d 'Remove a user'
complete -c tmda -n "__fish_tmda_using_subcommand help; and __fish_seen_subcommand_from passwd" -f -a "list" -d 'List the users and how their passwords are stored (the names --scheme takes)'
complete -c tmda -n "__fish_tmda_using_subcommand help; and __fish_seen_subcommand_from passwd" -f -a "check" -d 'Check a user\'s password against the file (exit 0 if right, 1 if not)'
complete -c tmda-address -s c -l config-file -d 'Read this configuration file instead of ~/.tmda/config' -r -F
complete -c tmda-address -s a -l address -d 'Base the tagged address on ADDRESS instead of USERNAME@HOSTNAME' -r
complete -c tmda-address -s k -l keyword -d 'Make a keyword address for KEYWORD (wins over -s, -d and -t, as in TMDA)' -r
complete -c tmda-address -s s -l sender -d 'Make a sender address for ADDRESS, which may also be a domain (wins over -d and -t)' -r
complete -c tmda-address -s t -l timeout -d 'Make a dated address valid for TIMEOUT: a number and a unit, Y M w d h m or s (e.g. 5d, 24h); implies -d' -r
complete -c tmda-address -s n -l no-newline -d 'Do not print a newline after the address (for calling from other programs; also keeps warnings off standard error, which some callers mix into the address)'
complete -c tmda-address -s d -l dated -d 'Make a dated address with the default timeout (DATED_TIMEOUT, or $TMDA_TIMEOUT)'
complete -c tmda-address -l quiet -d 'Do not warn about the configuration (unknown variables, USERNAME or HOSTNAME not set); TMDA_NO_WARN=1 does the same'
complete -c tmda-address -s V -d 'Show full version information and exit'
complete -c tmda-address -l version -d 'Print version and exit'
complete -c tmda-address -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tmda-check-address -s c -l config-file -d 'Read this configuration file instead of ~/.tmda/config' -r -F
complete -c tmda-check-address -s l -l localtime -d 'Show dates in the local time zone instead of UTC'
complete -c tmda-check-address -s v -l verbose -d 'Also say (on standard error) which key file was used, and USERNAME and HOSTNAME when they were guessed from the login or machine name'
complete -c tmda-check-address -l quiet -d 'Do not warn about the configuration (unknown variables); TMDA_NO_WARN=1 does the same'
complete -c tmda-check-address -s V -d 'Show full version information and exit'
complete -c tmda-check-address -l version -d 'Print version and exit'
complete -c tmda-check-address -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tmda-keygen -s d -l device -d 'Read random bytes from DEVICE instead of /dev/urandom' -r -F
complete -c tmda-keygen -s c -l config-file -d 'Configuration file that names CRYPT_KEY_FILE (for --install)' -r -F
complete -c tmda-keygen -s b -l batch -d 'Print only the key'
complete -c tmda-keygen -l install -d 'Write the key to CRYPT_KEY_FILE (mode 0600, atomically) instead of printing it'
complete -c tmda-keygen -l force -d 'With --install: replace an existing key (invalidates all tagged addresses made with it)'
complete -c tmda-keygen -l quiet -d 'Do not warn about the configuration (unknown variables); TMDA_NO_WARN=1 does the same'
complete -c tmda-keygen -s V -d 'Show full version information and exit'
complete -c tmda-keygen -l version -d 'Print version and exit'
complete -c tmda-keygen -s h -l help -d 'Print help'
complete -c tmda-sendmail -s f -d 'Envelope sender: ignored, the From field decides the tagged envelope sender (as in TMDA)' -r
complete -c tmda-sendmail -s r -d 'Same as -f' -r
complete -c tmda-sendmail -s F -d 'Full name to use when the From field has none and FULLNAME is not set' -r
complete -c tmda-sendmail -s o -d 'Sendmail option such as -oi or -oem: ignored' -r
complete -c tmda-sendmail -s b -d 'Mode: only -bm (deliver a message from standard input) is supported' -r
complete -c tmda-sendmail -s B -d 'Body type (7BIT, 8BITMIME): ignored, the relay decides' -r
complete -c tmda-sendmail -s N -d 'Delivery status notification conditions: ignored' -r
complete -c tmda-sendmail -s R -d 'DSN return type: ignored' -r
complete -c tmda-sendmail -s e -d 'Error reporting mode: ignored' -r
complete -c tmda-sendmail -s p -d 'Protocol and host for the Received field: ignored' -r
complete -c tmda-sendmail -s L -d 'Syslog label: ignored' -r
complete -c tmda-sendmail -s X -d 'Traffic log file: ignored' -r
complete -c tmda-sendmail -s A -d 'Alternative configuration (sendmail): ignored' -r
complete -c tmda-sendmail -s c -d 'Read this configuration file instead of ~/.tmda/config (tmda-inject)' -r
complete -c tmda-sendmail -s O -d 'Use this outgoing filter instead of FILTER_OUTGOING (tmda-inject)' -r
complete -c tmda-sendmail -s M -d 'Show which outgoing filter rule matches RECIPIENT for SENDER, check the filter for errors, and exit (tmda-inject)' -r
complete -c tmda-sendmail -s t -d 'Take the recipients from the To, Cc and Bcc fields (Resent- fields when resending); recipient arguments are ignored, as in TMDA'
complete -c tmda-sendmail -s i -d 'Ignore lines with a single dot (always the case: the message ends at end of input)'
complete -c tmda-sendmail -s v -d 'Verbose: show the conversation with the MTA on standard error (AUTH data redacted), as msmtp -v and sendmail -v do'
complete -c tmda-sendmail -s m -d 'Also send to me: ignored'
complete -c tmda-sendmail -s x -d 'Ignored'
complete -c tmda-sendmail -s E -d 'Ignored'
complete -c tmda-sendmail -s J -d 'Ignored'
complete -c tmda-sendmail -s U -d 'Initial submission: ignored'
complete -c tmda-sendmail -s G -d 'Gateway submission: ignored'
complete -c tmda-sendmail -s n -d 'Do not alias: ignored'
complete -c tmda-sendmail -s q -d 'Exit 99 after a successful delivery, so qmail\'s qfilter does not queue the message itself (tmda-inject)'
complete -c tmda-sendmail -s V -d 'Show full version information and exit'
complete -c tmda-sendmail -s h -d 'Show this help and exit'
complete -c tmda-sendmail -l version -d 'Print version and exit'
complete -c tmda-sendmail -l quiet -d 'Do not warn about the configuration (unknown variables); TMDA_NO_WARN=1 does the same'
complete -c tmda-sendmail -l help -d 'Show this help and exit'
complete -c tmda-inject -s f -d 'Envelope sender: ignored, the From field decides the tagged envelope sender (as in TMDA)' -r
complete -c tmda-inject -s r -d 'Same as -f' -r
complete -c tmda-inject -s F -d 'Full name to use when the From field has none and FULLNAME is not set' -r
complete -c tmda-inject -s o -d 'Sendmail option such as -oi or -oem: ignored' -r
complete -c tmda-inject -s b -d 'Mode: only -bm (deliver a message from standard input) is supported' -r
complete -c tmda-inject -s B -d 'Body type (7BIT, 8BITMIME): ignored, the relay decides' -r
complete -c tmda-inject -s N -d 'Delivery status notification conditions: ignored' -r
complete -c tmda-inject -s R -d 'DSN return type: ignored' -r
complete -c tmda-inject -s e -d 'Error reporting mode: ignored' -r
complete -c tmda-inject -s p -d 'Protocol and host for the Received field: ignored' -r
complete -c tmda-inject -s L -d 'Syslog label: ignored' -r
complete -c tmda-inject -s X -d 'Traffic log file: ignored' -r
complete -c tmda-inject -s A -d 'Alternative configuration (sendmail): ignored' -r
complete -c tmda-inject -s c -d 'Read this configuration file instead of ~/.tmda/config (tmda-inject)' -r
complete -c tmda-inject -s O -d 'Use this outgoing filter instead of FILTER_OUTGOING (tmda-inject)' -r
complete -c tmda-inject -s M -d 'Show which outgoing filter rule matches RECIPIENT for SENDER, check the filter for errors, and exit (tmda-inject)' -r
complete -c tmda-inject -s t -d 'Take the recipients from the To, Cc and Bcc fields (Resent- fields when resending); recipient arguments are ignored, as in TMDA'
complete -c tmda-inject -s i -d 'Ignore lines with a single dot (always the case: the message ends at end of input)'
complete -c tmda-inject -s v -d 'Verbose: show the conversation with the MTA on standard error (AUTH data redacted), as msmtp -v and sendmail -v do'
complete -c tmda-inject -s m -d 'Also send to me: ignored'
complete -c tmda-inject -s x -d 'Ignored'
complete -c tmda-inject -s E -d 'Ignored'
complete -c tmda-inject -s J -d 'Ignored'
complete -c tmda-inject -s U -d 'Initial submission: ignored'
complete -c tmda-inject -s G -d 'Gateway submission: ignored'
complete -c tmda-inject -s n -d 'Do not alias: ignored'
complete -c tmda-inject -s q -d 'Exit 99 after a successful delivery, so qmail\'s qfilter does not queue the message itself (tmda-inject)'
complete -c tmda-inject -s V -d 'Show full version information and exit'
complete -c tmda-inject -s h -d 'Show this help and exit'
complete -c tmda-inject -l version -d 'Print version and exit'
complete -c tmda-inject -l quiet -d 'Do not warn about the configuration (unknown variables); TMDA_NO_WARN=1 does the same'
complete -c tmda-inject -l help -d 'Show this help and exit'
complete -c tmda-ofmipd -l pid-file -d 'Write the daemon\'s process id to FILE (after detaching; removed on exit when it can be)' -r -F
complete -c tmda-ofmipd -s u -l username -d 'Run as this user when started as root (default: tofmipd)' -r
complete -c tmda-ofmipd -l min-uid -d 'Started as root: deliver for, and check PAM passwords of, only accounts with at least this uid (system accounts have less) [default: UID_MIN from /etc/login.defs, else 1000]' -r
complete -c tmda-ofmipd -s c -l configdir -d 'Find each user\'s config in DIR/USER/config instead of ~USER/.tmda/config' -r -F
complete -c tmda-ofmipd -s p -l proxyport -d 'Listen on HOST:PORT (repeatable; ":PORT" or "0.0.0.0:PORT" means all IPv4 interfaces). Default: FQDN:8025' -r
complete -c tmda-ofmipd -s 6 -l ipv6proxyport -d 'Listen on IPv6 HOST:PORT (repeatable; ":PORT" means all IPv6 interfaces)' -r
complete -c tmda-ofmipd -s C -l connections -d 'Handle at most NUM sessions at once; further connections wait until one ends' -r
complete -c tmda-ofmipd -s t -l throttle-script -d 'Program run with the login name before each message; non-zero refuses it (450)' -r -F
complete -c tmda-ofmipd -l tls -d 'Offer STARTTLS: optional, localoptional or on; needs --ssl-cert and --ssl-key' -r -f -a "optional\t'STARTTLS offered; AUTH allowed before it'
localoptional\t'Like optional for clients on a loopback address, like on for everyone else'
on\t'STARTTLS required before AUTH, MAIL and the rest'"
complete -c tmda-ofmipd -l ssl-cert -d 'Certificate chain, PEM (reloaded on SIGHUP or when the file changes)' -r -F
complete -c tmda-ofmipd -l ssl-key -d 'Private key, PEM (PKCS#8, PKCS#1 or SEC1)' -r -F
complete -c tmda-ofmipd -l ciphers -d 'Accepted for compatibility and ignored: rustls always uses its own safe TLS 1.2/1.3 cipher suites' -r
complete -c tmda-ofmipd -l hostname -d 'Name in the greeting and Received fields (default: this host\'s FQDN)' -r
complete -c tmda-ofmipd -l max-size -d 'Largest message accepted, in bytes (advertised with SIZE)' -r
complete -c tmda-ofmipd -l timeout -d 'Seconds to wait for a command before closing the connection (RFC 5321: at least 300)' -r
complete -c tmda-ofmipd -l data-timeout -d 'Seconds to wait for more DATA before closing the connection' -r
complete -c tmda-ofmipd -l delivery-timeout -d 'Seconds a delivery program (the sendmail program, global mode\'s per-user tmda sendmail, the throttle and vhome scripts) may run before it is stopped and the client told to try again (RFC 5321 has clients wait 10 minutes for the answer)' -r
complete -c tmda-ofmipd -l threads -d 'Threads serving connections [default: one less than the number of CPUs, at least one, leaving a CPU to the MTA that ofmipd relays to]' -r
complete -c tmda-ofmipd -l connections-per-ip -d 'Connections at once from one client address; more are told 421 and closed. Behind a proxy without the PROXY protocol every client has the proxy\'s address: raise it there' -r
complete -c tmda-ofmipd -l proxy-protocol -d 'Connections from FROM (an address or a CIDR range; repeatable) must start with a PROXY protocol header (v1 or v2, as haproxy\'s send-proxy and stunnel\'s protocol = proxy send it), whose client address is then the client\'s; from anyone else a header is refused' -r
complete -c tmda-ofmipd -l tls-timeout -d 'Seconds a TLS handshake may take (implicit TLS and STARTTLS; never more than --timeout)' -r
complete -c tmda-ofmipd -l min-data-rate -d 'Bytes a second DATA must average once --data-timeout has passed (0: no minimum; --data-timeout then applies to each read)' -r
complete -c tmda-ofmipd -l unauth-timeout -d 'Seconds a session may last before it has authenticated' -r
complete -c tmda-ofmipd -l max-auth-failures -d 'Refused or undecided AUTH attempts in one session before it is closed (421)' -r
complete -c tmda-ofmipd -l auth-delay -d 'Milliseconds to wait before answering a refused or undecided AUTH, times the number of such attempts so far in the session' -r
complete -c tmda-ofmipd -l auth-limit-ip -d 'Refused or undecided AUTH attempts from one client address within --auth-window before it is refused without asking' -r
complete -c tmda-ofmipd -l auth-limit-user -d 'Refused AUTH attempts for one user within --auth-window before that user is refused from addresses that have been failing (never from a clean one)' -r
complete -c tmda-ofmipd -l auth-window -d 'Seconds a failed AUTH attempt is remembered' -r
complete -c tmda-ofmipd -l auth-memory -d 'Addresses and users remembered (each); beyond it expired, then the oldest, are forgotten' -r
complete -c tmda-ofmipd -l budget-file -d 'With -1: the file that one-session processes share failed-AUTH counts in (locked, mode 0600, at most 2,000 entries each). Default: /run/tmda/ofmipd-budget when started as root, else $XDG_RUNTIME_DIR/tmda-ofmipd-budget, else /run/tmda if writable, else ~/.tmda/ofmipd-budget' -r -F
complete -c tmda-ofmipd -l sender-map -d 'For --restrict-sender: lines \'login address...\' (an address \'@domain\' allows the whole domain; re-read when it changes)' -r -F
complete -c tmda-ofmipd -s a -l authfile -d 'Check credentials against this tofmipd file (user:password lines, mode 600 or 400). Default: /etc/tofmipd as root, else ~/.tmda/tofmipd' -r -F
complete -c tmda-ofmipd -s A -l authprog -d 'Check credentials with a checkpassword program (user, password, time on descriptor 3)' -r
complete -c tmda-ofmipd -s R -l remoteauth -d 'Check credentials against a remote server: imap, imaps, pop3, pop3s, apop, ldap or ldaps URL' -r
complete -c tmda-ofmipd -s m -l pamauth -d 'Check credentials with PAM service SERVICE' -r
complete -c tmda-ofmipd -s S -l vhome-script -d 'Program printing a virtual user\'s home directory, given the user and the domain' -r -F
complete -c tmda-ofmipd -s v -l vdomains-path -d 'qmail\'s virtualdomains file (for VMailMgr set-ups)' -r -F
complete -c tmda-ofmipd -s d -l debug -d 'Log the protocol trace too (AUTH data and passwords are never logged)'
complete -c tmda-ofmipd -s L -l log -d 'Log sessions, authentication and delivery results to standard error'
complete -c tmda-ofmipd -s b -l background -d 'Detach and run in the background (the default)'
complete -c tmda-ofmipd -l syslog -d 'Log to syslog (facility mail) instead of standard error; the default when detached, whose standard error is /dev/null. $TMDA_SYSLOG_SOCKET names another socket than /dev/log'
complete -c tmda-ofmipd -s f -l foreground -d 'Do not detach; run in the foreground'
complete -c tmda-ofmipd -s 1 -l one-session -d 'Serve one SMTP session on standard input and output instead of listening'
complete -c tmda-ofmipd -s P -l pure-proxy -d 'Relay mail of users without a TMDA config unaltered through $TMDA_SENDMAIL_PROGRAM (default /usr/sbin/sendmail)'
complete -c tmda-ofmipd -l ssl -d 'TLS from the first byte (port 465 style); needs --ssl-cert and --ssl-key'
complete -c tmda-ofmipd -l restrict-sender -d 'Refuse (553 5.7.1) a message whose From, Sender or envelope sender is not one of the user\'s own: USERNAME@HOSTNAME and its tagged forms, the config\'s OFMIPD_ALLOWED_SENDERS, or the --sender-map entries (Postfix\'s reject_sender_login_mismatch)'
complete -c tmda-ofmipd -l tls-auth-only -d 'Offer AUTH only over TLS (after STARTTLS or with --ssl), as Postfix\'s smtpd_tls_auth_only'
complete -c tmda-ofmipd -s F -l fallback -d 'With -R or -A, also try the default authfile last'
complete -c tmda-ofmipd -s V -d 'Show full version information and exit'
complete -c tmda-ofmipd -l version -d 'Print version and exit'
complete -c tmda-ofmipd -s h -l help -d 'Print help (see more with \'--help\')'
# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_tmda_passwd_global_optspecs
    string join \n a/authfile= u/username= scheme= stdin y/yes V version h/help
end

function __fish_tmda_passwd_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_tmda_passwd_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_tmda_passwd_using_subcommand
    set -l cmd (__fish_tmda_passwd_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c tmda-passwd -n "__fish_tmda_passwd_needs_command" -s a -l authfile -d 'The password file [default: /etc/tofmipd as root, else ~/.tmda/tofmipd]' -r -F
complete -c tmda-passwd -n "__fish_tmda_passwd_needs_command" -s u -l username -d 'The user ofmipd runs as (its -u): a password file root creates for it is given to this user [default: tofmipd, for /etc/tofmipd]' -r
complete -c tmda-passwd -n "__fish_tmda_passwd_needs_command" -l scheme -d 'How new passwords are stored' -r -f -a "plain\t'Cleartext (TMDA compatible; allows CRAM-MD5)'
cram-md5\t'Dovecot\'s CRAM-MD5 context (allows CRAM-MD5; as good as cleartext for logging in over CRAM-MD5)'
argon2id\t'Argon2id (strongest; no CRAM-MD5; not readable by TMDA)'
sha512-crypt\t'SHA-512 crypt, as in /etc/shadow (no CRAM-MD5; not readable by TMDA)'"
complete -c tmda-passwd -n "__fish_tmda_passwd_needs_command" -l stdin -d 'Read the password from standard input (first line), for scripts'
complete -c tmda-passwd -n "__fish_tmda_passwd_needs_command" -s y -l yes -d 'Do not ask for confirmation (replacing or removing a user)'
complete -c tmda-passwd -n "__fish_tmda_passwd_needs_command" -s V -d 'Show full version information and exit'
complete -c tmda-passwd -n "__fish_tmda_passwd_needs_command" -l version -d 'Print version and exit'
complete -c tmda-passwd -n "__fish_tmda_passwd_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tmda-passwd -n "__fish_tmda_passwd_needs_command" -f -a "add" -d 'Add a user (asks before replacing an existing one)'
complete -c tmda-passwd -n "__fish_tmda_passwd_needs_command" -f -a "change" -d 'Change an existing user\'s password'
complete -c tmda-passwd -n "__fish_tmda_passwd_needs_command" -f -a "remove" -d 'Remove a user'
complete -c tmda-passwd -n "__fish_tmda_passwd_needs_command" -f -a "list" -d 'List the users and how their passwords are stored (the names --scheme takes)'
complete -c tmda-passwd -n "__fish_tmda_passwd_needs_command" -f -a "check" -d 'Check a user\'s password against the file (exit 0 if right, 1 if not)'
complete -c tmda-passwd -n "__fish_tmda_passwd_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tmda-passwd -n "__fish_tmda_passwd_using_subcommand add" -s a -l authfile -d 'The password file [default: /etc/tofmipd as root, else ~/.tmda/tofmipd]' -r -F
complete -c tmda-passwd -n "__fish_tmda_passwd_using_subcommand add" -s u -l username -d 'The user ofmipd runs as (its -u): a password file root creates for it is given to this user [default: tofmipd, for /etc/tofmipd]' -r
complete -c tmda-passwd -n "__fish_tmda_passwd_using_subcommand add" -l scheme -d 'How new passwords are stored' -r -f -a "plain\t'Cleartext (TMDA compatible; allows CRAM-MD5)'
cram-md5\t'Dovecot\'s CRAM-MD5 context (allows CRAM-MD5; as good as cleartext for logging in over CRAM-MD5)'
argon2id\t'Argon2id (strongest; no CRAM-MD5; not readable by TMDA)'
sha512-crypt\t'SHA-512 crypt, as in /etc/shadow (no CRAM-MD5; not readable by TMDA)'"
complete -c tmda-passwd -n "__fish_tmda_passwd_using_subcommand add" -l stdin -d 'Read the password from standard input (first line), for scripts'
complete -c tmda-passwd -n "__fish_tmda_passwd_using_subcommand add" -s y -l yes -d 'Do not ask for confirmation (replacing or removing a user)'
complete -c tmda-passwd -n "__fish_tmda_passwd_using_subcommand add" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tmda-passwd -n "__fish_tmda_passwd_using_subcommand change" -s a -l authfile -d 'The password file [default: /etc/tofmipd as root, else ~/.tmda/tofmipd]' -r -F
complete -c tmda-passwd -n "__fish_tmda_passwd_using_subcommand change" -s u -l username -d 'The user ofmipd runs as (its -u): a password file root creates for it is given to this user [default: tofmipd, for /etc/tofmipd]' -r
complete -c tmda-passwd -n "__fish_tmda_passwd_using_subcommand change" -l scheme -d 'How new passwords are stored' -r -f -a "plain\t'Cleartext (TMDA compatible; allows CRAM-MD5)'
cram-md5\t'Dovecot\'s CRAM-MD5 context (allows CRAM-MD5; as good as cleartext for logging in over CRAM-MD5)'
argon2id\t'Argon2id (strongest; no CRAM-MD5; not readable by TMDA)'
sha512-crypt\t'SHA-512 crypt, as in /etc/shadow (no CRAM-MD5; not readable by TMDA)'"
complete -c tmda-passwd -n "__fish_tmda_passwd_using_subcommand change" -l stdin -d 'Read the password from standard input (first line), for scripts'
complete -c tmda-passwd -n "__fish_tmda_passwd_using_subcommand change" -s y -l yes -d 'Do not ask for confirmation (replacing or removing a user)'
complete -c tmda-passwd -n "__fish_tmda_passwd_using_subcommand change" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tmda-passwd -n "__fish_tmda_passwd_using_subcommand remove" -s a -l authfile -d 'The password file [default: /etc/tofmipd as root, else ~/.tmda/tofmipd]' -r -F
complete -c tmda-passwd -n "__fish_tmda_passwd_using_subcommand remove" -s u -l username -d 'The user ofmipd runs as (its -u): a password file root creates for it is given to this user [default: tofmipd, for /etc/tofmipd]' -r
complete -c tmda-passwd -n "__fish_tmda_passwd_using_subcommand remove" -l scheme -d 'How new passwords are stored' -r -f -a "plain\t'Cleartext (TMDA compatible; allows CRAM-MD5)'
cram-md5\t'Dovecot\'s CRAM-MD5 context (allows CRAM-MD5; as good as cleartext for logging in over CRAM-MD5)'
argon2id\t'Argon2id (strongest; no CRAM-MD5; not readable by TMDA)'
sha512-crypt\t'SHA-512 crypt, as in /etc/shadow (no CRAM-MD5; not readable by TMDA)'"
complete -c tmda-passwd -n "__fish_tmda_passwd_using_subcommand remove" -l stdin -d 'Read the password from standard input (first line), for scripts'
complete -c tmda-passwd -n "__fish_tmda_passwd_using_subcommand remove" -s y -l yes -d 'Do not ask for confirmation (replacing or removing a user)'
complete -c tmda-passwd -n "__fish_tmda_passwd_using_subcommand remove" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tmda-passwd -n "__fish_tmda_passwd_using_subcommand list" -s a -l authfile -d 'The password file [default: /etc/tofmipd as root, else ~/.tmda/tofmipd]' -r -F
complete -c tmda-passwd -n "__fish_tmda_passwd_using_subcommand list" -s u -l username -d 'The user ofmipd runs as (its -u): a password file root creates for it is given to this user [default: tofmipd, for /etc/tofmipd]' -r
complete -c tmda-passwd -n "__fish_tmda_passwd_using_subcommand list" -l scheme -d 'How new passwords are stored' -r -f -a "plain\t'Cleartext (TMDA compatible; allows CRAM-MD5)'
cram-md5\t'Dovecot\'s CRAM-MD5 context (allows CRAM-MD5; as good as cleartext for logging in over CRAM-MD5)'
argon2id\t'Argon2id (strongest; no CRAM-MD5; not readable by TMDA)'
sha512-crypt\t'SHA-512 crypt, as in /etc/shadow (no CRAM-MD5; not readable by TMDA)'"
complete -c tmda-passwd -n "__fish_tmda_passwd_using_subcommand list" -l stdin -d 'Read the password from standard input (first line), for scripts'
complete -c tmda-passwd -n "__fish_tmda_passwd_using_subcommand list" -s y -l yes -d 'Do not ask for confirmation (replacing or removing a user)'
complete -c tmda-passwd -n "__fish_tmda_passwd_using_subcommand list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tmda-passwd -n "__fish_tmda_passwd_using_subcommand check" -s a -l authfile -d 'The password file [default: /etc/tofmipd as root, else ~/.tmda/tofmipd]' -r -F
complete -c tmda-passwd -n "__fish_tmda_passwd_using_subcommand check" -s u -l username -d 'The user ofmipd runs as (its -u): a password file root creates for it is given to this user [default: tofmipd, for /etc/tofmipd]' -r
complete -c tmda-passwd -n "__fish_tmda_passwd_using_subcommand check" -l scheme -d 'How new passwords are stored' -r -f -a "plain\t'Cleartext (TMDA compatible; allows CRAM-MD5)'
cram-md5\t'Dovecot\'s CRAM-MD5 context (allows CRAM-MD5; as good as cleartext for logging in over CRAM-MD5)'
argon2id\t'Argon2id (strongest; no CRAM-MD5; not readable by TMDA)'
sha512-crypt\t'SHA-512 crypt, as in /etc/shadow (no CRAM-MD5; not readable by TMDA)'"
complete -c tmda-passwd -n "__fish_tmda_passwd_using_subcommand check" -l stdin -d 'Read the password from standard input (first line), for scripts'
complete -c tmda-passwd -n "__fish_tmda_passwd_using_subcommand check" -s y -l yes -d 'Do not ask for confirmation (replacing or removing a user)'
complete -c tmda-passwd -n "__fish_tmda_passwd_using_subcommand check" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tmda-passwd -n "__fish_tmda_passwd_using_subcommand help; and not __fish_seen_subcommand_from add change remove list check help" -f -a "add" -d 'Add a user (asks before replacing an existing one)'
complete -c tmda-passwd -n "__fish_tmda_passwd_using_subcommand help; and not __fish_seen_subcommand_from add change remove list check help" -f -a "change" -d 'Change an existing user\'s password'
complete -c tmda-passwd -n "__fish_tmda_passwd_using_subcommand help; and not __fish_seen_subcommand_from add change remove list check help" -f -a "remove" -d 'Remove a user'
complete -c tmda-passwd -n "__fish_tmda_passwd_using_subcommand help; and not __fish_seen_subcommand_from add change remove list check help" -f -a "list" -d 'List the users and how their passwords are stored (the names --scheme takes)'
complete -c tmda-passwd -n "__fish_tmda_passwd_using_subcommand help; and not __fish_seen_subcommand_from add change remove list check help" -f -a "check" -d 'Check a user\'s password against the file (exit 0 if right, 1 if not)'
complete -c tmda-passwd -n "__fish_tmda_passwd_using_subcommand help; and not __fish_seen_subcommand_from add change remove list check help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tmda-checkauth -s a -l authfile -d 'Check against this tofmipd file (repeatable)' -r -F
complete -c tmda-checkauth -s A -l authprog -d 'Check with this checkpassword program (repeatable)' -r
complete -c tmda-checkauth -s R -l remoteauth -d 'Check against this remote server (repeatable)' -r
complete -c tmda-checkauth -s m -l pamauth -d 'Check with this PAM service (repeatable)' -r
complete -c tmda-checkauth -s F -l fallback -d 'With -R or -A, also try the default authfile'
complete -c tmda-checkauth -l stdin -d 'Read the password from standard input (first line) instead of the terminal'
complete -c tmda-checkauth -l checkpassword -d 'Act as a checkpassword program: credentials on descriptor 3, then run PROGRAM'
complete -c tmda-checkauth -s V -d 'Show full version information and exit'
complete -c tmda-checkauth -l version -d 'Print version and exit'
complete -c tmda-checkauth -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tmda-init -l username -d 'USERNAME: the local part of your address [default: your login name]' -r
complete -c tmda-init -l hostname -d 'HOSTNAME: the domain of your address [default: this machine\'s FQDN]' -r
complete -c tmda-init -l smtp -d 'Send through this SMTP relay (checked: it must answer EHLO)' -r
complete -c tmda-init -l sendmail -d 'Send through this sendmail program (checked: it must exist and be executable) [default: /usr/sbin/sendmail]' -r -F
complete -c tmda-init -l ofmipd-user -d 'Also add USER to ~/.tmda/tofmipd, for a personal tmda ofmipd (password asked, or read from standard input with --yes)' -r
complete -c tmda-init -l incoming -d 'Also set up incoming mail (tmda filter): "forward" writes ~/.forward for an MTA that reads it (Postfix, Exim, sendmail); "postfix" prints the main.cf line for Postfix\'s mailbox_command; "none" leaves incoming mail alone' -r -f -a "forward\t''
postfix\t''
none\t''"
complete -c tmda-init -s c -l config-file -d 'Write the configuration here instead of ~/.tmda/config' -r -F
complete -c tmda-init -s y -l yes -d 'Ask nothing: take the values from the options (and defaults)'
complete -c tmda-init -l force -d 'Replace files that exist (the key too: every address made with the old key stops verifying)'
complete -c tmda-init -s V -d 'Show full version information and exit'
complete -c tmda-init -l version -d 'Print version and exit'
complete -c tmda-init -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tmda-filter -s c -l config-file -d 'Read this configuration file instead of ~/.tmda/config (sets TMDARC)' -r -F
complete -c tmda-filter -s t -l template-dir -d 'Search this directory first for templates (sets TMDA_TEMPLATE_DIR)' -r -F
complete -c tmda-filter -s I -l filter-incoming-file -d 'Use this incoming filter instead of FILTER_INCOMING (sets TMDA_FILTER_INCOMING)' -r -F
complete -c tmda-filter -s e -l environ -d 'Set an environment variable before anything else is read (repeatable)' -r
complete -c tmda-filter -s S -l vhome-script -d 'Virtual users (qmail with vpopmail or vmailmgr): find HOME with this script, given a user name and $HOST' -r -F
complete -c tmda-filter -s M -l filter-match -d 'Show which incoming filter rule matches RECIPIENT and SENDER, and exit' -r
complete -c tmda-filter -s d -l discard -d 'Discard instead of answering: no confirmation requests, no bounces, nothing held'
complete -c tmda-filter -s p -l print -d 'Print a message that would be delivered on standard output (exit 0), and exit 99 for one that would not be'
complete -c tmda-filter -s V -d 'Show full version information and exit'
complete -c tmda-filter -l version -d 'Print version and exit'
complete -c tmda-filter -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tmda-rfilter -s c -l config-file -d 'Read this configuration file instead of ~/.tmda/config (sets TMDARC)' -r -F
complete -c tmda-rfilter -s t -l template-dir -d 'Search this directory first for templates (sets TMDA_TEMPLATE_DIR)' -r -F
complete -c tmda-rfilter -s I -l filter-incoming-file -d 'Use this incoming filter instead of FILTER_INCOMING (sets TMDA_FILTER_INCOMING)' -r -F
complete -c tmda-rfilter -s e -l environ -d 'Set an environment variable before anything else is read (repeatable)' -r
complete -c tmda-rfilter -s S -l vhome-script -d 'Virtual users (qmail with vpopmail or vmailmgr): find HOME with this script, given a user name and $HOST' -r -F
complete -c tmda-rfilter -s M -l filter-match -d 'Show which incoming filter rule matches RECIPIENT and SENDER, and exit' -r
complete -c tmda-rfilter -s d -l discard -d 'Discard instead of answering: no confirmation requests, no bounces, nothing held'
complete -c tmda-rfilter -s p -l print -d 'Print a message that would be delivered on standard output (exit 0), and exit 99 for one that would not be'
complete -c tmda-rfilter -s V -d 'Show full version information and exit'
complete -c tmda-rfilter -l version -d 'Print version and exit'
complete -c tmda-rfilter -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tmda-pending -l vhome-script -d 'Virtual users: run SCRIPT USER DOMAIN and use its output as HOME' -r -F
complete -c tmda-pending -l vhome-user -d 'The user name for --vhome-script (default: $USER, else $LOGNAME)' -r
complete -c tmda-pending -l vhome-domain -d 'The domain for --vhome-script (default: this machine\'s name)' -r
complete -c tmda-pending -s c -l config-file -d 'Read this configuration file instead of ~/.tmda/config (sets TMDARC)' -r -F
complete -c tmda-pending -s R -l recipient -d 'Use ADDRESS instead of the message\'s X-TMDA-Recipient for the release address and as the recipient of a release' -r
complete -c tmda-pending -s Y -l younger -d 'Only messages younger than INTERVAL (s, m, h, d, w, M or Y: 30d)' -r
complete -c tmda-pending -s O -l older -d 'Only messages older than INTERVAL' -r
complete -c tmda-pending -s V -d 'Show full version information and exit'
complete -c tmda-pending -l version -d 'Print version and exit'
complete -c tmda-pending -s v -l verbose -d 'Display output (default)'
complete -c tmda-pending -s q -l quiet -d 'Suppress output (not with interactive use)'
complete -c tmda-pending -s p -l pretend -d 'Don\'t operate on messages, just show what would be done (implies --verbose)'
complete -c tmda-pending -s i -l interactive -d 'Show each message and ask what to do with it (default)'
complete -c tmda-pending -s b -l batch -d 'Operate without asking (use with caution)'
complete -c tmda-pending -s C -l cache -d 'Only messages not in PENDING_CACHE (not seen before); add them to it'
complete -c tmda-pending -l line-prompts -d 'Interactive mode with TMDA\'s line prompts even in a terminal'
complete -c tmda-pending -s r -l release -d 'Release the messages'
complete -c tmda-pending -s d -l delete -d 'Delete the messages'
complete -c tmda-pending -s B -l blacklist -d 'Append each sender to PENDING_BLACKLIST_APPEND'
complete -c tmda-pending -s W -l whitelist -d 'Append each sender to PENDING_WHITELIST_APPEND (and release the message if PENDING_WHITELIST_RELEASE is 1)'
complete -c tmda-pending -s S -l show -d 'Show each whole message with $PAGER'
complete -c tmda-pending -s s -l summary -d 'Add each message\'s release address (<mailto:...>) to its summary'
complete -c tmda-pending -s T -l terse-summary -d 'One line per message: the id and TERSE_SUMMARY_HEADERS, tab-separated'
complete -c tmda-pending -l json -d 'The summaries as one JSON array (implies --batch)'
complete -c tmda-pending -l digest -d 'Mail yourself one message listing the messages held since the last digest, each with its release address (for a timer)'
complete -c tmda-pending -s A -l ascending -d 'Operate on the messages oldest first (default)'
complete -c tmda-pending -s D -l descending -d 'Operate on the messages newest first'
complete -c tmda-pending -s h -l help -d 'Print help (see more with \'--help\')'
