# bash completion for der-launch(1).                    -*- shell-script -*-
# Install as /usr/share/bash-completion/completions/der-launch, or source it.

# The assets.yaml asset names are completed from: $DER_CONFIG, else
# ./assets.yaml when there is one.
_der_launch_config() {
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
_der_launch_assets_of() {
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

_der_launch() {
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

    # The ASSETS.yaml argument, wherever it is on the line.
    local i fleet=
    for ((i = 1; i < ${#words[@]}; i++)); do
        ((i == cword)) && continue
        case ${words[i]} in
            --only | --hub | --agent | --agent-bin | --backoff-max | --log-level | --log-format | --curve-server-key | --curve-key-dir) ((i++)) ;;
            -*) ;;
            *) [[ -z $fleet ]] && fleet=${words[i]} ;;
        esac
    done

    case $prev in
        --curve-server-key | --curve-key-dir)
            compopt -o filenames 2>/dev/null
            COMPREPLY=($(compgen -f -- "$cur"))
            return ;;
        -h | --help | --version)
            return ;;
        --only)
            [[ -n $fleet ]] && fleet=${fleet/#\~/$HOME} || fleet=$(_der_launch_config)
            COMPREPLY=($(compgen -W "$(_der_launch_assets_of "$fleet")" -- "$cur"))
            return ;;
        --hub)
            COMPREPLY=($(compgen -W 'tcp://127.0.0.1:7410' -- "$cur"))
            return ;;
        --agent | --agent-bin)
            compopt -o filenames 2>/dev/null
            COMPREPLY=($(compgen -c -- "$cur"))
            [[ $cur == */* ]] && COMPREPLY=($(compgen -f -- "$cur"))
            return ;;
        --backoff-max)
            COMPREPLY=($(compgen -W '10s 30s 1m 5m' -- "$cur"))
            return ;;
        --log-level)
            COMPREPLY=($(compgen -W 'debug info warn error' -- "$cur"))
            return ;;
        --log-format)
            COMPREPLY=($(compgen -W 'text json' -- "$cur"))
            return ;;
    esac

    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W '-h --help --only --hub --agent --agent-bin --backoff-max
            --log-level --log-format --curve-server-key --curve-key-dir --version' -- "$cur"))
    elif [[ -z $fleet ]]; then
        compopt -o filenames 2>/dev/null
        COMPREPLY=($(compgen -f -X '!*.@(yaml|yml|YAML|YML)' -- "$cur") $(compgen -d -- "$cur"))
    fi
} &&
    complete -F _der_launch der-launch
