#!/usr/bin/env bash
# Fault tests of the release binary, one table row each: what was done, the exit status, what is
# left on disk, and whether that is what README promises.
#
#   scripts/faults.sh            (builds .build/release/mambasep when missing; about 2 minutes)
#
# Faults: SIGINT / SIGTERM / SIGHUP / SIGKILL during `separate` of a 10-minute file; a full disk
# (a file-size limit, `ulimit -f 300`: 300 KiB a file, as bash counts 1024-byte blocks; and a
# 600 KB tmpfs where this machine allows mounting one) for `separate` and `stream --output-dir`;
# the output folder deleted mid-run; `stream` whose standard input stalls for 30 s and then
# continues (STALL=SECONDS to change). Needs sox.
set -uo pipefail
cd "$(dirname "$0")/.."
B=$PWD/.build/release/mambasep
[ -x "$B" ] || nice -n 19 swift build -c release >&2 || exit 1
W=$(mktemp -d /tmp/mambasep-faults.XXXXXX)
trap 'umount "$W/small" 2>/dev/null; rm -rf "$W"' EXIT
cd "$W"
sox -n -r 8000 -b 16 -c 1 long.wav synth 600 sine 300 sine 520 remix 1-2 gain -6 2>/dev/null \
    || sox -n -r 8000 -b 16 -c 1 long.wav synth 600 sine 300
fails=0
row() {  # fault, status, expected status, left on disk, ok (yes/no)
    printf '| %s | %s | %s | %s | %s |\n' "$1" "$2" "$3" "$4" "$5"
    [ "$5" = yes ] || fails=$((fails + 1))
}
left() {  # what is under folder $1 (relative to $W), or "nothing (folder removed)"
    if [ -d "$1" ]; then
        local l; l=$(cd "$1" && ls -A | tr '\n' ' ')
        echo "${l:-empty folder $1}"
    else
        echo "nothing (folder $1 removed)"
    fi
}
echo "| fault | exit | expected | left on disk | as documented |"
echo "|---|---|---|---|---|"

# Signals: wait until both temporaries exist, then signal.
for sig in INT TERM HUP KILL; do
    out=sig-$sig/sub
    "$B" separate long.wav -o "$out" --threads 1 2> "err-$sig" & pid=$!
    for _ in $(seq 600); do [ "$(ls -A "$out" 2>/dev/null | grep -c '\.tmp$')" = 2 ] && break; sleep 0.05; done
    sleep 0.3
    kill -s "$sig" "$pid"; wait "$pid" 2>/dev/null; st=$?
    case $sig in INT) want=130 ;; TERM) want=143 ;; HUP) want=129 ;; KILL) want=137 ;; esac
    what=$(left "$out")
    if [ $sig = KILL ]; then
        ok=$( [ $st = $want ] && ls -A "$out" | grep -qvE '^\.long_s[12]\.wav\.[0-9a-f]+\.tmp$' && echo no || { [ $st = $want ] && echo yes || echo no; })
        what="only temporaries: $what"
    else
        ok=$( [ $st = $want ] && [ ! -e sig-$sig ] && echo yes || echo no )
        what="$what; stderr: $(tr -d '\n' < "err-$sig")"
    fi
    row "SIG$sig during separate (10 min input)" "$st" "$want" "$what" "$ok"
done

# Full disk through a file-size limit: SIGXFSZ is ignored, the write fails with EFBIG.
( ulimit -f 300; "$B" separate long.wav -o fsize/out 2> err-fsize ); st=$?
row "separate with ulimit -f 300 (300 KiB a file)" "$st" 1 "$(left fsize); stderr: $(tr -d '\n' < err-fsize)" \
    "$( [ $st = 1 ] && [ ! -e fsize ] && echo yes || echo no)"
( ulimit -f 300; sox long.wav -t wav - 2>/dev/null | "$B" stream --output-dir fsize-stream 2> err-fsize-s ); st=$?
sizes=$(for f in fsize-stream/*.wav; do python3 -c "import struct,sys; d=open(sys.argv[1],'rb').read(); print(sys.argv[1].split('/')[-1], len(d), 'bytes, a valid WAV' if struct.unpack('<I',d[40:44])[0]+44==len(d) else 'bytes, NOT a valid WAV', end='; ')" "$f"; done)
row "stream --output-dir with ulimit -f 300" "$st" 1 "$sizes stderr: $(tr -d '\n' < err-fsize-s)" \
    "$( [ $st = 1 ] && ! echo "$sizes" | grep -q NOT && echo yes || echo no)"

# Full disk on a small tmpfs, where mounting is allowed.
mkdir -p small
if mount -t tmpfs -o size=600k tmpfs small 2>/dev/null; then
    "$B" separate long.wav -o small/out 2> err-tmpfs; st=$?
    row "separate onto a full 600 KB tmpfs" "$st" 1 "$(left small/out), $(df --output=used small | tail -1 | tr -d ' ') KB used; stderr: $(tr -d '\n' < err-tmpfs)" \
        "$( [ $st = 1 ] && [ ! -e small/out ] && echo yes || echo no)"
    sox long.wav -t wav - 2>/dev/null | "$B" stream --output-dir small/st 2> err-tmpfs-s; st=$?
    sizes=$(for f in small/st/*.wav; do python3 -c "import struct,sys; d=open(sys.argv[1],'rb').read(); print(sys.argv[1].split('/')[-1], len(d), 'bytes, a valid WAV' if struct.unpack('<I',d[40:44])[0]+44==len(d) else 'bytes, NOT a valid WAV', end='; ')" "$f"; done)
    row "stream --output-dir onto a full 600 KB tmpfs" "$st" 1 "$sizes stderr: $(tr -d '\n' < err-tmpfs-s)" \
        "$( [ $st = 1 ] && ! echo "$sizes" | grep -q NOT && echo yes || echo no)"
    umount small
else
    row "full tmpfs" "-" "-" "skipped: this machine does not allow mounting a tmpfs" yes
fi

# The output folder disappears while separating.
sox long.wav short.wav trim 0 120 2>/dev/null
"$B" separate short.wav -o gone 2> err-gone & pid=$!
for _ in $(seq 600); do [ "$(ls -A gone 2>/dev/null | grep -c '\.tmp$')" = 2 ] && break; sleep 0.05; done
rm -rf gone; wait "$pid"; st=$?
row "output folder deleted mid-run" "$st" 1 "$(left gone); stderr: $(tr -d '\n' < err-gone)" \
    "$( [ $st = 1 ] && [ ! -e gone ] && echo yes || echo no)"

# Standard input stalls, then continues: the same output as without the stall.
stall=${STALL:-30}
sox long.wav -t wav in20.wav trim 0 20 2>/dev/null
"$B" stream < in20.wav > ref.wav 2>/dev/null
start=$(date +%s)
( head -c 100000 in20.wav; sleep "$stall"; tail -c +100001 in20.wav ) | "$B" stream > stalled.wav 2> err-stall; st=$?
took=$(( $(date +%s) - start ))
same=$(cmp -s ref.wav stalled.wav && echo "output identical to the unstalled run" || echo "output DIFFERS")
row "stream stdin stalls ${stall} s after 100 KB, then continues" "$st" 0 "$same ($(stat -c %s stalled.wav) bytes, ${took} s)" \
    "$( [ $st = 0 ] && cmp -s ref.wav stalled.wav && echo yes || echo no)"

echo
echo "faults: $fails not as documented"
exit $(( fails > 0 ))
