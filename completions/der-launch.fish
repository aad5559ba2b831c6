# fish completion for der-launch(1). Install as ~/.config/fish/completions/der-launch.fish
# or /usr/share/fish/vendor_completions.d/der-launch.fish.

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

set -g __der_launch_value_flags --only --hub --agent --agent-bin --backoff-max --log-level --log-format --curve-server-key --curve-key-dir

# Names of the ASSETS.yaml on the command line, else $DER_CONFIG, else ./assets.yaml.
function __der_launch_assets
    set -l args (commandline -opc)
    set -e args[1]
    set -l skip 0
    set -l fleet
    for a in $args
        if test $skip -eq 1
            set skip 0
        else if contains -- $a $__der_launch_value_flags
            set skip 1
        else if not string match -q -- '-*' $a
            set fleet $a
            break
        end
    end
    if test -n "$fleet"
        __der_assets_of (string replace -r -- '^~' $HOME $fleet)
    else
        __der_assets_of (__der_default_config)
    end
end

function __der_launch_no_fleet
    test (__der_positionals $__der_launch_value_flags) -eq 0
end

complete -c der-launch -f
complete -c der-launch -n __der_launch_no_fleet -k -a '(__fish_complete_suffix .yaml; __fish_complete_suffix .yml)' -d 'Fleet file'
complete -c der-launch -s h -l help -d 'Print the options and exit'
complete -c der-launch -l version -d 'Print the version and exit'
complete -c der-launch -l only -x -a '(__der_launch_assets)' -d 'Run only this asset (site/name or UUID); repeatable'
complete -c der-launch -l hub -x -a 'tcp://127.0.0.1:7410' -d "The hub's agent endpoint, passed to every agent"
complete -c der-launch -l agent -l agent-bin -r -a '(__fish_complete_command)' -d 'The der-agent program'
complete -c der-launch -l backoff-max -x -a '10s 30s 1m 5m' -d 'Longest wait before restarting a child (default 30s)'
complete -c der-launch -l log-level -x -a 'debug info warn error' -d 'Least severe log level shown'
complete -c der-launch -l log-format -x -a 'text json' -d 'Log line format on stderr'
complete -c der-launch -l curve-server-key -r -F -d "The hub's CURVE public key, or a file holding it"
complete -c der-launch -l curve-key-dir -x -a '(__fish_complete_directories)' -d "Directory of the agents' secret keys (DIR/SITE/ASSET.secret)"
