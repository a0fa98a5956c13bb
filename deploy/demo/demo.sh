#!/bin/sh
# make demo. As root (with ip and nft), and unless DEMO=loopback: the
# network-namespace home of e2e/demo ($DEMO_BIN): two WANs, an internet,
# MQTT when Mosquitto is installed, and a scripted minute with a failover,
# an outage and an IP change. Otherwise: imon on a loopback-only config
# with a journal in a temporary folder, until Ctrl-C (or DEMO_SECONDS),
# then the journal replayed.
set -eu
: "${IMON:?}"
if [ "${DEMO:-}" != loopback ] && [ "$(id -u)" = 0 ] && [ -n "${DEMO_BIN:-}" ] &&
	command -v ip >/dev/null 2>&1 && command -v nft >/dev/null 2>&1; then
	exec env IMON="$IMON" DEMO_DIR="${DEMO_DIR:-}" "$DEMO_BIN"
fi
if [ "${DEMO:-}" != loopback ]; then
	echo "== loopback demo (the network-namespace demo needs root, ip and nft; DEMO=loopback forces this one)"
fi
DEMO_DIR=${DEMO_DIR:-$(mktemp -d /tmp/imon-demo.XXXXXX)}
mkdir -p "$DEMO_DIR"
chmod 0755 "$DEMO_DIR"
cfg="$DEMO_DIR/imon-demo.json"
action="$DEMO_DIR/demo-action"
cat > "$action" <<'A'
#!/bin/sh
# Demo action script: prints what imon hands it (INTERFACE.md §3).
echo "demo-action: $*" >&2
A
chmod 0755 "$action"
mqtt='"enable": false'
if [ -n "${MQTT:-}" ]; then
	mqtt="\"enable\": true, \"server\": \"$MQTT\""
fi
cat > "$cfg" <<C
{
  "global": {"action": "$action", "instance": "demo", "note": "loopback-only demo"},
  "updown": {"enable": true, "interval": 2, "pingcount": 2, "pingwait": 1,
             "monitorip": "127.0.0.1", "addping": "127.0.0.2,::1"},
  "ping":   {"enable": true, "interval": 5, "pingcount": 3, "pingwait": 1, "monitorip": "::1"},
  "journal": {"path": "$DEMO_DIR/demo.db", "socket": "$DEMO_DIR/demo.sock"},
  "mqtt": {$mqtt, "node-id": "demo"},
  "homeassistant": {"enable": $( [ -n "${MQTT:-}" ] && echo true || echo false )}
}
C
chmod 0644 "$cfg"
echo "== imon demo: config $cfg (Ctrl-C to stop)"
echo "== in another terminal: $IMON journal --config $cfg --follow"
"$IMON" --config "$cfg" --nosyslog &
pid=$!
trap 'kill -TERM $pid 2>/dev/null || true' INT TERM
if [ -n "${DEMO_SECONDS:-}" ] && [ "${DEMO_SECONDS:-0}" != 0 ]; then
	( sleep "$DEMO_SECONDS"; kill -TERM $pid 2>/dev/null || true ) &
fi
wait $pid || true
wait $pid 2>/dev/null || true
trap - INT TERM
echo "== imon journal --config $cfg"
"$IMON" journal --config "$cfg"
