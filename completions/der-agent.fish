# fish completion for der-agent(1). Install as ~/.config/fish/completions/der-agent.fish
# or /usr/share/fish/vendor_completions.d/der-agent.fish.

# site/asset names of the assets.yaml given with --config on the command line
# (block-style YAML as der-assets.yaml(5) describes it).
function __der_agent_assets
    set -l args (commandline -opc)
    set -l config
    for i in (seq (count $args))
        switch $args[$i]
            case --config
                set -l j (math $i + 1)
                test $j -le (count $args); and set config $args[$j]
            case '--config=*'
                set config (string replace -- '--config=' '' $args[$i])
        end
    end
    set config (string replace -r -- '^~' $HOME "$config")
    test -n "$config"; and test -r "$config"; or return
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
                if (key == site_key) site = v
                else if (level == 2 && key == asset_key) asset[n] = v
            }
        }
        END { flush() }' $config 2>/dev/null
end

function __der_agent_no_config
    not __fish_seen_argument -l config
end

complete -c der-agent -f
complete -c der-agent -s h -l help -d 'Print the options and exit'
complete -c der-agent -l version -d 'Print the version and exit'
complete -c der-agent -l hub -x -a 'tcp://127.0.0.1:7410' -d "The hub's agent endpoint"
complete -c der-agent -l asset -x -a '(__der_agent_assets)' -d 'The asset: UUID or site/name'
complete -c der-agent -l config -r -F -d 'assets.yaml holding the asset and its limits'
complete -c der-agent -l adapter -x -a "sim exec modbus" -d "How to reach the device"
complete -c der-agent -l exec -x -a "(__fish_complete_command)" -d "exec adapter: the device program (implies --adapter exec)"
complete -c der-agent -l modbus -x -d "modbus adapter: the device as HOST[:PORT] (implies --adapter modbus)"
complete -c der-agent -l adapter-option -x -d "An adapter option KEY=VALUE (repeatable)"
complete -c der-agent -l tick -x -d 'Device tick (sim step) interval (default 1s)'
complete -c der-agent -l telemetry-interval -x -d "Telemetry interval until the hub's welcome sets it (default 4s)"
complete -c der-agent -l buffer -x -d 'Telemetry records kept until acknowledged (default 10000)'
complete -c der-agent -l spool -x -a '(__fish_complete_directories)' -d 'Directory for the disk spool of unacknowledged telemetry'
complete -c der-agent -l spool-max-bytes -x -d 'Bound of the spool file, bytes (default 67108864)'
complete -c der-agent -l on-hub-loss -x -a 'hold zero' -d 'After --hub-timeout without the hub: hold or zero'
complete -c der-agent -l hub-timeout -x -d 'Silence after which the hub counts as lost (default 60s)'
complete -c der-agent -l log-level -x -a 'debug info warn error' -d 'Least severe log level shown'
complete -c der-agent -l log-format -x -a 'text json' -d 'Log line format on stderr'
complete -c der-agent -l curve-server-key -r -F -d "The hub's CURVE public key, or a file holding it"
complete -c der-agent -l curve-secret-file -r -F -d "This agent's CURVE secret key file"
complete -c der-agent -n __der_agent_no_config -l capacity-mwh -x -d 'Usable energy when full, MWh'
complete -c der-agent -n __der_agent_no_config -l max-mw -x -d 'Discharge limit, MW >= 0'
complete -c der-agent -n __der_agent_no_config -l min-mw -x -d 'Charge limit, MW <= 0'
complete -c der-agent -n __der_agent_no_config -l ramp-mw-per-s -x -d 'Ramp limit, MW/s (0 = none)'
complete -c der-agent -n __der_agent_no_config -l efficiency -x -d 'Round-trip efficiency, (0, 1]'
complete -c der-agent -n __der_agent_no_config -l soc-min-pct -x -d 'Discharge stops at this SOC, %'
complete -c der-agent -n __der_agent_no_config -l soc-max-pct -x -d 'Charge stops at this SOC, %'
complete -c der-agent -n __der_agent_no_config -l initial-soc-pct -x -d 'SOC of the simulated battery at start, %'
