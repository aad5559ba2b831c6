# bash completion for der-dispatch(1).                  -*- shell-script -*-
# Install as /usr/share/bash-completion/completions/der-dispatch, or source it.

# The assets.yaml asset names are completed from: $DER_CONFIG, else
# ./assets.yaml when there is one.
_der_dispatch_config() {
    if [[ -n ${DER_CONFIG:-} ]]; then
        printf '%s\n' "${DER_CONFIG/#\~/$HOME}"
    elif [[ -r assets.yaml ]]; then
        printf '%s\n' assets.yaml
    fi
}

# Prints the site/asset names of an assets.yaml, one a line. A plain reading
# of the block-style YAML der-assets.yaml(5) describes: `- name:` items of
# `sites:`, and the `- name:` items nested below them (`assets:` is the only
# list inside a site). Flow-style lists are not read.
_der_dispatch_assets_of() {
    [[ -r $1 ]] || return
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
    ' "$1" 2>/dev/null
}

_der_dispatch() {
    local cur prev words cword
    if declare -F _init_completion >/dev/null 2>&1; then
        _init_completion -s || return
    else
        COMPREPLY=()
        cur=${COMP_WORDS[COMP_CWORD]}
        prev=${COMP_WORDS[COMP_CWORD-1]}
        words=("${COMP_WORDS[@]}")
        cword=$COMP_CWORD
    fi

    case $prev in
        --token-file)
            compopt -o filenames 2>/dev/null
            COMPREPLY=($(compgen -f -- "$cur"))
            return ;;
        -h | --help | --version)
            return ;;
        --log-level)
            COMPREPLY=($(compgen -W 'debug info warn error' -- "$cur"))
            return ;;
        --log-format)
            COMPREPLY=($(compgen -W 'text json' -- "$cur"))
            return ;;
        --control)
            COMPREPLY=($(compgen -W 'tcp://127.0.0.1:7411' -- "$cur"))
            return ;;
        --for)
            COMPREPLY=($(compgen -W '5m 15m 30m 1h 2h' -- "$cur"))
            return ;;
        --timeout)
            COMPREPLY=($(compgen -W '10s 30s 1m' -- "$cur"))
            return ;;
        --requested-by)
            COMPREPLY=($(compgen -u -- "$cur"))
            return ;;
        --reason | --cancel)
            return ;;
        --at)
            COMPREPLY=($(compgen -W '+5m +15m +1h' -- "$cur"))
            return ;;
        --site)
            COMPREPLY=($(compgen -W "$(_der_dispatch_assets_of "$(_der_dispatch_config)" | sed 's,/.*,,' | sort -u)" -- "$cur"))
            return ;;
    esac

    # Which positional argument is being completed: ASSET (0) or MW (1).
    local i npos=0 dashdash= stop=
    for ((i = 1; i < cword; i++)); do
        if [[ -n $dashdash ]]; then ((npos++)); continue; fi
        case ${words[i]} in
            --) dashdash=1 ;;
            --for | --timeout | --reason | --requested-by | --control | --log-level | --log-format | --site | --at | --cancel | --token-file) ((i++)) ;;
            --stop) stop=1 ;;  # takes no ASSET or MW; its options still complete
            -?*) [[ ${words[i]} =~ ^-[0-9.] ]] && ((npos++)) ;;
            *) ((npos++)) ;;
        esac
    done

    if [[ $cur == -* && -z $dashdash && $cur != -[0-9.]* ]]; then
        COMPREPLY=($(compgen -W '-h --help --for --wait --timeout --reason --requested-by
            --site --at --hub-schedule --cancel --stop
            --control --log-level --log-format --token-file --version' -- "$cur"))
    elif ((npos == 0)) && [[ -z $stop && " ${words[*]} " != *" --site "* && " ${words[*]} " != *" --cancel "* ]]; then
        COMPREPLY=($(compgen -W "$(_der_dispatch_assets_of "$(_der_dispatch_config)")" -- "$cur"))
    fi
} &&
    complete -F _der_dispatch der-dispatch
