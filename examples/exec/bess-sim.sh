#!/usr/bin/env bash
# bess-sim.sh: a battery for der-agent's exec adapter (docs/adapters.md).
#
# Speaks the exec protocol: one JSON request a line on stdin, one JSON
# answer a line on stdout; logs go to stderr (der-agent prefixes them).
#   {"op":"read"}              -> {"soc_mwh":..,"soc_pct":..,"current_mw":..,"setpoint_mw":..,"status":".."}
#   {"op":"setpoint","mw":X}   -> {"ok":true} | {"ok":false,"reason":".."}
#
# Integer arithmetic in kW, Wh and microseconds (bash 5's EPOCHREALTIME);
# awk only to read the setpoint's decimal number. Copy it and replace the
# bodies of read_device/command_device with calls to your real device.
#
# Settings (environment):
#   BESS_CAPACITY_KWH  usable energy when full (default 4000)
#   BESS_MAX_KW        discharge limit, >= 0   (default 2000)
#   BESS_MIN_KW        charge limit, <= 0      (default -2000)
#   BESS_SOC_PCT       SOC at start, integer % (default 50)
#
#   der-agent --hub tcp://hub:7410 --asset north/bess-1 --config assets.yaml \
#             --exec 'BESS_CAPACITY_KWH=8000 exec bash examples/exec/bess-sim.sh'
set -u

capacity_wh=$(( ${BESS_CAPACITY_KWH:-4000} * 1000 ))
max_kw=${BESS_MAX_KW:-2000}
min_kw=${BESS_MIN_KW:--2000}
soc_wh=$(( capacity_wh * ${BESS_SOC_PCT:-50} / 100 ))
setpoint_kw=0
power_kw=0
energy_rest=0   # kW*us not yet whole Wh (1 Wh = 3.6e9 kW*us)
last_us=${EPOCHREALTIME/./}

log() { printf 'bess-sim: %s\n' "$*" >&2; }

# Decimal with `places` decimals of an integer in 1/10^places units, sign-aware.
decimal() {
    local value=$1 places=$2 sign='' scale=1 i
    for (( i = 0; i < places; i++ )); do scale=$(( scale * 10 )); done
    if (( value < 0 )); then sign='-'; value=$(( -value )); fi
    printf '%s%d.%0*d' "$sign" $(( value / scale )) "$places" $(( value % scale ))
}

# Energy flows at power_kw since the last call; power stops at 0 % and 100 %.
integrate() {
    local now_us=${EPOCHREALTIME/./} dt_us wh
    dt_us=$(( now_us - last_us ))
    last_us=$now_us
    (( dt_us > 0 )) || return 0
    energy_rest=$(( energy_rest + power_kw * dt_us ))
    wh=$(( energy_rest / 3600000000 ))
    energy_rest=$(( energy_rest - wh * 3600000000 ))
    soc_wh=$(( soc_wh - wh ))
    if (( soc_wh <= 0 )); then soc_wh=0; energy_rest=0; fi
    if (( soc_wh >= capacity_wh )); then soc_wh=$capacity_wh; energy_rest=0; fi
    power_kw=$setpoint_kw
    if (( power_kw > 0 && soc_wh == 0 )) || (( power_kw < 0 && soc_wh == capacity_wh )); then power_kw=0; fi
}

read_device() {
    integrate
    local status=idle
    if (( power_kw > 0 )); then status=discharging; elif (( power_kw < 0 )); then status=charging; fi
    if (( setpoint_kw != 0 && power_kw == 0 )); then status=soc_limit; fi
    printf '{"soc_mwh":%s,"soc_pct":%s,"current_mw":%s,"setpoint_mw":%s,"status":"%s"}\n' \
        "$(decimal "$soc_wh" 6)" "$(decimal $(( soc_wh * 10000 / capacity_wh )) 2)" \
        "$(decimal "$power_kw" 3)" "$(decimal "$setpoint_kw" 3)" "$status"
}

command_device() {
    local kw
    kw=$(awk -v v="$1" 'BEGIN { x = v * 1000; printf "%d", (x >= 0 ? x + 0.5 : x - 0.5) }')
    if (( kw > max_kw )); then
        printf '{"ok":false,"reason":"%s kW is above the discharge limit %s kW"}\n' "$kw" "$max_kw"; return
    fi
    if (( kw < min_kw )); then
        printf '{"ok":false,"reason":"%s kW is below the charge limit %s kW"}\n' "$kw" "$min_kw"; return
    fi
    integrate
    setpoint_kw=$kw
    power_kw=$kw
    log "setpoint $kw kW"
    printf '{"ok":true}\n'
}

log "capacity $(( capacity_wh / 1000 )) kWh, limits $min_kw..$max_kw kW, soc $(( soc_wh * 100 / capacity_wh )) %"
while IFS= read -r line; do
    case $line in
        *'"op":"read"'* | *'"op": "read"'*) read_device ;;
        *'"op":"setpoint"'* | *'"op": "setpoint"'*)
            mw=${line#*\"mw\":}
            mw=${mw%%[,\}]*}
            command_device "${mw// /}" ;;
        *) printf '{"ok":false,"reason":"unknown request"}\n' ;;
    esac
done
log "stdin closed, exiting"
