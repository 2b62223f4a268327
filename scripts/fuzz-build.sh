# Sourced by scripts/fuzz.sh and scripts/fuzz-coverage.sh: builds the harness binary of
# fuzz/Harness.swift from the library's sources.
#
#   fuzz_build BIN LOG SWIFTC_FLAGS...
#
# Rebuilds BIN when it is missing or older than a library source, a harness file or the calling
# script (swiftc -O -target-cpu haswell, the system-library modules and pkg-config names that
# Package.swift declares, plus SWIFTC_FLAGS); on failure prints LOG without the linker's warnings
# and exits 1. Run from the repository root.
fuzz_build() {
    local bin=$1 log=$2
    shift 2
    mkdir -p "$(dirname "$bin")"
    local sources cmods pkgs
    sources=$(find Sources/MambaSep -name '*.swift' | sort)
    cmods=$(for d in Sources/C*/; do printf -- '-I %s ' "${d%/}"; done)
    pkgs=$(grep -oE 'pkgConfig: "[^"]+"' Package.swift | cut -d'"' -f2 | tr '\n' ' ')
    # shellcheck disable=SC2086
    if [ -x "$bin" ] && [ -z "$(find $sources fuzz/*.swift "$0" scripts/fuzz-build.sh -newer "$bin" 2>/dev/null | head -n 1)" ]; then
        return 0
    fi
    echo "$(basename "$0"): building $bin" >&2
    local cflags=() f
    for f in $(pkg-config --cflags $pkgs); do cflags+=(-Xcc "$f"); done
    # shellcheck disable=SC2086
    nice -n 19 swiftc "$@" -O -parse-as-library -module-name MambaSepFuzz $cmods "${cflags[@]}" \
        -target-cpu haswell $sources fuzz/Harness.swift fuzz/BundleModule.swift \
        $(pkg-config --libs $pkgs) -o "$bin.new" 2> "$log" \
        || { grep -v "ld.gold: warning" "$log" >&2; exit 1; }
    mv "$bin.new" "$bin"
}
