# fish completion for der-hub(8). Install as ~/.config/fish/completions/der-hub.fish
# or /usr/share/fish/vendor_completions.d/der-hub.fish.

complete -c der-hub -f
complete -c der-hub -s h -l help -d 'Print the options and exit'
complete -c der-hub -l version -d 'Print the version and exit'
complete -c der-hub -s c -l config -r -F -d "The fleet's assets.yaml"
complete -c der-hub -l agents -x -a 'tcp://*:7410' -d 'ZeroMQ endpoint agents connect to (ROUTER bind)'
complete -c der-hub -l control -x -a 'tcp://127.0.0.1:7411' -d 'ZeroMQ endpoint of the control socket (ROUTER bind)'
complete -c der-hub -l stream -x -a 'tcp://127.0.0.1:7412' -d 'ZeroMQ endpoint of the live stream (XPUB bind)'
complete -c der-hub -l http -x -a '127.0.0.1:7480 off' -d "REST listen address HOST:PORT ('off' disables it)"
complete -c der-hub -l memory-history -x -d 'Telemetry rows kept in memory per asset (default 21600)'
complete -c der-hub -l memory-history-age -x -d 'Age past which in-memory history is dropped (default 24h)'
complete -c der-hub -l pending-ttl -x -d 'A queued dispatch older than this is never sent (default 15m)'
complete -c der-hub -l ack-timeout -x -d 'A sent dispatch with no ack by then is failed (default 5s)'
complete -c der-hub -l http-threads -x -d 'REST worker threads, 1-256 (default 8)'
complete -c der-hub -l db -x -d 'PostgreSQL connection (URI or key=value) for history and restore'
complete -c der-hub -l show-config -d 'Print each effective setting and where it came from, then exit'
complete -c der-hub -l log-level -x -a 'debug info warn error' -d 'Least severe log level shown'
complete -c der-hub -l log-format -x -a 'text json' -d 'Log line format on stderr'
complete -c der-hub -n 'not __fish_seen_subcommand_from keygen' -l curve-secret-file -r -F -d "The hub's CURVE secret key file (der-hub keygen)"
complete -c der-hub -n 'not __fish_seen_subcommand_from keygen' -l api-token-file -r -F -d 'File holding the API token REST writes and control requests need'
complete -c der-hub -n 'not __fish_seen_subcommand_from keygen' -l api-token-reads -d 'REST reads need the token too (GET /health excepted)'
complete -c der-hub -n 'not __fish_seen_subcommand_from keygen' -a keygen -d 'Write a CURVE keypair (Z85), then exit'
complete -c der-hub -n '__fish_seen_subcommand_from keygen' -l out-dir -x -a '(__fish_complete_directories)' -d 'Write DIR/NAME.secret and DIR/NAME.public'
complete -c der-hub -n '__fish_seen_subcommand_from keygen' -l name -x -d 'File name stem with --out-dir (default hub)'
complete -c der-hub -n '__fish_seen_subcommand_from keygen' -l public -r -F -d 'The public key file'
complete -c der-hub -n '__fish_seen_subcommand_from keygen' -l secret -r -F -d 'The secret key file (mode 0600)'
complete -c der-hub -n '__fish_seen_subcommand_from keygen' -l force -d 'Overwrite existing key files'
