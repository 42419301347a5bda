#!/usr/bin/env bash
# Regenerates docs/status-page.png: a warrend on a scratch data directory with some traffic
# (two accounts, a room, messages, history, searches, a failed login, an admin block), shot
# by headless Chromium. Needs a build in build/ and chromium.
set -e
cd "$(dirname "$0")/.."
B=$PWD/build/bin; D=$(mktemp -d)
sed -n '/unlimited_config = R"toml(/,/)toml"/p' tests/loopback.h | sed '1d;$d' > $D/u.toml
WARREN_ADMIN_TOKEN=tok-0123456789abcdef $B/warrend --config $D/u.toml --data-dir $D/data --listen 127.0.0.1:17080 --admin-listen 127.0.0.1:17081 > $D/out 2>&1 & pid=$!
sleep 1
W="$B/warren --server 127.0.0.1:17080"
$W -u alice -p 'correct horse' --register create general >/dev/null
$W -u bob -p 'battery staple' --register join general >/dev/null
$W -u alice -p 'wrong-password' send general x >/dev/null 2>&1 || true
curl -s -X POST -H "Authorization: Bearer tok-0123456789abcdef" -H "Content-Type: application/json" -d '{"ip":"203.0.113.9","reason":"raid from this address","duration_ms":3600000}' http://127.0.0.1:17081/api/v1/admin/security/blocks >/dev/null
(for i in $(seq 1 300); do $W -u alice -p 'correct horse' send general "hello $i" >/dev/null; [ $((i % 10)) = 0 ] && $W -u bob -p 'battery staple' history general >/dev/null; [ $((i % 25)) = 0 ] && $W -u bob -p 'battery staple' search hello >/dev/null; done) &
lp=$!
sleep 3
timeout 60 chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --disable-background-networking --window-size=1280,1100 --virtual-time-budget=7000 --screenshot="$PWD/docs/status-page.png" "http://admin:tok-0123456789abcdef@127.0.0.1:17081/" 2>/dev/null
kill $lp 2>/dev/null || true; wait $lp 2>/dev/null || true
kill $pid; wait $pid || true
rm -rf $D
