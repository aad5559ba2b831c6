# bash completion for der-agent(1).                     -*- shell-script -*-
# Install as /usr/share/bash-completion/completions/der-agent, or source it.

# Prints the site/asset names of an assets.yaml, one a line. A plain reading
# of the block-style YAML der-assets.yaml(5) describes: `- name:` items of
# `sites:`, and the `- name:` items nested below them (`assets:` is the only
# list inside a site). Flow-style lists are not read.
_der_agent_assets_of() {
    [[ -r $1 ]] || return
    awk '
        function flush(   i) { for (i = 1; i <= n; i++) if (site != "") print site "/" asset[i]; n = 0 }
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
    ' "$1" 2>/dev/null | grep -v '/$'
}

_der_agent() {
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
        --curve-server-key | --curve-secret-file)
            compopt -o filenames 2>/dev/null
            COMPREPLY=($(compgen -f -- "$cur"))
            return ;;
        -h | --help | --version)
            return ;;
        --config)
            compopt -o filenames 2>/dev/null
            COMPREPLY=($(compgen -f -X '!*.@(yaml|yml|YAML|YML)' -- "$cur") $(compgen -d -- "$cur"))
            return ;;
        --asset)
            local i config=
            for ((i = 1; i < ${#words[@]}; i++)); do
                case ${words[i]} in
                    --config) config=${words[i+1]} ;;
                    --config=*) config=${words[i]#--config=} ;;
                esac
            done
            config=${config/#\~/$HOME}
            [[ -n $config ]] && COMPREPLY=($(compgen -W "$(_der_agent_assets_of "$config")" -- "$cur"))
            return ;;
        --adapter)
            COMPREPLY=($(compgen -W 'sim exec modbus' -- "$cur"))
            return ;;
        --exec)
            COMPREPLY=($(compgen -c -- "$cur"))
            return ;;
        --modbus | --adapter-option)
            return ;;
        --spool)
            COMPREPLY=($(compgen -d -- "$cur"))
            return ;;
        --on-hub-loss)
            COMPREPLY=($(compgen -W 'hold zero' -- "$cur"))
            return ;;
        --log-level)
            COMPREPLY=($(compgen -W 'debug info warn error' -- "$cur"))
            return ;;
        --log-format)
            COMPREPLY=($(compgen -W 'text json' -- "$cur"))
            return ;;
        --hub)
            COMPREPLY=($(compgen -W 'tcp://127.0.0.1:7410' -- "$cur"))
            return ;;
        --tick | --telemetry-interval | --buffer | --spool-max-bytes | --hub-timeout | --capacity-mwh | --max-mw | \
            --min-mw | --ramp-mw-per-s | --efficiency | --soc-min-pct | --soc-max-pct | --initial-soc-pct)
            return ;;
    esac

    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W '-h --help --hub --asset --config --adapter --exec --modbus
            --adapter-option --tick
            --telemetry-interval --buffer --spool --spool-max-bytes --on-hub-loss --hub-timeout --log-level
            --log-format --curve-server-key --curve-secret-file --version --capacity-mwh --max-mw --min-mw --ramp-mw-per-s
            --efficiency --soc-min-pct --soc-max-pct --initial-soc-pct' -- "$cur"))
    fi
} &&
    complete -F _der_agent der-agent
