# fish completion for der-history(1). Install as ~/.config/fish/completions/der-history.fish
# or /usr/share/fish/vendor_completions.d/der-history.fish.

# site/asset names of a fleet file, one a line (block-style YAML as
# der-assets.yaml(5) describes it).
function __der_assets_of
    test -n "$argv[1]"; and test -r "$argv[1]"; or return
    awk '
        function flush(   i) { for (i = 1; i <= n; i++) if (site != "" && asset[i] != "") print site "/" asset[i]; n = 0 }
        function unquote(v) { sub(/[ \t]+#.*$/, "", v); sub(/[ \t]+$/, "", v); gsub(/^["\047]|["\047]$/, "", v); return v }
        /^[ \t]*(#|$)/ { next }
        /^sites:/ { insites = 1; next }
        /^[^ \t-]/ { if (insites) flush(); insites = 0; next }
        !insites { next }
        {
            match($0, /^[ \t]*/); ind = RLENGTH; line = substr($0, ind + 1)
            if (line ~ /^- /) {
                rest = substr(line, 3); match(rest, /^[ \t]*/); key = ind + 2 + RLENGTH; line = substr(rest, RLENGTH + 1)
                if (site_ind == "" || ind <= site_ind) { flush(); site_ind = ind; site_key = key; site = ""; level = 1 }
                else { asset_key = key; level = 2; n++; asset[n] = "" }
            } else key = ind
            if (line ~ /^name:/) {
                v = unquote(substr(line, 6)); sub(/^[ \t]+/, "", v)
                if (key == site_key && level >= 1 && (level == 1 || key < asset_key)) site = v
                else if (level == 2 && key == asset_key) asset[n] = v
            }
        }
        END { flush() }
    ' $argv[1] 2>/dev/null
end

# The fleet file names are completed from: $DER_CONFIG, else ./assets.yaml.
function __der_default_config
    if set -q DER_CONFIG; and test -n "$DER_CONFIG"
        string replace -r -- '^~' $HOME $DER_CONFIG
    else if test -r assets.yaml
        echo assets.yaml
    end
end

# How many positional arguments precede the current one; argv: the flags
# that take a value.
function __der_positionals
    set -l args (commandline -opc)
    set -e args[1]
    set -l n 0
    set -l skip 0
    set -l dashdash 0
    for a in $args
        if test $skip -eq 1
            set skip 0
        else if test $dashdash -eq 1
            set n (math $n + 1)
        else if test "$a" = --
            set dashdash 1
        else if contains -- $a $argv
            set skip 1
        else if string match -qr -- '^-[0-9.]' $a
            set n (math $n + 1)
        else if not string match -q -- '-*' $a
            set n (math $n + 1)
        end
    end
    echo $n
end

function __der_history_positional
    test (__der_positionals --since --until --every --limit --format --control --timeout --log-level --log-format --token-file) -eq $argv[1]
end

complete -c der-history -f
complete -c der-history -n '__der_history_positional 0' -a 'telemetry\t"the records the agent sent" dispatch\t"the dispatches of the asset" heartbeat\t"the agent\'s heartbeats"'
complete -c der-history -n '__der_history_positional 1' -a '(__der_assets_of (__der_default_config))' -d 'Asset (site/name)'
complete -c der-history -s h -l help -d 'Print the options and exit'
complete -c der-history -l version -d 'Print the version and exit'
complete -c der-history -l since -x -a '-15m -1h -6h -1d -7d now' -d 'From (inclusive): RFC 3339, now or relative (default -1h)'
complete -c der-history -l until -x -a 'now -1h -1d' -d 'Until (exclusive): RFC 3339, now or relative (default now)'
complete -c der-history -l every -x -a '1m 5m 15m 1h 1d' -d 'Telemetry only: one row per bucket of this length'
complete -c der-history -l limit -x -d 'At most this many rows'
complete -c der-history -l format -x -a 'json\t"one object a line" csv\t"a header line, then rows"' -d 'Output format (default json)'
complete -c der-history -l control -x -a 'tcp://127.0.0.1:7411' -d "The hub's control endpoint"
complete -c der-history -l timeout -x -d 'How long to wait for the first reply, and between chunks (default 10)'
complete -c der-history -l log-level -x -a 'debug info warn error' -d 'Least severe log level shown'
complete -c der-history -l log-format -x -a 'text json' -d 'Log line format on stderr'
complete -c der-history -l token-file -r -F -d "File holding the hub API token (DER_TOKEN_FILE)"
