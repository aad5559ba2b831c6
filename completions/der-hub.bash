# bash completion for der-hub(8).                       -*- shell-script -*-
# Install as /usr/share/bash-completion/completions/der-hub, or source it.

_der_hub() {
    local cur prev words cword
    if declare -F _init_completion >/dev/null 2>&1; then
        _init_completion -s || return
    else
        COMPREPLY=()
        cur=${COMP_WORDS[COMP_CWORD]}
        prev=${COMP_WORDS[COMP_CWORD-1]}
    fi

    case $prev in
        -h | --help | --version | --show-config)
            return ;;
        -c | --config)
            compopt -o filenames 2>/dev/null
            COMPREPLY=($(compgen -f -X '!*.@(yaml|yml|YAML|YML)' -- "$cur") $(compgen -d -- "$cur"))
            return ;;
        --log-level)
            COMPREPLY=($(compgen -W 'debug info warn error' -- "$cur"))
            return ;;
        --log-format)
            COMPREPLY=($(compgen -W 'text json' -- "$cur"))
            return ;;
        --agents)
            COMPREPLY=($(compgen -W 'tcp://*:7410' -- "$cur"))
            return ;;
        --control)
            COMPREPLY=($(compgen -W 'tcp://127.0.0.1:7411' -- "$cur"))
            return ;;
        --stream)
            COMPREPLY=($(compgen -W 'tcp://127.0.0.1:7412' -- "$cur"))
            return ;;
        --http)
            COMPREPLY=($(compgen -W '127.0.0.1:7480 off' -- "$cur"))
            return ;;
        --curve-secret-file | --api-token-file | --out-dir | --public | --secret)
            compopt -o filenames 2>/dev/null
            COMPREPLY=($(compgen -f -- "$cur"))
            return ;;
        --name)
            return ;;
        --memory-history | --memory-history-age | --pending-ttl | --ack-timeout | --http-threads | --db)
            return ;;
    esac

    # `der-hub keygen [--out-dir DIR [--name NAME] | --public FILE --secret FILE] [--force]`
    local w
    for w in "${COMP_WORDS[@]}"; do
        if [[ $w == keygen ]]; then
            [[ $cur == -* ]] && COMPREPLY=($(compgen -W '-h --help --out-dir --name --public --secret --force' -- "$cur"))
            return
        fi
    done
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W '-h --help -c --config --agents --control --stream --http
            --memory-history --memory-history-age --pending-ttl --ack-timeout
            --http-threads --db --curve-secret-file --api-token-file --api-token-reads
            --show-config --log-level --log-format --version' -- "$cur"))
    else
        COMPREPLY=($(compgen -W 'keygen' -- "$cur"))
    fi
} &&
    complete -F _der_hub der-hub
