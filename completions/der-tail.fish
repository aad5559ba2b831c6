# fish completion for der-tail(1). Install as ~/.config/fish/completions/der-tail.fish
# or /usr/share/fish/vendor_completions.d/der-tail.fish.

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

function __der_tail_sites
    __der_assets_of (__der_default_config) | string replace -r -- '/.*' '' | sort -u
end

complete -c der-tail -f
complete -c der-tail -s h -l help -d 'Print the options and exit'
complete -c der-tail -l version -d 'Print the version and exit'
complete -c der-tail -l asset -x -a '(__der_assets_of (__der_default_config))' -d 'Only this asset (UUID or site/name); repeatable'
complete -c der-tail -l site -x -a '(__der_tail_sites)' -d 'Only the assets of this site (UUID or name); repeatable'
complete -c der-tail -l events -d 'Also dispatch state changes and agent events'
complete -c der-tail -l format -x -a 'json\t"one object a line" table\t"aligned columns" csv\t"header, then rows"' -d 'Output format (default json)'
complete -c der-tail -s n -l count -x -d 'Exit after this many lines'
complete -c der-tail -l snapshot -d 'First print the latest record of every matching asset'
complete -c der-tail -l stream -x -a 'tcp://127.0.0.1:7412' -d "The hub's stream endpoint"
complete -c der-tail -l control -x -a 'tcp://127.0.0.1:7411' -d "The hub's control endpoint"
complete -c der-tail -l timeout -x -d "How long to wait for the control socket's answers (default 5)"
complete -c der-tail -l log-level -x -a 'debug info warn error' -d 'Least severe log level shown'
complete -c der-tail -l log-format -x -a 'text json' -d 'Log line format on stderr'
complete -c der-tail -l token-file -r -F -d "File holding the hub API token (DER_TOKEN_FILE)"
