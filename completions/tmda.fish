# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_tmda_global_optspecs
    string join \n h/help V/version
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

complete -c tmda -n "__fish_tmda_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tmda -n "__fish_tmda_needs_command" -s V -l version -d 'Print version'
complete -c tmda -n "__fish_tmda_needs_command" -f -a "address" -d 'Print a tagged address (tmda-address)'
complete -c tmda -n "__fish_tmda_needs_command" -f -a "check-address" -d 'Check a tagged address (tmda-check-address)'
complete -c tmda -n "__fish_tmda_needs_command" -f -a "keygen" -d 'Generate a new secret key (tmda-keygen)'
complete -c tmda -n "__fish_tmda_needs_command" -f -a "sendmail" -d 'Tag outgoing mail and hand it to the MTA (tmda-sendmail, tmda-inject, sendmail); takes sendmail\'s options'
complete -c tmda -n "__fish_tmda_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tmda -n "__fish_tmda_using_subcommand address" -s c -l config-file -d 'Read this configuration file instead of ~/.tmda/config' -r -F
complete -c tmda -n "__fish_tmda_using_subcommand address" -s a -l address -d 'Base the tagged address on ADDRESS instead of USERNAME@HOSTNAME' -r
complete -c tmda -n "__fish_tmda_using_subcommand address" -s k -l keyword -d 'Make a keyword address for KEYWORD' -r
complete -c tmda -n "__fish_tmda_using_subcommand address" -s s -l sender -d 'Make a sender address for ADDRESS, which may also be a domain' -r
complete -c tmda -n "__fish_tmda_using_subcommand address" -s t -l timeout -d 'Make a dated address valid for TIMEOUT: a number and a unit, Y M w d h m or s (e.g. 5d, 24h); implies -d' -r
complete -c tmda -n "__fish_tmda_using_subcommand address" -s n -l no-newline -d 'Do not print a newline after the address (for calling from other programs)'
complete -c tmda -n "__fish_tmda_using_subcommand address" -s d -l dated -d 'Make a dated address with the default timeout (DATED_TIMEOUT, or $TMDA_TIMEOUT)'
complete -c tmda -n "__fish_tmda_using_subcommand address" -s V -d 'Show full version information and exit'
complete -c tmda -n "__fish_tmda_using_subcommand address" -l version -d 'Print version and exit'
complete -c tmda -n "__fish_tmda_using_subcommand address" -s h -l help -d 'Print help'
complete -c tmda -n "__fish_tmda_using_subcommand check-address" -s c -l config-file -d 'Read this configuration file instead of ~/.tmda/config' -r -F
complete -c tmda -n "__fish_tmda_using_subcommand check-address" -s l -l localtime -d 'Show dates in the local time zone instead of UTC'
complete -c tmda -n "__fish_tmda_using_subcommand check-address" -s V -d 'Show full version information and exit'
complete -c tmda -n "__fish_tmda_using_subcommand check-address" -l version -d 'Print version and exit'
complete -c tmda -n "__fish_tmda_using_subcommand check-address" -s h -l help -d 'Print help'
complete -c tmda -n "__fish_tmda_using_subcommand keygen" -s d -l device -d 'Read random bytes from DEVICE instead of /dev/urandom' -r -F
complete -c tmda -n "__fish_tmda_using_subcommand keygen" -s c -l config-file -d 'Configuration file that names CRYPT_KEY_FILE (for --install)' -r -F
complete -c tmda -n "__fish_tmda_using_subcommand keygen" -s b -l batch -d 'Print only the key'
complete -c tmda -n "__fish_tmda_using_subcommand keygen" -l install -d 'Write the key to CRYPT_KEY_FILE (mode 0600, atomically) instead of printing it'
complete -c tmda -n "__fish_tmda_using_subcommand keygen" -l force -d 'With --install: replace an existing key (invalidates all tagged addresses made with it)'
complete -c tmda -n "__fish_tmda_using_subcommand keygen" -s V -d 'Show full version information and exit'
complete -c tmda -n "__fish_tmda_using_subcommand keygen" -l version -d 'Print version and exit'
complete -c tmda -n "__fish_tmda_using_subcommand keygen" -s h -l help -d 'Print help'
complete -c tmda -n "__fish_tmda_using_subcommand help; and not __fish_seen_subcommand_from address check-address keygen sendmail help" -f -a "address" -d 'Print a tagged address (tmda-address)'
complete -c tmda -n "__fish_tmda_using_subcommand help; and not __fish_seen_subcommand_from address check-address keygen sendmail help" -f -a "check-address" -d 'Check a tagged address (tmda-check-address)'
complete -c tmda -n "__fish_tmda_using_subcommand help; and not __fish_seen_subcommand_from address check-address keygen sendmail help" -f -a "keygen" -d 'Generate a new secret key (tmda-keygen)'
complete -c tmda -n "__fish_tmda_using_subcommand help; and not __fish_seen_subcommand_from address check-address keygen sendmail help" -f -a "sendmail" -d 'Tag outgoing mail and hand it to the MTA (tmda-sendmail, tmda-inject, sendmail); takes sendmail\'s options'
complete -c tmda -n "__fish_tmda_using_subcommand help; and not __fish_seen_subcommand_from address check-address keygen sendmail help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
